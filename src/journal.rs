//! The journal: the transactions a desk holds, and what the desk does with them.
//!
//! Invariants kept by every method:
//!
//! - each [`TransactionId`] appears at most once;
//! - the indexes (by time, by barcode, by card number, sendable) and the [`Counts`] always agree
//!   with the transactions; the only way to change a stored transaction is
//!   [`Journal::update`], which re-indexes it;
//! - a transaction Koha accepted (`queued`, `applied`) is only removed by
//!   [`Journal::clear_accepted`] or [`Journal::clear_all`], never by [`Journal::delete`].
//!
//! Recording, deleting, counting and the duplicate-scan checks are `O(log n)` (plus the few
//! transactions of the same item or card), so a desk with 50,000 transactions stays fast. Only a
//! filtered [`Journal::page`] and the clears look at every transaction.

use crate::ids::{Barcode, Cardnumber};
use crate::kinds::kinds;
use crate::transaction::{Action, Status, Transaction, TransactionId};
use chrono::{DateTime, Datelike, TimeDelta, Utc};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use thiserror::Error;

/// How close in time (seconds, either side) a repeated scan must be to count as a
/// [`Warning::DuplicateScan`].
pub const DUPLICATE_SCAN_WINDOW_SECONDS: i64 = 60;

/// Ordering key: recording instant, then id, so equal instants keep a stable order.
type OrderKey = (DateTime<Utc>, TransactionId);

fn key_of(tx: &Transaction) -> OrderKey {
    (tx.recorded_at, tx.id.clone())
}

/// The smallest key at `at` (the empty id sorts first).
fn floor_key(at: DateTime<Utc>) -> OrderKey {
    (at, TransactionId::from_stored(""))
}

/// `at + delta`, saturating at the ends of chrono's range instead of panicking.
fn shifted(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(delta)
        .unwrap_or(if delta < TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// Something the desk should ask the librarian about before recording an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Warning {
    /// The same item (for payments: the same card and amount) was recorded for the same action
    /// within [`DUPLICATE_SCAN_WINDOW_SECONDS`].
    DuplicateScan {
        /// The most recent such transaction.
        previous: TransactionId,
    },
    /// The item is checked out here to another card, with no checkin recorded since.
    CheckedOutToOtherCard {
        /// That checkout.
        previous: TransactionId,
        /// The card it went to.
        cardnumber: Cardnumber,
    },
}

kinds!(Warning {
    DuplicateScan => "duplicate-scan",
    CheckedOutToOtherCard => "checked-out-to-other-card",
});

/// Why the journal refused a change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JournalError {
    /// [`Journal::record`] was given an id that is already there.
    #[error("transaction {id} is already in the journal")]
    DuplicateId {
        /// The id.
        id: TransactionId,
    },
    /// No transaction has this id.
    #[error("transaction {id} is not in the journal")]
    NotFound {
        /// The id.
        id: TransactionId,
    },
    /// Koha accepted it (`queued` or `applied`); only the clears remove it.
    #[error("transaction {id} was accepted by Koha and cannot be deleted")]
    AcceptedByKoha {
        /// The id.
        id: TransactionId,
    },
    /// A request for it may be on its way to Koha right now.
    #[error("transaction {id} is being sent and cannot be deleted")]
    Sending {
        /// The id.
        id: TransactionId,
    },
    /// Its time is outside 1970 to 2037 (a desk clock gone wrong): Koha's queue cannot hold it.
    #[error("transaction {id} has a time outside 1970 to 2037")]
    TimeOutOfRange {
        /// The id.
        id: TransactionId,
    },
    /// Another page is sending to Koha (it holds the send lock): see [`change_allowed`].
    #[error("a send to Koha is running in another window")]
    SendRunningElsewhere,
}

kinds!(JournalError {
    DuplicateId => "duplicate-id",
    NotFound => "not-found",
    AcceptedByKoha => "accepted-by-koha",
    Sending => "sending",
    TimeOutOfRange => "time-out-of-range",
    SendRunningElsewhere => "send-running-elsewhere",
});

