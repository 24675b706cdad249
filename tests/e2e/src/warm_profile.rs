//! A warm profile for each Firefox a test starts: a copy of a template that Firefox has already
//! started with, so each start skips building Firefox's own caches (its startup cache above all).
//! Here that halves a start (about 4 s cold, 2 s warm), and the tests start Firefox more than a
//! hundred times.
//!
//! The template is made once per Firefox build (its `BuildID`) with no add-on installed, so a
//! copy holds nothing of ours: no storage, permission or cookie of an earlier test. Each test
//! still installs the add-on into its own copy, removed when its Firefox closes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A copy of the template for one Firefox; removed when dropped.
#[derive(Debug)]
pub struct ProfileCopy(PathBuf);

impl ProfileCopy {
    /// The copy's folder, for `-profile`.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ProfileCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Files of a profile that belong to one run of Firefox, not to what later runs reuse: the
/// lock, the preferences geckodriver writes for each session, the window sizes and session
/// Firefox would restore.
const PER_RUN: &[&str] = &[
    "lock",
    ".parentlock",
    "user.js",
    "xulstore.json",
    "sessionstore.jsonlz4",
    "sessionstore-backups",
    "sessionCheckpoints.json",
];

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/firefox-profiles")
}

/// The `BuildID` of the Firefox at `binary` (from `application.ini` beside it).
fn build_id(binary: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(binary).ok()?.parent()?.to_path_buf();
    let ini = std::fs::read_to_string(dir.join("application.ini")).ok()?;
    ini.lines()
        .find_map(|line| line.strip_prefix("BuildID="))
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if PER_RUN.iter().any(|n| name == *n) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// A fresh copy of the warm template for Firefox at `binary`, making the template first if
/// there is none; `None` (start cold) when it cannot be made.
pub async fn fresh_copy(binary: &Path) -> Option<ProfileCopy> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_leftovers);
    let template = template(binary).await?;
    let copy = profiles_dir().join(format!(
        "copy-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&copy);
    match copy_dir(&template, &copy) {
        Ok(()) => Some(ProfileCopy(copy)),
        Err(e) => {
            eprintln!("warm profile: copy failed ({e}); starting cold");
            let _ = std::fs::remove_dir_all(&copy);
            None
        }
    }
}

/// Removes what test processes that were killed left behind (copies and half-made templates of
/// processes no longer running), once per process.
fn remove_leftovers() {
    let Ok(entries) = std::fs::read_dir(profiles_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = match name.split('-').collect::<Vec<_>>()[..] {
            ["copy", pid, _] | ["warming", _, pid] => pid.parse::<u32>().ok(),
            _ => None,
        };
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The template for Firefox at `binary`: made by starting that Firefox twice in an empty
/// folder and quitting it normally (it writes its caches on the way out), then moved into
/// place in one rename, so a test binary running meanwhile never copies a half-made one.
async fn template(binary: &Path) -> Option<PathBuf> {
    let id = build_id(binary)?;
    let template = profiles_dir().join(format!("template-{id}"));
    if template.is_dir() {
        return Some(template);
    }
    let warming = profiles_dir().join(format!("warming-{id}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&warming);
    std::fs::create_dir_all(&warming).ok()?;
    for _ in 0..2 {
        if let Err(e) = crate::firefox::start_and_quit(binary, &warming).await {
            eprintln!("warm profile: {e}; starting cold");
            let _ = std::fs::remove_dir_all(&warming);
            return None;
        }
    }
    for name in PER_RUN {
        let path = warming.join(name);
        let _ = std::fs::remove_dir_all(&path);
        let _ = std::fs::remove_file(&path);
    }
    if std::fs::rename(&warming, &template).is_err() {
        // Another test binary made it first.
        let _ = std::fs::remove_dir_all(&warming);
    }
    // Templates of Firefox builds replaced since.
    if let Ok(entries) = std::fs::read_dir(profiles_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("template-") && entry.path() != template {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    template.is_dir().then_some(template)
}
