//! The journal: recording, warnings, merging, deleting, counting and listing.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with a message

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use koha_offline_circ::journal::{
    change_allowed, Counts, Filter, Journal, JournalError, SendLockState, Upserted, Warning,
    DUPLICATE_SCAN_WINDOW_SECONDS,
};
use koha_offline_circ::{
    Action, Amount, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId,
};

fn at(sec: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + TimeDelta::seconds(sec)
}

fn issue(card: &str, barcode: &str) -> Action {
    Action::Issue {
        cardnumber: Cardnumber::parse(card).unwrap(),
        barcode: Barcode::parse(barcode).unwrap(),
    }
}

fn checkin(barcode: &str) -> Action {
    Action::Return {
        barcode: Barcode::parse(barcode).unwrap(),
    }
}

fn payment(card: &str, amount: &str) -> Action {
    Action::Payment {
        cardnumber: Cardnumber::parse(card).unwrap(),
        amount: Amount::parse(amount).unwrap(),
    }
}

fn tx(sec: i64, n: u64, action: Action) -> Transaction {
    Transaction::record(
        TransactionId::new(at(sec), n),
        at(sec),
        Branchcode::parse("CPL").unwrap(),
        action,
    )
}

fn sent(mut t: Transaction, outcome: Status) -> Transaction {
    let s = t.recorded_at + TimeDelta::seconds(1);
    t.start_sending(s).unwrap();
    t.finish_sending(s, outcome).unwrap();
    t
}

fn ids(page: &[&Transaction]) -> Vec<TransactionId> {
    page.iter().map(|t| t.id.clone()).collect()
}

#[test]
fn record_refuses_a_duplicate_id_and_changes_nothing() {
    let mut j = Journal::new();
    let first = tx(0, 1, issue("C1", "B1"));
    assert_eq!(j.record(first.clone()).unwrap(), &first);
    let mut again = tx(5, 1, checkin("B9"));
    again.id = first.id.clone();
    let err = j.record(again).unwrap_err();
    assert_eq!(err.kind(), "duplicate-id");
    assert_eq!(
        err.to_string(),
        format!("transaction {} is already in the journal", first.id)
    );
    assert_eq!(j.len(), 1);
    assert_eq!(j.get(&first.id), Some(&first));
    assert_eq!(j.counts().total, 1);
}

#[test]
fn duplicate_scan_within_the_window_only() {
    let mut j = Journal::new();
    let first = tx(0, 1, issue("C1", "B1"));
    j.record(first.clone()).unwrap();
    let window = DUPLICATE_SCAN_WINDOW_SECONDS;
    // Same barcode, same action, inside the window (the edge included), any card.
    for (action, when) in [
        (issue("C1", "B1"), 1),
        (issue("C1", "B1"), window),
        (issue("C2", "B1"), 10),
    ] {
        let w = j.warnings_for(&action, at(when));
        assert!(
            w.contains(&Warning::DuplicateScan {
                previous: first.id.clone()
            }),
            "{action:?} at +{when}s: {w:?}"
        );
    }
    // Outside the window, another action or another barcode: no duplicate warning.
    let cases = [
        (issue("C1", "B1"), window + 1),
        (checkin("B1"), 1),
        (issue("C1", "B2"), 1),
    ];
    for (action, when) in cases {
        let w = j.warnings_for(&action, at(when));
        assert!(
            !w.iter().any(|w| w.kind() == "duplicate-scan"),
            "{action:?} at +{when}s: {w:?}"
        );
    }
}