/// The name of the send lock: the Web Lock (`navigator.locks`) a page holds while it sends to
/// Koha, changes stored transactions outside a send, or reads the stores for a start that
/// recovers interrupted sends. The desk's head script (`lib/early-read.js`) asks for it by this
/// name too, before the core has loaded.
pub const SEND_LOCK: &str = "koha-send";

/// What the send lock (one page at a time sends to Koha) answered a page asking for it without
/// waiting, before it removes transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendLockState {
    /// This page holds it now: no send run is under way, and none starts until it lets go.
    HeldHere,
    /// Another page holds it: a send run is under way there.
    HeldElsewhere,
}

/// Why the librarian may not delete this transaction, if not: `queued` and `applied` ones are
/// proof of what Koha holds, and a `sending` one's request may be in flight.
pub fn deletion_refused(tx: &Transaction) -> Option<JournalError> {
    let id = tx.id.clone();
    match tx.status() {
        status if status.is_accepted() => Some(JournalError::AcceptedByKoha { id }),
        Status::Sending => Some(JournalError::Sending { id }),
        _ => None,
    }
}

/// Whether the desk may change stored transactions outside a send run now: delete one, clear
/// what Koha accepted, clear everything, or mark one found in Koha. Refused with
/// [`JournalError::SendRunningElsewhere`] while another page sends: that page's
/// `sending` write may not have reached this page yet, so the row Koha is receiving right now can
/// still look `local` here, and its accepted rows are about to be written (and packed) again.
/// The page holds the lock for the whole change, so no send run starts meanwhile either.
pub fn change_allowed(lock: SendLockState) -> Result<(), JournalError> {
    match lock {
        SendLockState::HeldHere => Ok(()),
        SendLockState::HeldElsewhere => Err(JournalError::SendRunningElsewhere),
    }
}

/// What a retry of a write the store of record refused does with one transaction. The retry
/// runs only while no other page sends (under the send lock, or in this page's own run), after
/// merging both stores' current copies into the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Write the journal's copy to the store of record.
    Write,
    /// This page's send run has it in flight and writes it itself: this page's copy from before
    /// `sending` must not overwrite that. Stays unsaved.
    LeaveToTheRun,
    /// Stored once and in neither store now: another page removed it (its event is on the way).
    /// Writing it back would bring a deleted or cleared transaction back to life.
    Forget,
}

/// The retry rule for one unsaved transaction: whether either store holds it now, whether any
/// store ever took it from this page (`never_stored`: created here, every write refused), and
/// whether this page's run has it in flight.
pub fn retry(in_a_store: bool, never_stored: bool, in_flight: bool) -> Retry {
    if !in_a_store && !never_stored {
        Retry::Forget
    } else if in_flight {
        Retry::LeaveToTheRun
    } else {
        Retry::Write
    }
}

/// How many transactions are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Recorded, never sent.
    pub local: usize,
    /// A request is on its way.
    pub sending: usize,
    /// Koha queued it.
    pub queued: usize,
    /// Koha applied it.
    pub applied: usize,
    /// Koha refused it.
    pub rejected: usize,
    /// Not sent; may be retried.
    pub failed: usize,
    /// Maybe reached Koha; the librarian decides.
    pub uncertain: usize,
    /// All transactions.
    pub total: usize,
    /// Everything Koha has not accepted (all but `queued` and `applied`): the toolbar badge.
    pub not_accepted: usize,
}

impl Counts {
    fn change(&mut self, status: &Status, add: bool) {
        let slot = match status {
            Status::Local => &mut self.local,
            Status::Sending => &mut self.sending,
            Status::Queued => &mut self.queued,
            Status::Applied => &mut self.applied,
            Status::Rejected { .. } => &mut self.rejected,
            Status::Failed { .. } => &mut self.failed,
            Status::Uncertain { .. } => &mut self.uncertain,
        };
        let accepted = status.is_accepted();
        let step = |n: &mut usize| {
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        };
        step(slot);
        step(&mut self.total);
        if !accepted {
            step(&mut self.not_accepted);
        }
    }
}

