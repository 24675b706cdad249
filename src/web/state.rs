//! The page's copy of the journal and settings, and the two stores behind them.
//!
//! `browser.storage.local` is the store of record; a synchronous `localStorage` mirror holds
//! every transaction Koha has not accepted yet. The layout, migrations and reconciliation are
//! the core's (`crate::store`); this module only moves entries between the stores and memory.

use super::browser;
use crate::journal::{self, Journal, Retry, SendLockState, Upserted};
use crate::settings::Settings;
use crate::store::{self, Change, StoredChange};
use crate::transaction::{Transaction, TransactionId};
use gloo_storage::{LocalStorage, Storage};
use js_sys::{Array, Function, Object, Promise};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashSet;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The Web Lock a page holds while it sends to Koha (`navigator.locks`).
pub const SEND_LOCK: &str = "koha-send";
/// The `document` event a page dispatches when the store of record refused a write.
pub const FAILED_EVENT: &str = "koc:storage-failed";

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request, catch)]
    fn locks_request(
        name: &str,
        options: &JsValue,
        callback: &Function,
    ) -> Result<Promise, JsValue>;

    type CustomEvent;
    #[wasm_bindgen(constructor, catch)]
    fn new(kind: &str, init: &JsValue) -> Result<CustomEvent, JsValue>;
    #[wasm_bindgen(js_namespace = document, js_name = dispatchEvent, catch)]
    fn dispatch_event(event: &CustomEvent) -> Result<bool, JsValue>;
}

thread_local! {
    static JOURNAL: RefCell<Journal> = RefCell::new(Journal::new());
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
    /// Transactions recorded in memory (and the mirror) whose store-of-record write failed.
    static UNSAVED: RefCell<Vec<TransactionId>> = const { RefCell::new(Vec::new()) };
    /// Transactions this page created that neither store has taken yet: absent from storage
    /// because never stored, not because another page removed them.
    static NEVER_STORED: RefCell<HashSet<TransactionId>> = RefCell::new(HashSet::new());
    /// `storage.onChanged` batches that arrived while [`open`] was reading: applied after it
    /// filled memory, so no other page's write between the read and the fill is lost.
    static PENDING: RefCell<Option<Vec<Map<String, Value>>>> = const { RefCell::new(None) };
    /// Where the stored transactions are beyond their single keys (`crate::store::archive`).
    static BULK: RefCell<Bulk> = RefCell::new(Bulk::default());
}

