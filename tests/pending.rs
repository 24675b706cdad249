//! Pending chunks (`store::pending`): the transactions Koha has not accepted, packed by a start
//! that holds the send lock, and what other pages, the badge and a desk's start make of them.
#![allow(clippy::unwrap_used)] // a panic is a failure report

mod common;

use common::{at, checkout};
use koha_offline_circ::journal::Filter;
use koha_offline_circ::store::archive::chunk_put;
use koha_offline_circ::store::{
    self, is_pending_key, is_transaction_key, Change, EntryChange, MemoryStore, NotAcceptedTally,
    Replica, Store, PENDING_CHUNK, PENDING_MIN,
};
use koha_offline_circ::{Status, Transaction, TransactionId};
use std::collections::HashSet;

fn queued(mut tx: Transaction) -> Transaction {
    tx.start_sending(at(100_000)).unwrap();
    tx.finish_sending(at(100_001), Status::Queued).unwrap();
    tx
}

fn failed(mut tx: Transaction) -> Transaction {
    tx.start_sending(at(100_000)).unwrap();
    tx.finish_sending(
        at(100_001),
        Status::Failed {
            reason: koha_offline_circ::FailReason::Configuration,
        },
    )
    .unwrap();
    tx
}

fn unsent(n: u64) -> Vec<Transaction> {
    (1..=n).map(checkout).collect()
}

/// The store of record, and the events of its writes as every open page hears them.
#[derive(Default)]
struct Stores {
    primary: MemoryStore,
    mirror: MemoryStore,
}

impl Stores {
    /// Stores `txs` one key each (and in the mirror), as desks recording them do.
    fn recorded(txs: &[Transaction]) -> Stores {
        let mut stores = Stores::default();
        stores
            .primary
            .apply(&[Change::Put {
                key: store::META_KEY.to_owned(),
                value: store::meta_value(),
            }])
            .unwrap();
        for tx in txs {
            let plan = store::write_plan(tx);
            stores.primary.apply(&[plan.primary]).unwrap();
            stores.mirror.apply(&[plan.mirror]).unwrap();
        }
        stores
    }

    /// Applies `changes` to the store of record and returns the event each page hears.
    fn write(&mut self, changes: &[Change]) -> Vec<EntryChange> {
        let mut events = Vec::new();
        for change in changes {
            let old_value = self.primary.get(change.key());
            self.primary.apply(std::slice::from_ref(change)).unwrap();
            events.push(EntryChange {
                key: change.key().to_owned(),
                new_value: match change {
                    Change::Put { value, .. } => Some(value.clone()),
                    Change::Remove { .. } => None,
                },
                old_value,
            });
        }
        events
    }

    /// A desk's start: holding the send lock (`lock`) or not. Its writes are applied; returns
    /// the replica and the events of its writes.
    fn start(&mut self, lock: bool) -> (Replica, Vec<EntryChange>) {
        let mut replica = Replica::new();
        let opened = replica
            .open(
                self.primary.entries(),
                self.mirror.entries(),
                lock.then(|| at(200_000)),
            )
            .unwrap();
        let events = self.write(&opened.primary_changes);
        self.mirror
            .apply(&replica.repairs_written(&opened, true))
            .unwrap();
        (replica, events)
    }

    fn keys(&self, pick: fn(&str) -> bool) -> usize {
        self.primary
            .entries()
            .into_iter()
            .filter(|(k, _)| pick(k))
            .count()
    }

    fn tally(&self) -> NotAcceptedTally {
        let entries = self.primary.entries();
        NotAcceptedTally::from_entries(entries.iter().map(|(k, v)| (k.as_str(), v)))
    }
}

fn shown(replica: &Replica) -> Vec<Transaction> {
    replica.journal().in_order().cloned().collect()
}

/// Every id the replica shows, with its status.
fn statuses(replica: &Replica) -> Vec<(TransactionId, Status)> {
    replica
        .journal()
        .in_order()
        .map(|tx| (tx.id.clone(), tx.status().clone()))
        .collect()
}

