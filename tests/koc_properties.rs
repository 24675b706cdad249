//! Property tests for `.koc` files.
//!
//! **Round trip.** For every list of valid transactions whose local times lie in 1970..=2037,
//! writing a file for zone `Z` and reading it back with zone `Z` gives, line for line in
//! ascending time order, the same action and the same instant truncated to the second — except
//! when that local time occurs twice in `Z` (the hour repeated when clocks go back): then the
//! row holds the **earlier** of the two instants and the reader warns `ambiguous-time` for that
//! line. No line is ever an error, and no other warning appears. (Local times that never occur
//! cannot be produced by the writer, so `skipped-time` never appears.)
//!
//! **Robustness.** Reading any bytes never panics, and every line is accounted for: it is the
//! header, a row, a line error, or a counted blank line.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with a message

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use koha_offline_circ::koc::{self, KocWarning, Selection, TimeBasis, WriteOptions};
use koha_offline_circ::zone::{from_local, to_local, FixedZone, LocalResolution, ZoneRules};
use koha_offline_circ::{
    Action, Amount, Barcode, Branchcode, Cardnumber, Transaction, TransactionId,
};
use proptest::prelude::*;
use std::sync::OnceLock;

/// Test adapter: real zone rules from chrono-tz.
struct TzRules(Tz);

impl ZoneRules for TzRules {
    fn offset_at(&self, instant: DateTime<Utc>) -> FixedOffset {
        self.0.offset_from_utc_datetime(&instant.naive_utc()).fix()
    }
}

#[derive(Debug, Clone, Copy)]
enum Zone {
    Utc,
    Fixed(i32),
    Berlin,
    NewYork,
}

impl Zone {
    fn rules(self) -> Box<dyn ZoneRules> {
        match self {
            Zone::Utc => Box::new(FixedZone::utc()),
            Zone::Fixed(secs) => Box::new(FixedZone(FixedOffset::east_opt(secs).unwrap())),
            Zone::Berlin => Box::new(TzRules(chrono_tz::Europe::Berlin)),
            Zone::NewYork => Box::new(TzRules(chrono_tz::America::New_York)),
        }
    }
}

/// Every offset change of Berlin and New York from 1971 to 2037, found by scanning hourly with
/// the zone rules (so the strategy can aim at the repeated and skipped hours).
fn transitions() -> &'static [DateTime<Utc>] {
    static ALL: OnceLock<Vec<DateTime<Utc>>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut found = Vec::new();
        for tz in [chrono_tz::Europe::Berlin, chrono_tz::America::New_York] {
            let rules = TzRules(tz);
            let mut t = Utc.with_ymd_and_hms(1971, 1, 1, 0, 0, 0).unwrap();
            let end = Utc.with_ymd_and_hms(2037, 12, 1, 0, 0, 0).unwrap();
            let mut offset = rules.offset_at(t);
            while t < end {
                let next = t + TimeDelta::hours(1);
                let o = rules.offset_at(next);
                if o != offset {
                    found.push(next);
                    offset = o;
                }
                t = next;
            }
        }
        found
    })
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let start = Utc
        .with_ymd_and_hms(1971, 1, 2, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let end = Utc
        .with_ymd_and_hms(2037, 12, 30, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let anywhere = (start..end).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap());
    let near_change = (0..transitions().len(), -10_800_000_i64..10_800_000)
        .prop_map(|(i, ms)| transitions()[i] + TimeDelta::milliseconds(ms));
    prop_oneof![anywhere, near_change]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    // Printable, no leading or trailing space (the newtypes trim), any length within the limit.
    proptest::string::string_regex(&format!(
        "[A-Za-z0-9äé/.-][A-Za-z0-9äé /.-]{{0,{}}}",
        max - 2
    ))
    .unwrap()
    .prop_map(|s| s.trim_end().to_owned())
}

fn card() -> impl Strategy<Value = Cardnumber> {
    text(32).prop_map(|s| Cardnumber::parse(&s).unwrap())
}

fn barcode() -> impl Strategy<Value = Barcode> {
    text(20).prop_map(|s| Barcode::parse(&s).unwrap())
}

fn action() -> impl Strategy<Value = Action> {
    let amount = (1u64..=100_000_000).prop_map(|c| Amount::from_cents(c).unwrap());
    prop_oneof![
        (card(), barcode()).prop_map(|(cardnumber, barcode)| Action::Issue {
            cardnumber,
            barcode
        }),
        barcode().prop_map(|barcode| Action::Return { barcode }),
        (card(), amount).prop_map(|(cardnumber, amount)| Action::Payment { cardnumber, amount }),
    ]
}