#[test]
fn duplicate_scan_names_the_most_recent_and_covers_returns_and_payments() {
    let mut j = Journal::new();
    j.record(tx(0, 1, checkin("B1"))).unwrap();
    let latest = tx(20, 2, checkin("B1"));
    j.record(latest.clone()).unwrap();
    assert_eq!(
        j.warnings_for(&checkin("B1"), at(30)),
        vec![Warning::DuplicateScan {
            previous: latest.id.clone()
        }]
    );

    let pay = tx(0, 3, payment("C1", "2.50"));
    j.record(pay.clone()).unwrap();
    assert_eq!(
        j.warnings_for(&payment("C1", "2.5"), at(59)),
        vec![Warning::DuplicateScan { previous: pay.id }]
    );
    assert!(j.warnings_for(&payment("C1", "3.00"), at(1)).is_empty());
    assert!(j.warnings_for(&payment("C2", "2.50"), at(1)).is_empty());
    // A checkout by the same card is not a duplicate payment.
    assert!(j.warnings_for(&issue("C1", "B7"), at(1)).is_empty());
}

#[test]
fn checkout_to_another_card_without_checkin_in_between() {
    let mut j = Journal::new();
    let out = tx(0, 1, issue("C1", "B1"));
    j.record(out.clone()).unwrap();
    let expected = Warning::CheckedOutToOtherCard {
        previous: out.id.clone(),
        cardnumber: Cardnumber::parse("C1").unwrap(),
    };
    assert_eq!(
        j.warnings_for(&issue("C2", "B1"), at(3600)),
        vec![expected.clone()]
    );
    assert_eq!(expected.kind(), "checked-out-to-other-card");
    // The same card again (a renewal in Koha) is fine after the window.
    assert!(j.warnings_for(&issue("C1", "B1"), at(3600)).is_empty());
    // Checkins are not checked against loans.
    assert!(j.warnings_for(&checkin("B1"), at(3600)).is_empty());

    // A checkin in between clears it.
    j.record(tx(100, 2, checkin("B1"))).unwrap();
    assert!(j.warnings_for(&issue("C2", "B1"), at(3600)).is_empty());
    // A later checkout to C3 raises it again, naming C3.
    let again = tx(200, 3, issue("C3", "B1"));
    j.record(again.clone()).unwrap();
    assert_eq!(
        j.warnings_for(&issue("C2", "B1"), at(3600)),
        vec![Warning::CheckedOutToOtherCard {
            previous: again.id.clone(),
            cardnumber: Cardnumber::parse("C3").unwrap(),
        }]
    );
    // Transactions recorded after `now` are not "earlier" (at +150 s the latest one before is
    // the checkin; the checkout at +200 s is only near enough to count as a repeated scan).
    let kinds: Vec<_> = j
        .warnings_for(&issue("C2", "B1"), at(150))
        .iter()
        .map(Warning::kind)
        .collect();
    assert_eq!(kinds, vec!["duplicate-scan"]);
}

#[test]
fn a_rejected_checkout_does_not_count_as_a_loan() {
    let mut j = Journal::new();
    let out = sent(
        tx(0, 1, issue("C1", "B1")),
        Status::Rejected {
            message: "Borrower not found.".into(),
        },
    );
    j.record(out).unwrap();
    assert!(j.warnings_for(&issue("C2", "B1"), at(3600)).is_empty());
}

#[test]
fn counts_follow_every_change() {
    let mut j = Journal::new();
    let a = tx(0, 1, issue("C1", "B1"));
    let b = tx(1, 2, checkin("B2"));
    let c = sent(tx(2, 3, checkin("B3")), Status::Queued);
    let d = sent(
        tx(3, 4, checkin("B4")),
        Status::Failed {
            reason: koha_offline_circ::FailReason::Network,
        },
    );
    for t in [&a, &b, &c, &d] {
        j.record(t.clone()).unwrap();
    }
    assert_eq!(
        j.counts(),
        Counts {
            local: 2,
            queued: 1,
            failed: 1,
            total: 4,
            not_accepted: 3,
            ..Counts::default()
        }
    );
    j.update(&a.id, |t| t.start_sending(at(10)))
        .unwrap()
        .unwrap();
    j.update(&a.id, |t| t.finish_sending(at(11), Status::Applied))
        .unwrap()
        .unwrap();
    let counts = j.counts();
    assert_eq!(
        (counts.local, counts.applied, counts.not_accepted),
        (1, 1, 2)
    );
    // A refused transition inside update changes nothing.
    let refused = j.update(&a.id, |t| t.start_sending(at(12))).unwrap();
    assert_eq!(refused.unwrap_err().kind(), "illegal-transition");
    assert_eq!(j.counts(), counts);
    j.delete(&b.id).unwrap();
    assert_eq!(j.counts().local, 0);
    assert_eq!(j.counts().total, 3);
    assert_eq!(j.counts().not_accepted, 1);
}

