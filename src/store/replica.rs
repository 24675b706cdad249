//! One page's copy of what is stored: the journal, the settings, where each transaction lives
//! (under its own key, in a pending chunk, in the archive), and what has not reached the store
//! of record yet.
//!
//! The shell reads and writes the two stores (`browser.storage.local`, the store of record, and
//! the synchronous `localStorage` mirror); every rule about what to write, what a refused write
//! leaves behind and what another page's write means lives here. Each write is planned
//! ([`Replica::plan_write`], [`Replica::plan_forget`], [`Replica::start_packing`], ...), applied
//! by the shell, and its outcome reported back ([`Replica::wrote`], [`Replica::forgotten`], ...),
//! so a refused write is a value the page shows, never a silent loss.

use super::archive::{chunk_put, decode_chunk, encode_chunk, pack_plan, ARCHIVE_CHUNK};
use super::barrier::Barrier;
use super::change::Change;
use super::deferral::{defer_chunks, Deferred, LazyText, PendingRead, ReadEntries};
use super::error::StoreError;
use super::exports::decode_export;
use super::incoming::{decode_change, StoredChange};
use super::keys::{
    id_of_mirror_key, id_of_transaction_key, is_archive_key, is_export_key, is_pending_key,
    mirror_key, transaction_key,
};
use super::layout::{
    decode_mirror_text, decode_transaction, encode_transaction, remove_plan, write_plan,
};
use super::open::{open_read, Opened};
use super::pending::{PendingIndex, PENDING_MIN};
use super::snapshot::quarantine;
use crate::journal::{self, Counts, Filter, Journal, Page, Retry, Upserted};
use crate::settings::Settings;
use crate::transaction::{Transaction, TransactionId};
use chrono::{DateTime, Utc};
use rustc_hash::FxHashSet;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

/// One key of a `storage.onChanged` batch: its value after the write (`None`: removed) and
/// before it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryChange {
    /// The key written or removed.
    pub key: String,
    /// The value written; `None` when the key was removed.
    pub new_value: Option<Value>,
    /// The value before; needed for removed archive chunks.
    pub old_value: Option<Value>,
}

/// The writes for new or changed transactions: the mirror's first (synchronously, before the
/// desk confirms anything), then the store of record's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Writes {
    /// For the `localStorage` mirror.
    pub mirror: Vec<Change>,
    /// For `browser.storage.local`.
    pub primary: Vec<Change>,
}

/// A packing of accepted transactions into archive chunks: the chunks first, then (once they are
/// stored) the removal of the single keys.
#[derive(Debug, Clone, PartialEq)]
pub struct PackingPlan {
    /// The chunk writes.
    pub chunks: Vec<Change>,
    /// The removals of the packed transactions' own keys.
    pub removals: Vec<Change>,
    /// For the mirror once `removals` are stored: the copies it held of transactions a send run
    /// stored in a chunk beside their older own key.
    pub mirror_releases: Vec<Change>,
    /// The transactions packed.
    pub packed: Vec<TransactionId>,
}

/// What a page holds of the stores. See the module docs.
#[derive(Debug, Default)]
pub struct Replica {
    journal: Journal,
    settings: Option<Settings>,
    /// Transactions held in memory (and the mirror) whose store-of-record write was refused.
    unsaved: FxHashSet<TransactionId>,
    /// Transactions this page created that neither store has taken yet: absent from storage
    /// because never stored, not because another page removed them.
    never_stored: FxHashSet<TransactionId>,
    /// Ids in archive chunks: removing their single key is packing, not deleting.
    archived: FxHashSet<TransactionId>,
    /// Which pending chunks hold which ids: while one holds an id, removing its own key is
    /// packing, not deleting (see [`super::pending`]).
    pending: PendingIndex,
    /// Ids stored one key each, as read at the start and heard since: while one is, a pending
    /// chunk no longer holding it is not a deletion.
    own_keys: FxHashSet<TransactionId>,
    /// How many unaccepted transactions stored one key each a start holding the send lock
    /// packs; `None`: [`PENDING_MIN`].
    pending_min: Option<usize>,
    /// Accepted transactions stored one key each, packed once there are [`ARCHIVE_CHUNK`].
    loose_accepted: FxHashSet<TransactionId>,
    /// Archived transactions whose own key may still hold the copy from before a send run
    /// stored them in a chunk: removed by the next packing (a start removes them too).
    spare_singles: FxHashSet<TransactionId>,
    /// A packing is under way: a second one, started while the first awaits its writes, would
    /// pack the same transactions again.
    packing: bool,
    /// `storage.onChanged` batches that arrived while the stores were being read for
    /// [`Replica::open`]: applied once it filled memory, so no write between the read and the
    /// fill is lost.
    arrived_while_reading: Option<Vec<Vec<EntryChange>>>,
    /// Archive chunks the start left unread (see [`Replica::open_deferring`]).
    deferred: Deferred,
    /// Every `quarantine:` key after the start, to name more without overwriting one.
    quarantined: Vec<String>,
    /// Writes that keep aside deferred chunks that could not be read, for the shell to apply
    /// ([`Replica::take_repairs`]).
    repairs: Vec<Change>,
    /// How many chunks the last start left unread.
    left_at_start: usize,
}

