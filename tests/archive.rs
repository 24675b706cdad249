//! The archive (accepted transactions packed into chunks) and export records, over in-memory
//! stores: packing at start, crashes half way, bad chunks, clears seen by other pages.

// Helpers outside `#[test]` functions unwrap too; a panic is the failure report here.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use koha_offline_circ::store::{
    self, decode_change, is_archive_key, is_export_key, is_pending_key, is_transaction_key, open,
    pack_plan, transaction_key, write_plan, Change, ExportRecord, MemoryStore, Store, StoredChange,
    ARCHIVE_CHUNK, PENDING_CHUNK, PENDING_MIN,
};
use koha_offline_circ::{
    Action, Amount, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId,
};
use serde_json::json;
use std::collections::BTreeSet;

mod common;
use common::{at, checkout};

fn applied(n: u64) -> Transaction {
    let mut tx = checkout(n);
    tx.start_sending(at(n as i64 + 1)).unwrap();
    tx.finish_sending(at(n as i64 + 2), Status::Applied)
        .unwrap();
    tx
}

/// Stores each transaction one key each, as the desk and a send run do.
fn store_all(primary: &mut MemoryStore, txs: &[Transaction]) {
    let changes: Vec<Change> = txs.iter().map(|tx| write_plan(tx).primary).collect();
    primary.apply(&changes).unwrap();
}

fn start(primary: &mut MemoryStore) -> store::Opened {
    let opened = open(primary.entries(), Vec::new(), Some(at(100_000))).unwrap();
    primary.apply(&opened.primary_changes).unwrap();
    opened
}

fn keys(primary: &MemoryStore, pick: fn(&str) -> bool) -> BTreeSet<String> {
    primary
        .entries()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| pick(k))
        .collect()
}

fn ids(txs: &[Transaction]) -> Vec<TransactionId> {
    txs.iter().map(|tx| tx.id.clone()).collect()
}

#[test]
fn enough_accepted_transactions_are_packed_at_start_and_nothing_is_lost() {
    let mut primary = MemoryStore::new();
    let accepted: Vec<Transaction> = (0..1_203).map(applied).collect();
    let local: Vec<Transaction> = (5_000..5_010).map(checkout).collect();
    store_all(&mut primary, &accepted);
    store_all(&mut primary, &local);

    let opened = start(&mut primary);
    let mut all: Vec<Transaction> = accepted.iter().chain(&local).cloned().collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(opened.transactions, all);
    // Two full chunks of the oldest accepted; the remaining 203 and the local ones stay single.
    let chunks = keys(&primary, is_archive_key);
    assert_eq!(chunks.len(), 2);
    assert_eq!(opened.archived.len(), 2 * ARCHIVE_CHUNK);
    assert_eq!(opened.loose_accepted.len(), 1_203 - 2 * ARCHIVE_CHUNK);
    let single = keys(&primary, is_transaction_key);
    assert_eq!(single.len(), 203 + 10);
    for tx in &local {
        assert!(
            single.contains(&transaction_key(&tx.id)),
            "local ones stay single"
        );
    }
    // Chunks first, then the removals: a crash in between keeps both copies.
    let first_removal = opened
        .primary_changes
        .iter()
        .position(|c| matches!(c, Change::Remove { .. }))
        .unwrap();
    assert!(
        opened.primary_changes[..first_removal]
            .iter()
            .all(|c| matches!(c, Change::Put { .. })
                && (is_archive_key(c.key()) || c.key() == "meta"))
    );

    // The next start reads the same transactions and has nothing to do.
    let again = start(&mut primary);
    assert_eq!(again.transactions, all);
    assert!(
        again.primary_changes.is_empty(),
        "{:?}",
        again.primary_changes.len()
    );
    assert_eq!(again.archived, opened.archived);
}

#[test]
fn fewer_than_a_chunk_stay_single() {
    let mut primary = MemoryStore::new();
    store_all(
        &mut primary,
        &(0..ARCHIVE_CHUNK as u64 - 1)
            .map(applied)
            .collect::<Vec<_>>(),
    );
    let opened = start(&mut primary);
    assert!(keys(&primary, is_archive_key).is_empty());
    assert_eq!(opened.loose_accepted.len(), ARCHIVE_CHUNK - 1);
    assert!(opened.archived.is_empty());
}