#[test]
fn update_keeps_the_id_and_reports_unknown_ids() {
    let mut j = Journal::new();
    let a = tx(0, 1, issue("C1", "B1"));
    j.record(a.clone()).unwrap();
    j.update(&a.id, |t| t.id = TransactionId::from_stored("other"))
        .unwrap();
    assert!(j.get(&a.id).is_some());
    assert!(j.get(&TransactionId::from_stored("other")).is_none());
    let missing = TransactionId::from_stored("nope");
    let err = j.update(&missing, |_| ()).unwrap_err();
    assert_eq!(err.kind(), "not-found");
    assert_eq!(err.to_string(), "transaction nope is not in the journal");
}

#[test]
fn delete_refuses_accepted_and_in_flight_transactions() {
    let mut j = Journal::new();
    let queued = sent(tx(0, 1, checkin("B1")), Status::Queued);
    let applied = sent(tx(1, 2, checkin("B2")), Status::Applied);
    let mut sending = tx(2, 3, checkin("B3"));
    sending.start_sending(at(3)).unwrap();
    let uncertain = sent(
        tx(4, 4, checkin("B4")),
        Status::Uncertain {
            reason: koha_offline_circ::UncertainReason::ServerError,
        },
    );
    let rejected = sent(
        tx(5, 5, checkin("B5")),
        Status::Rejected {
            message: "Item not issued.".into(),
        },
    );
    for t in [&queued, &applied, &sending, &uncertain, &rejected] {
        j.record(t.clone()).unwrap();
    }
    for (t, kind) in [
        (&queued, "accepted-by-koha"),
        (&applied, "accepted-by-koha"),
        (&sending, "sending"),
    ] {
        assert_eq!(j.delete(&t.id).unwrap_err().kind(), kind);
    }
    assert_eq!(
        j.delete(&queued.id).unwrap_err().to_string(),
        format!(
            "transaction {} was accepted by Koha and cannot be deleted",
            queued.id
        )
    );
    assert_eq!(
        j.delete(&sending.id).unwrap_err().to_string(),
        format!(
            "transaction {} is being sent and cannot be deleted",
            sending.id
        )
    );
    assert_eq!(j.delete(&uncertain.id).unwrap(), uncertain);
    assert_eq!(j.delete(&rejected.id).unwrap(), rejected);
    assert_eq!(j.delete(&rejected.id).unwrap_err().kind(), "not-found");
    assert_eq!(j.len(), 3);
    // Deleted transactions leave no trace in the indexes.
    assert!(j.warnings_for(&checkin("B4"), at(5)).is_empty());
    assert_eq!(j.page(&Filter::text("B5"), 0, 10).total, 0);
}

/// Deleting or clearing while another page sends could delete the row Koha is receiving right
/// now (that page's `sending` write may not have arrived here): refused, with a kind the desk
/// translates.
#[test]
fn removals_are_refused_while_another_page_sends() {
    assert_eq!(change_allowed(SendLockState::HeldHere), Ok(()));
    let refused = change_allowed(SendLockState::HeldElsewhere).unwrap_err();
    assert_eq!(refused, JournalError::SendRunningElsewhere);
    assert_eq!(refused.kind(), "send-running-elsewhere");
    assert_eq!(
        refused.to_string(),
        "a send to Koha is running in another window"
    );
}

