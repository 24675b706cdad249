//! A page's copy of the stores (`store::Replica`): what it plans to write, what a refused write
//! leaves behind, how it packs, and what other pages' writes do to it. The browser shell and the
//! simulation both drive it; these tests need neither.
#![allow(clippy::unwrap_used)] // a panic is a failure report

mod common;

use common::{at, checkout};
use koha_offline_circ::store::{
    self, Barrier, Change, EntryChange, MemoryStore, Replica, Store, ARCHIVE_CHUNK,
};
use koha_offline_circ::{Status, Transaction, TransactionId};
use serde_json::Value;
use std::collections::HashSet;

fn queued(mut tx: Transaction) -> Transaction {
    tx.start_sending(at(100_000)).unwrap();
    tx.finish_sending(at(100_001), Status::Queued).unwrap();
    tx
}

/// A page's replica over its two stores, as the shell holds them.
struct Page {
    replica: Replica,
    primary: MemoryStore,
    mirror: MemoryStore,
}

impl Page {
    /// Opened over two empty stores, its first-start writes applied.
    fn opened() -> Page {
        let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
        let mut replica = Replica::new();
        let opened = replica
            .open(primary.entries(), mirror.entries(), Some(at(0)))
            .unwrap();
        primary.apply(&opened.primary_changes).unwrap();
        mirror
            .apply(&replica.repairs_written(&opened, true))
            .unwrap();
        Page {
            replica,
            primary,
            mirror,
        }
    }

    /// Another page's replica, opened over this page's stores as they are now.
    fn another_page(&self) -> Replica {
        let mut replica = Replica::new();
        replica
            .open(self.primary.entries(), self.mirror.entries(), None)
            .unwrap();
        replica
    }

    /// Records and stores `txs` as the shell does, both stores taking them.
    fn record(&mut self, txs: &[Transaction]) {
        for tx in txs {
            self.replica.journal_mut().record(tx.clone()).unwrap();
        }
        let writes = self.replica.plan_write(txs);
        self.mirror.apply(&writes.mirror).unwrap();
        self.primary.apply(&writes.primary).unwrap();
        self.replica.wrote(txs, true, true);
    }
}

/// A full chunk's worth of transactions Koha queued.
fn full_chunk() -> Vec<Transaction> {
    (1..=ARCHIVE_CHUNK as u64)
        .map(|n| queued(checkout(n)))
        .collect()
}

fn removed(key: &str, old: Option<Value>) -> EntryChange {
    EntryChange {
        key: key.to_owned(),
        new_value: None,
        old_value: old,
    }
}

fn written(key: &str, value: Value) -> EntryChange {
    EntryChange {
        key: key.to_owned(),
        new_value: Some(value),
        old_value: None,
    }
}

#[test]
fn a_refused_write_counts_unsaved_until_a_retry_stores_it() {
    let mut replica = Page::opened().replica;
    let tx = checkout(1);
    replica.journal_mut().record(tx.clone()).unwrap();
    let writes = replica.plan_write(std::slice::from_ref(&tx));
    assert_eq!(writes.primary.len(), 1);
    assert!(
        matches!(&writes.mirror[0], Change::Put { key, .. } if key == &store::mirror_key(&tx.id))
    );
    replica.wrote(std::slice::from_ref(&tx), true, false);
    assert_eq!(replica.unsaved_count(), 1);

    // Only the mirror holds it: the retry writes it again.
    let found: HashSet<TransactionId> = [tx.id.clone()].into();
    let retry = replica.plan_retry(&found);
    assert_eq!(retry, vec![tx.clone()]);
    let released = replica.stored_of_record(&retry, false);
    assert!(released.is_empty());
    assert_eq!(
        replica.unsaved_count(),
        1,
        "a refused retry keeps it unsaved"
    );
    replica.stored_of_record(&retry, true);
    assert_eq!(replica.unsaved_count(), 0);
}