/// What the page knows of the archive and the export records.
#[derive(Default)]
struct Bulk {
    /// Ids in archive chunks: removing their single key is packing, not deleting.
    archived: HashSet<TransactionId>,
    /// Accepted transactions this page knows to be stored one key each; packed once there are
    /// `ARCHIVE_CHUNK` of them.
    loose_accepted: HashSet<TransactionId>,
    /// A packing is under way.
    packing: bool,
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
/// whether this page wants interrupted sends recovered; they are recovered only if no other page
/// holds the send lock ([`SEND_LOCK`]), which this page then holds until the repairs are written.
///
/// Fails only when the store of record cannot be read (or is newer than this build). If the
/// repairs cannot be written, memory is filled anyway and the transactions to repair count as
/// unsaved ([`retry_unsaved`]). The transactions go into the page's journal; the returned
/// `Opened::transactions` is empty.
pub async fn open(recover: bool) -> Result<store::Opened, StorageFailure> {
    if !recover {
        return open_unlocked(false).await;
    }
    match SendLock::acquire_if_available().await {
        Some(lock) => {
            let opened = open_unlocked(true).await;
            drop(lock);
            opened
        }
        None => open_unlocked(false).await,
    }
}

async fn open_unlocked(recover: bool) -> Result<store::Opened, StorageFailure> {
    PENDING.with(|p| *p.borrow_mut() = Some(Vec::new()));
    let read = read_primary().await;
    let pending = PENDING.with(|p| p.borrow_mut().take()).unwrap_or_default();
    let primary = read?;
    let mirror = read_mirror();
    let now = recover.then(browser::now);
    let mut opened =
        store::open(primary, mirror, now).map_err(|e| StorageFailure(e.to_string()))?;
    // Moved, not cloned: tens of thousands of transactions. `opened.transactions` is empty.
    let transactions = std::mem::take(&mut opened.transactions);
    JOURNAL.with(|j| *j.borrow_mut() = Journal::from_transactions(transactions));
    BULK.with(|b| {
        *b.borrow_mut() = Bulk {
            archived: std::mem::take(&mut opened.archived),
            loose_accepted: std::mem::take(&mut opened.loose_accepted),
            packing: false,
        }
    });
    set_settings(opened.settings.clone());
    for map in pending {
        apply_changes_map(map);
    }
    match apply_primary(&opened.primary_changes).await {
        // Mirror removals (of accepted transactions) only once the store of record has them.
        Ok(()) => {
            apply_mirror(&opened.mirror_changes);
        }
        Err(failure) => {
            let puts: Vec<Change> = opened
                .mirror_changes
                .iter()
                .filter(|c| matches!(c, Change::Put { .. }))
                .cloned()
                .collect();
            apply_mirror(&puts);
            for change in &opened.primary_changes {
                if let (Change::Put { key, .. }, true) =
                    (change, store::is_transaction_key(change.key()))
                {
                    mark_unsaved(&TransactionId::from_stored(&key[store::TX_PREFIX.len()..]));
                }
            }
            announce_failure(&failure);
        }
    }
    Ok(opened)
}

/// The send lock, held until dropped (or the page goes away).
pub struct SendLock {
    release: Function,
}

impl Drop for SendLock {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

/// Takes [`SEND_LOCK`] for a change outside a send run (a deletion, a clear, a transaction found
/// in Koha) if no other page holds it, and says which it was, for the core's
/// [`change_allowed`](crate::journal::change_allowed). Keep the lock until the change is
/// stored: no send run starts meanwhile. Without Web Locks nothing can tell whether another page
/// sends, so that counts as held elsewhere.
pub async fn lock_unless_sending() -> (Option<SendLock>, SendLockState) {
    let lock = SendLock::acquire_if_available().await;
    let state = match lock {
        Some(_) => SendLockState::HeldHere,
        None => SendLockState::HeldElsewhere,
    };
    (lock, state)
}

impl SendLock {
    /// Takes [`SEND_LOCK`] if no page holds it; `None` if one does (or Web Locks are missing,
    /// when nothing can tell whether another page is sending).
    async fn acquire_if_available() -> Option<SendLock> {
        let mut release: Option<Function> = None;
        let held = Promise::new(&mut |resolve, _| release = Some(resolve));
        let mut granted: Option<Function> = None;
        let answer = Promise::new(&mut |resolve, _| granted = Some(resolve));
        let (release, granted) = (release?, granted?);
        let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
            let _ = granted.call1(&JsValue::NULL, &JsValue::from_bool(!lock.is_null()));
            held.into()
        });
        let options = Object::new();
        js_sys::Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE).ok()?;
        // The request's promise settles when the lock is released; nothing waits for it.
        let _settles_on_release =
            locks_request(SEND_LOCK, &options, callback.unchecked_ref()).ok()?;
        let got = JsFuture::from(answer).await.ok()?.as_bool() == Some(true);
        if got {
            Some(SendLock { release })
        } else {
            let _ = release.call0(&JsValue::NULL);
            None
        }
    }
}

fn mark_unsaved(id: &TransactionId) {
    UNSAVED.with(|u| {
        let mut unsaved = u.borrow_mut();
        if !unsaved.contains(id) {
            unsaved.push(id.clone());
        }
    });
}

/// Tells the page (event [`FAILED_EVENT`] on `document`) that a write to the store of record
/// failed, so it can block the desk and retry.
fn announce_failure(failure: &StorageFailure) {
    if web_sys::window().and_then(|w| w.document()).is_none() {
        return;
    }
    let init = Object::new();
    let _ = js_sys::Reflect::set(&init, &"detail".into(), &JsValue::from_str(&failure.0));
    if let Ok(event) = CustomEvent::new(FAILED_EVENT, &init) {
        let _ = dispatch_event(&event);
    }
}

