//! The browser killed (SIGKILL) right after the desk confirmed a transaction: started again on
//! the same profile, it shows every confirmed transaction (issue 4).
//!
//! Firefox forgets a temporary add-on, and one installed seconds before a kill, so the add-on
//! is installed permanently from the packed test build, `dist-test/*.xpi` beside `www-test/`
//! (unsigned, allowed on ESR with `xpinstall.signatures.required` false), and Firefox is
//! restarted cleanly once first.

use e2e::desk::{record_checkout, row_ids, with_open_desk};
use e2e::firefox::{addon_dir, with_firefox, Options};
use e2e::wait::wait_until;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn packed_addon(addon: &Path) -> PathBuf {
    let dist = addon.join("../dist-test");
    std::fs::read_dir(&dist)
        .unwrap_or_else(|e| panic!("{}: {e}; run ./build.sh test", dist.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "xpi"))
        .expect("a packed test build in dist-test/ (./build.sh test)")
}

/// Every process started with this profile folder (the browser and its children).
fn browser_pids(profile: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-f", &profile.to_string_lossy()])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn confirmed_transactions_survive_a_killed_browser() {
    let Some(addon) = addon_dir() else { return };
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/kill-profile");
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).expect("profile folder");
    let profile = profile.canonicalize().expect("profile path");
    let on_profile = |install: bool| Options {
        profile: Some(profile.clone()),
        install_temporary: false,
        addon_path: Some(packed_addon(&addon)),
        skip_install: !install,
        ..Options::default()
    };

    // 1. Install permanently, then quit cleanly so Firefox keeps the add-on.
    with_firefox(on_profile(true), |ff| async move {
        ff.open("desk.html").await;
    })
    .await;

    // 2. Record, and kill the browser as soon as the desk confirmed the last one.
    let (sender, receiver) = std::sync::mpsc::channel();
    let killed_profile = profile.clone();
    with_open_desk(on_profile(false), move |ff| async move {
        let mut confirmed = BTreeSet::new();
        for i in 0..3 {
            confirmed.insert(record_checkout(&ff, "C0001", &format!("K{i:04}")).await);
        }
        assert_eq!(
            ff.eval(r#"document.getElementById("message").dataset.kind"#)
                .await,
            "ok"
        );
        let pids = browser_pids(&killed_profile);
        assert!(!pids.is_empty(), "the browser's process");
        let status = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGKILL sent to {pids:?}");
        sender.send(confirmed).expect("sent");
    })
    .await;
    let confirmed = receiver.recv().expect("the confirmed ids");
    wait_until(
        "the killed browser to be gone",
        Duration::from_secs(30),
        || async {
            let left = browser_pids(&profile);
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("processes {left:?}"))
            }
        },
    )
    .await;

    // 3. Start again on the same profile, without installing: everything confirmed is there.
    with_open_desk(on_profile(false), move |ff| async move {
        let shown: BTreeSet<String> = row_ids(&ff).await.into_iter().collect();
        assert_eq!(shown, confirmed);
        ff.screenshot("storage-after-kill").await;
    })
    .await;
}