#[test]
fn a_retry_forgets_what_another_page_removed_and_keeps_what_was_never_stored() {
    let mut page = Page::opened();
    let stored_once = checkout(1);
    page.record(std::slice::from_ref(&stored_once));
    // A later change of it reaches only the page.mirror.
    page.replica
        .wrote(std::slice::from_ref(&stored_once), true, false);
    // Never taken by either store.
    let never = checkout(2);
    page.replica.journal_mut().record(never.clone()).unwrap();
    page.replica
        .wrote(std::slice::from_ref(&never), false, false);
    assert_eq!(
        page.replica.unsaved_ids(),
        vec![stored_once.id.clone(), never.id.clone()]
    );

    // Neither store holds either now: another page deleted the first (from both stores).
    let retry = page.replica.plan_retry(&HashSet::new());
    assert_eq!(
        retry,
        vec![never.clone()],
        "a deleted transaction is not written back"
    );
    assert_eq!(page.replica.unsaved_ids(), vec![never.id]);
}

#[test]
fn a_retry_leaves_what_this_pages_run_has_in_flight_to_the_run() {
    let mut replica = Page::opened().replica;
    let tx = checkout(1);
    replica.journal_mut().record(tx.clone()).unwrap();
    replica.wrote(std::slice::from_ref(&tx), true, false);
    replica.journal_mut().hold_in_flight(&tx.id);
    let found: HashSet<TransactionId> = [tx.id.clone()].into();
    assert!(replica.plan_retry(&found).is_empty());
    assert_eq!(replica.unsaved_count(), 1);
}

#[test]
fn refused_repairs_at_start_count_unsaved_and_keep_the_mirror_copies() {
    let (primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    let tx = checkout(1);
    // In the mirror only: the start writes it to the store of record.
    mirror.apply(&[store::write_plan(&tx).mirror]).unwrap();
    let mut replica = Replica::new();
    let opened = replica
        .open(primary.entries(), mirror.entries(), Some(at(0)))
        .unwrap();
    assert!(opened
        .primary_changes
        .iter()
        .any(|c| c.key() == store::transaction_key(&tx.id)));
    let mirror_writes = replica.repairs_written(&opened, false);
    assert!(mirror_writes
        .iter()
        .all(|c| matches!(c, Change::Put { .. })));
    assert_eq!(replica.unsaved_ids(), vec![tx.id.clone()]);
    assert!(replica.journal().get(&tx.id).is_some());
}

#[test]
fn a_barrier_is_answered_only_by_its_own_event_once_nothing_waits_to_be_applied() {
    let barrier = Barrier::new(42);
    let Change::Put { key, value } = barrier.write() else {
        panic!("a put")
    };
    let own_event = vec![written(&key, value)];
    let Change::Put { value: other, .. } = Barrier::new(43).write() else {
        panic!("a put")
    };
    let other_pages = vec![written(&key, other)];

    // While the stores are read for a start, earlier events wait to be applied after it: the
    // barrier's event does not mean this page has heard of them yet.
    let mut replica = Replica::new();
    replica.begin_reading();
    assert!(!replica.barrier_answered(&barrier, &own_event));
    replica.open(Vec::new(), Vec::new(), Some(at(0))).unwrap();
    assert!(replica.barrier_answered(&barrier, &own_event));
    assert!(!replica.barrier_answered(&barrier, &other_pages));
}

#[test]
fn writes_that_arrive_while_the_stores_are_read_are_applied_after_the_start() {
    let mut replica = Replica::new();
    replica.begin_reading();
    let tx = checkout(7);
    let plan = store::write_plan(&tx);
    let Change::Put { key, value } = plan.primary else {
        panic!("a put")
    };
    assert!(!replica.apply(vec![written(&key, value)]), "kept for later");
    assert!(replica.journal().get(&tx.id).is_none());
    // The read happened before that write: it is not in what was read.
    replica.open(Vec::new(), Vec::new(), Some(at(0))).unwrap();
    assert!(replica.journal().get(&tx.id).is_some());
}

/// A write of `tx` to the store of record, as its `storage.onChanged` batch.
fn put_event(tx: &Transaction) -> Vec<EntryChange> {
    let Change::Put { key, value } = store::write_plan(tx).primary else {
        panic!("a put")
    };
    vec![written(&key, value)]
}

#[test]
fn writes_heard_before_the_start_began_reading_are_applied_after_it() {
    // The desk listens from its head on, before its core's start begins: a write heard then
    // and missing from the read (made after Firefox read) must not be lost.
    let mut replica = Replica::keeping_changes();
    let tx = checkout(7);
    assert!(!replica.apply(put_event(&tx)), "kept for later");
    replica.begin_reading();
    replica.open(Vec::new(), Vec::new(), Some(at(0))).unwrap();
    assert!(replica.journal().get(&tx.id).is_some());
}

#[test]
fn writes_heard_before_the_read_that_it_includes_change_nothing_after_the_start() {
    let mut page = Page::opened();
    let (sent, deleted) = (checkout(1), checkout(2));
    page.record(&[sent.clone(), deleted.clone()]);
    let queued = queued(sent.clone());
    let heard = [
        put_event(&sent),
        put_event(&deleted),
        put_event(&queued),
        vec![EntryChange {
            key: store::write_plan(&deleted).primary.key().to_owned(),
            new_value: None,
            old_value: None,
        }],
    ];
    page.primary
        .apply(&[store::write_plan(&queued).primary])
        .unwrap();
    page.primary
        .apply(&[Change::Remove {
            key: store::write_plan(&deleted).primary.key().to_owned(),
        }])
        .unwrap();
    page.mirror
        .apply(&[Change::Remove {
            key: store::mirror_key(&deleted.id),
        }])
        .unwrap();

    let mut replica = Replica::keeping_changes();
    for batch in heard {
        replica.apply(batch);
    }
    replica.begin_reading();
    replica
        .open(page.primary.entries(), page.mirror.entries(), None)
        .unwrap();
    let expected = page.another_page();
    let rows: Vec<&Transaction> = replica.journal().in_order().collect();
    assert_eq!(rows, expected.journal().in_order().collect::<Vec<_>>());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status(), &Status::Queued);
}