/// Stores one new or changed transaction: the mirror first (synchronously), then the store of
/// record. Resolves only when the store of record has it. On failure the transaction stays in
/// memory and in the mirror, and [`retry_unsaved`] tries again.
pub async fn persist(tx: &Transaction) -> Result<(), StorageFailure> {
    persist_many(std::slice::from_ref(tx)).await
}

/// Stores many transactions at once (an export marking, an import): the mirror first, then one
/// `storage.local` write for all of them, so 50,000 cost one round trip instead of 50,000.
pub async fn persist_many(txs: &[Transaction]) -> Result<(), StorageFailure> {
    let (mirror, primary): (Vec<Change>, Vec<Change>) = txs
        .iter()
        .map(|tx| {
            let plan = store::write_plan(tx);
            (plan.mirror, plan.primary)
        })
        .unzip();
    let mirrored = apply_mirror(&mirror);
    let stored = apply_primary(&primary).await;
    note_taken(txs, mirrored || stored.is_ok());
    match stored {
        Ok(()) => {
            note_stored(txs);
            // Packing is housekeeping: the transactions are stored either way, so a failure
            // here is left for a later write or the next start to redo.
            let _ = pack_if_due().await;
            Ok(())
        }
        Err(failure) => {
            UNSAVED.with(|u| {
                let mut unsaved = u.borrow_mut();
                let known: HashSet<TransactionId> = unsaved.iter().cloned().collect();
                unsaved.extend(
                    txs.iter()
                        .map(|tx| tx.id.clone())
                        .filter(|id| !known.contains(id)),
                );
            });
            announce_failure(&failure);
            Err(failure)
        }
    }
}

/// Writes a transaction to the synchronous mirror now, whatever its status: one Koha accepted
/// stays there until [`store_of_record`] has stored it, so a page dying in between shows it
/// accepted at the next start, not `sending` (then `uncertain`). Returns whether the mirror
/// took it.
pub fn mirror_hold(tx: &Transaction) -> bool {
    let value = store::encode_transaction(tx).to_string();
    let took = LocalStorage::raw()
        .set_item(&store::mirror_key(&tx.id), &value)
        .is_ok();
    if took {
        note_taken(std::slice::from_ref(tx), true);
    }
    took
}

/// Keeps [`NEVER_STORED`] current after a write of these transactions that some store took
/// (`taken`) or that both refused.
fn note_taken(txs: &[Transaction], taken: bool) {
    NEVER_STORED.with(|n| {
        let mut never = n.borrow_mut();
        for tx in txs {
            if taken {
                never.remove(&tx.id);
            } else {
                never.insert(tx.id.clone());
            }
        }
    });
}

/// Writes transactions to the store of record only, for a caller that already wrote the
/// mirror with [`mirror_hold`] (a send run, which overlaps this write with its next request);
/// then lets go of the mirror copies of those Koha accepted. Does not pack: call
/// [`pack_if_due`] when the run is over.
pub async fn store_of_record(txs: &[Transaction]) -> Result<(), StorageFailure> {
    let primary: Vec<Change> = txs.iter().map(|tx| store::write_plan(tx).primary).collect();
    apply_primary(&primary).await?;
    let released: Vec<Change> = txs
        .iter()
        .filter(|tx| tx.status().is_accepted())
        .map(|tx| store::write_plan(tx).mirror)
        .collect();
    apply_mirror(&released);
    note_stored(txs);
    note_taken(txs, true);
    Ok(())
}

/// Remembers which accepted transactions are now stored one key each.
fn note_stored(txs: &[Transaction]) {
    BULK.with(|b| {
        let mut bulk = b.borrow_mut();
        for tx in txs.iter().filter(|tx| tx.status().is_accepted()) {
            if !bulk.archived.contains(&tx.id) {
                bulk.loose_accepted.insert(tx.id.clone());
            }
        }
    });
}

/// Packs the accepted transactions this page stored one key each into archive chunks once
/// there are enough for one: the chunks first, then the removal of the single keys.
pub async fn pack_if_due() -> Result<(), StorageFailure> {
    // One packing at a time: a second, started while the first awaits its writes, would pack
    // the same transactions again.
    let start = BULK.with(|b| {
        let mut bulk = b.borrow_mut();
        let due = !bulk.packing && bulk.loose_accepted.len() >= store::ARCHIVE_CHUNK;
        bulk.packing |= due;
        due
    });
    if !start {
        return Ok(());
    }
    let packed = pack_now().await;
    BULK.with(|b| b.borrow_mut().packing = false);
    packed
}

