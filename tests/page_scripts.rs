//! What the pages' own scripts must agree on with the core, read from their files.
#![cfg(not(target_arch = "wasm32"))]

use koha_offline_circ::journal::SEND_LOCK;

const EARLY_READ: &str = include_str!("../extension/lib/early-read.js");
const DESK: &str = include_str!("../extension/desk.html");

#[test]
fn the_desks_early_read_asks_for_the_send_lock_by_the_cores_name() {
    let request = format!(r#"navigator.locks.request("{SEND_LOCK}", "#);
    assert!(
        EARLY_READ.contains(&request),
        "early-read.js must ask for {SEND_LOCK:?}"
    );
}

#[test]
fn the_desk_starts_its_early_read_before_any_module() {
    let early = DESK
        .find(r#"<script src="lib/early-read.js"></script>"#)
        .expect("desk.html loads lib/early-read.js as a classic script");
    let first_module = DESK
        .find(r#"<script type="module""#)
        .expect("desk.html loads modules");
    assert!(early < first_module, "the early read comes first");
}