impl Replica {
    /// An empty replica, before [`Replica::open`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The journal, to record, update or remove transactions; their storage goes through the
    /// plans below.
    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// The stored settings, if any.
    pub fn settings(&self) -> Option<&Settings> {
        self.settings.as_ref()
    }

    /// How many transactions are held only in memory and the mirror.
    pub fn unsaved_count(&self) -> usize {
        self.unsaved.len()
    }

    /// About how many entries `browser.storage.local` holds for this journal: the single keys,
    /// the archive chunks and a few others (for [`super::keys::cheaper_read`]).
    pub fn stored_entries(&self) -> usize {
        let single = self
            .journal
            .len()
            .saturating_sub(self.archived.len() + self.pending.ids());
        single + self.archived.len().div_ceil(ARCHIVE_CHUNK) + self.pending.chunks() + 2
    }

    /// Whether `batch` is `barrier`'s own event and every batch before it has been applied (not
    /// kept for after a read of the stores): then this replica has heard of every write made
    /// before the barrier.
    pub fn barrier_answered(&self, barrier: &Barrier, batch: &[EntryChange]) -> bool {
        self.arrived_while_reading.is_none() && barrier.answered_by(batch)
    }

    /// This replica's starts pack the unaccepted transactions stored one key each into pending
    /// chunks once there are `min` of them (the simulation's histories are short).
    pub fn packing_pending_from(mut self, min: usize) -> Self {
        self.pending_min = Some(min);
        self
    }

    /// Whether a pending chunk holds any of `ids`, as far as this page has heard.
    pub fn holds_pending(&self, ids: &[TransactionId]) -> bool {
        ids.iter().any(|id| self.pending.holds(id))
    }

    /// Of `ids`, whose own key was removed or which a pending chunk no longer holds, forgets
    /// those gone from storage: held by no own key, pending chunk or archive chunk any more.
    /// Returns whether the journal changed.
    fn forget_unless_held(&mut self, ids: Vec<TransactionId>) -> bool {
        let mut changed = false;
        for id in ids {
            let held = self.own_keys.contains(&id)
                || self.pending.holds(&id)
                || self.archived.contains(&id);
            if !held {
                changed |= self.journal.forget_removed(&id).is_some();
            }
        }
        changed
    }

