//! Storage exports for the pages and the background script: keeping a page in step with
//! `storage.onChanged`, retrying failed writes, the toolbar badge count. The layout stays the
//! core's (`crate::store`); JavaScript holds none of it.

use super::dto::{js_error, ErrorDto};
use super::state::{self, StorageFailure};
use crate::store::NotAcceptedTally;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

fn storage_error(e: StorageFailure) -> JsValue {
    js_error(ErrorDto::new("storage", None, e.0))
}

/// Applies a `storage.onChanged` batch (area `local`) to the page's journal and settings.
/// Returns whether anything the page shows changed (the page then re-renders).
#[wasm_bindgen(js_name = applyStorageChanges)]
pub fn apply_storage_changes(changes: JsValue) -> bool {
    state::apply_storage_changes(&changes)
}

/// How many transactions this page holds only in memory and the mirror because the store of
/// record refused them.
#[wasm_bindgen(js_name = unsavedCount)]
pub fn unsaved_count() -> u32 {
    state::unsaved_count() as u32
}

/// Writes the unsaved transactions again. Resolves to how many are still unsaved (0: all
/// stored); rejects with `{kind: "storage"}` if the store of record still refuses.
#[wasm_bindgen(js_name = retryUnsaved)]
pub async fn retry_unsaved() -> Result<u32, JsValue> {
    state::retry_unsaved()
        .await
        .map(|n| n as u32)
        .map_err(storage_error)
}

// The toolbar badge (background script): the count is the core's.
thread_local! {
    static NOT_ACCEPTED: RefCell<NotAcceptedTally> = RefCell::new(NotAcceptedTally::default());
}

fn badge_count() -> u32 {
    NOT_ACCEPTED.with(|tally| tally.borrow().count() as u32)
}

/// Reads the store of record once and returns how many transactions Koha has not accepted.
#[wasm_bindgen(js_name = badgeOpen)]
pub async fn badge_open() -> Result<u32, JsValue> {
    let entries = state::read_primary().await.map_err(storage_error)?;
    let tally = NotAcceptedTally::from_entries(entries.iter().map(|(k, v)| (k.as_str(), v)));
    NOT_ACCEPTED.with(|t| *t.borrow_mut() = tally);
    Ok(badge_count())
}

/// Updates the count from a `storage.onChanged` batch (only the changed keys are read).
#[wasm_bindgen(js_name = badgeApply)]
pub fn badge_apply(changes: JsValue) -> u32 {
    if let Some(map) = state::changes_map(&changes) {
        NOT_ACCEPTED.with(|tally| {
            let mut tally = tally.borrow_mut();
            for (key, change) in &map {
                tally.apply(key, change.get("newValue"));
            }
        });
    }
    badge_count()
}