#[test]
fn a_start_holding_the_send_lock_packs_unsent_rows_once_there_are_enough() {
    // One fewer than PENDING_MIN: nothing to pack.
    let mut stores = Stores::recorded(&unsent(PENDING_MIN as u64 - 1));
    let (_, events) = stores.start(true);
    assert!(events.is_empty());
    assert_eq!(stores.keys(is_transaction_key), PENDING_MIN - 1);

    let txs = unsent(2 * PENDING_CHUNK as u64 + 7);
    let mut stores = Stores::recorded(&txs);
    // Without the lock another page may be sending: nothing is packed.
    let (_, events) = stores.start(false);
    assert!(events.is_empty());
    let (first, _) = stores.start(true);
    assert_eq!(stores.keys(is_pending_key), 3);
    assert_eq!(stores.keys(is_transaction_key), 0);
    assert_eq!(shown(&first), txs);
    // What is stored now reads the same, and a start has nothing more to write.
    let (again, events) = stores.start(true);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(shown(&again), txs);
    assert_eq!(stores.tally().count(), txs.len());
}

#[test]
fn later_copies_win_and_the_next_packing_drops_what_koha_accepted() {
    let txs = unsent(PENDING_MIN as u64 + 10);
    let mut stores = Stores::recorded(&txs);
    stores.start(true);
    // A send run afterwards: one queued (its chunk), one failed (its own key).
    let sent_ok = queued(txs[3].clone());
    let sent_bad = failed(txs[4].clone());
    stores.write(&[
        chunk_put(std::slice::from_ref(&sent_ok)),
        store::write_plan(&sent_bad).primary,
    ]);
    let (page, events) = stores.start(false);
    assert!(events.is_empty());
    assert_eq!(page.journal().get(&sent_ok.id), Some(&sent_ok));
    assert_eq!(page.journal().get(&sent_bad.id), Some(&sent_bad));
    assert_eq!(stores.tally().count(), txs.len() - 1);

    // The next start holding the lock packs again: the queued one is no longer pending, the
    // failed one's copy moves into a chunk.
    let (page, _) = stores.start(true);
    assert_eq!(stores.keys(is_transaction_key), 0);
    let pending: Vec<TransactionId> = stores
        .primary
        .entries()
        .into_iter()
        .filter(|(k, _)| is_pending_key(k))
        .flat_map(|(k, v)| store::archive::decode_chunk(&k, &v).unwrap())
        .map(|tx| tx.id)
        .collect();
    assert_eq!(pending.len(), txs.len() - 1);
    assert!(!pending.contains(&sent_ok.id));
    assert_eq!(page.journal().get(&sent_bad.id), Some(&sent_bad));
    let (again, events) = stores.start(true);
    assert!(events.is_empty());
    assert_eq!(statuses(&again), statuses(&page));
}

#[test]
fn another_page_reads_a_packing_as_packing_and_a_deletion_as_deletion() {
    let txs = unsent(PENDING_MIN as u64 + 5);
    let mut stores = Stores::recorded(&txs);
    let (mut other, _) = stores.start(false);
    let mut tally = stores.tally();
    let (mut packer, events) = stores.start(true);
    // The chunks come first, then the own keys go: the other page and the badge keep every row.
    assert!(is_pending_key(&events[0].key));
    for event in &events {
        tally.apply(&event.key, event.new_value.as_ref());
    }
    other.apply(events);
    assert_eq!(shown(&other), txs);
    assert_eq!(tally.count(), txs.len());

    // The packing page deletes one (under the send lock): the chunk without it, then its own
    // key (none now) and its mirror copy.
    let gone = txs[7].id.clone();
    packer.journal_mut().delete(&gone).unwrap();
    let entries = stores.primary.entries();
    let trims = packer.plan_forget_pending(
        entries.iter().map(|(k, v)| (k.as_str(), v)),
        std::slice::from_ref(&gone),
    );
    assert!(trims.iter().all(|c| is_pending_key(c.key())) && trims.len() == 1);
    let mut events = stores.write(&trims);
    let (own_key, mirror_copy) = packer.plan_forget(std::slice::from_ref(&gone));
    events.extend(stores.write(&own_key));
    stores.mirror.apply(&mirror_copy).unwrap();
    packer.forgotten(std::slice::from_ref(&gone));
    for event in &events {
        tally.apply(&event.key, event.new_value.as_ref());
    }
    other.apply(events);
    assert!(other.journal().get(&gone).is_none());
    assert_eq!(tally.count(), txs.len() - 1);
    let (fresh, _) = stores.start(false);
    assert!(fresh.journal().get(&gone).is_none());
    assert_eq!(shown(&fresh), shown(&other));
}