#[test]
fn accepted_transactions_are_packed_once_a_chunk_is_full_and_once_at_a_time() {
    let mut page = Page::opened();
    let txs = full_chunk();
    page.record(&txs[..ARCHIVE_CHUNK - 1]);
    assert!(
        page.replica.start_packing().is_none(),
        "not a full chunk yet"
    );
    page.record(&txs[ARCHIVE_CHUNK - 1..]);

    let plan = page.replica.start_packing().expect("a full chunk");
    assert_eq!(plan.chunks.len(), 1);
    assert_eq!(plan.removals.len(), ARCHIVE_CHUNK);
    assert!(
        page.replica.start_packing().is_none(),
        "one packing at a time"
    );
    page.primary.apply(&plan.chunks).unwrap();
    page.replica.chunks_written(&plan);
    page.primary.apply(&plan.removals).unwrap();
    page.replica.packing_over();
    assert!(
        page.replica.start_packing().is_none(),
        "nothing left to pack"
    );

    // Another page sees the single keys go: packing, not deleting.
    let gone: Vec<EntryChange> = plan
        .removals
        .iter()
        .map(|c| removed(c.key(), None))
        .collect();
    assert!(!page.replica.apply(gone));
    assert_eq!(page.replica.journal().len(), ARCHIVE_CHUNK);

    // Archived ones have no key of their own to delete; clearing removes their chunk.
    let ids: Vec<TransactionId> = txs.iter().map(|t| t.id.clone()).collect();
    let (single, in_mirror) = page.replica.plan_forget(&ids);
    assert!(single.is_empty());
    assert_eq!(
        in_mirror.len(),
        ids.len(),
        "a run's copy in the mirror would go"
    );
    let stored = page.primary.entries();
    let bulk = page
        .replica
        .plan_forget_bulk(stored.iter().map(|(k, v)| (k.as_str(), v)), &ids);
    assert_eq!(
        bulk,
        vec![Change::Remove {
            key: plan.chunks[0].key().to_owned()
        }]
    );

    // A reopened page finds them in the archive, not one key each.
    let mut again = Replica::new();
    again
        .open(page.primary.entries(), page.mirror.entries(), Some(at(0)))
        .unwrap();
    assert_eq!(again.journal().len(), ARCHIVE_CHUNK);
    assert!(again.plan_forget(&ids).0.is_empty());
}