#[test]
fn clear_accepted_and_clear_all() {
    let mut j = Journal::new();
    let local = tx(0, 1, checkin("B1"));
    let queued = sent(tx(1, 2, checkin("B2")), Status::Queued);
    let applied = sent(tx(2, 3, checkin("B3")), Status::Applied);
    for t in [&local, &queued, &applied] {
        j.record(t.clone()).unwrap();
    }
    assert_eq!(
        j.clear_accepted(),
        vec![queued.id.clone(), applied.id.clone()]
    );
    assert_eq!(j.len(), 1);
    assert_eq!(j.counts().total, 1);
    assert_eq!(j.counts().queued + j.counts().applied, 0);
    assert!(j.warnings_for(&checkin("B2"), at(2)).is_empty());
    assert_eq!(j.clear_all(), vec![local.id.clone()]);
    assert!(j.is_empty());
    assert_eq!(j.counts(), Counts::default());
}

#[test]
fn upsert_keeps_the_copy_further_along() {
    let local = tx(0, 1, issue("C1", "B1"));
    let mut j = Journal::from_transactions(vec![local.clone()]);
    let queued = sent(local.clone(), Status::Queued);
    // The incoming copy, further along, wins.
    assert_eq!(j.upsert(queued.clone()), Upserted::Replaced);
    assert_eq!(j.get(&local.id), Some(&queued));
    assert_eq!(j.counts().queued, 1);
    assert_eq!(j.counts().local, 0);
    // An older copy does not overwrite it.
    assert_eq!(j.upsert(local.clone()), Upserted::Kept);
    assert_eq!(j.get(&local.id).unwrap().status(), &Status::Queued);
    // The longer history wins, even at the same instant.
    let mut sending = local.clone();
    sending.start_sending(local.recorded_at).unwrap();
    let mut j2 = Journal::from_transactions(vec![local.clone()]);
    assert_eq!(j2.upsert(sending.clone()), Upserted::Replaced);
    assert_eq!(j2.upsert(local.clone()), Upserted::Kept);
    // Exported marks are never lost.
    let mut exported = local.clone();
    exported.mark_exported(at(99));
    assert_eq!(j.upsert(exported), Upserted::Kept);
    assert_eq!(j.get(&local.id).unwrap().exported_at, Some(at(99)));
    assert_eq!(j.upsert(tx(5, 9, checkin("B9"))), Upserted::Inserted);
    assert_eq!(j.len(), 2);
}

/// This page sent a transaction recorded while the desk clock ran a day ahead; Koha queued it
/// (the clock set right by then). Another page, still holding the stale `local` copy with its
/// later timestamp, writes it back (an export mark, a retry). Taking that copy would show the
/// row `local` here and a Send from this page would give it to Koha a second time.
#[test]
fn future_dated_local_from_another_page_does_not_replace_queued() {
    let ahead = tx(86_400, 42, checkin("B4242"));
    let mut queued = ahead.clone();
    queued.start_sending(at(10)).unwrap();
    queued.finish_sending(at(11), Status::Queued).unwrap();
    let mut j = Journal::from_transactions(vec![queued.clone()]);
    let mut stale = ahead.clone();
    stale.mark_exported(at(12));
    assert_eq!(j.upsert(stale), Upserted::Kept);
    let now = j.get(&ahead.id).unwrap();
    assert_eq!(now.status(), &Status::Queued);
    assert_eq!(now.history(), queued.history());
    assert_eq!(
        now.exported_at,
        Some(at(12)),
        "the export mark is still taken"
    );
    assert_eq!(j.counts().queued, 1);
    assert_eq!(j.sendable_in_order().count(), 0, "nothing to send again");
}

#[test]
fn from_transactions_merges_repeated_ids() {
    let local = tx(0, 1, issue("C1", "B1"));
    let applied = sent(local.clone(), Status::Applied);
    let j = Journal::from_transactions(vec![applied.clone(), local.clone()]);
    assert_eq!(j.len(), 1);
    assert_eq!(j.get(&local.id), Some(&applied));
    assert_eq!(j.counts().total, 1);
}

