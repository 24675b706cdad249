//! Storage exports for the pages and the background script: keeping a page in step with
//! `storage.onChanged`, retrying failed writes, the toolbar badge count, and synthetic entries
//! for benchmarks and tests. The layout stays the core's (`crate::store`); JavaScript holds none
//! of it.

use super::dto::{js_error, ErrorDto};
use super::state::{self, StorageFailure};
use crate::store::{self, StoredChange};
use crate::{Action, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId};
use chrono::{DateTime, Duration, Utc};
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

/// Opens the stores for a page that shows no desk (options page, benchmarks): reconciles them
/// like the desk does, without recovering interrupted sends. Resolves to the number of
/// transactions.
#[wasm_bindgen(js_name = openStorage)]
pub async fn open_storage() -> Result<u32, JsValue> {
    state::open(false).await.map_err(storage_error)?;
    Ok(state::with_journal(|j| j.len()) as u32)
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
    Ok(badge_count())
}

/// Updates the count from a `storage.onChanged` batch (only the changed keys are read).
#[wasm_bindgen(js_name = badgeApply)]
pub fn badge_apply(changes: JsValue) -> u32 {
    if let Some(map) = state::changes_map(&changes) {
        for (key, change) in &map {
            if store::is_transaction_key(key) {
                track(key, change.get("newValue"));
            }
        }
    }
    badge_count()
}

/// `count` synthetic checkouts in the core's layout, as `{key: value}`, for seeding storage in
/// benchmarks and tests. Number `first + i` is recorded `first + i` seconds after 2026-01-01 UTC;
/// the first `unsent` of the batch stay `local`, the others are `applied`. Each gets a key of
/// its own (as recording and sending leave them); with `packed`, the applied ones are packed
/// into archive chunks as far as they fill them (as a desk in use for a while has them).
#[wasm_bindgen(js_name = syntheticEntries)]
pub fn synthetic_entries(
    first: u32,
    count: u32,
    unsent: u32,
    packed: Option<bool>,
) -> Result<JsValue, JsValue> {
    let start = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let branch = Branchcode::parse("DE-627").map_err(js_error)?;
    let mut txs = Vec::with_capacity(count as usize);
    for i in 0..count {
        let n = first + i;
        let at = start + Duration::seconds(i64::from(n));
        let action = Action::Issue {
            cardnumber: Cardnumber::parse(&format!("C{:04}", n % 1000)).map_err(js_error)?,
            barcode: Barcode::parse(&format!("S{n:08}")).map_err(js_error)?,
        };
        let mut tx = Transaction::record(
            TransactionId::new(at, u64::from(n)),
            at,
            branch.clone(),
            action,
        );
        if i >= unsent {
            let sent = tx
                .start_sending(at + Duration::hours(1))
                .and_then(|()| tx.finish_sending(at + Duration::hours(1), Status::Applied));
            sent.map_err(|e| js_error(ErrorDto::new("illegal-transition", None, e)))?;
        }
        txs.push(tx);
    }
    let packing = if packed == Some(true) {
        store::pack_plan(&txs)
    } else {
        store::Packing::default()
    };
    let in_chunks: HashSet<TransactionId> = packing.packed.iter().cloned().collect();
    let items = js_sys::Object::new();
    let chunks = packing.changes.into_iter().filter_map(|c| match c {
        store::Change::Put { key, value } => Some((key, value)),
        store::Change::Remove { .. } => None,
    });
    let single = txs
        .iter()
        .filter(|tx| !in_chunks.contains(&tx.id))
        .filter_map(|tx| match store::write_plan(tx).primary {
            store::Change::Put { key, value } => Some((key, value)),
            store::Change::Remove { .. } => None,
        });
    for (key, value) in chunks.chain(single) {
        js_sys::Reflect::set(
            &items,
            &JsValue::from_str(&key),
            &state::stored_value(&value)?,
        )?;
    }
    Ok(items.into())
}