#[test]
fn a_refused_packing_is_tried_again_later() {
    let mut page = Page::opened();
    let txs = full_chunk();
    page.record(&txs);
    let first = page.replica.start_packing().unwrap();
    // The chunk write is refused: nothing moved.
    page.replica.packing_over();
    let second = page.replica.start_packing().expect("packed again");
    assert_eq!(first, second);
}

#[test]
fn a_removed_chunk_of_another_page_forgets_its_transactions() {
    let mut page = Page::opened();
    let txs = full_chunk();
    page.record(&txs);
    let plan = page.replica.start_packing().unwrap();
    let Change::Put { key, value } = plan.chunks[0].clone() else {
        panic!("a put")
    };

    // A second page learns of the chunk from the event alone.
    let mut other = Page::opened().replica;
    assert!(other.apply(vec![written(&key, value.clone())]));
    assert_eq!(other.journal().len(), ARCHIVE_CHUNK);
    // Its single keys going is packing, not deleting.
    assert!(!other.apply(vec![removed(&store::transaction_key(&txs[0].id), None)]));
    // The chunk going is a clear.
    assert!(other.apply(vec![removed(&key, Some(value))]));
    assert!(other.journal().is_empty());
}

#[test]
fn a_mirror_copy_newer_than_the_pages_own_is_merged_before_a_retry() {
    let mut page = Page::opened();
    let tx = checkout(1);
    page.record(std::slice::from_ref(&tx));
    // Another page sent it; Koha's answer reached only the page.mirror.
    let accepted = queued(tx.clone());
    let text = store::encode_transaction(&accepted).to_string();
    let found = page
        .replica
        .merge_stored_copies(Vec::new(), vec![(store::mirror_key(&tx.id), text)]);
    assert!(found.contains(&tx.id));
    assert_eq!(
        page.replica.journal().get(&tx.id).unwrap().status(),
        &Status::Queued
    );
}

#[test]
fn settings_from_another_page_replace_the_pages_own() {
    let mut replica = Page::opened().replica;
    assert!(replica.settings().is_none());
    assert!(replica.apply(vec![removed(store::SETTINGS_KEY, None)]));
    assert!(replica.settings().is_none());
}

#[test]
fn a_send_runs_refused_store_of_record_write_counts_unsaved() {
    let mut page = Page::opened();
    let tx = checkout(1);
    page.record(std::slice::from_ref(&tx));
    assert_eq!(page.replica.unsaved_count(), 0);
    let accepted = queued(tx);
    page.replica.journal_mut().upsert(accepted.clone());
    let hold = page.replica.plan_mirror_hold(&accepted);
    page.mirror.apply(&[hold]).unwrap();
    page.replica.mirror_held(&accepted, true);
    let released = page
        .replica
        .stored_of_record(std::slice::from_ref(&accepted), false);
    assert!(
        released.is_empty(),
        "the page.mirror keeps what is not stored"
    );
    assert_eq!(page.replica.unsaved_ids(), vec![accepted.id.clone()]);
    let released = page
        .replica
        .stored_of_record(std::slice::from_ref(&accepted), true);
    assert!(
        released.is_empty(),
        "stored in a chunk beside its old own key: the mirror keeps it"
    );
    assert_eq!(page.replica.unsaved_count(), 0);
    let packing = page.replica.start_packing().expect("the old key to remove");
    assert_eq!(
        packing.mirror_releases,
        vec![Change::Remove {
            key: store::mirror_key(&accepted.id)
        }],
        "the mirror lets go once the old key is removed"
    );
}

