//! The page's copy of the journal and settings, and the two stores behind them.
//!
//! `browser.storage.local` is the store of record; a synchronous `localStorage` mirror holds
//! every transaction Koha has not accepted yet. The layout, migrations and reconciliation are
//! the core's (`crate::store`); this module only moves entries between the stores and memory.

use super::browser;
use crate::journal::Journal;
use crate::settings::Settings;
use crate::store::{self, Change, StoredChange};
use crate::transaction::{Transaction, TransactionId};
use gloo_storage::{LocalStorage, Storage};
use js_sys::{Array, Object};
use serde_json::{Map, Value};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    static JOURNAL: RefCell<Journal> = RefCell::new(Journal::new());
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
    /// Transactions recorded in memory (and the mirror) whose store-of-record write failed.
    static UNSAVED: RefCell<Vec<TransactionId>> = const { RefCell::new(Vec::new()) };
}

/// Why the store of record could not be written.
#[derive(Debug)]
pub struct StorageFailure(pub String);

impl From<JsValue> for StorageFailure {
    fn from(e: JsValue) -> Self {
        let text = js_sys::Error::from(e.clone())
            .message()
            .as_string()
            .or_else(|| e.as_string())
            .unwrap_or_else(|| format!("{e:?}"));
        StorageFailure(text)
    }
}

/// Runs `f` on the page's journal.
pub fn with_journal<R>(f: impl FnOnce(&mut Journal) -> R) -> R {
    JOURNAL.with(|j| f(&mut j.borrow_mut()))
}

/// The stored settings, if any.
pub fn settings() -> Option<Settings> {
    SETTINGS.with(|s| s.borrow().clone())
}

/// Replaces the settings in memory (after they were stored).
pub fn set_settings(settings: Option<Settings>) {
    SETTINGS.with(|s| *s.borrow_mut() = settings);
}

/// Reads both stores, reconciles them, writes the repairs and fills memory. `recover` says
/// whether a `sending` transaction counts as interrupted (no other page holds the send lock).
pub async fn open(recover: bool) -> Result<store::Opened, StorageFailure> {
    let primary = read_primary().await?;
    let mirror = read_mirror();
    let now = recover.then(browser::now);
    let opened = store::open(primary, mirror, now).map_err(|e| StorageFailure(e.to_string()))?;
    apply_primary(&opened.primary_changes).await?;
    apply_mirror(&opened.mirror_changes);
    JOURNAL.with(|j| *j.borrow_mut() = Journal::from_transactions(opened.transactions.clone()));
    set_settings(opened.settings.clone());
    Ok(opened)
}

/// Stores one new or changed transaction: the mirror first (synchronously), then the store of
/// record. Resolves only when the store of record has it. On failure the transaction stays in
/// memory and in the mirror, and [`retry_unsaved`] tries again.
pub async fn persist(tx: &Transaction) -> Result<(), StorageFailure> {
    let plan = store::write_plan(tx);
    apply_mirror(std::slice::from_ref(&plan.mirror));
    match apply_primary(std::slice::from_ref(&plan.primary)).await {
        Ok(()) => Ok(()),
        Err(failure) => {
            UNSAVED.with(|u| {
                let mut unsaved = u.borrow_mut();
                if !unsaved.contains(&tx.id) {
                    unsaved.push(tx.id.clone());
                }
            });
            Err(failure)
        }
    }
}

/// How many transactions are held only in memory and the mirror.
pub fn unsaved_count() -> usize {
    UNSAVED.with(|u| u.borrow().len())
}

/// Writes again every transaction whose store-of-record write failed. Returns how many are
/// still unsaved.
pub async fn retry_unsaved() -> Result<usize, StorageFailure> {
    let ids = UNSAVED.with(|u| u.borrow().clone());
    for id in ids {
        let Some(tx) = with_journal(|j| j.get(&id).cloned()) else {
            UNSAVED.with(|u| u.borrow_mut().retain(|x| x != &id));
            continue;
        };
        let plan = store::write_plan(&tx);
        apply_primary(std::slice::from_ref(&plan.primary)).await?;
        UNSAVED.with(|u| u.borrow_mut().retain(|x| x != &id));
    }
    Ok(unsaved_count())
}