#[test]
fn a_crash_between_chunk_and_removals_packs_again_into_the_same_chunk() {
    let mut primary = MemoryStore::new();
    let accepted: Vec<Transaction> = (0..ARCHIVE_CHUNK as u64).map(applied).collect();
    store_all(&mut primary, &accepted);
    let opened = open(primary.entries(), Vec::new(), None).unwrap();
    // Only the puts reach storage (meta and the chunk); the page dies before the removals.
    let puts: Vec<Change> = opened
        .primary_changes
        .iter()
        .filter(|c| matches!(c, Change::Put { .. }))
        .cloned()
        .collect();
    primary.apply(&puts).unwrap();
    let chunk = keys(&primary, is_archive_key);
    assert_eq!(chunk.len(), 1);
    assert_eq!(keys(&primary, is_transaction_key).len(), ARCHIVE_CHUNK);

    let again = start(&mut primary);
    assert_eq!(again.transactions, accepted, "duplicates merge, none lost");
    assert_eq!(
        keys(&primary, is_archive_key),
        chunk,
        "same content, same key"
    );
    assert!(keys(&primary, is_transaction_key).is_empty());
}

#[test]
fn packing_ignores_what_koha_has_not_accepted_and_keys_follow_content() {
    let mixed: Vec<Transaction> = (0..2 * ARCHIVE_CHUNK as u64)
        .map(|n| if n % 2 == 0 { applied(n) } else { checkout(n) })
        .collect();
    let packing = pack_plan(&mixed);
    assert_eq!(packing.packed.len(), ARCHIVE_CHUNK);
    assert_eq!(packing.changes.len(), 1 + ARCHIVE_CHUNK);
    let other: Vec<Transaction> = (1..=ARCHIVE_CHUNK as u64).map(applied).collect();
    let a = pack_plan(&mixed).changes[0].key().to_owned();
    let b = pack_plan(&other).changes[0].key().to_owned();
    assert_ne!(a, b, "different transactions, different chunk");
    assert_eq!(
        a,
        pack_plan(mixed.iter().rev()).changes[0].key(),
        "order does not matter"
    );
}

#[test]
fn a_bad_chunk_is_kept_aside_whole_and_the_rest_opens() {
    let mut primary = MemoryStore::new();
    let good = checkout(1);
    store_all(&mut primary, std::slice::from_ref(&good));
    let bad_text = r#"{"v":1,"txs":[{"id":"x","action":"fly"}]}"#;
    for (key, value) in [
        ("archive:a.1", json!(bad_text)),
        ("archive:b.2", json!({"v": 1})),
        ("archive:c.3", json!(r#"{"v":7,"txs":[]}"#)),
    ] {
        primary
            .apply(&[Change::Put {
                key: key.into(),
                value,
            }])
            .unwrap();
    }
    let opened = start(&mut primary);
    assert_eq!(opened.transactions, vec![good]);
    let kinds: Vec<&str> = opened.problems.iter().map(|p| p.error.kind()).collect();
    assert_eq!(kinds, vec!["corrupt", "corrupt", "unknown-envelope"]);
    assert!(keys(&primary, is_archive_key).is_empty());
    let kept = primary.get("quarantine:archive:a.1").unwrap();
    assert_eq!(kept["value"], json!(bad_text), "kept verbatim");
}

#[test]
fn export_records_mark_transactions_and_go_when_their_transactions_go() {
    let mut primary = MemoryStore::new();
    let txs: Vec<Transaction> = (0..4).map(checkout).collect();
    store_all(&mut primary, &txs);
    let first = ExportRecord::new(at(500), ids(&txs[..2]));
    let later = ExportRecord::new(at(900), ids(&txs[1..3]));
    let orphan = ExportRecord::new(at(700), vec![TransactionId::from_stored("gone")]);
    primary
        .apply(&[first.change(), later.change(), orphan.change()])
        .unwrap();
    assert!(is_export_key(&first.key()));
    assert_ne!(first.key(), later.key());

    let opened = start(&mut primary);
    let marks: Vec<Option<DateTime<Utc>>> = opened
        .transactions
        .iter()
        .map(|tx| tx.exported_at)
        .collect();
    assert_eq!(
        marks,
        vec![Some(at(500)), Some(at(900)), Some(at(900)), None]
    );
    assert!(primary.get(&orphan.key()).is_none(), "nothing left to mark");
    assert!(primary.get(&first.key()).is_some());
    // The single keys were not rewritten to carry the marks.
    for tx in &txs {
        let stored = primary.get(&transaction_key(&tx.id)).unwrap();
        assert_eq!(stored["tx"].get("exported_at"), None);
    }
}

#[test]
fn other_pages_learn_of_chunks_removed_chunks_and_exports() {
    let txs: Vec<Transaction> = (0..ARCHIVE_CHUNK as u64).map(applied).collect();
    let packing = pack_plan(&txs);
    let Change::Put { key, value } = &packing.changes[0] else {
        panic!("a chunk first")
    };
    assert_eq!(
        decode_change(key, Some(value), None).unwrap(),
        StoredChange::Archived(txs.clone())
    );
    assert_eq!(
        decode_change(key, None, Some(value)).unwrap(),
        StoredChange::ArchiveRemoved(ids(&txs))
    );
    assert_eq!(decode_change(key, None, None).unwrap(), StoredChange::Other);
    let record = ExportRecord::new(at(5), ids(&txs[..3]));
    let Change::Put { key, value } = record.change() else {
        panic!("a put")
    };
    assert_eq!(
        decode_change(&key, Some(&value), None).unwrap(),
        StoredChange::Exported(record)
    );
    assert_eq!(
        decode_change(&key, Some(&json!(5)), None)
            .unwrap_err()
            .kind(),
        "corrupt"
    );
}

#[test]
fn one_chunk_is_bounded_in_size() {
    let txs: Vec<Transaction> = (0..10 * ARCHIVE_CHUNK as u64).map(applied).collect();
    let packing = pack_plan(&txs);
    let sizes: Vec<usize> = packing
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Put { value, .. } => value.as_str().map(str::len),
            Change::Remove { .. } => None,
        })
        .collect();
    assert_eq!(sizes.len(), 10);
    // About 300 bytes per transaction; never more than one chunk's worth in one entry.
    assert!(sizes.iter().all(|&n| n < ARCHIVE_CHUNK * 400), "{sizes:?}");
}

