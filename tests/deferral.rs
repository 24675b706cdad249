//! A desk's start that leaves older archive chunks unread (`Replica::open_deferring`): what it
//! shows before they are read is what a full read shows, and once they are read the replica is
//! the one a full read makes, writes included.
#![allow(clippy::unwrap_used)] // a panic is a failure report

mod common;

use chrono::Duration;
use common::{at, checkout};
use koha_offline_circ::journal::Filter;
use koha_offline_circ::store::archive::{chunk_put, encode_chunk};
use koha_offline_circ::store::{
    self, meta_value, mirror_change, write_plan, Change, EntryChange, ExportRecord, LazyText,
    ReadEntries, Replica, META_KEY,
};
use koha_offline_circ::{Status, Transaction, TransactionId};
use proptest::prelude::*;
use serde_json::Value;
use std::cell::Cell;
use std::rc::Rc;

fn sent(mut tx: Transaction, answer: Status) -> Transaction {
    tx.start_sending(tx.recorded_at + Duration::seconds(1))
        .unwrap();
    tx.finish_sending(tx.recorded_at + Duration::seconds(2), answer)
        .unwrap();
    tx
}

fn applied(n: u64) -> Transaction {
    sent(checkout(n), Status::Applied)
}

fn entry(change: Change) -> (String, Value) {
    match change {
        Change::Put { key, value } => (key, value),
        Change::Remove { key } => panic!("a removal of {key}"),
    }
}

/// A chunk of `txs` as builds before the summary wrote it.
fn chunk_without_summary(txs: &[Transaction]) -> (String, Value) {
    let (key, value) = entry(chunk_put(txs));
    let mut chunk: Value = serde_json::from_str(value.as_str().unwrap()).unwrap();
    chunk.as_object_mut().unwrap().remove("sum").unwrap();
    (key, Value::String(chunk.to_string()))
}

/// A chunk whose summary reads but whose rows do not.
fn chunk_with_bad_rows(txs: &[Transaction]) -> (String, Value) {
    let (key, value) = entry(chunk_put(txs));
    let text = value.as_str().unwrap();
    let rows = text.find("\"txs\"").unwrap();
    let damaged = format!(
        "{}{}",
        &text[..rows],
        text[rows..].replacen(",\"applied\",", ",\"bogus\",", 1)
    );
    assert_ne!(damaged, text);
    (key, Value::String(damaged))
}

fn single(tx: &Transaction) -> (String, Value) {
    entry(write_plan(tx).primary)
}

fn meta() -> (String, Value) {
    (META_KEY.to_owned(), meta_value())
}

/// A desk's start over these stores, showing 50 rows first.
fn desk_start(primary: Vec<(String, Value)>, mirror: Vec<(String, Value)>) -> Replica {
    let mut replica = Replica::new();
    replica
        .open_deferring(primary, mirror, None, Some(50))
        .unwrap();
    replica
}

fn ids_in_order(replica: &Replica) -> Vec<Transaction> {
    replica.journal().in_order().cloned().collect()
}

/// Opens `primary` and `mirror` both ways and checks what the deferring start shows of the
/// first `rows` rows, then that reading the rest gives the full start's replica and writes.
/// Returns whether anything was deferred.
fn both_ways(
    primary: Vec<(String, Value)>,
    mirror: Vec<(String, Value)>,
    rows: usize,
    unreadable: bool,
) -> bool {
    both_ways_with_heads(primary, mirror, rows, unreadable, 512)
}