#[test]
fn pages_are_newest_first_and_filter_case_insensitively() {
    let mut j = Journal::new();
    let all: Vec<Transaction> = vec![
        tx(0, 1, issue("card-AB", "x1")),
        tx(1, 2, checkin("ABC9")),
        tx(2, 3, payment("zab", "1")),
        tx(3, 4, checkin("nothing")),
        tx(4, 5, issue("c", "qq")),
    ];
    // Recorded out of order on purpose.
    for t in all.iter().rev() {
        j.record(t.clone()).unwrap();
    }
    let page = j.page(&Filter::default(), 0, 2);
    assert_eq!(page.total, 5);
    assert_eq!(ids(&page.rows), vec![all[4].id.clone(), all[3].id.clone()]);
    let page = j.page(&Filter::default(), 4, 2);
    assert_eq!((page.offset, ids(&page.rows)), (4, vec![all[0].id.clone()]));
    // Past the end (rows cleared while a later page was shown): the last page.
    let page = j.page(&Filter::default(), 9, 2);
    assert_eq!((page.offset, ids(&page.rows)), (4, vec![all[0].id.clone()]));

    let ab = Filter::text(" aB ");
    let page = j.page(&ab, 0, 10);
    assert_eq!(page.total, 3);
    assert_eq!(
        ids(&page.rows),
        vec![all[2].id.clone(), all[1].id.clone(), all[0].id.clone()]
    );
    let page = j.page(&ab, 1, 1);
    assert_eq!((page.total, ids(&page.rows)), (3, vec![all[1].id.clone()]));
    let page = j.page(&ab, 10, 2);
    assert_eq!((page.offset, ids(&page.rows)), (2, vec![all[0].id.clone()]));
    let nothing = j.page(&Filter::text("zzz"), 20, 10);
    assert_eq!((nothing.total, nothing.offset), (0, 0));
}

proptest::proptest! {
    /// Any offset and limit, with or without a filter: the page is the slice a plain listing of
    /// the matches gives, an offset past the last match giving the last page.
    #[test]
    fn a_page_is_the_slice_of_the_matches_newest_first(
        barcodes in proptest::collection::vec(0u8..4, 0..30),
        needle in proptest::sample::select(vec!["", "b1", "B2", "zz"]),
        offset in 0usize..40,
        limit in 0usize..8,
    ) {
        let mut j = Journal::new();
        for (n, b) in barcodes.iter().enumerate() {
            j.record(tx(n as i64, n as u64, checkin(&format!("B{b}")))).unwrap();
        }
        let filter = Filter::text(needle);
        let matches: Vec<TransactionId> = (0..barcodes.len())
            .rev()
            .filter(|&n| needle.is_empty() || format!("B{}", barcodes[n]) == needle.to_uppercase())
            .map(|n| TransactionId::new(at(n as i64), n as u64))
            .collect();
        let step = limit.max(1);
        let last = matches.len().saturating_sub(1) / step * step;
        let expected_offset = offset.min(last);
        let page = j.page(&filter, offset, limit);
        proptest::prop_assert_eq!(page.total, matches.len());
        proptest::prop_assert_eq!(page.offset, expected_offset);
        let expected: Vec<TransactionId> =
            matches.iter().skip(expected_offset).take(limit).cloned().collect();
        proptest::prop_assert_eq!(ids(&page.rows), expected);
    }
}