    /// An empty replica that keeps the batches it is given for after its first
    /// [`Replica::open`], as if it had begun reading ([`Replica::begin_reading`]): for a page
    /// that hears other pages' writes before its start reads the stores.
    pub fn keeping_changes() -> Self {
        Self {
            arrived_while_reading: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// Call before reading the stores for [`Replica::open`]: batches of other pages' writes
    /// that arrive meanwhile are kept and applied after it, with those kept already. The read
    /// may include a kept write or not: applied after it, each is merged in as a page that
    /// heard it live merges it.
    pub fn begin_reading(&mut self) {
        self.arrived_while_reading.get_or_insert_with(Vec::new);
    }

    /// Fills the replica from both stores' entries (see [`open`] for `recover_at`); ends the
    /// reading begun by [`Replica::begin_reading`] whether it succeeds or not. Returns the
    /// repairs to write; `transactions`, `archived` and `loose_accepted` are moved into the
    /// replica and left empty in what is returned. Apply
    /// `primary_changes`, then report with [`Replica::repairs_written`].
    pub fn open(
        &mut self,
        primary: Vec<(String, Value)>,
        mirror: Vec<(String, Value)>,
        recover_at: Option<DateTime<Utc>>,
    ) -> Result<Opened, StoreError> {
        self.open_deferring(primary, mirror, recover_at, None)
    }

    /// [`Replica::open`], leaving the archive chunks that only add their own rows unread (see
    /// [`super::deferral`]) when `first_rows` is given: those the newest `first_rows` rows
    /// need are read, the rest count by their summaries ([`Replica::listing`]) until
    /// [`Replica::read_deferred`].
    ///
    /// Until then, only [`Replica::listing`], [`Replica::settings`],
    /// [`Replica::unsaved_count`], [`Replica::repairs_written`],
    /// [`Replica::chunks_left_at_start`] and [`Replica::read_deferred`] may be called. Batches
    /// of other pages' writes that arrived while the stores were read need the whole archive:
    /// with any, everything is read at once.
    pub fn open_deferring(
        &mut self,
        primary: Vec<(String, Value)>,
        mirror: Vec<(String, Value)>,
        recover_at: Option<DateTime<Utc>>,
        first_rows: Option<usize>,
    ) -> Result<Opened, StoreError> {
        let primary = ReadEntries {
            values: primary,
            texts: Vec::new(),
        };
        self.open_with_texts(primary, mirror, recover_at, first_rows)
    }

    /// [`Replica::open_deferring`] with some archive chunks' texts still in the browser's
    /// answer: those it leaves unread are copied only when they are read.
    pub fn open_with_texts(
        &mut self,
        primary: ReadEntries,
        mirror: Vec<(String, Value)>,
        recover_at: Option<DateTime<Utc>>,
        first_rows: Option<usize>,
    ) -> Result<Opened, StoreError> {
        let ReadEntries {
            values: mut primary,
            texts,
        } = primary;
        let arrived = self.arrived_while_reading.take().unwrap_or_default();
        let mut pending_read = PendingRead::default();
        let mut deferred = match first_rows {
            Some(_) => defer_chunks(&mut primary, texts, &mirror, &mut pending_read),
            None => {
                LazyText::copy_all(&mut primary, texts);
                Deferred::default()
            }
        };
        let pending_min = self.pending_min.unwrap_or(PENDING_MIN);
        let mut opened = open_read(primary, mirror, recover_at, pending_min, pending_read)?;
        // Moved, not cloned: tens of thousands of transactions.
        self.journal = Journal::from_transactions(std::mem::take(&mut opened.transactions));
        self.archived = std::mem::take(&mut opened.archived);
        self.pending = PendingIndex::default();
        for (key, ids) in std::mem::take(&mut opened.pending) {
            self.pending.hold(key, ids);
        }
        self.own_keys = std::mem::take(&mut opened.own_keys).into_iter().collect();
        // The chunks whose rows the first page shows, until the rows held are newer than any
        // deferred one. Their ids are in no other entry, so each row is simply added (one by
        // one: a send run's chunks can be small, and rebuilding per chunk would cost more).
        let wanted = first_rows.unwrap_or(0);
        while let Some(newest) = deferred.newest() {
            if self.journal.newer_than(newest, wanted) >= wanted {
                break;
            }
            let Some(read) = deferred.read_newest() else {
                break;
            };
            for tx in read {
                self.archived.insert(tx.id.clone());
                self.journal.upsert(tx);
            }
        }
        self.loose_accepted = std::mem::take(&mut opened.loose_accepted);
        self.packing = false;
        self.settings = opened.settings.clone();
        self.left_at_start = deferred.chunks();
        self.deferred = deferred;
        self.quarantined = opened.quarantined.clone();
        self.repairs = Vec::new();
        if !arrived.is_empty() {
            self.read_deferred();
        }
        for batch in arrived {
            self.apply(batch);
        }
        Ok(opened)
    }

    /// How many archive chunks the last [`Replica::open_deferring`] left unread (the tests and
    /// benchmarks check that a desk's start does).
    pub fn chunks_left_at_start(&self) -> usize {
        self.left_at_start
    }

    /// Whether archive chunks are still unread since [`Replica::open_deferring`].
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Reads the archive chunks [`Replica::open_deferring`] left unread into the journal: after
    /// it, the replica is what [`Replica::open`] would have made of the same entries. Chunks
    /// that cannot be read are kept aside by [`Replica::take_repairs`]'s writes, as a start
    /// keeps aside any unreadable entry.
    pub fn read_deferred(&mut self) {
        if self.deferred.is_empty() {
            return;
        }
        let (read, unreadable) = std::mem::take(&mut self.deferred).read_all();
        let mut transactions = std::mem::take(&mut self.journal).into_transactions();
        self.archived.extend(read.iter().map(|tx| tx.id.clone()));
        transactions.extend(read);
        self.journal = Journal::from_transactions(transactions);
        let mut taken: BTreeSet<String> = self.quarantined.iter().cloned().collect();
        for (key, value, error) in unreadable {
            let (kept_at, changes) = quarantine(&key, &value, &error, &mut taken);
            self.repairs.extend(changes);
            self.quarantined.push(kept_at);
        }
        self.quarantined.sort();
    }

    /// The writes that keep aside deferred chunks that could not be read (see
    /// [`Replica::read_deferred`]), taken, and every `quarantine:` key once they are applied.
    pub fn take_repairs(&mut self) -> (Vec<Change>, Vec<String>) {
        (std::mem::take(&mut self.repairs), self.quarantined.clone())
    }

    /// One page of the table and the counts, as [`Journal::page`] and [`Journal::counts`] give
    /// them once everything is read. While archive chunks are unread, the newest rows and the
    /// counts come from what the start read and the chunks' summaries; a page that needs the
    /// unread rows (a filter, or rows older than those read) reads them first.
    pub fn listing(&mut self, filter: &Filter, offset: usize, limit: usize) -> (Page<'_>, Counts) {
        if !self.lists_without_reading(filter, offset, limit) {
            self.read_deferred();
        }
        let (queued, applied) = self.deferred.counts();
        let mut page = self.journal.page(filter, offset, limit);
        page.total += queued + applied;
        let counts = self.journal.counts();
        let counts = Counts {
            queued: counts.queued + queued,
            applied: counts.applied + applied,
            total: counts.total + queued + applied,
            ..counts
        };
        (page, counts)
    }

    /// Whether [`Replica::listing`] can answer without the unread chunks: no filter, and the
    /// rows asked for all newer than any unread one.
    fn lists_without_reading(&self, filter: &Filter, offset: usize, limit: usize) -> bool {
        // Nothing unread, or only chunks that turned out unreadable: every row is here.
        let Some(newest) = self.deferred.newest() else {
            return true;
        };
        let Some(end) = offset.checked_add(limit) else {
            return false;
        };
        filter.text.trim().is_empty() && self.journal.newer_than(newest, end) >= end
    }

    /// The stores could not be read: other pages' writes are applied as they come again.
    pub fn reading_failed(&mut self) {
        self.arrived_while_reading = None;
    }

    /// After the store of record took the repairs of [`Replica::open`] (`stored`) or refused
    /// them: the mirror writes to apply now. Removals from the mirror (of accepted transactions)
    /// wait until the store of record has them; refused repairs of transactions count as
    /// unsaved.
    pub fn repairs_written(&mut self, opened: &Opened, stored: bool) -> Vec<Change> {
        if stored {
            return opened.mirror_changes.clone();
        }
        for change in &opened.primary_changes {
            if let Change::Put { key, .. } = change {
                if let Some(id) = id_of_transaction_key(key) {
                    self.unsaved.insert(id);
                }
            }
        }
        opened
            .mirror_changes
            .iter()
            .filter(|c| matches!(c, Change::Put { .. }))
            .cloned()
            .collect()
    }

    /// The writes for new or changed transactions (already in the journal).
    pub fn plan_write(&self, txs: &[Transaction]) -> Writes {
        let (mirror, primary) = txs
            .iter()
            .map(|tx| {
                let plan = write_plan(tx);
                (plan.mirror, plan.primary)
            })
            .unzip();
        Writes { mirror, primary }
    }

    /// After a [`Replica::plan_write`] was applied: whether the mirror took every put and
    /// whether the store of record took the write. Refused ones count as unsaved.
    pub fn wrote(&mut self, txs: &[Transaction], mirrored: bool, stored: bool) {
        self.note_taken(txs, mirrored || stored);
        if stored {
            self.note_stored(txs);
        } else {
            self.unsaved.extend(txs.iter().map(|tx| tx.id.clone()));
        }
    }

    /// A mirror write of a transaction whatever its status, for a send run: one Koha accepted
    /// stays in the mirror until the store of record has it, so a page dying in between shows it
    /// accepted at the next start, not `sending` (then `uncertain`).
    pub fn plan_mirror_hold(&self, tx: &Transaction) -> Change {
        Change::Put {
            key: mirror_key(&tx.id),
            value: encode_transaction(tx),
        }
    }

    /// After a [`Replica::plan_mirror_hold`]: whether the mirror took it.
    pub fn mirror_held(&mut self, tx: &Transaction, took: bool) {
        if took {
            self.note_taken(std::slice::from_ref(tx), true);
        }
    }

    /// The store-of-record writes for transactions whose mirror copies are already written (a
    /// send run's): those Koha accepted as one archive chunk, the others one key each.
    ///
    /// `browser.storage.local` pays per key (in Firefox each key is a round trip in the parent
    /// process, which also carries the run's requests): one chunk for a group of answers costs
    /// about a tenth of one key each. The accepted transactions' own keys, still holding the
    /// copy from before the run, are left to the next packing; reading merges the two copies
    /// like any duplicate and a start removes the stale one. Until that removal is stored the
    /// mirror keeps the accepted copy: another page about to send reads the `tx:` keys and the
    /// mirror, not the chunks, and must not find the stale copy alone.
    pub fn plan_store_of_record(&self, txs: &[Transaction]) -> Vec<Change> {
        let (accepted, others): (Vec<&Transaction>, Vec<&Transaction>) =
            txs.iter().partition(|tx| self.archives_when_stored(tx));
        let mut changes: Vec<Change> = others.iter().map(|tx| write_plan(tx).primary).collect();
        if !accepted.is_empty() {
            let chunk: Vec<Transaction> = accepted.into_iter().cloned().collect();
            changes.push(chunk_put(&chunk));
        }
        changes
    }

    /// Whether [`Replica::plan_store_of_record`] puts `tx` into a chunk.
    fn archives_when_stored(&self, tx: &Transaction) -> bool {
        tx.status().is_accepted() && !self.archived.contains(&tx.id)
    }

    /// After the store of record took [`Replica::plan_store_of_record`] (`stored`) or refused
    /// it (the copies stay in memory and the mirror, unsaved): the mirror removals of the
    /// transactions Koha accepted that the mirror no longer needs, those stored under their own
    /// key. Those stored in a chunk stay in the mirror until the packing removes their own key.
    pub fn stored_of_record(&mut self, txs: &[Transaction], stored: bool) -> Vec<Change> {
        if !stored {
            self.unsaved.extend(txs.iter().map(|tx| tx.id.clone()));
            return Vec::new();
        }
        let mut releases = Vec::new();
        for tx in txs {
            if self.archives_when_stored(tx) {
                self.loose_accepted.remove(&tx.id);
                self.archived.insert(tx.id.clone());
                self.spare_singles.insert(tx.id.clone());
            } else if tx.status().is_accepted() {
                releases.push(write_plan(tx).mirror);
            }
        }
        self.note_stored(txs);
        self.note_taken(txs, true);
        releases
    }

    fn note_taken(&mut self, txs: &[Transaction], taken: bool) {
        for tx in txs {
            if taken {
                self.never_stored.remove(&tx.id);
            } else {
                self.never_stored.insert(tx.id.clone());
            }
        }
    }

    fn note_stored(&mut self, txs: &[Transaction]) {
        for tx in txs {
            self.unsaved.remove(&tx.id);
            if tx.status().is_accepted() && !self.archived.contains(&tx.id) {
                self.loose_accepted.insert(tx.id.clone());
            }
        }
    }

    /// A packing of the accepted transactions stored one key each, once there are enough for a
    /// chunk and none is under way. Apply `chunks`, report [`Replica::chunks_written`], apply
    /// `removals`; call [`Replica::packing_over`] whatever happened.
    /// Also removes the own keys a send run left behind ([`Replica::plan_store_of_record`]).
    pub fn start_packing(&mut self) -> Option<PackingPlan> {
        let full_chunk = self.loose_accepted.len() >= ARCHIVE_CHUNK;
        if self.packing || (!full_chunk && self.spare_singles.is_empty()) {
            return None;
        }
        let journal = &self.journal;
        let packing = if full_chunk {
            pack_plan(self.loose_accepted.iter().filter_map(|id| journal.get(id)))
        } else {
            Default::default()
        };
        // Their chunks are stored already: a refused removal leaves a spare key, which the next
        // start removes.
        let mut spare: Vec<TransactionId> = self.spare_singles.drain().collect();
        spare.sort();
        if packing.packed.is_empty() && spare.is_empty() {
            return None;
        }
        self.packing = true;
        let (chunks, mut removals): (Vec<Change>, Vec<Change>) = packing
            .changes
            .into_iter()
            .partition(|c| matches!(c, Change::Put { .. }));
        removals.extend(spare.iter().map(|id| Change::Remove {
            key: transaction_key(id),
        }));
        let mirror_releases = spare
            .iter()
            .map(|id| Change::Remove {
                key: mirror_key(id),
            })
            .collect();
        Some(PackingPlan {
            chunks,
            removals,
            mirror_releases,
            packed: packing.packed,
        })
    }

    /// The chunks of a packing are stored: its transactions are in the archive now.
    pub fn chunks_written(&mut self, plan: &PackingPlan) {
        for id in &plan.packed {
            self.loose_accepted.remove(id);
            self.archived.insert(id.clone());
        }
    }

    /// The packing is over (done or refused); a later write or start packs again if due.
    pub fn packing_over(&mut self) {
        self.packing = false;
    }

    /// The writes that delete these transactions (already gone from the journal) from both
    /// stores: `(primary, mirror)`. Archived ones have no key of their own: their chunks go with
    /// [`Replica::plan_forget_bulk`] (the mirror may still hold a run's copy of one, removed
    /// here).
    pub fn plan_forget(&self, ids: &[TransactionId]) -> (Vec<Change>, Vec<Change>) {
        let mut primary = Vec::new();
        let mut mirror = Vec::new();
        for id in ids {
            let (own_key, mirror_copy) = remove_plan(id);
            if !self.archived.contains(id) {
                primary.push(own_key);
            }
            mirror.push(mirror_copy);
        }
        (primary, mirror)
    }

    /// After the store of record applied [`Replica::plan_forget`].
    pub fn forgotten(&mut self, ids: &[TransactionId]) {
        for id in ids {
            self.unsaved.remove(id);
            self.loose_accepted.remove(id);
            self.never_stored.remove(id);
        }
    }

    /// What a clear (of what Koha accepted, or of everything) writes besides
    /// [`Replica::plan_forget`], given the entries stored now and the transactions it forgot
    /// (`cleared`): their copies in the archive and the export records, and nothing else.
    ///
    /// - A chunk holding cleared transactions is written again without them, or removed once it
    ///   holds none of anything else. The entries are read now, not as this page knows them: a
    ///   chunk another page packed a moment ago may hold cleared transactions too. A transaction
    ///   this page has not heard of (another page's run, whose event is still on its way) stays:
    ///   a clear removes what the librarian saw, no more.
    /// - A cleared transaction's own key beside a chunk goes too: a send run stores what Koha
    ///   accepted as a chunk and leaves each one's key, with its copy from before the run, to the
    ///   next packing ([`Replica::plan_store_of_record`]). Left behind, that copy would make a
    ///   cleared transaction reappear as unsent, and be sent again.
    /// - An export record is trimmed to the transactions not cleared, or removed once it names
    ///   none: another page may still hold a transaction of the same export that this one never
    ///   saw (recorded while the store of record refused, kept in memory and the mirror). Its
    ///   record must survive, or that page's next start would bring it back unexported and a
    ///   send would give it to Koha a second time after its `.koc` was uploaded.
    ///
    /// Writes of chunks come before removals, so a clear cut short leaves copies, never gaps.
    pub fn plan_forget_bulk<'a>(
        &self,
        stored: impl IntoIterator<Item = (&'a str, &'a Value)>,
        cleared: &[TransactionId],
    ) -> Vec<Change> {
        let cleared: HashSet<&TransactionId> = cleared.iter().collect();
        let mut puts = Vec::new();
        let mut removals = Vec::new();
        let mut singles = Vec::new();
        let mut chunked: FxHashSet<TransactionId> = FxHashSet::default();
        let remove = |key: &str| Change::Remove {
            key: key.to_owned(),
        };
        for (key, value) in stored {
            if is_archive_key(key) {
                // An unreadable chunk is left to the next start's quarantine.
                let Ok(txs) = decode_chunk(key, value) else {
                    continue;
                };
                chunked.extend(txs.iter().map(|tx| tx.id.clone()));
                match trimmed(key, txs, &cleared) {
                    Some(change @ Change::Put { .. }) => puts.push(change),
                    Some(removal) => removals.push(removal),
                    None => {}
                }
            } else if let Some(id) = id_of_transaction_key(key) {
                if cleared.contains(&id) {
                    singles.push((id, key));
                }
            } else if is_export_key(key) {
                // An unreadable record marks nothing, here or at a start.
                let Ok(mut record) = decode_export(key, value) else {
                    removals.push(remove(key));
                    continue;
                };
                let before = record.ids.len();
                record.ids.retain(|id| !cleared.contains(id));
                if record.ids.is_empty() {
                    removals.push(remove(key));
                } else if record.ids.len() < before {
                    puts.push(Change::Put {
                        key: key.to_owned(),
                        value: record.value(),
                    });
                }
            }
        }
        // The own keys of cleared transactions not in a chunk go with [`Replica::plan_forget`].
        removals.extend(
            singles
                .into_iter()
                .filter(|(id, _)| chunked.contains(id) || self.archived.contains(id))
                .map(|(_, key)| remove(key)),
        );
        puts.extend(removals);
        puts
    }

    /// The first writes of a deletion or a clear, before [`Replica::plan_forget`]: `cleared` out
    /// of the pending chunks stored now (`stored`), each written again without them or removed
    /// once it holds nothing else. A pending chunk's copy is older than any other: a clear cut
    /// short after removing a transaction's accepted copy (its own key, its archive chunk) but
    /// not its pending copy would bring it back unsent, and a send would give it to Koha twice.
    pub fn plan_forget_pending<'a>(
        &self,
        stored: impl IntoIterator<Item = (&'a str, &'a Value)>,
        cleared: &[TransactionId],
    ) -> Vec<Change> {
        let cleared: HashSet<&TransactionId> = cleared.iter().collect();
        stored
            .into_iter()
            .filter(|(key, _)| is_pending_key(key))
            // An unreadable chunk is left to the next start's quarantine.
            .filter_map(|(key, value)| trimmed(key, decode_chunk(key, value).ok()?, &cleared))
            .collect()
    }