#[test]
fn a_clear_of_everything_keeps_the_export_marks_of_what_it_did_not_clear() {
    // Page A exported 1, 2 and 3; 3 reached only its mirror (the store of record refused it),
    // so page B, which clears everything, never held it.
    let mut page = Page::opened();
    let held = [checkout(1), checkout(2)];
    page.record(&held);
    let unheard = checkout(3);
    let mirror_only = Replica::new().plan_write(std::slice::from_ref(&unheard));
    page.mirror.apply(&mirror_only.mirror).unwrap();
    let ids =
        |txs: &[&Transaction]| -> Vec<TransactionId> { txs.iter().map(|t| t.id.clone()).collect() };
    let export = store::ExportRecord::new(at(50), ids(&[&held[0], &held[1], &unheard]));
    let other_export = store::ExportRecord::new(at(60), ids(&[&held[1]]));
    page.primary
        .apply(&[export.change(), other_export.change()])
        .unwrap();

    // Clearing nothing (none accepted) leaves every export record alone.
    let stored = page.primary.entries();
    let entries = || stored.iter().map(|(k, v)| (k.as_str(), v));
    assert!(page.replica.plan_forget_bulk(entries(), &[]).is_empty());

    // Clearing everything page B held trims the first record to 3 and removes the second.
    let cleared = ids(&[&held[0], &held[1]]);
    let bulk = page.replica.plan_forget_bulk(entries(), &cleared);
    let trimmed = store::ExportRecord::new(at(50), ids(&[&unheard]));
    assert_eq!(
        bulk,
        vec![
            Change::Put {
                key: export.key(),
                value: trimmed.value(),
            },
            Change::Remove {
                key: other_export.key(),
            },
        ]
    );
    let (primary, _) = page.replica.plan_forget(&cleared);
    page.primary.apply(&primary).unwrap();
    page.primary.apply(&bulk).unwrap();

    // Page A's next start repairs 3 from its mirror, still marked exported: no send takes it.
    let mut again = Replica::new();
    again
        .open(page.primary.entries(), page.mirror.entries(), Some(at(70)))
        .unwrap();
    let repaired = again
        .journal()
        .get(&unheard.id)
        .expect("repaired from the mirror");
    assert_eq!(repaired.exported_at, Some(at(50)));

    // A clear by a page that holds 3 removes the record.
    let stored = page.primary.entries();
    let last = again.plan_forget_bulk(
        stored.iter().map(|(k, v)| (k.as_str(), v)),
        &ids(&[&unheard]),
    );
    assert_eq!(last, vec![Change::Remove { key: export.key() }]);
}

/// A send run's group of answers as the shell stores it: the mirror holds each one, then the
/// store of record takes the group.
fn store_run_group(page: &mut Page, txs: &[Transaction]) -> Vec<Change> {
    for tx in txs {
        page.replica.journal_mut().upsert(tx.clone());
        let hold = page.replica.plan_mirror_hold(tx);
        page.mirror.apply(&[hold]).unwrap();
        page.replica.mirror_held(tx, true);
    }
    let plan = page.replica.plan_store_of_record(txs);
    page.primary.apply(&plan).unwrap();
    let released = page.replica.stored_of_record(txs, true);
    page.mirror.apply(&released).unwrap();
    plan
}

fn stored_status(store: &MemoryStore, id: &TransactionId) -> Option<Status> {
    let mut replica = Replica::new();
    replica.open(store.entries(), Vec::new(), None).unwrap();
    replica.journal().get(id).map(|tx| tx.status().clone())
}

