//! Storage exports for the pages and the background script: keeping a page in step with
//! `storage.onChanged`, retrying failed writes, the toolbar badge count. The layout stays the
//! core's (`crate::store`); JavaScript holds none of it.

use super::dto::{js_error, ErrorDto};
use super::state::{self, StorageFailure};
use crate::store::{self, StoredChange};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashSet;
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

// The toolbar badge (background script): the keys of transactions Koha has not accepted.
thread_local! {
    static NOT_ACCEPTED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

fn track(key: &str, new_value: Option<&Value>) {
    let not_accepted = match store::decode_change(key, new_value, None) {
        Ok(StoredChange::Transaction(tx)) => !tx.status().is_accepted(),
        Ok(StoredChange::Removed(_)) => false,
        // A send run stores what Koha accepted as a chunk and leaves each one's own key, with
        // its copy from before, to be removed after the run: the chunk's copy counts.
        Ok(StoredChange::Archived(txs) | StoredChange::ArchiveTrimmed { kept: txs, .. }) => {
            NOT_ACCEPTED.with(|set| {
                let mut set = set.borrow_mut();
                for tx in txs {
                    set.remove(&store::transaction_key(&tx.id));
                }
            });
            return;
        }
        // Unreadable entries are quarantined by the next page that opens; not counted.
        Ok(_) | Err(_) => return,
    };
    NOT_ACCEPTED.with(|set| {
        let mut set = set.borrow_mut();
        if not_accepted {
            set.insert(key.to_owned());
        } else {
            set.remove(key);
        }
    });
}

fn badge_count() -> u32 {
    NOT_ACCEPTED.with(|set| set.borrow().len() as u32)
}

/// Reads the store of record once and returns how many transactions Koha has not accepted.
#[wasm_bindgen(js_name = badgeOpen)]
pub async fn badge_open() -> Result<u32, JsValue> {
    let entries = state::read_primary().await.map_err(storage_error)?;
    NOT_ACCEPTED.with(|set| set.borrow_mut().clear());
    for (key, value) in &entries {
        if store::is_transaction_key(key) {
            track(key, Some(value));
        }
    }
    // Chunks only matter for an own key a run left beside its chunk (removed after the run,
    // or at the next start if the page went away first); read them only if anything counts.
    if badge_count() > 0 {
        for (key, value) in &entries {
            if store::is_archive_key(key) {
                track(key, Some(value));
            }
        }
    }
    Ok(badge_count())
}

/// Updates the count from a `storage.onChanged` batch (only the changed keys are read).
#[wasm_bindgen(js_name = badgeApply)]
pub fn badge_apply(changes: JsValue) -> u32 {
    if let Some(map) = state::changes_map(&changes) {
        for (key, change) in &map {
            let new_value = change.get("newValue");
            if store::is_transaction_key(key) || (store::is_archive_key(key) && new_value.is_some())
            {
                track(key, new_value);
            }
        }
    }
    badge_count()
}