/// Every kind of transaction and status survives a chunk unchanged, times to the nanosecond.
#[test]
fn chunks_keep_every_field() {
    let mut txs = Vec::new();
    for n in 0..ARCHIVE_CHUNK as u64 {
        let at = at(n as i64) + Duration::nanoseconds(if n % 7 == 0 { 123_456 } else { 0 });
        let action = match n % 3 {
            0 => Action::Issue {
                cardnumber: Cardnumber::parse("P0001").unwrap(),
                barcode: Barcode::parse(&format!("{n:08}")).unwrap(),
            },
            1 => Action::Return {
                barcode: Barcode::parse(&format!("R{n:07}")).unwrap(),
            },
            _ => Action::Payment {
                cardnumber: Cardnumber::parse("P0002").unwrap(),
                amount: Amount::from_cents(n + 1).unwrap(),
            },
        };
        let mut tx = Transaction::record(
            TransactionId::new(at, n),
            at,
            Branchcode::parse("DE-627").unwrap(),
            action,
        );
        // A life with every detail-carrying status before Koha accepted it.
        tx.start_sending(at).unwrap();
        tx.finish_sending(
            at,
            Status::Failed {
                reason: koha_offline_circ::FailReason::Network,
            },
        )
        .unwrap();
        tx.start_sending(at).unwrap();
        tx.finish_sending(
            at,
            Status::Uncertain {
                reason: koha_offline_circ::UncertainReason::ServerError,
            },
        )
        .unwrap();
        tx.confirm_in_koha(
            at,
            if n % 2 == 0 {
                Status::Queued
            } else {
                Status::Applied
            },
        )
        .unwrap();
        if n % 5 == 0 {
            tx.mark_exported(at + Duration::milliseconds(1));
        }
        txs.push(tx);
    }
    let packing = pack_plan(&txs);
    let Change::Put { key, value } = &packing.changes[0] else {
        panic!("a chunk")
    };
    assert_eq!(
        decode_change(key, Some(value), None).unwrap(),
        StoredChange::Archived(txs)
    );
}