async fn pack_now() -> Result<(), StorageFailure> {
    let loose: Vec<Transaction> = BULK.with(|b| {
        let bulk = b.borrow();
        with_journal(|j| {
            bulk.loose_accepted
                .iter()
                .filter_map(|id| j.get(id).cloned())
                .collect()
        })
    });
    let packing = store::pack_plan(&loose);
    if packing.packed.is_empty() {
        return Ok(());
    }
    let (puts, removals): (Vec<Change>, Vec<Change>) = packing
        .changes
        .into_iter()
        .partition(|c| matches!(c, Change::Put { .. }));
    apply_primary(&puts).await?;
    BULK.with(|b| {
        let mut bulk = b.borrow_mut();
        for id in &packing.packed {
            bulk.loose_accepted.remove(id);
            bulk.archived.insert(id.clone());
        }
    });
    apply_primary(&removals).await
}

/// Stores a `.koc` export as one record (one write, however many transactions), then marks
/// them in memory: a refused write leaves nothing marked.
pub async fn record_export(record: &store::ExportRecord) -> Result<(), StorageFailure> {
    apply_primary(&[record.change()])
        .await
        .inspect_err(announce_failure)?;
    with_journal(|j| j.mark_exported(&record.ids, record.at));
    Ok(())
}

/// Removes the archive chunks (a clear of everything Koha accepted) and, with `exports`, the
/// export records too (a clear of everything). The single keys go through [`forget`].
pub async fn forget_bulk(exports: bool) -> Result<(), StorageFailure> {
    // The keys as stored now, not as this page knows them: a chunk another page packed a moment
    // ago holds accepted transactions too, and must go with the others.
    let all = Object::from(browser::local_get(&JsValue::NULL).await?);
    let keys: Vec<Change> = Object::keys(&all)
        .iter()
        .filter_map(|k| k.as_string())
        .filter(|k| store::is_archive_key(k) || (exports && store::is_export_key(k)))
        .map(|key| Change::Remove { key })
        .collect();
    apply_primary(&keys).await?;
    BULK.with(|b| b.borrow_mut().archived.clear());
    Ok(())
}

/// How many transactions are held only in memory and the mirror.
pub fn unsaved_count() -> usize {
    UNSAVED.with(|u| u.borrow().len())
}

/// Writes again every transaction whose store-of-record write failed. Returns how many are
/// still unsaved.
///
/// Only under the send lock: while another page sends, its run may be writing these very rows
/// (a confirmed resend of one this page holds an answer for), and a blind write here would put
/// an older copy over its newer one. Then nothing is written and the caller tries again later.
/// Under the lock, the stored copies are read and merged first, so a copy another page wrote is
/// never replaced by a staler one of this page.
pub async fn retry_unsaved() -> Result<usize, StorageFailure> {
    // This page's own run holds the lock; otherwise take it, or wait for a later try.
    let _lock = if super::send::is_sending() {
        None
    } else {
        match SendLock::acquire_if_available().await {
            Some(lock) => Some(lock),
            None => return Ok(unsaved_count()),
        }
    };
    let ids = UNSAVED.with(|u| u.borrow().clone());
    let found = refresh_from_stores_of(&ids).await;
    for id in ids {
        let never_stored = NEVER_STORED.with(|n| n.borrow().contains(&id));
        let in_flight = with_journal(|j| j.is_in_flight(&id));
        match journal::retry(found.contains(&id), never_stored, in_flight) {
            Retry::Write => {}
            Retry::LeaveToTheRun => continue,
            Retry::Forget => {
                UNSAVED.with(|u| u.borrow_mut().retain(|x| x != &id));
                continue;
            }
        }
        let Some(tx) = with_journal(|j| j.get(&id).cloned()) else {
            UNSAVED.with(|u| u.borrow_mut().retain(|x| x != &id));
            continue;
        };
        let plan = store::write_plan(&tx);
        apply_primary(std::slice::from_ref(&plan.primary)).await?;
        note_taken(std::slice::from_ref(&tx), true);
        UNSAVED.with(|u| u.borrow_mut().retain(|x| x != &id));
    }
    Ok(unsaved_count())
}