/// Which transactions a [`Journal::page`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Case-insensitive substring of the barcode or the card number; empty (after trimming)
    /// matches everything.
    pub text: String,
}

impl Filter {
    /// A filter on a barcode or card number fragment.
    pub fn text(text: &str) -> Self {
        Filter {
            text: text.to_owned(),
        }
    }

    fn needle(&self) -> Option<String> {
        let t = self.text.trim();
        (!t.is_empty()).then(|| t.to_lowercase())
    }
}

/// Whether `hay`, lower-cased, contains `needle` (already lower-cased). ASCII text (the usual
/// barcode) is compared in place, without allocating.
fn contains_folded(hay: &str, needle: &str) -> bool {
    if !hay.is_ascii() {
        return hay.to_lowercase().contains(needle);
    }
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    needle.is_empty()
        || hay.windows(needle.len()).any(|w| {
            w.iter()
                .zip(needle)
                .all(|(h, n)| h.to_ascii_lowercase() == *n)
        })
}

fn matches(tx: &Transaction, needle: &str) -> bool {
    let hit = |s: &str| contains_folded(s, needle);
    tx.action.barcode().is_some_and(|b| hit(b.as_str()))
        || tx.action.cardnumber().is_some_and(|c| hit(c.as_str()))
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<'a> {
    /// The transactions on this page, newest first.
    pub rows: Vec<&'a Transaction>,
    /// How many transactions match the filter in all.
    pub total: usize,
    /// How many matching transactions come before this page: the offset asked for, or the last
    /// page's when the one asked for is past the end (rows were cleared or deleted meanwhile).
    pub offset: usize,
}

/// What [`Journal::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// The id was new.
    Inserted,
    /// The incoming copy superseded the stored one and replaced it.
    Replaced,
    /// The stored copy was kept (its export mark may have moved forward).
    Kept,
}