#[test]
fn a_row_that_does_not_fit_its_action_or_status_is_refused() {
    let cases = [
        // A checkout without a card.
        r#"{"v":1,"txs":[["0001-a",1000,"DE-627","issue",null,"B1",null,[[1000,"applied",null]],null]]}"#,
        // A payment with a barcode.
        r#"{"v":1,"txs":[["0001-a",1000,"DE-627","payment","C1","B1",150,[[1000,"applied",null]],null]]}"#,
        // A rejection without Koha's message.
        r#"{"v":1,"txs":[["0001-a",1000,"DE-627","return",null,"B1",null,[[1000,"rejected",null]],null]]}"#,
        // No status at all.
        r#"{"v":1,"txs":[["0001-a",1000,"DE-627","return",null,"B1",null,[],null]]}"#,
        // A status this version does not know.
        r#"{"v":1,"txs":[["0001-a",1000,"DE-627","return",null,"B1",null,[[1000,"lost",null]],null]]}"#,
        // A time that is neither milliseconds nor RFC 3339.
        r#"{"v":1,"txs":[["0001-a","yesterday","DE-627","return",null,"B1",null,[[1000,"applied",null]],null]]}"#,
    ];
    for text in cases {
        let err = decode_change("archive:x", Some(&json!(text)), None).unwrap_err();
        assert_eq!(err.kind(), "corrupt", "{text}");
    }
    let good = r#"{"v":1,"txs":[["0001-a",1000,"DE-627","return",null,"B1",null,[[1000,"applied",null]],null]]}"#;
    let StoredChange::Archived(txs) = decode_change("archive:x", Some(&json!(good)), None).unwrap()
    else {
        panic!("archived")
    };
    assert_eq!(
        txs[0].recorded_at,
        DateTime::from_timestamp_millis(1000).unwrap()
    );
    assert_eq!(txs[0].status(), &Status::Applied);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever mix is stored and wherever a start is cut short (the page dies after any
        /// number of its writes), the next full start shows every transaction unchanged, and a
        /// start after that has nothing left to write.
        #[test]
        fn packing_loses_nothing_wherever_a_start_is_cut_short(
            accepted in proptest::collection::vec(any::<bool>(), 0..1_300),
            exported in proptest::collection::vec(0usize..1_300, 0..3),
            cut in any::<proptest::sample::Index>(),
        ) {
            let mut txs: Vec<Transaction> = accepted
                .iter()
                .enumerate()
                .map(|(n, &a)| if a { applied(n as u64) } else { checkout(n as u64) })
                .collect();
            let mut primary = MemoryStore::new();
            store_all(&mut primary, &txs);
            if !txs.is_empty() {
                let ids: Vec<TransactionId> = exported
                    .iter()
                    .map(|&i| txs[i % txs.len()].id.clone())
                    .collect();
                let record = ExportRecord::new(at(50_000), ids.clone());
                primary.apply(&[record.change()]).unwrap();
                for tx in txs.iter_mut().filter(|tx| ids.contains(&tx.id)) {
                    tx.mark_exported(at(50_000));
                }
            }

            // Holding the send lock: it packs what Koha accepted into the archive and, from
            // PENDING_MIN on, the others into pending chunks.
            let first = open(primary.entries(), Vec::new(), Some(at(100_000))).unwrap();
            let applied_now = cut.index(first.primary_changes.len() + 1);
            primary.apply(&first.primary_changes[..applied_now]).unwrap();

            let again = start(&mut primary);
            prop_assert_eq!(&again.transactions, &txs);
            let last = open(primary.entries(), Vec::new(), None).unwrap();
            prop_assert!(last.primary_changes.is_empty());
            prop_assert_eq!(&last.transactions, &txs);
            // The archive packed only in full chunks, and only what Koha accepted; the others
            // in pending chunks once there are PENDING_MIN.
            let chunks = keys(&primary, is_archive_key).len();
            let accepted_count = accepted.iter().filter(|&&a| a).count();
            prop_assert_eq!(chunks, accepted_count / ARCHIVE_CHUNK);
            let unsent = txs.len() - accepted_count;
            let (pending, unsent_own) = if unsent >= PENDING_MIN {
                (unsent.div_ceil(PENDING_CHUNK), 0)
            } else {
                (0, unsent)
            };
            prop_assert_eq!(keys(&primary, is_pending_key).len(), pending);
            prop_assert_eq!(
                keys(&primary, is_transaction_key).len(),
                accepted_count - chunks * ARCHIVE_CHUNK + unsent_own
            );
        }
    }
}

/// A transaction Koha rejected with `message`, from arbitrary text; `None` if the barcode or
/// card number is not one the desk would record.
fn with_text(n: u64, barcode: &str, card: &str, message: &str) -> Option<Transaction> {
    let barcode = Barcode::parse(barcode).ok()?;
    let cardnumber = Cardnumber::parse(card).ok()?;
    let mut tx = Transaction::record(
        TransactionId::new(at(n as i64), n),
        at(n as i64),
        Branchcode::parse("DE-627").unwrap(),
        Action::Issue {
            cardnumber,
            barcode,
        },
    );
    tx.start_sending(at(n as i64)).unwrap();
    tx.finish_sending(
        at(n as i64),
        Status::Rejected {
            message: message.to_owned(),
        },
    )
    .unwrap();
    Some(tx)
}