/// [`both_ways`], and a third start given the chunks' texts lazily with `head` characters of
/// each first: it must do what the deferring start does, copying no deferred chunk's text.
fn both_ways_with_heads(
    primary: Vec<(String, Value)>,
    mirror: Vec<(String, Value)>,
    rows: usize,
    unreadable: bool,
    head: usize,
) -> bool {
    let (primary_given, mirror_given) = (primary.clone(), mirror.clone());
    let now = Some(at(1_000_000));
    let mut full = Replica::new();
    let full_opened = full.open(primary.clone(), mirror.clone(), now).unwrap();
    let mut lazy = Replica::new();
    let lazy_opened = lazy
        .open_deferring(primary, mirror, now, Some(rows))
        .unwrap();
    let deferred = lazy.has_deferred();

    let everything = Filter::default();
    let (page, counts) = lazy.listing(&everything, 0, rows);
    let expected = full.journal().page(&everything, 0, rows);
    let shown: Vec<&TransactionId> = page.rows.iter().map(|tx| &tx.id).collect();
    let wanted: Vec<&TransactionId> = expected.rows.iter().map(|tx| &tx.id).collect();
    assert_eq!(shown, wanted, "the first page");
    if !unreadable {
        assert_eq!(page.total, expected.total, "the total");
        assert_eq!(counts, full.journal().counts(), "the counts");
    }
    assert_eq!(
        lazy.has_deferred(),
        deferred,
        "the first page needs no more than the start read"
    );
    if deferred {
        let (page, _) = lazy.listing(&Filter::text("0"), 0, rows);
        let expected = full.journal().page(&Filter::text("0"), 0, rows);
        assert_eq!(page, expected, "a filter reads every row");
        // (A chunk that turned out unreadable stays to be kept aside by `read_deferred`.)
        assert!(unreadable || !lazy.has_deferred());
    }

    with_texts_left_in_the_answer(
        (&full, lazy.chunks_left_at_start()),
        (&primary_given, &mirror_given),
        now,
        rows,
        (head, unreadable),
    );

    lazy.read_deferred();
    assert!(!lazy.has_deferred());
    assert_eq!(ids_in_order(&lazy), ids_in_order(&full));
    assert_eq!(lazy.journal().counts(), full.journal().counts());
    assert_eq!(lazy.stored_entries(), full.stored_entries());
    let (repairs, quarantined) = lazy.take_repairs();
    assert_eq!(quarantined, full_opened.quarantined);
    let mut lazy_writes: Vec<String> = lazy_opened
        .primary_changes
        .iter()
        .chain(&repairs)
        .map(|c| format!("{c:?}"))
        .collect();
    let mut full_writes: Vec<String> = full_opened
        .primary_changes
        .iter()
        .map(|c| format!("{c:?}"))
        .collect();
    lazy_writes.sort();
    full_writes.sort();
    assert_eq!(lazy_writes, full_writes, "the same writes");
    assert_eq!(lazy_opened.mirror_changes, full_opened.mirror_changes);
    deferred
}

/// A stored entry: its key and value.
type Entry = (String, Value);

/// The archive chunks of `primary` with their texts left in the browser's answer, as the desk's
/// shell gives them, `head` characters copied first; counts the texts copied whole.
fn texts_left_in_the_answer(
    primary: Vec<(String, Value)>,
    head: usize,
    copies: &Rc<Cell<usize>>,
) -> ReadEntries {
    let mut given = Vec::new();
    let mut texts = Vec::new();
    for (key, value) in primary {
        match value {
            Value::String(text) if store::is_archive_key(&key) => {
                let copies = Rc::clone(copies);
                let start = text.chars().take(head).collect();
                texts.push((
                    key,
                    LazyText::new(start, move || {
                        copies.set(copies.get() + 1);
                        text
                    }),
                ));
            }
            value => given.push((key, value)),
        }
    }
    ReadEntries {
        values: given,
        texts,
    }
}