#[test]
fn a_run_stores_what_koha_accepted_as_one_chunk_and_removes_the_old_keys_after() {
    let mut page = Page::opened();
    let recorded: Vec<Transaction> = (1..=4).map(checkout).collect();
    page.record(&recorded);
    // Another page that holds them as recorded and hears of nothing the run writes.
    let mut unaware = page.another_page();
    let mut failed = recorded[3].clone();
    failed.start_sending(at(100_000)).unwrap();
    failed
        .finish_sending(
            at(100_001),
            Status::Failed {
                reason: koha_offline_circ::transaction::FailReason::Configuration,
            },
        )
        .unwrap();
    let answers: Vec<Transaction> = recorded[..3]
        .iter()
        .cloned()
        .map(queued)
        .chain([failed.clone()])
        .collect();

    // One key for the three Koha queued, the failed one under its own key: not one each.
    let plan = store_run_group(&mut page, &answers);
    let keys: Vec<&str> = plan.iter().map(Change::key).collect();
    assert_eq!(plan.len(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| store::is_archive_key(k)));
    assert!(keys.contains(&store::transaction_key(&failed.id).as_str()));
    // The queued ones' own keys still hold the copy from before the run, yet the store of
    // record reads them queued, and the mirror keeps them while those keys remain.
    for tx in &answers[..3] {
        assert!(page
            .primary
            .entries()
            .iter()
            .any(|(k, _)| *k == store::transaction_key(&tx.id)));
        assert_eq!(stored_status(&page.primary, &tx.id), Some(Status::Queued));
        assert!(page
            .mirror
            .entries()
            .iter()
            .any(|(k, _)| *k == store::mirror_key(&tx.id)));
    }
    // So the other page, refreshing before it sends, reads them queued: it reads the own keys
    // and the mirror, not the chunks.
    let ids: Vec<TransactionId> = recorded.iter().map(|t| t.id.clone()).collect();
    let refresh = |page: &Page, unaware: &mut Replica| {
        let wanted = |key: &str| ids.iter().any(|id| key.ends_with(id.as_str()));
        let primary = page
            .primary
            .entries()
            .into_iter()
            .filter(|(k, _)| store::is_transaction_key(k) && wanted(k))
            .collect();
        let mirror = page
            .mirror
            .entries()
            .into_iter()
            .filter(|(k, _)| wanted(k))
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        let found = unaware.merge_stored_copies(primary, mirror);
        let unfound = unaware.unfound_stored(&ids, &found);
        let everything = page.primary.entries();
        unaware.settle_unfound(everything.iter().map(|(k, v)| (k.as_str(), v)), unfound);
        ids.iter()
            .map(|id| unaware.journal().get(id).unwrap().status().clone())
            .collect::<Vec<Status>>()
    };
    let queued_three = |statuses: Vec<Status>| {
        assert_eq!(
            statuses[..3],
            [Status::Queued, Status::Queued, Status::Queued]
        );
        assert!(matches!(statuses[3], Status::Failed { .. }));
    };
    queued_three(refresh(&page, &mut unaware));

    // The packing after the run removes those old keys, and only those.
    let packing = page.replica.start_packing().expect("old keys to remove");
    assert!(packing.chunks.is_empty() && packing.packed.is_empty());
    let mut removed: Vec<String> = packing
        .removals
        .iter()
        .map(|c| c.key().to_owned())
        .collect();
    removed.sort();
    let mut expected: Vec<String> = answers[..3]
        .iter()
        .map(|tx| store::transaction_key(&tx.id))
        .collect();
    expected.sort();
    assert_eq!(removed, expected);
    page.primary.apply(&packing.removals).unwrap();
    page.mirror.apply(&packing.mirror_releases).unwrap();
    page.replica.packing_over();
    assert!(page.replica.start_packing().is_none());
    for tx in &answers[..3] {
        assert_eq!(stored_status(&page.primary, &tx.id), Some(Status::Queued));
    }
    assert!(
        page.mirror
            .entries()
            .iter()
            .all(|(k, _)| !k.ends_with(answers[0].id.as_str())),
        "the mirror let go once the old keys were gone"
    );
    // Neither own key nor mirror copy is left: the other page finds them in the chunk.
    let mut unaware = Replica::new();
    unaware.open(Vec::new(), Vec::new(), None).unwrap();
    for tx in &recorded {
        unaware.journal_mut().record(tx.clone()).unwrap();
    }
    queued_three(refresh(&page, &mut unaware));
}