mod text_properties {
    use super::*;
    use koha_offline_circ::{FailReason, StatusChange, UncertainReason};
    use proptest::prelude::*;

    /// An instant anywhere chrono can hold one: whole milliseconds (written as a number) or
    /// finer (written as RFC 3339 text).
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let (min, max) = (
            DateTime::<Utc>::MIN_UTC.timestamp_millis(),
            DateTime::<Utc>::MAX_UTC.timestamp_millis(),
        );
        prop_oneof![
            (min..=max).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap()),
            (min / 1000..max / 1000, 0u32..1_000_000_000)
                .prop_map(|(s, ns)| DateTime::from_timestamp(s, ns).unwrap()),
        ]
    }

    /// Text a field takes, from the same kinds of text as `chunk_text_reads_back_any_text`.
    fn parsed<T: std::fmt::Debug>(
        pattern: &'static str,
        parse: fn(&str) -> Option<T>,
    ) -> impl Strategy<Value = T> {
        pattern.prop_filter_map("not a value the desk takes", move |s| parse(&s))
    }

    fn any_status() -> impl Strategy<Value = Status> {
        prop_oneof![
            Just(Status::Local),
            Just(Status::Sending),
            Just(Status::Queued),
            Just(Status::Applied),
            "\\PC*|[\"\\\\\\u{0}-\\u{1f}\\u{7f}\\u{2028}\\u{1F600}a]{0,12}"
                .prop_map(|message| Status::Rejected { message }),
            prop::sample::select(FailReason::ALL).prop_map(|reason| Status::Failed { reason }),
            prop::sample::select(UncertainReason::ALL)
                .prop_map(|reason| Status::Uncertain { reason }),
        ]
    }

    fn any_transaction() -> impl Strategy<Value = Transaction> {
        let card = || parsed("[^\\p{Cc}]{1,12}", |s| Cardnumber::parse(s).ok());
        let barcode = || parsed("\\PC{1,20}", |s| Barcode::parse(s).ok());
        let action = prop_oneof![
            (card(), barcode()).prop_map(|(cardnumber, barcode)| Action::Issue {
                cardnumber,
                barcode
            }),
            barcode().prop_map(|barcode| Action::Return { barcode }),
            (card(), 1..=100_000_000u64).prop_map(|(cardnumber, cents)| Action::Payment {
                cardnumber,
                amount: Amount::from_cents(cents).unwrap(),
            }),
        ];
        let history = proptest::collection::vec(
            (instant(), any_status()).prop_map(|(at, status)| StatusChange { at, status }),
            1..6,
        );
        (
            "(\\PC|[\"\\\\\\u{0}-\\u{1f}])*",
            instant(),
            parsed("\\PC{1,10}", |s| Branchcode::parse(s).ok()),
            action,
            history,
            proptest::option::of(instant()),
        )
            .prop_map(
                |(id, recorded_at, branchcode, action, history, exported_at)| {
                    Transaction::from_parts(
                        TransactionId::from_stored(&id),
                        recorded_at,
                        branchcode,
                        action,
                        history,
                        exported_at,
                    )
                    .unwrap()
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever text a barcode, a card number or Koha's message holds (quotes, backslashes,
        /// control characters, any script), a chunk reads back exactly what was packed.
        #[test]
        fn chunk_text_reads_back_any_text(
            texts in proptest::collection::vec(
                ("\\PC{1,20}", "[^\\p{Cc}]{1,12}", "\\PC*|[\"\\\\\\u{0}-\\u{1f}\\u{7f}\\u{2028}\\u{1F600}a]{0,12}"),
                1..20,
            ),
        ) {
            let txs: Vec<Transaction> = texts
                .iter()
                .enumerate()
                .filter_map(|(n, (b, c, m))| with_text(n as u64, b, c, m))
                .collect();
            prop_assume!(!txs.is_empty());
            let value = json!(store::archive::encode_chunk(&txs));
            prop_assert_eq!(
                decode_change("archive:x", Some(&value), None).unwrap(),
                StoredChange::Archived(txs)
            );
        }

        /// Any transactions at all (every action and status, any history, times anywhere in
        /// chrono's range and finer than milliseconds, any text in ids and Koha's messages)
        /// read back from their chunk unchanged.
        #[test]
        fn any_transactions_read_back_from_their_chunk(
            txs in proptest::collection::vec(any_transaction(), 0..8),
        ) {
            let value = json!(store::archive::encode_chunk(&txs));
            prop_assert_eq!(store::archive::decode_chunk("archive:x", &value).unwrap(), txs);
        }

        /// Any text at all, cut or damaged anywhere, is read or refused, never a crash.
        #[test]
        fn damaged_chunk_text_is_refused_not_a_crash(
            cut in any::<proptest::sample::Index>(),
            insert in "\\PC{0,3}|[\"\\\\,\\[\\]{}:]{1,2}",
        ) {
            let good = r#"{"v":1,"txs":[["0001-a",1000,"DE-627","return",null,"B\u00e9 1",null,[[1000,"rejected","x\"y\ud83d\ude00"],[1001,"applied",null]],null]]}"#;
            let mut text = good.to_owned();
            let mut at = cut.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, &insert);
            let _ = decode_change("archive:x", Some(&json!(text)), None);
            let _ = decode_change("archive:x", Some(&json!(&text[..at])), None);
        }
    }
}