    /// After the store of record applied [`Replica::plan_forget_bulk`] for `cleared`.
    pub fn bulk_forgotten(&mut self, cleared: &[TransactionId]) {
        for id in cleared {
            self.archived.remove(id);
            self.spare_singles.remove(id);
        }
    }

    /// Stores the settings in memory (after the store of record took them).
    pub fn set_settings(&mut self, settings: Option<Settings>) {
        self.settings = settings;
    }

    /// Applies a batch of other pages' writes (a `storage.onChanged` event; this page's own
    /// writes come back too and change nothing). Kept for later while the stores are read for
    /// [`Replica::open`]. Returns whether anything the page shows changed.
    pub fn apply(&mut self, batch: Vec<EntryChange>) -> bool {
        if let Some(arrived) = self.arrived_while_reading.as_mut() {
            arrived.push(batch);
            return false;
        }
        let mut changed = false;
        for entry in batch {
            let decoded = decode_change(
                &entry.key,
                entry.new_value.as_ref(),
                entry.old_value.as_ref(),
            );
            match decoded {
                Ok(StoredChange::Transaction(tx)) => {
                    self.own_keys.insert(tx.id.clone());
                    changed |= self.journal.upsert(tx) != Upserted::Kept;
                }
                // A packed transaction lost its own key but is still stored, in a chunk.
                Ok(StoredChange::Removed(id)) => {
                    self.own_keys.remove(&id);
                    changed |= self.forget_unless_held(vec![id]);
                }
                Ok(StoredChange::Pending(txs)) => {
                    let ids = txs.iter().map(|tx| tx.id.clone()).collect();
                    for tx in txs {
                        changed |= self.journal.upsert(tx) != Upserted::Kept;
                    }
                    let dropped = self.pending.hold(entry.key, ids);
                    changed |= self.forget_unless_held(dropped);
                }
                Ok(StoredChange::PendingRemoved) => {
                    let dropped = self.pending.release(&entry.key);
                    changed |= self.forget_unless_held(dropped);
                }
                Ok(StoredChange::Archived(txs)) => {
                    for tx in txs {
                        self.loose_accepted.remove(&tx.id);
                        self.archived.insert(tx.id.clone());
                        changed |= self.journal.upsert(tx) != Upserted::Kept;
                    }
                }
                Ok(StoredChange::ArchiveRemoved(ids)) => {
                    changed |= self.forget_archived(ids);
                }
                Ok(StoredChange::ArchiveTrimmed { kept, dropped }) => {
                    for tx in kept {
                        changed |= self.journal.upsert(tx) != Upserted::Kept;
                    }
                    changed |= self.forget_archived(dropped);
                }
                Ok(StoredChange::Exported(record)) => {
                    let missing = self.journal.mark_exported(&record.ids, record.at);
                    changed |= missing.len() < record.ids.len();
                }
                Ok(StoredChange::Settings(settings)) => {
                    self.settings = settings;
                    changed = true;
                }
                Ok(StoredChange::Other) | Err(_) => {}
            }
        }
        changed
    }