#[test]
fn a_copy_koha_accepted_outlives_its_stale_pending_copy_and_goes_with_a_clear() {
    let txs = unsent(PENDING_MIN as u64);
    let mut stores = Stores::recorded(&txs);
    stores.start(true);
    let (mut other, _) = stores.start(false);
    // A run queues one: its archive chunk; the next start drops its pending copy.
    let done = queued(txs[0].clone());
    other.apply(stores.write(&[chunk_put(std::slice::from_ref(&done))]));
    let (_, events) = stores.start(true);
    assert!(events.iter().any(|e| is_pending_key(&e.key)));
    other.apply(events);
    assert_eq!(other.journal().get(&done.id), Some(&done));

    // Clear what Koha accepted: the archive chunk goes; the row with it.
    let (mut clearing, _) = stores.start(false);
    let cleared = clearing.journal_mut().clear_accepted();
    assert_eq!(cleared, vec![done.id.clone()]);
    let entries = stores.primary.entries();
    let first =
        clearing.plan_forget_pending(entries.iter().map(|(k, v)| (k.as_str(), v)), &cleared);
    let mut events = stores.write(&first);
    let (own_keys, mirror_copies) = clearing.plan_forget(&cleared);
    events.extend(stores.write(&own_keys));
    stores.mirror.apply(&mirror_copies).unwrap();
    let entries = stores.primary.entries();
    let rest = clearing.plan_forget_bulk(entries.iter().map(|(k, v)| (k.as_str(), v)), &cleared);
    events.extend(stores.write(&rest));
    other.apply(events);
    assert!(other.journal().get(&done.id).is_none());
    let (fresh, _) = stores.start(true);
    assert!(fresh.journal().get(&done.id).is_none());
    assert_eq!(fresh.journal().len(), txs.len() - 1);
}

#[test]
fn a_clear_cut_short_never_brings_an_accepted_row_back_unsent() {
    let txs = unsent(PENDING_MIN as u64);
    let mut stores = Stores::recorded(&txs);
    stores.start(true);
    // Koha queued one; the copy saying so is its own key (a start repaired it from the
    // mirror), and its pending chunk still holds the copy from before.
    let done = queued(txs[5].clone());
    stores.write(&[store::write_plan(&done).primary]);
    let (mut clearing, _) = stores.start(false);
    assert_eq!(clearing.journal().get(&done.id), Some(&done));
    let cleared = clearing.journal_mut().clear_accepted();
    let entries = stores.primary.entries();
    let plans = [
        clearing.plan_forget_pending(entries.iter().map(|(k, v)| (k.as_str(), v)), &cleared),
        clearing.plan_forget(&cleared).0,
    ];
    // Whichever write the clear stops after, no start shows it unsent.
    let mut cut = Stores {
        primary: MemoryStore::new(),
        mirror: MemoryStore::new(),
    };
    for upto in 0..=plans.len() {
        cut.primary = MemoryStore::new();
        cut.write(
            &stores
                .primary
                .entries()
                .into_iter()
                .map(|(key, value)| Change::Put { key, value })
                .collect::<Vec<_>>(),
        );
        for plan in &plans[..upto] {
            cut.write(plan);
        }
        let (page, _) = cut.start(false);
        let status = page.journal().get(&done.id).map(|tx| tx.status().clone());
        assert!(
            matches!(status, None | Some(Status::Queued)),
            "cut after {upto} writes: {status:?}"
        );
    }
}