/// Opens the stores with the chunks' texts left in the answer and compares it with `full`, a
/// start that read everything, and a deferring start that left `left` chunks unread: the same
/// first page and counts, the same chunks left, and only the chunks read copied.
fn with_texts_left_in_the_answer(
    (full, left): (&Replica, usize),
    (primary, mirror): (&[Entry], &[Entry]),
    now: Option<chrono::DateTime<chrono::Utc>>,
    rows: usize,
    (head, unreadable): (usize, bool),
) {
    let copies = Rc::new(Cell::new(0));
    let chunks = primary
        .iter()
        .filter(|(key, value)| store::is_archive_key(key) && value.is_string())
        .count();
    let primary = texts_left_in_the_answer(primary.to_vec(), head, &copies);
    let mut texted = Replica::new();
    texted
        .open_with_texts(primary, mirror.to_vec(), now, Some(rows))
        .unwrap();
    assert_eq!(
        texted.chunks_left_at_start(),
        left,
        "the same chunks left unread"
    );
    // A chunk whose summary does not fit in the head is copied whole to read it.
    if head >= 512 {
        assert_eq!(
            copies.get(),
            chunks - left,
            "only the chunks read are copied"
        );
    } else {
        assert!(copies.get() >= chunks - left);
    }
    let everything = Filter::default();
    let (page, counts) = texted.listing(&everything, 0, rows);
    let expected = full.journal().page(&everything, 0, rows);
    let shown: Vec<&TransactionId> = page.rows.iter().map(|tx| &tx.id).collect();
    let wanted: Vec<&TransactionId> = expected.rows.iter().map(|tx| &tx.id).collect();
    assert_eq!(shown, wanted, "the first page, texts left in the answer");
    if !unreadable {
        assert_eq!(
            page.total, expected.total,
            "the total, texts left in the answer"
        );
        assert_eq!(
            counts,
            full.journal().counts(),
            "the counts, texts left in the answer"
        );
    }
    texted.read_deferred();
    assert_eq!(copies.get(), chunks, "every text copied once read");
    assert_eq!(ids_in_order(&texted), ids_in_order(full));
}

/// Three chunks of 40 applied, then 60 unsent one key each, newer.
fn a_day_of_work() -> (Vec<Transaction>, Vec<Transaction>) {
    let archived: Vec<Transaction> = (0..120).map(applied).collect();
    let unsent: Vec<Transaction> = (200..260).map(checkout).collect();
    (archived, unsent)
}

fn stored(archived: &[Transaction], unsent: &[Transaction]) -> Vec<(String, Value)> {
    let mut primary = vec![meta()];
    primary.extend(archived.chunks(40).map(|c| entry(chunk_put(c))));
    primary.extend(unsent.iter().map(single));
    primary
}

#[test]
fn a_start_shows_the_newest_rows_and_all_counts_before_reading_older_chunks() {
    let (archived, unsent) = a_day_of_work();
    let mirror: Vec<(String, Value)> = unsent.iter().map(|tx| entry(mirror_change(tx))).collect();
    let mut lazy = desk_start(stored(&archived, &unsent), mirror.clone());
    assert!(lazy.has_deferred());
    // Before reading: only what the first page needs is in the journal.
    assert_eq!(lazy.journal().len(), 60);
    let (page, counts) = lazy.listing(&Filter::default(), 0, 50);
    assert_eq!(page.total, 180);
    assert_eq!((counts.applied, counts.local, counts.total), (120, 60, 180));
    assert_eq!(page.rows[0].id, unsent[59].id);
    assert!(lazy.has_deferred());
    // The second page reaches into the archive: it is read then.
    let (page, _) = lazy.listing(&Filter::default(), 50, 50);
    assert_eq!(page.rows[10].id, archived[119].id);
    assert!(!lazy.has_deferred());
    assert!(both_ways(stored(&archived, &unsent), mirror, 50, false));
}

#[test]
fn the_chunks_the_first_page_needs_are_read_at_the_start() {
    let (archived, unsent) = a_day_of_work();
    let few = &unsent[..10];
    let mut lazy = desk_start(stored(&archived, few), Vec::new());
    // 10 unsent and the newest chunk of 40 fill the first page; two chunks wait.
    assert_eq!(lazy.journal().len(), 50);
    let (page, counts) = lazy.listing(&Filter::default(), 0, 50);
    assert_eq!(page.rows.last().unwrap().id, archived[80].id);
    assert_eq!(counts.total, 130);
    assert!(lazy.has_deferred());
    assert!(both_ways(stored(&archived, few), Vec::new(), 50, false));
}

#[test]
fn a_chunk_whose_range_holds_another_entry_is_read_at_the_start() {
    let (archived, unsent) = a_day_of_work();
    let mut primary = stored(&archived, &unsent);
    // An unsent checkout recorded among the middle chunk's, and an export record naming one
    // of the oldest chunk's transactions.
    let mut among = checkout(50);
    among.id = TransactionId::new(among.recorded_at, 9_999);
    primary.push(single(&among));
    let exported = ExportRecord::new(at(500), vec![archived[3].id.clone()]);
    primary.push(entry(exported.change()));
    let lazy = desk_start(primary.clone(), Vec::new());
    // Only the newest chunk is deferred: the 61 unsent fill the first page.
    assert_eq!(lazy.journal().len(), 61 + 80);
    assert!(both_ways(primary, Vec::new(), 50, false));
}