/// Deletes transactions from both stores (they are already gone from memory).
pub async fn forget(ids: &[TransactionId]) -> Result<(), StorageFailure> {
    let mut primary = Vec::with_capacity(ids.len());
    let mut mirror = Vec::with_capacity(ids.len());
    for id in ids {
        let (p, m) = store::remove_plan(id);
        primary.push(p);
        mirror.push(m);
    }
    apply_primary(&primary).await?;
    apply_mirror(&mirror);
    UNSAVED.with(|u| u.borrow_mut().retain(|x| !ids.contains(x)));
    Ok(())
}

/// Stores the settings (the password only if it is to be remembered).
pub async fn save_settings(settings: &Settings) -> Result<(), StorageFailure> {
    let change = Change::Put {
        key: store::SETTINGS_KEY.to_owned(),
        value: store::encode_settings(settings),
    };
    apply_primary(&[change]).await?;
    set_settings(Some(settings.clone()));
    Ok(())
}

/// Applies a `storage.onChanged` batch (another page's writes) to memory. Returns whether
/// anything the page shows changed.
pub fn apply_storage_changes(changes: &JsValue) -> bool {
    let Ok(text) = js_sys::JSON::stringify(changes) else {
        return false;
    };
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&String::from(text)) else {
        return false;
    };
    let mut changed = false;
    for (key, change) in map {
        match store::decode_change(&key, change.get("newValue")) {
            Ok(StoredChange::Transaction(tx)) => {
                with_journal(|j| j.upsert(tx));
                changed = true;
            }
            Ok(StoredChange::Removed(id)) => {
                with_journal(|j| j.forget_removed(&id));
                changed = true;
            }
            Ok(StoredChange::Settings(settings)) => {
                set_settings(settings);
                changed = true;
            }
            Ok(StoredChange::Other) | Err(_) => {}
        }
    }
    changed
}

async fn read_primary() -> Result<Vec<(String, Value)>, StorageFailure> {
    let all = browser::local_get(&JsValue::NULL).await?;
    // One JSON round trip is much faster than converting 50,000 objects one by one.
    let text: String = js_sys::JSON::stringify(&all)?.into();
    let map: Map<String, Value> =
        serde_json::from_str(&text).map_err(|e| StorageFailure(e.to_string()))?;
    Ok(map.into_iter().collect())
}

fn read_mirror() -> Vec<(String, Value)> {
    let storage = LocalStorage::raw();
    let count = storage.length().unwrap_or(0);
    (0..count)
        .filter_map(|i| storage.key(i).ok().flatten())
        .filter(|key| store::is_mirror_key(key))
        .filter_map(|key| {
            let text = storage.get_item(&key).ok().flatten()?;
            // Unreadable text is passed on as a string, so the core quarantines it.
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            Some((key, value))
        })
        .collect()
}

/// Applies changes to `browser.storage.local` in order, batching runs of the same kind.
async fn apply_primary(changes: &[Change]) -> Result<(), StorageFailure> {
    let mut i = 0;
    while i < changes.len() {
        let puts = matches!(changes[i], Change::Put { .. });
        let run_end = changes[i..]
            .iter()
            .position(|c| matches!(c, Change::Put { .. }) != puts)
            .map_or(changes.len(), |n| i + n);
        let run = &changes[i..run_end];
        if puts {
            let items = Object::new();
            for change in run {
                if let Change::Put { key, value } = change {
                    let js = js_sys::JSON::parse(&value.to_string())?;
                    js_sys::Reflect::set(&items, &JsValue::from_str(key), &js)?;
                }
            }
            browser::local_set(&items).await?;
        } else {
            let keys: Array = run.iter().map(|c| JsValue::from_str(c.key())).collect();
            browser::local_remove(&keys).await?;
        }
        i = run_end;
    }
    Ok(())
}

/// Applies changes to the mirror. A full or unavailable `localStorage` is not an error: the
/// store of record still holds everything.
fn apply_mirror(changes: &[Change]) {
    for change in changes {
        match change {
            Change::Put { key, value } => {
                let _ = LocalStorage::raw().set_item(key, &value.to_string());
            }
            Change::Remove { key } => LocalStorage::delete(key),
        }
    }
}