#[test]
fn order_is_by_recording_time_and_sendable_is_local_or_failed() {
    let mut j = Journal::new();
    let late = tx(50, 1, checkin("B1"));
    let early = tx(10, 2, checkin("B2"));
    let failed = sent(
        tx(20, 3, checkin("B3")),
        Status::Failed {
            reason: koha_offline_circ::FailReason::Authentication,
        },
    );
    let queued = sent(tx(30, 4, checkin("B4")), Status::Queued);
    let uncertain = sent(
        tx(40, 5, checkin("B5")),
        Status::Uncertain {
            reason: koha_offline_circ::UncertainReason::Timeout,
        },
    );
    for t in [&late, &early, &failed, &queued, &uncertain] {
        j.record(t.clone()).unwrap();
    }
    let order: Vec<_> = j.in_order().map(|t| t.id.clone()).collect();
    assert_eq!(
        order,
        vec![
            early.id.clone(),
            failed.id.clone(),
            queued.id.clone(),
            uncertain.id.clone(),
            late.id.clone()
        ]
    );
    let sendable: Vec<_> = j.sendable_in_order().map(|t| t.id.clone()).collect();
    assert_eq!(
        sendable,
        vec![early.id.clone(), failed.id.clone(), late.id.clone()]
    );
    // Sending takes it out of the sendable set.
    j.update(&early.id, |t| t.start_sending(at(60)))
        .unwrap()
        .unwrap();
    let sendable: Vec<_> = j.sendable_in_order().map(|t| t.id.clone()).collect();
    assert_eq!(sendable, vec![failed.id, late.id]);
}

#[test]
fn warnings_serialise_with_their_kind() {
    let w = Warning::DuplicateScan {
        previous: TransactionId::from_stored("x"),
    };
    assert_eq!(
        serde_json::to_string(&w).unwrap(),
        r#"{"kind":"duplicate-scan","previous":"x"}"#
    );
    let err = JournalError::Sending {
        id: TransactionId::from_stored("x"),
    };
    assert_eq!(err.kind(), "sending");
}

#[test]
fn filter_folds_case_in_ascii_and_other_scripts() {
    let mut j = Journal::new();
    let a = tx(0, 1, issue("MÜLLER-1", "ABC-42"));
    let b = tx(1, 2, checkin("xyz"));
    j.record(a.clone()).unwrap();
    j.record(b).unwrap();
    for (text, total) in [
        ("müll", 1),
        ("MÜLL", 1),
        ("c-4", 1),
        ("ABC-421", 0),
        ("Y", 1),
        ("", 2),
    ] {
        assert_eq!(j.page(&Filter::text(text), 0, 10).total, total, "{text:?}");
    }
    assert_eq!(ids(&j.page(&Filter::text("müll"), 0, 10).rows), vec![a.id]);
}

#[test]
fn implausible_times_are_refused_when_recording() {
    let mut j = Journal::new();
    for when in [
        Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap(),
        Utc.with_ymd_and_hms(2038, 1, 1, 0, 0, 0).unwrap(),
    ] {
        let t = Transaction::record(
            TransactionId::new(when, 1),
            when,
            Branchcode::parse("CPL").unwrap(),
            checkin("B1"),
        );
        let err = j.record(t.clone()).unwrap_err();
        assert_eq!(err.kind(), "time-out-of-range");
        assert_eq!(
            err.to_string(),
            format!("transaction {} has a time outside 1970 to 2037", t.id)
        );
    }
    assert!(j.is_empty());
    assert_eq!(j.counts(), Counts::default());
}

#[test]
fn mark_exported_sets_the_time_and_reports_unknown_ids() {
    let mut j = Journal::new();
    let a = tx(0, 1, checkin("B1"));
    j.record(a.clone()).unwrap();
    let gone = TransactionId::from_stored("gone");
    assert_eq!(
        j.mark_exported(&[a.id.clone(), gone.clone()], at(9)),
        vec![gone]
    );
    assert_eq!(j.get(&a.id).unwrap().exported_at, Some(at(9)));
    // Exporting does not change the status or the counts.
    assert_eq!(j.get(&a.id).unwrap().status(), &Status::Local);
    assert_eq!(j.counts().local, 1);
}