    /// Another page removed these archived transactions. Returns whether the journal changed.
    fn forget_archived(&mut self, ids: Vec<TransactionId>) -> bool {
        let mut changed = false;
        for id in ids {
            self.archived.remove(&id);
            changed |= self.journal.forget_removed(&id).is_some();
        }
        changed
    }

    /// Merges both stores' current copies of some transactions into the journal (before a send,
    /// an export, a removal or a retry, under the send lock): `primary` as read from
    /// `browser.storage.local` for their `tx:` keys, `mirror` the mirror's texts for them.
    /// Returns the ids either store holds.
    pub fn merge_stored_copies(
        &mut self,
        primary: Vec<(String, Value)>,
        mirror: Vec<(String, String)>,
    ) -> HashSet<TransactionId> {
        let mut found = HashSet::new();
        for (key, text) in mirror {
            let Some(id) = id_of_mirror_key(&key) else {
                continue;
            };
            found.insert(id);
            if let Ok(copy) = decode_mirror_text(&key, &text) {
                self.journal.upsert(copy);
            }
        }
        for (key, value) in primary {
            if let Some(id) = id_of_transaction_key(&key) {
                found.insert(id);
            }
            if let Ok(copy) = decode_transaction(&key, &value) {
                self.journal.upsert(copy);
            }
        }
        found
    }

