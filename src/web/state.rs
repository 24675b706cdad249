//! The page's copy of the journal and settings, and the two stores behind them.
//!
//! `browser.storage.local` is the store of record; a synchronous `localStorage` mirror holds
//! every transaction Koha has not accepted yet. The layout, migrations and reconciliation are
//! the core's (`crate::store`); this module only moves entries between the stores and memory.

use super::browser;
use crate::journal::{Counts, Filter, Journal, Page, SendLockState, SEND_LOCK};
use crate::settings::Settings;
use crate::store::keys::{self, Read};
use crate::store::{self, Barrier, Change, EntryChange, LazyText, ReadEntries, Replica};
use crate::transaction::{Transaction, TransactionId};
use gloo_storage::{LocalStorage, Storage};
use js_sys::{Array, Function, Object, Promise};
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request, catch)]
    fn locks_request(
        name: &str,
        options: &JsValue,
        callback: &Function,
    ) -> Result<Promise, JsValue>;
}

thread_local! {
    /// The page's copy of the stores: every rule is the core's (`crate::store::Replica`).
    /// From the page's start it keeps other pages' writes for after its first read: the desk
    /// hears them from its head on (`lib/early-read.js`), before its start has read anything.
    static REPLICA: RefCell<Replica> = RefCell::new(Replica::keeping_changes());
    /// The barrier this page waits for ([`barrier_passed`]), and what to call when its event
    /// comes.
    static BARRIER: RefCell<Option<(Barrier, Function)>> = const { RefCell::new(None) };
    /// How many of this page's refreshes read everything because no barrier answered
    /// ([`full_refreshes`]).
    static FULL_REFRESHES: Cell<u32> = const { Cell::new(0) };
}

/// How many refreshes (before a send, an export, a deletion or a retry) read all of the store of
/// record because their barrier was not answered (the test build reports it: in Firefox it
/// should stay 0).
#[cfg(feature = "test-hooks")]
pub fn full_refreshes() -> u32 {
    FULL_REFRESHES.with(Cell::get)
}

/// How many archive chunks this page's start left to read after the desk showed (the test build
/// reports it).
#[cfg(feature = "test-hooks")]
pub fn chunks_left_at_start() -> usize {
    with_replica_as_opened(|r| r.chunks_left_at_start())
}

/// Whether archive chunks this page's start left are still unread (the test build reports it).
#[cfg(feature = "test-hooks")]
pub fn archive_unread() -> bool {
    with_replica_as_opened(|r| r.has_deferred())
}

fn count_full_refresh() {
    FULL_REFRESHES.with(|n| n.set(n.get() + 1));
}

/// How long a page waits for its barrier's event once the barrier is stored (normally a few
/// milliseconds) before it reads everything instead.
const BARRIER_WAIT_MS: i32 = 2_000;

/// The replica with the whole archive read: the archive chunks a desk's start left unread are
/// read first (see [`Replica::open_deferring`]).
fn with_replica<R>(f: impl FnOnce(&mut Replica) -> R) -> R {
    REPLICA.with(|r| {
        let mut replica = r.borrow_mut();
        replica.read_deferred();
        f(&mut replica)
    })
}

/// The replica as the start left it, archive chunks perhaps unread: only for what
/// [`Replica::open_deferring`] allows before they are read.
fn with_replica_as_opened<R>(f: impl FnOnce(&mut Replica) -> R) -> R {
    REPLICA.with(|r| f(&mut r.borrow_mut()))
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
    with_replica(|r| f(r.journal_mut()))
}

/// The stored settings, if any.
pub fn settings() -> Option<Settings> {
    with_replica_as_opened(|r| r.settings().cloned())
}