/// Deletes transactions from both stores (they are already gone from memory).
pub async fn forget(ids: &[TransactionId]) -> Result<(), StorageFailure> {
    let mut primary = Vec::with_capacity(ids.len());
    let mut mirror = Vec::with_capacity(ids.len());
    // Archived ones have no single key (nor a mirror copy): their chunks go in `forget_bulk`.
    let single: Vec<&TransactionId> = BULK.with(|b| {
        let bulk = b.borrow();
        ids.iter()
            .filter(|id| !bulk.archived.contains(*id))
            .collect()
    });
    for id in single {
        let (p, m) = store::remove_plan(id);
        primary.push(p);
        mirror.push(m);
    }
    apply_primary(&primary).await?;
    apply_mirror(&mirror);
    let gone: HashSet<TransactionId> = ids.iter().cloned().collect();
    UNSAVED.with(|u| u.borrow_mut().retain(|x| !gone.contains(x)));
    BULK.with(|b| b.borrow_mut().loose_accepted.retain(|x| !gone.contains(x)));
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
    let Some(map) = changes_map(changes) else {
        return false;
    };
    let map = PENDING.with(|p| match p.borrow_mut().as_mut() {
        Some(pending) => {
            pending.push(map);
            None
        }
        None => Some(map),
    });
    map.is_some_and(apply_changes_map)
}