    /// Merges what the stores hold now of `ids` into the journal, before a send or an export
    /// (under the send lock): `stored` is every entry of the store of record, `mirror` the
    /// mirror's texts for them. Besides their own keys and mirror copies, it takes the export
    /// records and, for those neither holds, the archive chunks: an export or a send run of
    /// another page a moment ago is stored there, and its `storage.onChanged` event may not have
    /// reached this page yet. Sending or exporting one again would give it to Koha twice. Those
    /// held nowhere any more were deleted by another page and are forgotten here too.
    /// Returns the ids found.
    pub fn merge_current(
        &mut self,
        stored: Vec<(String, Value)>,
        mirror: Vec<(String, String)>,
        ids: &[TransactionId],
    ) -> HashSet<TransactionId> {
        let wanted: HashSet<&TransactionId> = ids.iter().collect();
        let mut own_keys = Vec::new();
        let mut chunks = Vec::new();
        let mut in_pending = HashSet::new();
        for (key, value) in stored {
            if id_of_transaction_key(&key).is_some_and(|id| wanted.contains(&id)) {
                own_keys.push((key, value));
            } else if is_pending_key(&key) {
                // An unreadable chunk is left to the next start's quarantine.
                for tx in decode_chunk(&key, &value).unwrap_or_default() {
                    if wanted.contains(&tx.id) {
                        in_pending.insert(tx.id.clone());
                        self.journal.upsert(tx);
                    }
                }
            } else if is_archive_key(&key) {
                chunks.push((key, value));
            } else if is_export_key(&key) {
                if let Ok(record) = decode_export(&key, &value) {
                    let marked: Vec<TransactionId> = record
                        .ids
                        .into_iter()
                        .filter(|id| wanted.contains(id))
                        .collect();
                    self.journal.mark_exported(&marked, record.at);
                }
            }
        }
        let mut found = self.merge_stored_copies(own_keys, mirror);
        found.extend(in_pending);
        let unfound = self.unfound_stored(ids, &found);
        if !unfound.is_empty() {
            found.extend(self.settle_unfound(chunks.iter().map(|(k, v)| (k.as_str(), v)), unfound));
        }
        found
    }

