//! The add-on a library installs (`dist/*.xpi`, built by `./build.sh`) carries none of the test
//! hooks: no file in it, the `.wasm` included, names them, the `.wasm` exports none of them,
//! and the test folder is not in it. The Firefox tests and benchmarks get them from the test
//! build (`www-test/`, `./build.sh test`).
//!
//! Without a built `.xpi` this test skips, unless `KOC_XPI_REQUIRED` is set (as `./build.sh test`
//! does). `KOC_XPI` checks another file instead of `dist/*.xpi`.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

/// What only tests and benchmarks use: the core's test exports, the page globals and marks, the
/// test-only `data-*` fields, the hooks module, and two exports removed as dead.
const HOOKS: &[&str] = &[
    "recordBatch",
    "syntheticEntries",
    "openStorage",
    "kocCore",
    "koc:ready",
    "dataset.runs",
    "dataset.outcome",
    "dataset.n ",
    "dataset.state",
    "dataset.question",
    "dataset.exported",
    "data-state",
    "hooks.js",
    "browserZone",
    "withSendLock",
];

/// The core exports the test build adds (as the `.wasm` names them).
const HOOK_EXPORTS: &[&str] = &["recordBatch", "syntheticEntries", "openStorage"];

fn shipped_xpi() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KOC_XPI") {
        return Some(PathBuf::from(path));
    }
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    let found = std::fs::read_dir(&dist)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "xpi"));
    if found.is_none() {
        assert!(
            std::env::var_os("KOC_XPI_REQUIRED").is_none(),
            "KOC_XPI_REQUIRED is set but {} holds no .xpi; run ./build.sh",
            dist.display()
        );
        eprintln!("SKIPPED: no dist/*.xpi; run ./build.sh");
    }
    found
}

fn u16_at(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Every file of a zip archive, by name, uncompressed (stored or deflated entries, as web-ext
/// and advzip write them).
fn unzip(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let end = (0..=zip.len() - 22)
        .rev()
        .find(|&i| zip[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .expect("the zip's end of central directory");
    let count = u16_at(zip, end + 10);
    let mut at = u32_at(zip, end + 16);
    let mut files = Vec::with_capacity(count);
    for _ in 0..count {
        assert_eq!(zip[at..at + 4], [0x50, 0x4b, 0x01, 0x02], "a central entry");
        let method = u16_at(zip, at + 10);
        let size = u32_at(zip, at + 20);
        let name_len = u16_at(zip, at + 28);
        let local = u32_at(zip, at + 42);
        let name = String::from_utf8_lossy(&zip[at + 46..at + 46 + name_len]).into_owned();
        at += 46 + name_len + u16_at(zip, at + 30) + u16_at(zip, at + 32);
        let start = local + 30 + u16_at(zip, local + 26) + u16_at(zip, local + 28);
        let data = &zip[start..start + size];
        let bytes = match method {
            0 => data.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec(data)
                .unwrap_or_else(|e| panic!("{name}: cannot inflate: {e:?}")),
            other => panic!("{name}: compression method {other}"),
        };
        files.push((name, bytes));
    }
    files
}

fn leb128(b: &[u8], at: &mut usize) -> usize {
    let (mut value, mut shift) = (0usize, 0);
    loop {
        let byte = b[*at];
        *at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// The names in a WebAssembly module's export section.
fn wasm_exports(wasm: &[u8]) -> Vec<String> {
    assert_eq!(wasm[..4], *b"\0asm", "a WebAssembly module");
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb128(wasm, &mut at);
        let next = at + size;
        if id == 7 {
            let mut names = Vec::new();
            for _ in 0..leb128(wasm, &mut at) {
                let len = leb128(wasm, &mut at);
                names.push(String::from_utf8_lossy(&wasm[at..at + len]).into_owned());
                at += len + 1;
                leb128(wasm, &mut at);
            }
            return names;
        }
        at = next;
    }
    Vec::new()
}

#[test]
fn the_shipped_addon_has_no_test_hooks() {
    let Some(xpi) = shipped_xpi() else { return };
    let zip = std::fs::read(&xpi).unwrap_or_else(|e| panic!("{}: {e}", xpi.display()));
    let files = unzip(&zip);
    assert!(
        files.iter().any(|(name, _)| name == "desk-send.js"),
        "the pages are in {}",
        xpi.display()
    );

    let (_, wasm) = files
        .iter()
        .find(|(name, _)| name.ends_with(".wasm"))
        .expect("the core's .wasm in the add-on");
    let exports = wasm_exports(wasm);
    assert!(
        exports.iter().any(|e| e == "openDesk"),
        "the export section was read: {exports:?}"
    );
    let mut found: Vec<String> = exports
        .iter()
        .filter(|e| HOOK_EXPORTS.contains(&e.as_str()))
        .map(|e| format!("the .wasm exports {e}"))
        .collect();
    for (name, bytes) in &files {
        if name.starts_with("test/") {
            found.push(format!("{name} (the test folder)"));
        }
        for hook in HOOKS {
            if bytes.windows(hook.len()).any(|w| w == hook.as_bytes()) {
                found.push(format!("{name}: {hook}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "{} carries test hooks:\n{}",
        xpi.display(),
        found.join("\n")
    );
}