/// Found by the property above: a packing cut short must not pack again what a chunk already
/// holds, even when the chunk's copy carries an export mark its single key does not.
#[test]
fn a_spare_single_key_is_removed_not_packed_again() {
    let mut primary = MemoryStore::new();
    let txs: Vec<Transaction> = (0..ARCHIVE_CHUNK as u64 + 100).map(applied).collect();
    store_all(&mut primary, &txs);
    let record = ExportRecord::new(at(50_000), vec![txs[100].id.clone()]);
    primary.apply(&[record.change()]).unwrap();
    let first = open(primary.entries(), Vec::new(), None).unwrap();
    // The page dies after the chunk and 50 of the 500 removals.
    let removals_start = first
        .primary_changes
        .iter()
        .position(|c| matches!(c, Change::Remove { .. }))
        .unwrap();
    primary
        .apply(&first.primary_changes[..removals_start + 50])
        .unwrap();
    assert_eq!(keys(&primary, is_transaction_key).len(), txs.len() - 50);

    let again = start(&mut primary);
    assert_eq!(
        keys(&primary, is_archive_key).len(),
        1,
        "not packed a second time"
    );
    assert_eq!(keys(&primary, is_transaction_key).len(), 100);
    assert_eq!(again.transactions[100].exported_at, Some(at(50_000)));
    assert_eq!(again.transactions.len(), txs.len());
}

/// A page still holding a transaction's stale `local` copy, recorded while the desk clock ran
/// ahead, writes it back after the accepted copy was packed into a chunk. The chunk's copy wins
/// the merge (it is accepted, and its history is longer), and the stale single key goes: left in
/// place, it would count as unsent for the toolbar badge and for every page reading it.
#[test]
fn a_stale_single_key_beside_its_chunk_is_removed() {
    let mut primary = MemoryStore::new();
    let mut txs: Vec<Transaction> = (0..ARCHIVE_CHUNK as u64).map(applied).collect();
    // Recorded a day ahead, sent after the clock was set right.
    let ahead = at(86_400);
    let stale = Transaction::record(
        TransactionId::new(ahead, 9_999),
        ahead,
        Branchcode::parse("DE-627").unwrap(),
        Action::Return {
            barcode: Barcode::parse("B9999").unwrap(),
        },
    );
    let mut sent = stale.clone();
    sent.start_sending(at(10)).unwrap();
    sent.finish_sending(at(11), Status::Queued).unwrap();
    txs.pop();
    txs.push(sent.clone());
    store_all(&mut primary, &txs);
    start(&mut primary);
    assert_eq!(keys(&primary, is_archive_key).len(), 1);
    assert!(keys(&primary, is_transaction_key).is_empty());

    store_all(&mut primary, std::slice::from_ref(&stale));
    let opened = start(&mut primary);
    let merged = opened
        .transactions
        .iter()
        .find(|tx| tx.id == sent.id)
        .unwrap();
    assert_eq!(merged, &sent);
    assert!(
        keys(&primary, is_transaction_key).is_empty(),
        "the stale single key is removed"
    );
    assert_eq!(opened.transactions.len(), ARCHIVE_CHUNK);
}