#[test]
fn clearing_what_koha_accepted_also_removes_an_old_key_a_run_left_beside_its_chunk() {
    let mut page = Page::opened();
    let tx = checkout(1);
    page.record(std::slice::from_ref(&tx));
    store_run_group(&mut page, &[queued(tx.clone())]);

    // Another page, opened now, clears before the packing after the run removed the old key:
    // left behind, that copy from before the run would bring the checkout back as unsent.
    let mut other = Replica::new();
    other
        .open(page.primary.entries(), Vec::new(), None)
        .unwrap();
    let cleared = other.journal_mut().clear_accepted();
    assert_eq!(cleared, vec![tx.id.clone()]);
    let (single, in_mirror) = other.plan_forget(&cleared);
    page.primary.apply(&single).unwrap();
    page.mirror.apply(&in_mirror).unwrap();
    let stored = page.primary.entries();
    let removals = other.plan_forget_bulk(stored.iter().map(|(k, v)| (k.as_str(), v)), &cleared);
    page.primary.apply(&removals).unwrap();
    assert_eq!(stored_status(&page.primary, &tx.id), None);
    assert!(
        page.mirror.entries().is_empty(),
        "the run's copy in the mirror goes too, or a start would bring it back"
    );
    assert!(page
        .primary
        .entries()
        .iter()
        .all(|(k, _)| !store::is_transaction_key(k)));
}

#[test]
fn a_clear_takes_out_of_a_chunk_only_what_it_cleared() {
    // A run of page A stored 1 and 2 in one chunk; page B clears 1 alone: it has not heard
    // yet that Koha accepted 2.
    let mut page = Page::opened();
    let recorded = [checkout(1), checkout(2)];
    page.record(&recorded);
    let answers: Vec<Transaction> = recorded.iter().cloned().map(queued).collect();
    let group = store_run_group(&mut page, &answers);
    let chunk_key = group
        .iter()
        .map(Change::key)
        .find(|k| store::is_archive_key(k))
        .unwrap()
        .to_owned();
    let cleared = vec![answers[0].id.clone()];
    let stored = page.primary.entries();
    let other = Replica::new();
    let bulk = other.plan_forget_bulk(stored.iter().map(|(k, v)| (k.as_str(), v)), &cleared);
    // The chunk is written again with 2 alone, then 1's old own key goes.
    assert_eq!(bulk.len(), 2, "{bulk:?}");
    assert!(matches!(&bulk[0], Change::Put { key, .. } if *key == chunk_key));
    assert_eq!(
        bulk[1],
        Change::Remove {
            key: store::transaction_key(&answers[0].id)
        }
    );
    let before = stored
        .iter()
        .find(|(k, _)| *k == chunk_key)
        .map(|(_, v)| v.clone());
    page.primary.apply(&bulk).unwrap();
    assert_eq!(stored_status(&page.primary, &answers[0].id), None);
    assert_eq!(
        stored_status(&page.primary, &answers[1].id),
        Some(Status::Queued),
        "what the clearing page had not heard of stays"
    );

    // Page A hears the chunk written over: 1 is gone, 2 stays.
    let Change::Put { value, .. } = &bulk[0] else {
        unreachable!()
    };
    let heard = EntryChange {
        key: chunk_key,
        new_value: Some(value.clone()),
        old_value: before,
    };
    assert!(page.replica.apply(vec![heard]));
    assert!(page.replica.journal().get(&answers[0].id).is_none());
    assert_eq!(
        page.replica
            .journal()
            .get(&answers[1].id)
            .map(|t| t.status().clone()),
        Some(Status::Queued)
    );
}