fn transactions() -> impl Strategy<Value = Vec<Transaction>> {
    proptest::collection::vec((instant(), action(), any::<u64>(), 0..3usize), 0..25).prop_map(
        |rows| {
            rows.into_iter()
                .map(|(at, action, random, branch)| {
                    Transaction::record(
                        TransactionId::new(at, random),
                        at,
                        Branchcode::parse(["CPL", "MPL", "DE-627"][branch]).unwrap(),
                        action,
                    )
                })
                .collect()
        },
    )
}

fn zone() -> impl Strategy<Value = Zone> {
    prop_oneof![
        Just(Zone::Utc),
        (-12 * 4..=14 * 4).prop_map(|q| Zone::Fixed(q * 900)),
        Just(Zone::Berlin),
        Just(Zone::NewYork),
    ]
}

fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn write_then_read_round_trips(txs in transactions(), zone in zone()) {
        let rules = zone.rules();
        let options = WriteOptions { selection: Selection::All, branchcode: None };
        let file = koc::write(&txs, &options, rules.as_ref()).unwrap();
        let read = koc::read(file.text.as_bytes(), rules.as_ref(), None);

        prop_assert!(read.errors.is_empty(), "{:?}", read.errors);
        prop_assert_eq!(read.basis, TimeBasis::ServerZone);
        let mut sorted: Vec<&Transaction> = txs.iter().collect();
        sorted.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
        prop_assert_eq!(read.rows.len(), sorted.len());
        let ids: Vec<&TransactionId> = sorted.iter().map(|t| &t.id).collect();
        prop_assert_eq!(file.ids.iter().collect::<Vec<_>>(), ids);

        let mut ambiguous_lines = Vec::new();
        for (row, tx) in read.rows.iter().zip(&sorted) {
            let exact = whole_seconds(tx.recorded_at);
            prop_assert_eq!(&row.action, &tx.action);
            prop_assert_eq!(row.local, to_local(exact, rules.as_ref()));
            match from_local(row.local, rules.as_ref()) {
                LocalResolution::Unique(at) => {
                    prop_assert_eq!(at, exact);
                    prop_assert_eq!(row.at, exact);
                }
                LocalResolution::Ambiguous { earlier, later } => {
                    prop_assert!(exact == earlier || exact == later);
                    prop_assert_eq!(row.at, earlier);
                    ambiguous_lines.push(KocWarning::AmbiguousTime { line: row.line });
                }
                LocalResolution::Skipped { .. } => {
                    prop_assert!(false, "the writer produced a skipped local time");
                }
            }
        }
        prop_assert_eq!(read.warnings, ambiguous_lines);
    }

    #[test]
    fn reading_any_bytes_never_panics_and_accounts_for_every_line(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        check_accounting(&bytes);
    }

    #[test]
    fn reading_koc_like_text_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("Version=1.0"), Just("Version=2"), Just("Generator=koct-firefox"),
                Just("\t"), Just("\r\n"), Just("\n"), Just("\r"), Just(" "), Just("\u{feff}"),
                Just("2026-10-25"), Just("2026-03-29"), Just("02:30:00"), Just("14-05-09"),
                Just("1969-12-31"), Just("99"), Just("issue"), Just("return"), Just("payment"),
                Just("Issue"), Just("C1"), Just("B1"), Just("1.50"), Just("1,50"), Just("0"),
                Just("123456789012345678901"), Just("\u{7}"), Just("ü"), Just("="),
            ],
            0..60,
        )
    ) {
        let text: String = parts.concat();
        check_accounting(text.as_bytes());
        let _ = koc::read(text.as_bytes(), &TzRules(chrono_tz::Europe::Berlin), None);
        let _ = koc::read(text.as_bytes(), &FixedZone::utc(), Some(TimeBasis::Utc));
    }
}

/// Reads `bytes` and checks that header + rows + errors + blank lines = lines, where lines are
/// counted here independently: after a leading BOM, CRLF and lone CR become LF, and a final LF
/// does not start another line.
fn check_accounting(bytes: &[u8]) {
    let read = koc::read(bytes, &TzRules(chrono_tz::America::New_York), None);
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut normalised = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\r' {
            normalised.push(b'\n');
            if body.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else {
            normalised.push(body[i]);
        }
        i += 1;
    }
    let mut lines = normalised.split(|&b| b == b'\n').count();
    if normalised.is_empty() || normalised.ends_with(b"\n") {
        lines -= 1;
    }
    let blank = read
        .warnings
        .iter()
        .find_map(|w| match w {
            KocWarning::BlankLines { count } => Some(*count),
            _ => None,
        })
        .unwrap_or(0);
    let header = usize::from(read.header.is_some());
    assert_eq!(
        header + read.rows.len() + read.errors.len() + blank,
        lines,
        "{bytes:?}"
    );
    let mut numbers: Vec<usize> = read
        .rows
        .iter()
        .map(|r| r.line)
        .chain(read.errors.iter().map(|e| e.line))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        read.rows.len() + read.errors.len(),
        "one outcome per line"
    );
    assert!(numbers.iter().all(|&n| n >= 1 && n <= lines));
}
