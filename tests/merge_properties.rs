//! Merging two copies of one transaction, at every place that does it: reconciling the store of
//! record with the mirror, folding an id stored twice (an archive chunk and its single key), and
//! the page's journal taking another page's write (`storage.onChanged`).
//!
//! **No clock.** A status history only grows, so a stale copy is a prefix of the newer one;
//! whatever the timestamps say (a desk clock stepped back, a future-dated import), the merge of a
//! prefix with the full history is the full history, in either order. An accepted copy is never
//! replaced by one that is not. The merge is commutative and associative, so every page and every
//! start reaches the same copy whatever order the copies meet in. The later export mark is kept.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with a message

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use koha_offline_circ::journal::Journal;
use koha_offline_circ::store::reconcile;
use koha_offline_circ::{
    Action, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId,
};
use proptest::prelude::*;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 29, 8, 0, 0).unwrap()
}

fn recorded(offset: i64) -> Transaction {
    let at = base() + TimeDelta::seconds(offset);
    Transaction::record(
        TransactionId::new(base(), 7),
        at,
        Branchcode::parse("DE-627").unwrap(),
        Action::Issue {
            cardnumber: Cardnumber::parse("C0001").unwrap(),
            barcode: Barcode::parse("B0001").unwrap(),
        },
    )
}

/// One step of a transaction's life: `choice` picks among the transitions its status allows,
/// `offset` (seconds from a fixed instant, often before the previous step) is when.
type Step = (u8, i64);

/// Applies `step` if the status allows any transition; returns whether it did.
fn apply(tx: &mut Transaction, (choice, offset): Step) -> bool {
    let at = base() + TimeDelta::seconds(offset);
    let outcomes = [
        Status::Queued,
        Status::Applied,
        Status::Rejected {
            message: "Item not found.".into(),
        },
        Status::Failed {
            reason: koha_offline_circ::FailReason::Network,
        },
        Status::Uncertain {
            reason: koha_offline_circ::UncertainReason::ConnectionLost,
        },
    ];
    let done = match tx.status() {
        Status::Local | Status::Failed { .. } => tx.start_sending(at),
        Status::Sending if choice % 6 == 5 => {
            tx.recover_interrupted(at);
            Ok(())
        }
        Status::Sending => tx.finish_sending(at, outcomes[usize::from(choice % 5)].clone()),
        Status::Uncertain { .. } => match choice % 3 {
            0 => tx.resend_uncertain(at),
            1 => tx.confirm_in_koha(at, Status::Queued),
            _ => tx.confirm_in_koha(at, Status::Applied),
        },
        Status::Queued | Status::Applied | Status::Rejected { .. } => return false,
    };
    done.unwrap();
    true
}

fn life(start: &Transaction, steps: &[Step]) -> Transaction {
    let mut tx = start.clone();
    for step in steps {
        apply(&mut tx, *step);
    }
    tx
}

fn export_mark(mark: Option<i64>) -> Option<DateTime<Utc>> {
    mark.map(|s| base() + TimeDelta::seconds(s))
}

fn with_mark(mut tx: Transaction, mark: Option<i64>) -> Transaction {
    tx.exported_at = export_mark(mark);
    tx
}

/// The store of record holds `a`, the mirror `b`.
fn via_reconcile(a: &Transaction, b: &Transaction) -> Transaction {
    let mut r = reconcile(vec![a.clone()], vec![b.clone()]);
    assert_eq!(r.merged.len(), 1);
    r.merged.remove(0)
}

/// The store of record holds both (a chunk and a single key left by a packing cut short).
fn via_fold(a: &Transaction, b: &Transaction) -> Transaction {
    let mut r = reconcile(vec![a.clone(), b.clone()], vec![]);
    assert_eq!(r.merged.len(), 1);
    r.merged.remove(0)
}