#[test]
fn a_refresh_before_a_send_finds_a_row_only_a_pending_chunk_holds() {
    let txs = unsent(PENDING_MIN as u64);
    let mut stores = Stores::recorded(&txs);
    stores.start(true);
    // The mirror lost its copies (a full quota, a cleared site data): only the chunk holds them.
    stores.mirror = MemoryStore::new();
    let (mut page, _) = stores.start(false);
    let ids: Vec<TransactionId> = txs.iter().map(|tx| tx.id.clone()).collect();
    // Read by name: no own key, no mirror copy.
    let found = page.merge_stored_copies(Vec::new(), Vec::new());
    assert!(found.is_empty());
    assert!(page.unfound_stored(&ids, &found).is_empty());
    assert_eq!(page.settle_unfound_heard(ids.clone()).len(), ids.len());
    assert_eq!(shown(&page), txs);
    // Read everything: the chunk's copies count as found.
    let found = page.merge_current(stores.primary.entries(), Vec::new(), &ids);
    assert_eq!(found, ids.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(shown(&page), txs);
}

#[test]
fn a_packing_refused_leaves_a_page_that_follows_the_stored_chunks() {
    let txs = unsent(PENDING_MIN as u64);
    let mut stores = Stores::recorded(&txs);
    let mut page = Replica::new();
    let opened = page
        .open(
            stores.primary.entries(),
            stores.mirror.entries(),
            Some(at(1)),
        )
        .unwrap();
    assert!(opened
        .primary_changes
        .iter()
        .any(|c| is_pending_key(c.key())));
    // Refused: nothing stored. Another page deletes a row the page still holds one key each.
    page.repairs_written(&opened, false);
    let gone = txs[2].id.clone();
    let events = stores.write(&[Change::Remove {
        key: store::transaction_key(&gone),
    }]);
    page.apply(events);
    assert!(page.journal().get(&gone).is_none(), "no chunk holds it");
}

#[test]
fn the_desk_start_reads_an_archive_chunk_holding_a_pending_row() {
    // Accepted rows in chunks, and one unsent row recorded between them, in a pending chunk.
    let accepted: Vec<Transaction> = (1..=200).map(|n| queued(checkout(n))).collect();
    let mut stores = Stores::recorded(&[]);
    for group in accepted.chunks(50) {
        stores.write(&[chunk_put(group)]);
    }
    let between = checkout(120);
    let mut late: Vec<Transaction> = unsent(PENDING_MIN as u64)
        .into_iter()
        .map(|tx| checkout(1_000 + tx.recorded_at.timestamp() as u64))
        .collect();
    late.push(between.clone());
    stores.write(&[store::pending_put(&{
        let mut rows = late.clone();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows
    })]);
    let mut page = Replica::new();
    page.open_deferring(stores.primary.entries(), Vec::new(), None, Some(10))
        .unwrap();
    // Three of the four chunks are left for later; the one whose range holds `between` is read.
    assert_eq!(page.chunks_left_at_start(), 3);
    assert!(page.journal().get(&between.id).is_some());
    let (_, counts) = page.listing(&Filter::default(), 0, 10);
    assert_eq!(counts.total, accepted.len() + late.len() - 1);
}

#[test]
fn only_an_archive_chunks_old_value_is_read() {
    let tx = checkout(1);
    let later = queued(tx.clone());
    let own = store::write_plan(&tx).primary;
    let own_later = store::write_plan(&later).primary;
    let pending = store::pending_put(std::slice::from_ref(&tx));
    let value = |change: &Change| match change {
        Change::Put { value, .. } => value.clone(),
        Change::Remove { .. } => unreachable!("a put"),
    };
    // Own keys, pending chunks, export records, settings: the same with or without the old value.
    let record = store::ExportRecord::new(at(5), vec![tx.id.clone()]).change();
    for (key, new, old) in [
        (own.key(), Some(value(&own_later)), Some(value(&own))),
        (own.key(), None, Some(value(&own))),
        (pending.key(), Some(value(&pending)), Some(value(&pending))),
        (pending.key(), None, Some(value(&pending))),
        (record.key(), Some(value(&record)), Some(value(&record))),
    ] {
        assert!(!store::reads_old_value(key));
        assert_eq!(
            store::decode_change(key, new.as_ref(), old.as_ref()),
            store::decode_change(key, new.as_ref(), None),
            "{key}"
        );
    }
    // An archive chunk's trim is told by its old value.
    let both = chunk_put(&[queued(checkout(2)), queued(checkout(3))]);
    let one = chunk_put(&[queued(checkout(2))]);
    let key = both.key();
    assert!(store::reads_old_value(key));
    assert_ne!(
        store::decode_change(
            key,
            Some(&value(&Change::Put {
                key: key.to_owned(),
                value: value(&one)
            })),
            Some(&value(&both))
        ),
        store::decode_change(key, Some(&value(&one)), None),
    );
}