/// Koha queues the first two of `recorded` (three), the packing removes their own keys, and the
/// librarian deletes the third. Returns the writes to the store of record, in order.
fn queue_two_and_delete_the_third(page: &mut Page, recorded: &[Transaction]) -> Vec<Change> {
    let answers: Vec<Transaction> = recorded[..2].iter().cloned().map(queued).collect();
    let mut writes = store_run_group(page, &answers);
    let packing = page.replica.start_packing().expect("old keys to remove");
    page.primary.apply(&packing.removals).unwrap();
    page.mirror.apply(&packing.mirror_releases).unwrap();
    page.replica.packing_over();
    writes.extend(packing.removals);
    page.replica.journal_mut().delete(&recorded[2].id).unwrap();
    let (primary, mirror) = page.replica.plan_forget(&[recorded[2].id.clone()]);
    page.primary.apply(&primary).unwrap();
    page.mirror.apply(&mirror).unwrap();
    writes.extend(primary);
    writes
}

#[test]
fn the_read_before_a_send_finds_packed_ones_in_the_chunks_and_forgets_deleted_ones() {
    let mut page = Page::opened();
    let recorded: Vec<Transaction> = (1..=3).map(checkout).collect();
    page.record(&recorded);
    let ids: Vec<TransactionId> = recorded.iter().map(|t| t.id.clone()).collect();
    // Another page holds all three as recorded and hears of nothing that follows.
    let mut unaware = page.another_page();
    queue_two_and_delete_the_third(&mut page, &recorded);

    // The read before a send: everything stored now, and the mirror (which holds none of them).
    let found = unaware.merge_current(page.primary.entries(), Vec::new(), &ids);
    assert_eq!(found, ids[..2].iter().cloned().collect::<HashSet<_>>());
    for id in &ids[..2] {
        assert_eq!(
            unaware.journal().get(id).map(|t| t.status().clone()),
            Some(Status::Queued),
            "read as queued: no send gives it to Koha again"
        );
    }
    assert!(
        unaware.journal().get(&ids[2]).is_none(),
        "deleted elsewhere: forgotten here too"
    );
}

/// `storage.onChanged`'s batch for writes another page applied (no old values: a page that
/// removes a key does not say what it held).
fn heard(changes: &[Change]) -> Vec<EntryChange> {
    changes
        .iter()
        .map(|change| match change {
            Change::Put { key, value } => written(key, value.clone()),
            Change::Remove { key } => removed(key, None),
        })
        .collect()
}

#[test]
fn after_a_barrier_the_unfound_are_settled_from_what_the_events_said() {
    let mut page = Page::opened();
    let recorded: Vec<Transaction> = (1..=3).map(checkout).collect();
    page.record(&recorded);
    let ids: Vec<TransactionId> = recorded.iter().map(|t| t.id.clone()).collect();
    let mut other = page.another_page();
    // The other page's later write of the third was refused: unsaved there.
    other.wrote(&recorded[2..], true, false);
    assert_eq!(other.unsaved_ids(), ids[2..].to_vec());
    let writes = queue_two_and_delete_the_third(&mut page, &recorded);

    // The barrier's own event comes after all of these: the other page has heard of them.
    other.apply(heard(&writes));
    // No own key holds any of them now.
    let found = other.merge_stored_copies(Vec::new(), Vec::new());
    let unfound = other.unfound_stored(&ids, &found);
    assert_eq!(unfound, ids);
    let found = other.settle_unfound_heard(unfound);

    assert_eq!(found, ids[..2].iter().cloned().collect::<HashSet<_>>());
    for id in &ids[..2] {
        assert_eq!(
            other.journal().get(id).map(|t| t.status().clone()),
            Some(Status::Queued),
            "in a chunk, queued: no send gives it to Koha again"
        );
    }
    assert!(other.journal().get(&ids[2]).is_none());
    assert!(
        other.unsaved_ids().is_empty(),
        "a deleted transaction is not written back by a retry"
    );
    assert!(other.plan_retry(&found).is_empty());
}
