//! Core benchmarks (.koc write/read, journal operations, the offline checks' snapshot). Run by
//! `./build.sh bench` (`cargo bench --bench core`); kept short: 10 samples, about a second each.
//! The checks' snapshot holds `KOC_BENCH_PATRONS` patrons (200,000 unless set) and
//! `KOC_BENCH_ITEMS` items (1,000,000), as issue 12 asks.
#![allow(clippy::unwrap_used)] // bench set-up: a panic is a failure with a message
#![allow(missing_docs)] // criterion_group! generates undocumented items

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use koha_offline_circ::checks::{
    self, CardLimits, Coverage, Holder, ItemRecord, ItemScan, PatronRecord, Restriction, Snapshot,
};
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

fn env_count(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A well-mixed hash of `n` (SplitMix64's finaliser), for records that look like a library's.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn chance(n: u64, stream: u64, per_mille: u64) -> bool {
    mix(n ^ (stream << 40)) % 1000 < per_mille
}

/// 14-digit card numbers rising with gaps of 1 to 4, expiry dates over five years, a few
/// patrons restricted, with a lost card, an address in doubt or a balance; two libraries.
fn patron(j: u64) -> PatronRecord {
    let from = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    PatronRecord {
        cardnumber: (21_000_000_000_000 + j * 4 + mix(j ^ 1 << 40) % 4).to_string(),
        patron_id: j as u32 + 1,
        expiry: Some(from + TimeDelta::days((mix(j ^ 4 << 40) % 1825) as i64)),
        restriction: if chance(j, 5, 10) {
            Restriction::Indefinite
        } else {
            Restriction::Unrestricted
        },
        card_lost: chance(j, 6, 5),
        address_in_doubt: chance(j, 7, 10),
        balance_cents: if chance(j, 8, 150) {
            (mix(j ^ 9 << 40) % 5_000) as i64 + 10
        } else {
            0
        },
        library: if mix(j ^ 3 << 40) % 2 == 0 {
            "CPL"
        } else {
            "MPL"
        }
        .to_owned(),
    }
}

/// Barcodes rising with gaps of 1 to 8, a few lost, withdrawn, not for loan or damaged, every
/// tenth on loan to some patron.
fn item(j: u64, patrons: u64) -> ItemRecord {
    ItemRecord {
        barcode: (39_000_000_000_000 + j * 8 + mix(j ^ 2 << 40) % 8).to_string(),
        lost: chance(j, 11, 10),
        withdrawn: chance(j, 12, 10),
        not_for_loan: chance(j, 13, 20),
        damaged: chance(j, 14, 5),
        on_loan: (j % 10 == 0).then(|| Holder::Patron((mix(j ^ 10 << 40) % patrons) as u32 + 1)),
    }
}

/// The offline checks at the issue's scale: the snapshot made, stored and read back, and a
/// scan looked up (card, item, and the desk's whole check of a checkout).
fn checks_benches(c: &mut Criterion) {
    let (np, ni) = (
        env_count("KOC_BENCH_PATRONS", 200_000),
        env_count("KOC_BENCH_ITEMS", 1_000_000),
    );
    let label = format!("{}k patrons + {}k items", np / 1000, ni / 1000);
    let patrons: Vec<PatronRecord> = (0..u64::from(np)).map(patron).collect();
    let items: Vec<ItemRecord> = (0..u64::from(ni))
        .map(|j| item(j, u64::from(np.max(1))))
        .collect();
    let taken = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let all = Coverage {
        patrons: true,
        items: true,
        checkouts: true,
    };
    let slow = |c: &mut Criterion, name: String, f: &mut dyn FnMut()| {
        c.bench_function(&name, |b| b.iter(&mut *f));
    };
    slow(c, format!("checks snapshot made ({label})"), &mut || {
        black_box(Snapshot::new(taken, all, patrons.clone(), items.clone()));
    });
    let snapshot = Snapshot::new(taken, all, patrons.clone(), items.clone());
    slow(
        c,
        format!("checks stored form written ({label})"),
        &mut || {
            black_box(checks::write_plan(&snapshot, None));
        },
    );
    let plan = checks::write_plan(&snapshot, None);
    let mut entries = std::collections::HashMap::new();
    for change in plan {
        if let Change::Put { key, value } = change {
            entries.insert(key, value);
        }
    }
    let meta = entries.get("checks:meta").cloned();
    slow(c, format!("checks stored form read ({label})"), &mut || {
        black_box(checks::read_snapshot(meta.as_ref(), |k| entries.get(k)).unwrap());
    });
    // Scans spread over the whole range: mostly known, some unknown (a typo).
    let scans = 4096u64;
    let cards: Vec<String> = (0..scans)
        .map(|n| patron(mix(n) % u64::from(np.max(1)) + n % 2).cardnumber)
        .collect();
    let barcodes: Vec<String> = (0..scans)
        .map(|n| item(mix(n ^ 77) % u64::from(ni.max(1)) + n % 2, 1).barcode)
        .collect();
    let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let limits = CardLimits {
        balance_cents: Some(2_000),
    };
    let mut n = 0usize;
    c.bench_function(&format!("checks card scan ({label})"), |b| {
        b.iter(|| {
            n = (n + 1) % cards.len();
            checks::check_card(&snapshot, &cards[n], limits, today, now)
        })
    });
    c.bench_function(&format!("checks item scan ({label})"), |b| {
        b.iter(|| {
            n = (n + 1) % barcodes.len();
            let scan = ItemScan {
                barcode: &barcodes[n],
                borrower: Some(&cards[n]),
                moved_here: false,
            };
            checks::check_item(&snapshot, scan, now)
        })
    });
    let journal = Journal::new();
    let actions: Vec<Action> = (0..scans as usize)
        .map(|n| Action::Issue {
            cardnumber: Cardnumber::parse(&cards[n]).unwrap(),
            barcode: Barcode::parse(&barcodes[n]).unwrap(),
        })
        .collect();
    c.bench_function(&format!("checks desk check of a checkout ({label})"), |b| {
        b.iter(|| {
            n = (n + 1) % actions.len();
            checks::desk_checks(&snapshot, &actions[n], &journal, limits, None, today, now)
        })
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
criterion_group! {
    name = checks;
    // A snapshot of a million items takes up to a second to make: ten of them.
    config = config().measurement_time(Duration::from_secs(8));
    targets = checks_benches
}
criterion_main!(benches, checks);