/// The page holds `a`; another page's write of `b` arrives.
fn via_journal(a: &Transaction, b: &Transaction) -> Transaction {
    let mut j = Journal::from_transactions(vec![a.clone()]);
    j.upsert(b.clone());
    assert_eq!(j.len(), 1);
    let merged = j.get(&a.id).unwrap().clone();
    // The indexes and counts follow the merged copy.
    assert_eq!(j.counts().total, 1);
    assert_eq!(
        j.sendable_in_order().count(),
        usize::from(merged.status().is_sendable())
    );
    merged
}

/// The rule itself.
fn via_merge(a: &Transaction, b: &Transaction) -> Transaction {
    a.clone().merge(b.clone())
}

/// A way of merging two copies.
type Merge = fn(&Transaction, &Transaction) -> Transaction;

const SITES: [(&str, Merge); 4] = [
    ("merge", via_merge),
    ("reconcile", via_reconcile),
    ("fold", via_fold),
    ("journal", via_journal),
];

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((any::<u8>(), -200_000i64..200_000), 0..max)
}

fn mark() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(-200_000i64..200_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A stale copy is a prefix of the newer one: the newer one wins in both argument orders,
    /// with the later export mark, whatever the clock said.
    #[test]
    fn a_prefix_never_beats_the_full_history(
        recorded_at in -200_000i64..200_000,
        all in steps(10),
        cut in any::<prop::sample::Index>(),
        marks in (mark(), mark()),
    ) {
        let start = recorded(recorded_at);
        let full = life(&start, &all);
        let prefix = life(&start, &all[..cut.index(all.len() + 1)]);
        prop_assert_eq!(&full.history()[..prefix.history().len()], prefix.history());
        let (prefix, full) = (with_mark(prefix, marks.0), with_mark(full, marks.1));
        let mut want = full.clone();
        want.exported_at = prefix.exported_at.max(full.exported_at);
        for (site, merge) in SITES {
            prop_assert_eq!(&merge(&prefix, &full), &want, "{} (prefix, full)", site);
            prop_assert_eq!(&merge(&full, &prefix), &want, "{} (full, prefix)", site);
        }
    }

    /// Diverged copies (a common past, then different steps in different places) merge to the
    /// same copy whatever the order, and an accepted one always survives.
    #[test]
    fn merging_is_commutative_and_associative_and_keeps_acceptance(
        recorded_at in -200_000i64..200_000,
        common in steps(4),
        branches in (steps(4), steps(4), steps(4)),
        marks in (mark(), mark(), mark()),
    ) {
        let root = life(&recorded(recorded_at), &common);
        let a = with_mark(life(&root, &branches.0), marks.0);
        let b = with_mark(life(&root, &branches.1), marks.1);
        let c = with_mark(life(&root, &branches.2), marks.2);
        for (site, merge) in SITES {
            let ab = merge(&a, &b);
            prop_assert_eq!(&ab, &merge(&b, &a), "{}: commutative", site);
            prop_assert_eq!(
                &merge(&ab, &c),
                &merge(&a, &merge(&b, &c)),
                "{}: associative",
                site
            );
            prop_assert!(ab == a.clone().with_export(ab.exported_at)
                || ab == b.clone().with_export(ab.exported_at), "{}: one of the two", site);
            prop_assert_eq!(ab.exported_at, a.exported_at.max(b.exported_at), "{}", site);
            if a.status().is_accepted() || b.status().is_accepted() {
                prop_assert!(ab.status().is_accepted(), "{}: acceptance kept", site);
            }
        }
        // Every site merges the same way.
        for (site, merge) in SITES {
            prop_assert_eq!(&merge(&a, &b), &via_merge(&a, &b), "{}", site);
        }
    }
}

/// Test helper: the same copy with another export mark.
trait WithExport {
    fn with_export(self, at: Option<DateTime<Utc>>) -> Self;
}

impl WithExport for Transaction {
    fn with_export(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.exported_at = at;
        self
    }
}