/// The desk's transactions, indexed. See the module docs for the invariants.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// The transactions themselves, oldest first.
    by_time: BTreeMap<OrderKey, Transaction>,
    /// Where each id is in `by_time`.
    by_id: FxHashMap<TransactionId, OrderKey>,
    by_barcode: FxHashMap<Barcode, KeyList>,
    by_card: FxHashMap<Cardnumber, KeyList>,
    sendable: BTreeSet<OrderKey>,
    counts: Counts,
    /// Transactions whose request this page has on its way to Koha (see
    /// [`Journal::hold_in_flight`]).
    in_flight: FxHashSet<TransactionId>,
    /// Export marks for transactions this page does not hold yet: another page's write of a
    /// transaction can arrive after the export record that names it. Applied when it arrives.
    marks_waiting: FxHashMap<TransactionId, DateTime<Utc>>,
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// A journal from stored transactions. Repeated ids are merged as by [`Journal::upsert`].
    pub fn from_transactions(transactions: Vec<Transaction>) -> Self {
        // Built in bulk, not one upsert at a time: a desk opens with tens of thousands, and
        // sorted runs build the ordered indexes in one pass.
        let mut journal = Self::new();
        journal.by_id.reserve(transactions.len());
        let mut ordered: Vec<(OrderKey, Transaction)> = Vec::with_capacity(transactions.len());
        let mut repeated = Vec::new();
        for tx in transactions {
            if journal.by_id.contains_key(&tx.id) {
                repeated.push(tx);
                continue;
            }
            let key = key_of(&tx);
            journal.by_id.insert(tx.id.clone(), key.clone());
            ordered.push((key, tx));
        }
        ordered.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, tx) in &ordered {
            if let Some(barcode) = tx.action.barcode() {
                journal
                    .by_barcode
                    .entry(barcode.clone())
                    .or_default()
                    .insert(key.clone());
            }
            if let Some(card) = tx.action.cardnumber() {
                journal
                    .by_card
                    .entry(card.clone())
                    .or_default()
                    .insert(key.clone());
            }
            journal.counts.change(tx.status(), true);
        }
        journal.sendable = ordered
            .iter()
            .filter(|(_, tx)| tx.status().is_sendable())
            .map(|(key, _)| key.clone())
            .collect();
        journal.by_time = ordered.into_iter().collect();
        for tx in repeated {
            journal.upsert(tx);
        }
        journal
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }

    /// What the desk should ask about before recording `action` at `now`. Empty when all is
    /// well. Checks:
    ///
    /// - [`Warning::DuplicateScan`]: a transaction of the same action within
    ///   [`DUPLICATE_SCAN_WINDOW_SECONDS`] of `now` (either side), with the same barcode
    ///   (checkout, checkin) or the same card and amount (payment);
    /// - [`Warning::CheckedOutToOtherCard`] (checkouts only): the latest checkout or checkin of
    ///   the item recorded up to `now` is a checkout to another card. Transactions Koha rejected
    ///   are ignored here, since they changed nothing.
    pub fn warnings_for(&self, action: &Action, now: DateTime<Utc>) -> Vec<Warning> {
        let mut warnings = Vec::new();
        let window = TimeDelta::seconds(DUPLICATE_SCAN_WINDOW_SECONDS);
        let index = match action {
            Action::Issue { barcode, .. } | Action::Return { barcode } => {
                self.by_barcode.get(barcode)
            }
            Action::Payment { cardnumber, .. } => self.by_card.get(cardnumber),
        };
        if let Some(keys) = index {
            let from = Bound::Included(floor_key(shifted(now, -window)));
            let to = Bound::Excluded(floor_key(shifted(now, window + TimeDelta::nanoseconds(1))));
            let same = |tx: &Transaction| match (action, &tx.action) {
                (Action::Issue { .. }, Action::Issue { .. }) => true,
                (Action::Return { .. }, Action::Return { .. }) => true,
                (Action::Payment { amount: a, .. }, Action::Payment { amount: b, .. }) => a == b,
                _ => false,
            };
            if let Some(previous) = keys
                .range(from, to)
                .iter()
                .rev()
                .filter_map(|key| self.by_time.get(key))
                .find(|tx| same(tx))
            {
                warnings.push(Warning::DuplicateScan {
                    previous: previous.id.clone(),
                });
            }
        }
        if let Action::Issue {
            cardnumber,
            barcode,
        } = action
        {
            if let Some(tx) = self.latest_move(barcode, now) {
                if let Action::Issue { cardnumber: to, .. } = &tx.action {
                    if to != cardnumber {
                        warnings.push(Warning::CheckedOutToOtherCard {
                            previous: tx.id.clone(),
                            cardnumber: to.clone(),
                        });
                    }
                }
            }
        }
        warnings
    }

    /// The latest checkout or checkin of the item recorded up to `now` (inclusive) that Koha did
    /// not reject (a rejected one changed nothing).
    pub fn latest_move(&self, barcode: &Barcode, now: DateTime<Utc>) -> Option<&Transaction> {
        let upto = Bound::Excluded(floor_key(shifted(now, TimeDelta::nanoseconds(1))));
        self.by_barcode.get(barcode).and_then(|keys| {
            keys.range(Bound::Unbounded, upto)
                .iter()
                .rev()
                .filter_map(|key| self.by_time.get(key))
                .find(|tx| !matches!(tx.status(), Status::Rejected { .. }))
        })
    }

    /// Adds a new transaction. Refuses an id that is already there, and a recording time (UTC)
    /// outside 1970 to 2037, which Koha's queue cannot store; nothing changes then.
    pub fn record(&mut self, tx: Transaction) -> Result<&Transaction, JournalError> {
        if self.by_id.contains_key(&tx.id) {
            return Err(JournalError::DuplicateId { id: tx.id });
        }
        if !(1970..=2037).contains(&tx.recorded_at.year()) {
            return Err(JournalError::TimeOutOfRange { id: tx.id });
        }
        let id = tx.id.clone();
        self.insert(tx);
        self.get(&id).ok_or(JournalError::NotFound { id })
    }

    /// Merges a copy from storage (or another tab) by [`Transaction::merge`]: the copy that
    /// [supersedes](Transaction::supersedes) the other stays, never decided by a clock; the later
    /// `exported_at` of the two is always kept.
    ///
    /// A transaction this page has in flight keeps its copy unless the one arriving says Koha
    /// accepted it: the page waiting for Koha's answer is the only one with news of its attempt,
    /// and another page's copy (written before this attempt, say a `failed` whose write was
    /// retried late) must not take the `sending` away from under the answer. An acceptance is
    /// Koha's word and is taken at once: the run then leaves it unsent, or only counts the
    /// answer.
    pub fn upsert(&mut self, tx: Transaction) -> Upserted {
        let held = self.in_flight.contains(&tx.id) && !tx.status().is_accepted();
        let Some(current) = self
            .by_id
            .get(&tx.id)
            .and_then(|key| self.by_time.get_mut(key))
        else {
            self.insert(tx);
            return Upserted::Inserted;
        };
        if held || !tx.supersedes(current) {
            // What the merge gives when the stored copy stays: only the export mark can move,
            // and it is in no index.
            current.exported_at = current.exported_at.max(tx.exported_at);
            return Upserted::Kept;
        }
        let id = tx.id.clone();
        let merged = match self.remove(&id) {
            Some(current) => current.merge(tx),
            None => tx,
        };
        self.insert(merged);
        Upserted::Replaced
    }

    /// Marks a transaction as in flight from this page: [`Journal::upsert`] keeps this page's
    /// copy until [`Journal::release_in_flight`].
    pub fn hold_in_flight(&mut self, id: &TransactionId) {
        self.in_flight.insert(id.clone());
    }

    /// Whether this page has the transaction in flight: its writes are the send run's.
    pub fn is_in_flight(&self, id: &TransactionId) -> bool {
        self.in_flight.contains(id)
    }

    /// Koha's answer for it is recorded (or the request never left).
    pub fn release_in_flight(&mut self, id: &TransactionId) {
        self.in_flight.remove(id);
    }

    /// The transaction with this id.
    pub fn get(&self, id: &TransactionId) -> Option<&Transaction> {
        self.by_id.get(id).and_then(|key| self.by_time.get(key))
    }

    /// Changes one transaction through `change` (for example a status transition) and keeps the
    /// indexes and counts right. The id cannot be changed: if `change` alters it, it is restored.
    /// Returns what `change` returned.
    pub fn update<R>(
        &mut self,
        id: &TransactionId,
        change: impl FnOnce(&mut Transaction) -> R,
    ) -> Result<R, JournalError> {
        let mut tx = self
            .remove(id)
            .ok_or_else(|| JournalError::NotFound { id: id.clone() })?;
        let result = change(&mut tx);
        tx.id = id.clone();
        self.insert(tx);
        Ok(result)
    }

    /// Marks transactions as written to a `.koc` file at `at` (for example the ids of a
    /// [`crate::koc::KocFile`]). Ids not in the journal are returned; their mark is kept and
    /// given to the transaction if it arrives later.
    pub fn mark_exported(
        &mut self,
        ids: &[TransactionId],
        at: DateTime<Utc>,
    ) -> Vec<TransactionId> {
        let mut missing = Vec::new();
        for id in ids {
            // `exported_at` is in no index, so it can be changed in place.
            match self.by_id.get(id).and_then(|key| self.by_time.get_mut(key)) {
                // Marks only move forward, whatever order the records arrive in.
                Some(tx) if tx.exported_at.is_some_and(|later| later >= at) => {}
                Some(tx) => tx.mark_exported(at),
                None => {
                    let waiting = self.marks_waiting.entry(id.clone()).or_insert(at);
                    *waiting = (*waiting).max(at);
                    missing.push(id.clone());
                }
            }
        }
        missing
    }

    /// Removes a transaction Koha has not accepted (see [`deletion_refused`]).
    pub fn delete(&mut self, id: &TransactionId) -> Result<Transaction, JournalError> {
        let tx = self
            .get(id)
            .ok_or_else(|| JournalError::NotFound { id: id.clone() })?;
        if let Some(refused) = deletion_refused(tx) {
            return Err(refused);
        }
        self.remove(id)
            .ok_or_else(|| JournalError::NotFound { id: id.clone() })
    }

    /// Removes a transaction whatever its status, because the store of record no longer has it
    /// (another page deleted it). Not for the desk's own deletions: use [`Journal::delete`].
    pub fn forget_removed(&mut self, id: &TransactionId) -> Option<Transaction> {
        self.remove(id)
    }

    /// Removes every transaction Koha accepted; returns their ids, oldest first.
    pub fn clear_accepted(&mut self) -> Vec<TransactionId> {
        let ids: Vec<TransactionId> = self
            .in_order()
            .filter(|tx| tx.status().is_accepted())
            .map(|tx| tx.id.clone())
            .collect();
        for id in &ids {
            self.remove(id);
        }
        ids
    }

    /// Removes everything; returns the ids, oldest first.
    pub fn clear_all(&mut self) -> Vec<TransactionId> {
        let ids = self.by_time.keys().map(|(_, id)| id.clone()).collect();
        *self = Self::new();
        ids
    }

    /// How many transactions are in each status. `O(1)`.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Up to `limit` transactions matching `filter`, newest first, skipping the first `offset`,
    /// and how many match in all. An offset past the last match gives the last page instead
    /// (the table stays on a page that has rows when rows it showed were cleared).
    pub fn page(&self, filter: &Filter, offset: usize, limit: usize) -> Page<'_> {
        let step = limit.max(1);
        let last_page = |total: usize| total.saturating_sub(1) / step * step;
        let newest_first = self.by_time.values().rev();
        match filter.needle() {
            None => {
                let total = self.len();
                let offset = offset.min(last_page(total));
                Page {
                    rows: newest_first.skip(offset).take(limit).collect(),
                    total,
                    offset,
                }
            }
            // One pass: the asked page, and the page being filled last, which is the last page
            // once every match is counted.
            Some(needle) => {
                let mut total = 0;
                let mut asked = Vec::new();
                let mut tail = Vec::new();
                for tx in newest_first.filter(|tx| matches(tx, &needle)) {
                    if (offset..offset.saturating_add(limit)).contains(&total) {
                        asked.push(tx);
                    }
                    if total % step == 0 {
                        tail.clear();
                    }
                    if tail.len() < limit {
                        tail.push(tx);
                    }
                    total += 1;
                }
                let last = last_page(total);
                if offset > last {
                    Page {
                        rows: tail,
                        total,
                        offset: last,
                    }
                } else {
                    Page {
                        rows: asked,
                        total,
                        offset,
                    }
                }
            }
        }
    }

    /// What a send run picks up (`local` and `failed`), oldest first: Koha applies requests in
    /// arrival order, so a checkin must not overtake its checkout.
    pub fn sendable_in_order(&self) -> impl Iterator<Item = &Transaction> + Clone + '_ {
        self.sendable.iter().filter_map(|key| self.by_time.get(key))
    }

    /// The ids of every transaction Koha has not accepted, oldest first: the ones whose copy
    /// elsewhere (another page's write) may be newer than this one.
    pub fn not_accepted_ids(&self) -> Vec<TransactionId> {
        self.in_order()
            .filter(|tx| !tx.status().is_accepted())
            .map(|tx| tx.id.clone())
            .collect()
    }

    /// How many of the newest transactions were recorded after `at`, counted up to `up_to`.
    pub fn newer_than(&self, at: DateTime<Utc>, up_to: usize) -> usize {
        self.by_time
            .values()
            .rev()
            .take(up_to)
            .take_while(|tx| tx.recorded_at > at)
            .count()
    }

    /// Every transaction, oldest first, taken out of the journal.
    pub fn into_transactions(self) -> Vec<Transaction> {
        self.by_time.into_values().collect()
    }

    /// The newest transaction (by recording instant, then id).
    pub fn newest(&self) -> Option<&Transaction> {
        self.by_time.values().next_back()
    }

    /// Every transaction, oldest first (by recording instant, then id).
    pub fn in_order(&self) -> impl Iterator<Item = &Transaction> + Clone + '_ {
        self.by_time.values()
    }

    fn insert(&mut self, mut tx: Transaction) {
        if let Some(at) = self.marks_waiting.remove(&tx.id) {
            if tx.exported_at.is_none_or(|earlier| earlier < at) {
                tx.mark_exported(at);
            }
        }
        let key = key_of(&tx);
        if let Some(barcode) = tx.action.barcode() {
            self.by_barcode
                .entry(barcode.clone())
                .or_default()
                .insert(key.clone());
        }
        if let Some(card) = tx.action.cardnumber() {
            self.by_card
                .entry(card.clone())
                .or_default()
                .insert(key.clone());
        }
        if tx.status().is_sendable() {
            self.sendable.insert(key.clone());
        }
        self.counts.change(tx.status(), true);
        self.by_id.insert(tx.id.clone(), key.clone());
        self.by_time.insert(key, tx);
    }

    fn remove(&mut self, id: &TransactionId) -> Option<Transaction> {
        let key = self.by_id.remove(id)?;
        let tx = self.by_time.remove(&key)?;
        if let Some(barcode) = tx.action.barcode() {
            remove_key(&mut self.by_barcode, barcode, &key);
        }
        if let Some(card) = tx.action.cardnumber() {
            remove_key(&mut self.by_card, card, &key);
        }
        self.sendable.remove(&key);
        self.counts.change(tx.status(), false);
        Some(tx)
    }
}