    /// Looks `unfound` up in the archive `chunks` (all of them, as stored now): another page's
    /// send run packed them after Koha accepted them. Those held nowhere any more were deleted
    /// by another page (a clear may have followed their export) and are forgotten here too, as
    /// its event will say. Returns the ids found in a chunk.
    pub fn settle_unfound<'a>(
        &mut self,
        chunks: impl IntoIterator<Item = (&'a str, &'a Value)>,
        unfound: Vec<TransactionId>,
    ) -> HashSet<TransactionId> {
        let found = self.merge_archived_copies(chunks, &unfound);
        self.forget_gone(unfound, &found);
        found
    }

    /// [`Replica::settle_unfound`] from what this replica has heard of the archive, with no read
    /// of the chunks. Once a [`Barrier`] has been answered, every chunk written before it has
    /// reached this replica through its event, and so has every removal, so that is what is
    /// stored. When the chunks cannot be read, it is the best there is: one packed a moment ago
    /// is forgotten here until its event brings it back. Returns the ids held in a chunk.
    pub fn settle_unfound_heard(&mut self, unfound: Vec<TransactionId>) -> HashSet<TransactionId> {
        let found: HashSet<TransactionId> = unfound
            .iter()
            .filter(|id| self.archived.contains(*id) || self.pending.holds(id))
            .cloned()
            .collect();
        self.forget_gone(unfound, &found);
        found
    }

    /// Forgets those of `unfound` that are not `found`: held nowhere any more.
    fn forget_gone(&mut self, unfound: Vec<TransactionId>, found: &HashSet<TransactionId>) {
        let gone: Vec<TransactionId> = unfound
            .into_iter()
            .filter(|id| !found.contains(id))
            .collect();
        for id in &gone {
            self.journal.forget_removed(id);
        }
        self.forgotten(&gone);
    }

    /// Of `ids`, whose stored copies [`Replica::merge_stored_copies`] read, those that neither
    /// the `tx:` keys nor the mirror hold (`found` did not) although this page stored them:
    /// another page removed them, or packed them into a chunk after its send run accepted them,
    /// and this page has not heard of it yet. Settle them with [`Replica::settle_unfound`]:
    /// sending one would give it to Koha a second time.
    pub fn unfound_stored(
        &self,
        ids: &[TransactionId],
        found: &HashSet<TransactionId>,
    ) -> Vec<TransactionId> {
        // A pending chunk's copy reached this page through its event.
        ids.iter()
            .filter(|id| {
                !found.contains(*id) && !self.never_stored.contains(*id) && !self.pending.holds(id)
            })
            .cloned()
            .collect()
    }

    /// Merges the copies the archive and pending chunks hold of `ids` (`stored`: the entries of
    /// the store of record, as read now). Returns the ids found there.
    fn merge_archived_copies<'a>(
        &mut self,
        stored: impl IntoIterator<Item = (&'a str, &'a Value)>,
        ids: &[TransactionId],
    ) -> HashSet<TransactionId> {
        let wanted: HashSet<&TransactionId> = ids.iter().collect();
        let mut found = HashSet::new();
        for (key, value) in stored {
            let archive = is_archive_key(key);
            if !archive && !is_pending_key(key) {
                continue;
            }
            for tx in decode_chunk(key, value).unwrap_or_default() {
                if !wanted.contains(&tx.id) {
                    continue;
                }
                if archive {
                    self.loose_accepted.remove(&tx.id);
                    self.archived.insert(tx.id.clone());
                }
                found.insert(tx.id.clone());
                self.journal.upsert(tx);
            }
        }
        found
    }

    /// The transactions to write again, in recorded order, after their current stored copies
    /// were merged ([`Replica::merge_stored_copies`] returned `found`): those another page
    /// removed are forgotten, those this page's run has in flight are left to it. Report with
    /// [`Replica::wrote`].
    pub fn plan_retry(&mut self, found: &HashSet<TransactionId>) -> Vec<Transaction> {
        let mut write = Vec::new();
        for id in self.unsaved_ids() {
            let decision = journal::retry(
                found.contains(&id),
                self.never_stored.contains(&id),
                self.journal.is_in_flight(&id),
            );
            match (decision, self.journal.get(&id)) {
                (Retry::Write, Some(tx)) => write.push(tx.clone()),
                (Retry::LeaveToTheRun, Some(_)) => {}
                (Retry::Forget, _) | (_, None) => {
                    self.unsaved.remove(&id);
                }
            }
        }
        write
    }

    /// The transactions whose writes were refused, in recorded order.
    pub fn unsaved_ids(&self) -> Vec<TransactionId> {
        let mut ids: Vec<TransactionId> = self.unsaved.iter().cloned().collect();
        ids.sort();
        ids
    }
}

/// The chunk `key` holding `txs` without the `cleared` ones: written again, removed once it holds
/// nothing else, or `None` when it holds none of them.
fn trimmed(key: &str, txs: Vec<Transaction>, cleared: &HashSet<&TransactionId>) -> Option<Change> {
    let before = txs.len();
    let kept: Vec<Transaction> = txs
        .into_iter()
        .filter(|tx| !cleared.contains(&tx.id))
        .collect();
    if kept.is_empty() {
        Some(Change::Remove {
            key: key.to_owned(),
        })
    } else if kept.len() < before {
        Some(Change::Put {
            key: key.to_owned(),
            value: Value::String(encode_chunk(&kept)),
        })
    } else {
        None
    }
}