fn apply_changes_map(map: Map<String, Value>) -> bool {
    let mut changed = false;
    for (key, change) in map {
        match store::decode_change(&key, change.get("newValue"), change.get("oldValue")) {
            Ok(StoredChange::Transaction(tx)) => {
                // This page's own writes come back as well; they change nothing.
                changed |= with_journal(|j| j.upsert(tx)) != Upserted::Kept;
            }
            Ok(StoredChange::Removed(id)) => {
                // A packed transaction lost its single key but is still stored, in a chunk.
                if !BULK.with(|b| b.borrow().archived.contains(&id)) {
                    changed |= with_journal(|j| j.forget_removed(&id)).is_some();
                }
            }
            Ok(StoredChange::Archived(txs)) => {
                BULK.with(|b| {
                    let mut bulk = b.borrow_mut();
                    for tx in &txs {
                        bulk.loose_accepted.remove(&tx.id);
                        bulk.archived.insert(tx.id.clone());
                    }
                });
                for tx in txs {
                    changed |= with_journal(|j| j.upsert(tx)) != Upserted::Kept;
                }
            }
            Ok(StoredChange::ArchiveRemoved(ids)) => {
                BULK.with(|b| {
                    let mut bulk = b.borrow_mut();
                    for id in &ids {
                        bulk.archived.remove(id);
                    }
                });
                for id in ids {
                    changed |= with_journal(|j| j.forget_removed(&id)).is_some();
                }
            }
            Ok(StoredChange::Exported(record)) => {
                let missing = with_journal(|j| j.mark_exported(&record.ids, record.at));
                changed |= missing.len() < record.ids.len();
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

/// A `storage.onChanged` batch as `{key: {oldValue?, newValue?}}` JSON (one JSON round trip).
pub fn changes_map(changes: &JsValue) -> Option<Map<String, Value>> {
    let text = js_sys::JSON::stringify(changes).ok()?;
    match serde_json::from_str::<Value>(&String::from(text)) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Every entry of `browser.storage.local`.
pub async fn read_primary() -> Result<Vec<(String, Value)>, StorageFailure> {
    let all = browser::local_get(&JsValue::NULL).await?;
    // Archive chunks and export records are JSON text already: taken as strings, not escaped
    // into and out of the JSON below (megabytes at 50,000 stored).
    let rest = Object::new();
    let mut texts = Vec::new();
    for key in Object::keys(&Object::from(all.clone())).iter() {
        let name = key.as_string().unwrap_or_default();
        let value = js_sys::Reflect::get(&all, &key)?;
        match value.as_string() {
            Some(text) if store::is_archive_key(&name) || store::is_export_key(&name) => {
                texts.push((name, Value::String(text)));
            }
            _ => {
                js_sys::Reflect::set(&rest, &key, &value)?;
            }
        }
    }
    // One JSON round trip is much faster than converting thousands of objects one by one.
    let text: String = js_sys::JSON::stringify(&rest)?.into();
    let map: Map<String, Value> =
        serde_json::from_str(&text).map_err(|e| StorageFailure(e.to_string()))?;
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.extend(texts);
    Ok(entries)
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

/// A value as `browser.storage.local` stores it. Text (archive chunks, export records) stays a
/// string, unparsed.
pub fn stored_value(value: &Value) -> Result<JsValue, JsValue> {
    match value {
        Value::String(text) => Ok(JsValue::from_str(text)),
        other => js_sys::JSON::parse(&other.to_string()),
    }
}

/// Applies changes to `browser.storage.local` in order, batching runs of the same kind.
pub async fn apply_primary(changes: &[Change]) -> Result<(), StorageFailure> {
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
                    let js = stored_value(value)?;
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
///
/// After the first refused put (a full `localStorage`), further puts of the same batch are
/// skipped: each would fail the same way, and thousands of them would slow the start. Returns
/// whether the mirror took every put.
fn apply_mirror(changes: &[Change]) -> bool {
    let storage = LocalStorage::raw();
    let mut full = false;
    for change in changes {
        match change {
            Change::Put { key, value } if !full => {
                full = storage.set_item(key, &value.to_string()).is_err();
            }
            Change::Put { .. } => {}
            Change::Remove { key } => {
                let _ = storage.remove_item(key);
            }
        }
    }
    !full
}

/// Merges both stores' copies of everything Koha has not accepted into the page's journal.
/// Before a page sends or exports, holding the send lock: the mirror is written synchronously by
/// every page and holds an outcome whose store-of-record write failed, which no
/// `storage.onChanged` event announced; the store of record may hold another page's write whose
/// event has not arrived yet. Every write to a stored transaction is made under the send lock
/// (by the page sending, by a retry, by a removal or an export), so what is read here stays
/// current until the lock is released.
pub async fn refresh_from_stores() {
    let ids = with_journal(|j| j.not_accepted_ids());
    refresh_from_stores_of(&ids).await;
}

/// [`refresh_from_stores`] for these transactions only. Returns those either store holds (all
/// of them if the store of record cannot be read: nothing is concluded from a failed read).
pub async fn refresh_from_stores_of(ids: &[TransactionId]) -> HashSet<TransactionId> {
    let mut found = refresh_from_mirror_of(ids);
    if ids.is_empty() {
        return found;
    }
    let everything = || ids.iter().cloned().collect();
    let keys: Array = ids
        .iter()
        .map(|id| JsValue::from_str(&store::transaction_key(id)))
        .collect();
    // Unreadable now means the writes that follow fail as well: they count as unsaved then.
    let Ok(stored) = browser::local_get(&keys).await else {
        return everything();
    };
    let Some(text) = js_sys::JSON::stringify(&stored)
        .ok()
        .and_then(|t| t.as_string())
    else {
        return everything();
    };
    let Ok(map) = serde_json::from_str::<Map<String, Value>>(&text) else {
        return everything();
    };
    with_journal(|j| {
        for (key, value) in map {
            if let Some(id) = key.strip_prefix(store::TX_PREFIX) {
                found.insert(TransactionId::from_stored(id));
            }
            if let Ok(copy) = store::decode_transaction(&key, &value) {
                j.upsert(copy);
            }
        }
    });
    found
}

/// Merges the mirror's copies of these transactions into the page's journal. Returns those the
/// mirror holds.
fn refresh_from_mirror_of(ids: &[TransactionId]) -> HashSet<TransactionId> {
    let storage = LocalStorage::raw();
    let mut found = HashSet::new();
    with_journal(|j| {
        for id in ids {
            let key = store::mirror_key(id);
            let Some(text) = storage.get_item(&key).ok().flatten() else {
                continue;
            };
            found.insert(id.clone());
            let copy = serde_json::from_str(&text)
                .ok()
                .and_then(|value| store::decode_mirror(&key, &value).ok());
            if let Some(copy) = copy {
                j.upsert(copy);
            }
        }
    });
    found
}