/// `f` of one page of the table and the counts (see [`Replica::listing`]: archive chunks the
/// start left unread are read only if the page needs them).
pub fn with_listing<R>(
    filter: &Filter,
    offset: usize,
    limit: usize,
    f: impl FnOnce(Page<'_>, Counts) -> R,
) -> R {
    with_replica_as_opened(|r| {
        let (page, counts) = r.listing(filter, offset, limit);
        f(page, counts)
    })
}

/// After the desk showed what its start read: reads the archive chunks the start left unread,
/// keeps aside those that cannot be read, and returns every `quarantine:` key then.
pub async fn finish_open() -> Result<Vec<String>, StorageFailure> {
    let (repairs, quarantined) = with_replica(Replica::take_repairs);
    apply_primary(&repairs).await?;
    Ok(quarantined)
}

/// Reads both stores, reconciles them, writes the repairs and fills memory. `recover` says
/// whether this page wants interrupted sends recovered; they are recovered only if no other page
/// holds the send lock ([`SEND_LOCK`]), which this page then holds until the repairs are written.
///
/// Fails only when the store of record cannot be read (or is newer than this build). If the
/// repairs cannot be written, memory is filled anyway and the transactions to repair count as
/// unsaved ([`retry_unsaved`]). The transactions go into the page's journal; the returned
/// `Opened::transactions` is empty.
///
/// `first_rows`: leave the archive chunks unread that the newest `first_rows` rows do not need,
/// to be read by the first call that needs them or by [`finish_open`]; `None` reads everything.
pub async fn open(
    recover: bool,
    first_rows: Option<usize>,
) -> Result<store::Opened, StorageFailure> {
    // Batches heard before this point (the replica keeps them from the page's start, see
    // REPLICA) stay kept: the read below may or may not include them.
    with_replica(Replica::begin_reading);
    if let Some(early) = EarlyRead::take() {
        return early.open(recover, first_rows).await;
    }
    if !recover {
        return open_unlocked(false, first_rows, read_primary_lazily().await).await;
    }
    match SendLock::acquire_if_available().await {
        Some(lock) => {
            let opened = open_unlocked(true, first_rows, read_primary_lazily().await).await;
            drop(lock);
            opened
        }
        None => open_unlocked(false, first_rows, read_primary_lazily().await).await,
    }
}

/// The read the desk's head started while its modules and the `.wasm` loaded
/// (`lib/early-read.js`): every entry of the store of record, read after the page asked for the
/// send lock ([`SEND_LOCK`]) and, when it got it, under the lock, which this page holds until
/// the start's repairs are written. The start takes it once; later opens read again.
struct EarlyRead(JsValue);

impl EarlyRead {
    const GLOBAL: &'static str = "kocEarlyRead";

    fn take() -> Option<EarlyRead> {
        let global = js_sys::global();
        let early = js_sys::Reflect::get(&global, &Self::GLOBAL.into()).ok()?;
        if early.is_undefined() || early.is_null() {
            return None;
        }
        // Once: the lock it holds is released after this start.
        js_sys::Reflect::set(&global, &Self::GLOBAL.into(), &JsValue::UNDEFINED).ok()?;
        Some(EarlyRead(early))
    }

    /// [`open`] from this read: interrupted sends are recovered if `recover` and the read
    /// holds the send lock.
    async fn open(
        self,
        recover: bool,
        first_rows: Option<usize>,
    ) -> Result<store::Opened, StorageFailure> {
        let answer = self.answer().await;
        let opened = match answer {
            Ok((held, all)) => {
                open_unlocked(recover && held, first_rows, primary_entries_lazily(all)).await
            }
            Err(failure) => open_unlocked(false, first_rows, Err(failure)).await,
        };
        self.release();
        opened
    }

    /// Whether the read was made holding the send lock (and it is still held), and what it read.
    async fn answer(&self) -> Result<(bool, Object), StorageFailure> {
        let take = Function::from(js_sys::Reflect::get(&self.0, &"take".into())?);
        let answer = JsFuture::from(Promise::from(take.call0(&self.0)?)).await?;
        let held = js_sys::Reflect::get(&answer, &"held".into())?.as_bool() == Some(true);
        let entries = js_sys::Reflect::get(&answer, &"entries".into())?;
        Ok((held, Object::from(entries)))
    }

    /// Releases the send lock if the read holds it (nothing if it does not).
    fn release(&self) {
        if let Ok(release) = js_sys::Reflect::get(&self.0, &"release".into()) {
            if let Some(release) = release.dyn_ref::<Function>() {
                let _ = release.call0(&self.0);
            }
        }
    }
}

async fn open_unlocked(
    recover: bool,
    first_rows: Option<usize>,
    primary: Result<ReadEntries, StorageFailure>,
) -> Result<store::Opened, StorageFailure> {
    let primary = match primary {
        Ok(primary) => primary,
        Err(failure) => {
            with_replica(Replica::reading_failed);
            return Err(failure);
        }
    };
    let mirror = read_mirror();
    let now = recover.then(browser::now);
    let opened = with_replica_as_opened(|r| r.open_with_texts(primary, mirror, now, first_rows))
        .map_err(|e| StorageFailure(e.to_string()))?;
    let stored = apply_primary(&opened.primary_changes).await.is_ok();
    apply_mirror(&with_replica_as_opened(|r| {
        r.repairs_written(&opened, stored)
    }));
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
    pub async fn acquire_if_available() -> Option<SendLock> {
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

/// Stores one new or changed transaction: the mirror first (synchronously), then the store of
/// record. Resolves only when the store of record has it. On failure the transaction stays in
/// memory and in the mirror, and [`retry_unsaved`] tries again.
pub async fn persist(tx: &Transaction) -> Result<(), StorageFailure> {
    persist_many(std::slice::from_ref(tx)).await
}

/// Stores many transactions at once (an export marking, an import): the mirror first, then one
/// `storage.local` write for all of them, so 50,000 cost one round trip instead of 50,000.
pub async fn persist_many(txs: &[Transaction]) -> Result<(), StorageFailure> {
    let writes = with_replica(|r| r.plan_write(txs));
    let mirrored = apply_mirror(&writes.mirror);
    let stored = apply_primary(&writes.primary).await;
    with_replica(|r| r.wrote(txs, mirrored, stored.is_ok()));
    stored?;
    // Packing is housekeeping: the transactions are stored either way, so a failure here is
    // left for a later write or the next start to redo.
    let _ = pack_if_due().await;
    Ok(())
}

/// Writes a transaction to the synchronous mirror now, whatever its status: one Koha accepted
/// stays there until [`store_of_record`] has stored it. Returns whether the mirror took it.
pub fn mirror_hold(tx: &Transaction) -> bool {
    let hold = with_replica(|r| r.plan_mirror_hold(tx));
    let took = apply_mirror(std::slice::from_ref(&hold));
    with_replica(|r| r.mirror_held(tx, took));
    took
}

/// Writes transactions to the store of record only, for a caller that already wrote the
/// mirror with [`mirror_hold`] (a send run, which overlaps this write with its next request);
/// then lets go of the mirror copies of those Koha accepted. A refusal leaves the copies in
/// memory and the mirror, unsaved. Does not pack: call [`pack_if_due`] when the run is over.
pub async fn store_of_record(txs: &[Transaction]) -> Result<(), StorageFailure> {
    let primary = with_replica(|r| r.plan_store_of_record(txs));
    let stored = apply_primary(&primary).await;
    let released = with_replica(|r| r.stored_of_record(txs, stored.is_ok()));
    apply_mirror(&released);
    stored
}

/// Packs the accepted transactions stored one key each into archive chunks once there are
/// enough for one: the chunks first, then the removal of the single keys.
pub async fn pack_if_due() -> Result<(), StorageFailure> {
    let Some(plan) = with_replica(Replica::start_packing) else {
        return Ok(());
    };
    let mut packed = apply_primary(&plan.chunks).await;
    if packed.is_ok() {
        with_replica(|r| r.chunks_written(&plan));
        packed = apply_primary(&plan.removals).await;
    }
    if packed.is_ok() {
        apply_mirror(&plan.mirror_releases);
    }
    with_replica(Replica::packing_over);
    packed
}

/// Stores a `.koc` export as one record (one write, however many transactions), then marks
/// them in memory: a refused write leaves nothing marked.
pub async fn record_export(record: &store::ExportRecord) -> Result<(), StorageFailure> {
    apply_primary(&[record.change()]).await?;
    with_journal(|j| j.mark_exported(&record.ids, record.at));
    Ok(())
}

/// A clear's writes besides [`forget`] (which goes first): the cleared transactions' copies in
/// archive chunks, their own keys beside a chunk, and their marks in export records.
pub async fn forget_bulk(cleared: &[TransactionId]) -> Result<(), StorageFailure> {
    // The entries as stored now, not as this page knows them: a chunk another page packed a
    // moment ago may hold cleared transactions too.
    let stored = read_primary().await?;
    let changes =
        with_replica(|r| r.plan_forget_bulk(stored.iter().map(|(k, v)| (k.as_str(), v)), cleared));
    apply_primary(&changes).await?;
    with_replica(|r| r.bulk_forgotten(cleared));
    Ok(())
}

/// The first writes of a deletion or a clear, before [`forget`]: the deleted transactions'
/// copies in pending chunks ([`Replica::plan_forget_pending`]). Once a barrier's event is here
/// this page has heard of every pending chunk (under the send lock no page writes one
/// meanwhile), and when none holds them nothing is read; otherwise the entries as stored now.
pub async fn forget_pending(ids: &[TransactionId]) -> Result<(), StorageFailure> {
    if barrier_passed().await && !with_replica(|r| r.holds_pending(ids)) {
        return Ok(());
    }
    let stored = read_primary().await?;
    let changes =
        with_replica(|r| r.plan_forget_pending(stored.iter().map(|(k, v)| (k.as_str(), v)), ids));
    apply_primary(&changes).await
}

/// How many transactions are held only in memory and the mirror. Asked after every call that
/// awaited storage, so it leaves archive chunks unread.
pub fn unsaved_count() -> usize {
    with_replica_as_opened(|r| r.unsaved_count())
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
    let ids = with_replica(|r| r.unsaved_ids());
    let found = refresh_from_stores_of(&ids).await;
    let txs = with_replica(|r| r.plan_retry(&found));
    // One write for all of them, as `store_of_record`: the copies stay unsaved if refused.
    store_of_record(&txs).await?;
    Ok(unsaved_count())
}

/// Deletes transactions from both stores (they are already gone from memory).
pub async fn forget(ids: &[TransactionId]) -> Result<(), StorageFailure> {
    let (primary, mirror) = with_replica(|r| r.plan_forget(ids));
    apply_primary(&primary).await?;
    apply_mirror(&mirror);
    with_replica(|r| r.forgotten(ids));
    Ok(())
}

/// Stores the settings (the password only if it is to be remembered).
pub async fn save_settings(settings: &Settings) -> Result<(), StorageFailure> {
    let change = Change::Put {
        key: store::SETTINGS_KEY.to_owned(),
        value: store::encode_settings(settings),
    };
    apply_primary(&[change]).await?;
    with_replica(|r| r.set_settings(Some(settings.clone())));
    Ok(())
}

/// Applies a `storage.onChanged` batch (another page's writes) to memory. Returns whether
/// anything the page shows changed.
pub fn apply_storage_changes(changes: &JsValue) -> bool {
    let Some(map) = changes_map(changes) else {
        return false;
    };
    let batch: Vec<EntryChange> = map
        .into_iter()
        .map(|(key, mut change)| EntryChange {
            key,
            new_value: change.get_mut("newValue").map(Value::take),
            old_value: change.get_mut("oldValue").map(Value::take),
        })
        .collect();
    // The barrier this batch answers, if any: taken now, told once the batch is applied.
    let answered = BARRIER.with(|b| {
        let mut waiting = b.borrow_mut();
        let answers = waiting
            .as_ref()
            .is_some_and(|(barrier, _)| with_replica(|r| r.barrier_answered(barrier, &batch)));
        answers.then(|| waiting.take()).flatten()
    });
    let changed = with_replica(|r| r.apply(batch));
    if let Some((_, resolve)) = answered {
        let _ = resolve.call1(&JsValue::NULL, &JsValue::TRUE);
    }
    changed
}

/// Writes a [`Barrier`] and waits for its own `storage.onChanged` event: then every write made
/// to the store of record before it has reached this page's replica through its event. `false`
/// when that cannot be known: the barrier was not stored, or its event did not come within
/// [`BARRIER_WAIT_MS`] (a page that does not listen to storage events never hears it).
async fn barrier_passed() -> bool {
    let Ok(token) = browser::random_u64() else {
        return false;
    };
    let barrier = Barrier::new(token);
    let write = barrier.write();
    let mut resolve = None;
    let answered = Promise::new(&mut |r, _| resolve = Some(r));
    let Some(resolve) = resolve else {
        return false;
    };
    // Listening before writing: the event may come before the write's promise resolves.
    BARRIER.with(|b| *b.borrow_mut() = Some((barrier, resolve)));
    let passed = apply_primary(std::slice::from_ref(&write)).await.is_ok()
        && browser::true_within(&answered, BARRIER_WAIT_MS).await;
    BARRIER.with(|b| b.borrow_mut().take());
    passed
}

/// A `storage.onChanged` batch as `{key: {oldValue?, newValue?}}` JSON (one JSON round trip).
/// The old values the core does not read ([`store::reads_old_value`]) are dropped first: a
/// packing or a clear removes thousands of own keys in one batch, and Firefox sends each one's
/// old value along (megabytes, twice: the desk and the badge both turned it into JSON and back).
pub fn changes_map(changes: &JsValue) -> Option<Map<String, Value>> {
    let object = changes.dyn_ref::<Object>()?;
    let old_value = JsValue::from_str("oldValue");
    for key in Object::keys(object).iter() {
        if key
            .as_string()
            .is_some_and(|key| !store::reads_old_value(&key))
        {
            if let Ok(change) = js_sys::Reflect::get(object, &key) {
                if let Some(change) = change.dyn_ref::<Object>() {
                    let _ = js_sys::Reflect::delete_property(change, &old_value);
                }
            }
        }
    }
    let text = js_sys::JSON::stringify(changes).ok()?;
    match serde_json::from_str::<Value>(&String::from(text)) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Every entry of `browser.storage.local` but the offline checks' snapshot (megabytes with a
/// large library, read on its own by `checks`).
pub async fn read_primary() -> Result<Vec<(String, Value)>, StorageFailure> {
    // Everything, the offline checks' snapshot with it (skipped below): in Firefox 153 listing
    // the keys (getKeys) costs as much as reading everything, and a read by name about 0.25 ms
    // a name, so leaving a large library's snapshot out by name made the desk's start slower
    // (ready 270 ms against 162 ms without a snapshot) than reading it (about 35 ms more).
    primary_entries(Object::from(browser::local_get(&JsValue::NULL).await?))
}

/// [`read_primary`], leaving the archive chunks' texts in Firefox's answer until the core asks.
async fn read_primary_lazily() -> Result<ReadEntries, StorageFailure> {
    primary_entries_lazily(Object::from(browser::local_get(&JsValue::NULL).await?))
}

/// The entries of `get(null)`'s answer `all`, but the offline checks' snapshot.
fn primary_entries(all: Object) -> Result<Vec<(String, Value)>, StorageFailure> {
    primary_entries_lazily(all).map(ReadEntries::into_values)
}

/// How much of an archive chunk's text is copied before the start decides whether to read it:
/// its summary takes about 150 characters with this build's ids.
const CHUNK_HEAD: u32 = 512;

/// [`primary_entries`], leaving the archive chunks' texts in `all` until the core asks for them
/// (a desk's start reads few of them before it is ready).
fn primary_entries_lazily(all: Object) -> Result<ReadEntries, StorageFailure> {
    // Chunks and export records are JSON text already: taken as strings, not escaped
    // into and out of the JSON below (megabytes at 50,000 stored). They and the snapshot are
    // deleted from Firefox's copy, and the rest goes through one JSON round trip, which is
    // much faster than converting thousands of objects (or visiting them) one by one.
    let mut texts = Vec::new();
    let mut chunks = Vec::new();
    for key in Object::keys(&all).iter() {
        let Some(name) = key.as_string() else {
            continue;
        };
        if store::is_archive_key(&name)
            || store::is_export_key(&name)
            || store::is_pending_key(&name)
        {
            let value = js_sys::Reflect::get(&all, &key)?;
            // Not text: left in the rest, so the core quarantines it.
            let Some(text) = value.dyn_ref::<js_sys::JsString>() else {
                continue;
            };
            if store::is_archive_key(&name) {
                let head = String::from(text.slice(0, CHUNK_HEAD));
                let text = text.clone();
                chunks.push((name, LazyText::new(head, move || String::from(text))));
            } else {
                texts.push((name, Value::String(String::from(text))));
            }
        } else if !keys::is_checks_key(&name) {
            continue;
        }
        js_sys::Reflect::delete_property(&all, &key)?;
    }
    let text: String = js_sys::JSON::stringify(&all)?.into();
    let map: Map<String, Value> =
        serde_json::from_str(&text).map_err(|e| StorageFailure(e.to_string()))?;
    let mut values: Vec<(String, Value)> = map.into_iter().collect();
    values.extend(texts);
    Ok(ReadEntries {
        values,
        texts: chunks,
    })
}

/// Every mirror entry's key and text: `localStorage`'s keys and values each come as one text
/// ([`store::mirror_entries_joined`]), not two calls a key (thousands with many unsent), nor
/// escaped into one JSON text and out again; one by one only if those do not pair up.
fn mirror_entries() -> Vec<(String, String)> {
    let storage = LocalStorage::raw();
    let items: &Object = storage.unchecked_ref();
    let (keys, values) = (Object::keys(items), Object::values(items));
    let join = store::MIRROR_JOIN.to_string();
    let joined = |texts: &Array| String::from(texts.join(&join));
    let (key_text, value_text) = (joined(&keys), joined(&values));
    let count = keys.length() as usize;
    if let Some(pairs) = store::mirror_entries_joined(&key_text, &value_text, count) {
        let owned = pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned()));
        return owned.collect();
    }
    keys.iter()
        .filter_map(|key| key.as_string())
        .filter(|key| store::is_mirror_key(key))
        .filter_map(|key| Some((key.clone(), storage.get_item(&key).ok()??)))
        .collect()
}

/// The mirror's entries as their texts, which the core reads (and quarantines when unreadable).
fn read_mirror() -> Vec<(String, Value)> {
    mirror_entries()
        .into_iter()
        .map(|(key, text)| (key, Value::String(text)))
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
///
/// For the store of record it waits for a [`Barrier`]: once the barrier's own event is here,
/// every earlier write's event (export records and archive chunks included) has been applied.
/// If that cannot be known it reads everything, not just those transactions' keys: the export
/// records and archive chunks another page wrote a moment ago (an export, a send run's answers)
/// must count even if their event is still on its way.
pub async fn refresh_from_stores() {
    if with_journal(|j| j.counts().not_accepted) == 0 {
        return;
    }
    let passed = barrier_passed().await;
    let ids = with_journal(|j| j.not_accepted_ids());
    // Every unaccepted transaction: read the mirror whole, as at the start.
    let wanted: HashSet<String> = ids.iter().map(store::mirror_key).collect();
    let mirror: Vec<(String, String)> = mirror_entries()
        .into_iter()
        .filter(|(key, _)| wanted.contains(key))
        .collect();
    if passed {
        // The store of record's writes have all arrived as events; the mirror's send none.
        with_replica(|r| r.merge_stored_copies(Vec::new(), mirror));
        return;
    }
    count_full_refresh();
    match read_primary().await {
        Ok(stored) => {
            with_replica(|r| r.merge_current(stored, mirror, &ids));
        }
        // Unreadable now means the writes that follow fail as well.
        Err(_) => {
            with_replica(|r| r.merge_stored_copies(Vec::new(), mirror));
        }
    }
}

/// The mirror's texts of these transactions.
fn mirror_texts(ids: &[TransactionId]) -> Vec<(String, String)> {
    let storage = LocalStorage::raw();
    ids.iter()
        .map(store::mirror_key)
        .filter_map(|key| Some((key.clone(), storage.get_item(&key).ok().flatten()?)))
        .collect()
}

/// [`refresh_from_stores`] for these transactions only. Returns those either store holds (all
/// of them if the store of record cannot be read: nothing is concluded from a failed read).
pub async fn refresh_from_stores_of(ids: &[TransactionId]) -> HashSet<TransactionId> {
    if ids.is_empty() {
        return HashSet::new();
    }
    let mirror = mirror_texts(ids);
    let stored = with_replica(|r| r.stored_entries());
    let read = match keys::cheaper_read(ids.len(), stored) {
        Read::ByName => read_transactions(ids).await,
        Read::Everything => read_transactions_from_everything(ids).await,
    };
    let Some(primary) = read else {
        // Unreadable now means the writes that follow fail as well: they count as unsaved
        // then. Nothing is concluded from a failed read: every one counts as found.
        with_replica(|r| r.merge_stored_copies(Vec::new(), mirror));
        return ids.iter().cloned().collect();
    };
    let mut found = with_replica(|r| r.merge_stored_copies(primary, mirror));
    let unfound = with_replica(|r| r.unfound_stored(ids, &found));
    if unfound.is_empty() {
        return found;
    }
    // Rare: another page's removal or packing this page has not heard of yet. Once a barrier's
    // event is here, it has; otherwise the chunks are read as stored now.
    if barrier_passed().await {
        found.extend(with_replica(|r| r.settle_unfound_heard(unfound)));
        return found;
    }
    count_full_refresh();
    match read_primary().await {
        Ok(everything) => found.extend(with_replica(|r| {
            r.settle_unfound(everything.iter().map(|(k, v)| (k.as_str(), v)), unfound)
        })),
        // Neither its key nor the mirror holds them: another page deleted or packed them. What
        // this page has heard of the archive tells the packed ones; the others' events follow.
        Err(_) => found.extend(with_replica(|r| r.settle_unfound_heard(unfound))),
    }
    found
}

/// The `tx:` entries of these transactions in the store of record; `None` if unreadable.
async fn read_transactions(ids: &[TransactionId]) -> Option<Vec<(String, Value)>> {
    let keys: Array = ids
        .iter()
        .map(|id| JsValue::from_str(&store::transaction_key(id)))
        .collect();
    let stored = browser::local_get(&keys).await.ok()?;
    parse_entries(&stored)
}

/// [`read_transactions`] through one read of everything, for many ids.
async fn read_transactions_from_everything(ids: &[TransactionId]) -> Option<Vec<(String, Value)>> {
    let all = browser::local_get(&JsValue::NULL).await.ok()?;
    let wanted = Object::new();
    for id in ids {
        let key = JsValue::from_str(&store::transaction_key(id));
        let value = js_sys::Reflect::get(&all, &key).ok()?;
        if !value.is_undefined() {
            js_sys::Reflect::set(&wanted, &key, &value).ok()?;
        }
    }
    parse_entries(&wanted)
}

/// Stored entries (`{key: value}`) as pairs, through one JSON round trip.
fn parse_entries(stored: &JsValue) -> Option<Vec<(String, Value)>> {
    let text = js_sys::JSON::stringify(stored).ok()?.as_string()?;
    let map = serde_json::from_str::<Map<String, Value>>(&text).ok()?;
    Some(map.into_iter().collect())
}