#[test]
fn chunks_whose_ranges_overlap_are_read_at_the_start() {
    let (archived, unsent) = a_day_of_work();
    let mut primary = stored(&archived, &unsent);
    // A copy of the newest chunk's transactions in another chunk (a packing repeated).
    primary.push(entry(chunk_put(&archived[85..95])));
    let lazy = desk_start(primary.clone(), Vec::new());
    assert_eq!(lazy.journal().len(), 60 + 40);
    assert!(both_ways(primary, Vec::new(), 50, false));
}

#[test]
fn chunks_without_a_summary_are_read_and_get_one_at_a_start_holding_the_send_lock() {
    let (archived, unsent) = a_day_of_work();
    let mut primary = vec![meta()];
    primary.push(chunk_without_summary(&archived[..40]));
    primary.extend(archived[40..].chunks(40).map(|c| entry(chunk_put(c))));
    primary.extend(unsent.iter().map(single));
    // Which ids such a chunk holds is unknown until it is read: nothing is deferred.
    assert!(!both_ways(primary.clone(), Vec::new(), 50, false));

    let summary_added = Change::Put {
        key: entry(chunk_put(&archived[..40])).0,
        value: Value::String(encode_chunk(&archived[..40])),
    };
    let locked = store::open(primary.clone(), Vec::new(), Some(at(1_000_000))).unwrap();
    assert!(locked.primary_changes.contains(&summary_added));
    let unlocked = store::open(primary, Vec::new(), None).unwrap();
    assert!(
        !unlocked.primary_changes.contains(&summary_added),
        "another page may be clearing rows from that chunk"
    );
}

#[test]
fn a_deferred_chunk_that_cannot_be_read_is_kept_aside_when_the_rest_is_read() {
    let (archived, unsent) = a_day_of_work();
    let mut primary = vec![meta()];
    primary.push(chunk_with_bad_rows(&archived[..40]));
    primary.extend(archived[40..].chunks(40).map(|c| entry(chunk_put(c))));
    primary.extend(unsent.iter().map(single));
    let mut lazy = Replica::new();
    let opened = lazy
        .open_deferring(primary.clone(), Vec::new(), None, Some(50))
        .unwrap();
    assert!(opened.quarantined.is_empty());
    lazy.read_deferred();
    let (repairs, quarantined) = lazy.take_repairs();
    assert_eq!(quarantined.len(), 1);
    assert!(
        matches!(&repairs[..], [Change::Put { key, .. }, Change::Remove { .. }] if *key == quarantined[0])
    );
    assert_eq!(lazy.journal().len(), 140);
    assert!(both_ways(primary, Vec::new(), 50, true));
}

#[test]
fn other_pages_writes_heard_while_reading_need_every_chunk_at_once() {
    let (archived, unsent) = a_day_of_work();
    let mut lazy = Replica::new();
    lazy.begin_reading();
    let newer = checkout(300);
    let (key, value) = single(&newer);
    lazy.apply(vec![EntryChange {
        key,
        new_value: Some(value),
        old_value: None,
    }]);
    lazy.open_deferring(stored(&archived, &unsent), Vec::new(), None, Some(50))
        .unwrap();
    assert!(!lazy.has_deferred());
    assert_eq!(lazy.journal().len(), 181);
}

#[test]
fn without_first_rows_everything_is_read() {
    let (archived, unsent) = a_day_of_work();
    let mut replica = Replica::new();
    replica
        .open_deferring(stored(&archived, &unsent), Vec::new(), None, None)
        .unwrap();
    assert!(!replica.has_deferred());
    assert_eq!(replica.journal().len(), 180);
}

/// One stored transaction of a generated store: its second, its status, and where it is.
#[derive(Debug, Clone)]
struct Stored {
    second: u64,
    status: u8,
    chunk: Option<usize>,
    single: bool,
    mirror: bool,
    exported: bool,
    /// Also in this chunk (a packing repeated).
    twice: Option<usize>,
}

