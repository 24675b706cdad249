//! Core benchmarks (.koc write/read, journal operations). Run by `./build.sh bench`
//! (`cargo bench --bench core`); kept short: 10 samples, about a second each.
#![allow(clippy::unwrap_used)] // bench set-up: a panic is a failure with a message
#![allow(missing_docs)] // criterion_group! generates undocumented items

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use koha_offline_circ::journal::{Filter, Journal};
use koha_offline_circ::koc::{self, Selection, WriteOptions};
use koha_offline_circ::store::{self, Change};
use koha_offline_circ::zone::ZoneRules;
use koha_offline_circ::{
    Action, Amount, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId,
};
use serde_json::Value;
use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;

/// Real zone rules, as the shell's `Intl` adapter would give.
struct TzRules(chrono_tz::Tz);

impl ZoneRules for TzRules {
    fn offset_at(&self, instant: DateTime<Utc>) -> FixedOffset {
        self.0.offset_from_utc_datetime(&instant.naive_utc()).fix()
    }
}

fn transaction(i: u64) -> Transaction {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap() + TimeDelta::seconds(i as i64 * 7);
    let card = Cardnumber::parse(&format!("2352900{:07}", i % 5_000)).unwrap();
    let barcode = Barcode::parse(&format!("3999900{:07}", i)).unwrap();
    let action = match i % 3 {
        0 => Action::Issue {
            cardnumber: card,
            barcode,
        },
        1 => Action::Return { barcode },
        _ => Action::Payment {
            cardnumber: card,
            amount: Amount::from_cents(150 + i % 1000).unwrap(),
        },
    };
    let branch = Branchcode::parse(if i % 2 == 0 { "CPL" } else { "MPL" }).unwrap();
    Transaction::record(TransactionId::new(at, i), at, branch, action)
}

fn koc_benches(c: &mut Criterion) {
    let berlin = TzRules(chrono_tz::Europe::Berlin);
    let txs: Vec<Transaction> = (0..100_000).map(transaction).collect();
    let all = WriteOptions {
        selection: Selection::All,
        branchcode: None,
    };
    c.bench_function("koc write 100k", |b| {
        b.iter(|| koc::write(black_box(&txs), &all, &berlin).unwrap())
    });
    let text = koc::write(&txs, &all, &berlin).unwrap().text;
    c.bench_function("koc read 100k", |b| {
        b.iter(|| koc::read(black_box(text.as_bytes()), &berlin, None))
    });
}

fn journal_benches(c: &mut Criterion) {
    let txs: Vec<Transaction> = (0..50_000).map(transaction).collect();
    c.bench_function("journal record 50k (build)", |b| {
        b.iter(|| {
            let mut journal = Journal::new();
            for tx in &txs {
                journal.record(tx.clone()).unwrap();
            }
            journal
        })
    });
    let mut journal = Journal::from_transactions(txs.clone());
    let extra = transaction(50_001);
    let now = extra.recorded_at;
    c.bench_function("journal warnings+record+delete at 50k", |b| {
        b.iter(|| {
            let warnings = journal.warnings_for(&extra.action, now);
            journal.record(extra.clone()).unwrap();
            journal.delete(&extra.id).unwrap();
            warnings
        })
    });
    c.bench_function("journal counts at 50k", |b| {
        b.iter(|| black_box(&journal).counts())
    });
    c.bench_function("journal page newest 50 at 50k", |b| {
        b.iter(|| journal.page(&Filter::default(), 0, 50).total)
    });
    c.bench_function("journal page filtered at 50k", |b| {
        b.iter(|| journal.page(&Filter::text("00123"), 0, 50).total)
    });
}

/// What a desk does at start with 50,000 stored (49,000 Koha applied, packed into chunks, and
/// 1,000 not sent, one key each): read the entries, then index them.
fn open_benches(c: &mut Criterion) {
    let mut txs: Vec<Transaction> = (0..50_000).map(transaction).collect();
    for tx in txs.iter_mut().skip(1_000) {
        let at = tx.recorded_at;
        tx.start_sending(at).unwrap();
        tx.finish_sending(at, Status::Applied).unwrap();
    }
    let packing = store::pack_plan(&txs);
    let packed: HashSet<_> = packing.packed.iter().cloned().collect();
    let mut entries: Vec<(String, Value)> = vec![("meta".into(), store::meta_value())];
    let single = txs.iter().filter(|tx| !packed.contains(&tx.id));
    for change in packing
        .changes
        .into_iter()
        .chain(single.map(|tx| store::write_plan(tx).primary))
    {
        if let Change::Put { key, value } = change {
            entries.push((key, value));
        }
    }
    c.bench_function("store open 50k (98 chunks + 1000 single keys)", |b| {
        b.iter(|| store::open(entries.clone(), Vec::new(), None).unwrap())
    });
    c.bench_function("journal index 50k (from opened)", |b| {
        b.iter(|| Journal::from_transactions(txs.clone()))
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = koc_benches, journal_benches, open_benches
}
criterion_main!(benches);