#[test]
fn an_export_mark_that_arrives_before_its_transaction_is_given_to_it() {
    // Another page's write of a transaction can reach this page after the export record.
    let mut j = Journal::new();
    let late = tx(0, 1, checkin("B1"));
    assert_eq!(
        j.mark_exported(std::slice::from_ref(&late.id), at(9)),
        vec![late.id.clone()]
    );
    j.upsert(late.clone());
    assert_eq!(j.get(&late.id).unwrap().exported_at, Some(at(9)));
}

#[test]
fn a_retry_forgets_only_what_another_page_removed_and_leaves_the_row_in_flight_to_the_run() {
    use koha_offline_circ::journal::{retry, Retry};
    // (in a store now, never stored, in flight)
    assert_eq!(retry(true, false, false), Retry::Write);
    assert_eq!(retry(false, true, false), Retry::Write);
    assert_eq!(retry(false, false, false), Retry::Forget);
    assert_eq!(retry(false, false, true), Retry::Forget);
    assert_eq!(retry(true, false, true), Retry::LeaveToTheRun);
    assert_eq!(retry(false, true, true), Retry::LeaveToTheRun);
}

#[test]
fn an_export_mark_never_moves_back() {
    let mut j = Journal::new();
    let a = tx(0, 1, checkin("B1"));
    j.record(a.clone()).unwrap();
    j.mark_exported(std::slice::from_ref(&a.id), at(9));
    j.mark_exported(std::slice::from_ref(&a.id), at(5));
    assert_eq!(j.get(&a.id).unwrap().exported_at, Some(at(9)));
}

#[test]
fn warnings_at_the_ends_of_time_do_not_panic() {
    let mut j = Journal::new();
    j.record(tx(0, 1, issue("C1", "B1"))).unwrap();
    for now in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        let _ = j.warnings_for(&issue("C2", "B1"), now);
        let _ = j.warnings_for(&payment("C1", "1"), now);
    }
    assert_eq!(
        j.warnings_for(&issue("C2", "B1"), DateTime::<Utc>::MAX_UTC)
            .iter()
            .map(Warning::kind)
            .collect::<Vec<_>>(),
        vec!["checked-out-to-other-card"]
    );
}

#[test]
fn a_journal_built_in_bulk_equals_one_built_by_upserts() {
    let first = tx(30, 1, issue("P1", "B1"));
    let later_copy = sent(first.clone(), Status::Queued);
    let list = vec![
        tx(50, 4, payment("P2", "1.50")),
        later_copy.clone(),
        tx(10, 2, checkin("B1")),
        first.clone(),
        tx(10, 3, issue("P2", "B2")),
        sent(tx(70, 5, checkin("B3")), Status::Applied),
        sent(
            tx(80, 6, checkin("B4")),
            Status::Rejected {
                message: "Item not found.".to_owned(),
            },
        ),
    ];
    let bulk = Journal::from_transactions(list.clone());
    let mut one_by_one = Journal::new();
    for t in list {
        one_by_one.upsert(t);
    }
    assert_eq!(bulk.len(), 6);
    assert_eq!(bulk.counts(), one_by_one.counts());
    let all = |j: &Journal| -> Vec<Transaction> { j.in_order().cloned().collect() };
    assert_eq!(all(&bulk), all(&one_by_one));
    assert_eq!(
        bulk.get(&first.id).unwrap().status(),
        &Status::Queued,
        "the copy that knows more wins, whatever the order"
    );
    let sendable = |j: &Journal| -> Vec<TransactionId> {
        j.sendable_in_order().map(|t| t.id.clone()).collect()
    };
    assert_eq!(sendable(&bulk), sendable(&one_by_one));
    // The item and card indexes: the warnings see the same transactions.
    for action in [issue("P1", "B1"), checkin("B2"), payment("P2", "1.50")] {
        assert_eq!(
            bulk.warnings_for(&action, at(40)),
            one_by_one.warnings_for(&action, at(40))
        );
    }
}