fn remove_key<K: std::hash::Hash + Eq>(index: &mut FxHashMap<K, KeyList>, k: &K, key: &OrderKey) {
    if let Some(keys) = index.get_mut(k) {
        keys.remove(key);
        if keys.0.is_empty() {
            index.remove(k);
        }
    }
}

/// The transactions of one item or card, as a sorted list: most items have one or two, and a
/// `BTreeSet` would allocate a node of eleven for each (a tenth of a second more to open a desk
/// of 50,000 in Firefox).
#[derive(Debug, Clone, Default)]
struct KeyList(Vec<OrderKey>);

impl KeyList {
    fn insert(&mut self, key: OrderKey) {
        // Keys mostly arrive in time order, so this is usually a push.
        match self.0.last() {
            Some(last) if *last > key => {
                if let Err(at) = self.0.binary_search(&key) {
                    self.0.insert(at, key);
                }
            }
            Some(last) if *last == key => {}
            _ => self.0.push(key),
        }
    }

    fn remove(&mut self, key: &OrderKey) {
        if let Ok(at) = self.0.binary_search(key) {
            self.0.remove(at);
        }
    }

    fn range(&self, from: Bound<OrderKey>, to: Bound<OrderKey>) -> &[OrderKey] {
        let start = match &from {
            Bound::Included(k) => self.0.partition_point(|x| x < k),
            Bound::Excluded(k) => self.0.partition_point(|x| x <= k),
            Bound::Unbounded => 0,
        };
        let end = match &to {
            Bound::Included(k) => self.0.partition_point(|x| x <= k),
            Bound::Excluded(k) => self.0.partition_point(|x| x < k),
            Bound::Unbounded => self.0.len(),
        };
        self.0.get(start..end.max(start)).unwrap_or_default()
    }
}