/// Mostly packed as packing does, by time; now and then into any chunk, so that ranges
/// overlap; sometimes single too, or in the mirror, or exported.
fn stored_tx() -> impl Strategy<Value = Stored> {
    (
        0u64..400,
        0u8..4,
        0u8..40,
        0usize..6,
        prop::bool::weighted(0.05),
        any::<bool>(),
        prop::bool::weighted(0.02),
        prop::option::weighted(0.03, 0usize..6),
    )
        .prop_map(
            |(second, status, placed, anywhere, single, mirror, exported, twice)| Stored {
                second,
                status,
                chunk: match placed {
                    0..=5 => None,
                    6 => Some(anywhere),
                    _ => Some(second as usize * 6 / 400),
                },
                single,
                mirror,
                exported,
                twice,
            },
        )
}

static DEFERRED_CASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random stores: chunks of accepted transactions whose ranges may overlap, single keys
    /// (some repeating a chunk's transaction), mirror entries, export records, chunks without
    /// a summary or with unreadable rows, an older schema.
    #[test]
    fn a_deferring_start_ends_where_a_full_one_does(
        txs in prop::collection::vec(stored_tx(), 0..200),
        old_chunk in prop::option::weighted(0.1, 0usize..6),
        bad_chunk in prop::option::weighted(0.2, 0usize..6),
        rows in 1usize..40,
        older_schema in prop::bool::weighted(0.05),
        head in prop_oneof![3 => Just(512usize), 1 => 0usize..160],
    ) {
        let mut primary = Vec::new();
        if !older_schema {
            primary.push(meta());
        }
        let mut mirror = Vec::new();
        let mut chunks: Vec<Vec<Transaction>> = vec![Vec::new(); 6];
        let mut exported = Vec::new();
        for (n, s) in txs.iter().enumerate() {
            // What Koha has not accepted is mostly newer than the archive, as at a desk.
            let unsent = matches!(s.status, 0 | 2);
            let second = if unsent && n % 16 != 0 { 340 + s.second % 60 } else { s.second };
            let tx = checkout(second * 1_000 + n as u64);
            let tx = match s.status {
                0 => tx,
                1 => sent(tx, Status::Queued),
                2 => {
                    let mut tx = tx;
                    tx.start_sending(tx.recorded_at).unwrap();
                    tx
                }
                _ => sent(tx, Status::Applied),
            };
            let accepted = tx.status().is_accepted();
            match s.chunk {
                Some(c) if accepted => {
                    chunks[c].push(tx.clone());
                    if let Some(other) = s.twice.filter(|other| *other != c) {
                        chunks[other].push(tx.clone());
                    }
                }
                _ => primary.push(single(&tx)),
            }
            if s.single && accepted && s.chunk.is_some() {
                primary.push(single(&tx));
            }
            if s.mirror && !accepted {
                mirror.push(entry(mirror_change(&tx)));
            }
            if s.exported {
                exported.push(tx.id.clone());
            }
        }
        if !exported.is_empty() {
            primary.push(entry(ExportRecord::new(at(9_000), exported).change()));
        }
        let mut unreadable = false;
        for (c, mut txs) in chunks.into_iter().enumerate() {
            if txs.is_empty() {
                continue;
            }
            txs.sort_by(|a, b| a.id.cmp(&b.id));
            primary.push(if old_chunk == Some(c) {
                chunk_without_summary(&txs)
            } else if bad_chunk == Some(c) && txs.iter().any(|tx| *tx.status() == Status::Applied) {
                unreadable = true;
                chunk_with_bad_rows(&txs)
            } else {
                entry(chunk_put(&txs))
            });
        }
        if both_ways_with_heads(primary, mirror, rows, unreadable, head) {
            DEFERRED_CASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The generated stores defer in enough cases for the property to say something.
#[test]
fn the_generated_stores_often_defer_chunks() {
    a_deferring_start_ends_where_a_full_one_does();
    let deferred = DEFERRED_CASES.load(std::sync::atomic::Ordering::Relaxed);
    assert!(deferred >= 30, "{deferred} of 300 cases deferred a chunk");
}
