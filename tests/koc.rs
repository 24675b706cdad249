//! `.koc` writing and reading, table tests per rule, golden files, and zones with real DST rules.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with a message

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use koha_offline_circ::koc::{
    self, KocWarning, KocWriteError, LineError, LineErrorReason, Selection, TimeBasis,
    WriteOptions, GENERATOR_VERSION,
};
use koha_offline_circ::zone::{from_local, to_local, FixedZone, LocalResolution, ZoneRules};
use koha_offline_circ::{
    Action, Amount, Barcode, Branchcode, Cardnumber, Field, InputError, Status, Transaction,
    TransactionId,
};

/// Test adapter: real zone rules from chrono-tz (the wasm shell uses the browser's `Intl`).
struct TzRules(Tz);

impl ZoneRules for TzRules {
    fn offset_at(&self, instant: DateTime<Utc>) -> FixedOffset {
        self.0.offset_from_utc_datetime(&instant.naive_utc()).fix()
    }
}

const BERLIN: TzRules = TzRules(chrono_tz::Europe::Berlin);
const NEW_YORK: TzRules = TzRules(chrono_tz::America::New_York);

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn naive(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, s)
        .unwrap()
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

fn tx_at(at: DateTime<Utc>, n: u64, branch: &str, action: Action) -> Transaction {
    Transaction::record(
        TransactionId::new(at, n),
        at,
        Branchcode::parse(branch).unwrap(),
        action,
    )
}

fn queued(mut t: Transaction) -> Transaction {
    t.start_sending(t.recorded_at).unwrap();
    t.finish_sending(t.recorded_at, Status::Queued).unwrap();
    t
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Transactions around both 2026 DST changes in Berlin, in scrambled order, plus one accepted
/// by Koha and one of another library.
fn berlin_desk() -> Vec<Transaction> {
    vec![
        tx_at(
            utc(2026, 10, 25, 1, 30, 0),
            4,
            "CPL",
            issue("23529000099999", "39999000004571"),
        ),
        tx_at(
            utc(2026, 3, 29, 0, 59, 59),
            1,
            "CPL",
            issue("23529000035676", "39999000001310"),
        ),
        queued(tx_at(
            utc(2026, 6, 1, 10, 0, 0),
            6,
            "CPL",
            checkin("39999000000001"),
        )),
        tx_at(
            utc(2026, 10, 25, 0, 30, 0),
            3,
            "CPL",
            payment("23529000035676", "12.5"),
        ),
        tx_at(
            utc(2026, 7, 1, 12, 0, 0),
            7,
            "MPL",
            checkin("39999000000002"),
        ),
        tx_at(
            utc(2026, 3, 29, 1, 0, 0),
            2,
            "CPL",
            checkin("39999000001310"),
        ),
        tx_at(
            utc(2026, 10, 25, 2, 0, 0),
            5,
            "CPL",
            checkin("39999000004571"),
        ),
    ]
}

fn cpl() -> WriteOptions {
    WriteOptions {
        selection: Selection::NotAccepted,
        branchcode: Some(Branchcode::parse("CPL").unwrap()),
    }
}

// ---------------------------------------------------------------------------------------------
// Zones with real rules
// ---------------------------------------------------------------------------------------------

#[test]
fn real_zones_repeated_and_skipped_hours() {
    let cases: [(&TzRules, NaiveDateTime, LocalResolution); 6] = [
        (
            &BERLIN,
            naive(2026, 3, 29, 2, 30, 0),
            LocalResolution::Skipped {
                instant: utc(2026, 3, 29, 1, 30, 0),
                gap: chrono::TimeDelta::hours(1),
            },
        ),
        (
            &BERLIN,
            naive(2026, 10, 25, 2, 30, 0),
            LocalResolution::Ambiguous {
                earlier: utc(2026, 10, 25, 0, 30, 0),
                later: utc(2026, 10, 25, 1, 30, 0),
            },
        ),
        (
            &BERLIN,
            naive(2026, 10, 25, 3, 0, 0),
            LocalResolution::Unique(utc(2026, 10, 25, 2, 0, 0)),
        ),
        (
            &NEW_YORK,
            naive(2026, 3, 8, 2, 15, 0),
            LocalResolution::Skipped {
                instant: utc(2026, 3, 8, 7, 15, 0),
                gap: chrono::TimeDelta::hours(1),
            },
        ),
        (
            &NEW_YORK,
            naive(2026, 11, 1, 1, 30, 0),
            LocalResolution::Ambiguous {
                earlier: utc(2026, 11, 1, 5, 30, 0),
                later: utc(2026, 11, 1, 6, 30, 0),
            },
        ),
        (
            &NEW_YORK,
            naive(2026, 7, 4, 12, 0, 0),
            LocalResolution::Unique(utc(2026, 7, 4, 16, 0, 0)),
        ),
    ];
    for (zone, local, expected) in cases {
        assert_eq!(from_local(local, zone), expected, "{local}");
        // Whatever the case, the chosen instant shows the local time, or the one the gap moved
        // it to.
        let back = to_local(expected.instant(), zone);
        match expected {
            LocalResolution::Skipped { gap, .. } => assert_eq!(back, local + gap),
            _ => assert_eq!(back, local),
        }
    }
    // Agrees with chrono-tz on every quarter hour of both change days.
    for day in [naive(2026, 3, 29, 0, 0, 0), naive(2026, 10, 25, 0, 0, 0)] {
        for q in 0..96 {
            let local = day + chrono::TimeDelta::minutes(15 * q);
            let ours = from_local(local, &BERLIN);
            let theirs = chrono_tz::Europe::Berlin.from_local_datetime(&local);
            match theirs {
                chrono::LocalResult::Single(t) => {
                    assert_eq!(ours, LocalResolution::Unique(t.with_timezone(&Utc)))
                }
                chrono::LocalResult::Ambiguous(a, b) => assert_eq!(
                    ours,
                    LocalResolution::Ambiguous {
                        earlier: a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
                        later: a.with_timezone(&Utc).max(b.with_timezone(&Utc)),
                    }
                ),
                chrono::LocalResult::None => assert_eq!(ours.kind(), "skipped", "{local}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

#[test]
fn writer_golden_file_berlin() {
    let desk = berlin_desk();
    let file = koc::write(&desk, &cpl(), &BERLIN).unwrap();
    let golden = String::from_utf8(fixture("koha-offline-circ-own.koc"))
        .unwrap()
        .replace(
            "GeneratorVersion=0.1.0",
            &format!("GeneratorVersion={GENERATOR_VERSION}"),
        );
    assert_eq!(file.text, golden);
    let ids: Vec<u64> = file
        .ids
        .iter()
        .map(|id| desk.iter().position(|t| &t.id == id).unwrap() as u64)
        .collect();
    assert_eq!(ids, vec![1, 5, 3, 0, 6], "ascending time");
}

#[test]
fn writer_layout_rules() {
    let file = koc::write(&berlin_desk(), &cpl(), &BERLIN).unwrap();
    let text = &file.text;
    assert!(!text.starts_with('\u{feff}'), "no byte-order mark");
    assert_eq!(
        text.split("\r\n").next().unwrap(),
        format!("Version=1.0\tGenerator=koha-offline-circ\tGeneratorVersion={GENERATOR_VERSION}")
    );
    assert_eq!(koc::header(), text.split("\r\n").next().unwrap());
    assert!(
        !text.ends_with('\n') && !text.ends_with('\r'),
        "no line end after the last line"
    );
    assert_eq!(
        text.matches('\n').count(),
        text.matches("\r\n").count(),
        "CRLF only"
    );
    assert_eq!(
        text.matches('\r').count(),
        text.matches("\r\n").count(),
        "no lone CR"
    );
    for line in text.split("\r\n") {
        assert!(!line.is_empty(), "no blank line");
        assert!(!line.ends_with('\t'), "no trailing tab: {line:?}");
        assert!(!line.contains("\t\t"), "no empty field: {line:?}");
    }
    // An empty selection is the header alone.
    let none = koc::write(&[], &WriteOptions::default(), &BERLIN).unwrap();
    assert_eq!(none.text, koc::header());
    assert!(none.ids.is_empty());
}

#[test]
fn selection_default_all_and_ids() {
    let desk = berlin_desk();
    let lines = |options: &WriteOptions| {
        koc::write(&desk, options, &BERLIN)
            .unwrap()
            .text
            .split("\r\n")
            .count()
            - 1
    };
    // Default: every library, not the queued one.
    assert_eq!(lines(&WriteOptions::default()), 6);
    let all = WriteOptions {
        selection: Selection::All,
        branchcode: None,
    };
    assert_eq!(lines(&all), 7);
    let queued_id = desk[2].id.clone();
    let only = WriteOptions {
        selection: Selection::Ids(vec![queued_id.clone(), desk[4].id.clone()]),
        branchcode: None,
    };
    let file = koc::write(&desk, &only, &BERLIN).unwrap();
    assert_eq!(file.ids, vec![queued_id, desk[4].id.clone()]);
    assert!(file
        .text
        .ends_with("2026-07-01 14:00:00\treturn\t39999000000002"));

    let unknown = WriteOptions {
        selection: Selection::Ids(vec![TransactionId::from_stored("gone")]),
        branchcode: None,
    };
    let err = koc::write(&desk, &unknown, &BERLIN).unwrap_err();
    assert_eq!(err.kind(), "unknown-transaction");
    assert_eq!(err.to_string(), "transaction gone is not in the journal");
}

#[test]
fn one_file_per_library() {
    let desk = berlin_desk();
    let codes: Vec<String> = koc::branchcodes(&desk, &Selection::NotAccepted)
        .iter()
        .map(|b| b.to_string())
        .collect();
    assert_eq!(codes, vec!["CPL", "MPL"]);
    let only_cpl = Selection::Ids(vec![desk[0].id.clone()]);
    assert_eq!(koc::branchcodes(&desk, &only_cpl).len(), 1);
    // An id that is gone: listing ignores it, writing reports it.
    let with_gone = Selection::Ids(vec![desk[4].id.clone(), TransactionId::from_stored("gone")]);
    let listed: Vec<String> = koc::branchcodes(&desk, &with_gone)
        .iter()
        .map(|b| b.to_string())
        .collect();
    assert_eq!(listed, vec!["MPL"]);
    assert_eq!(
        koc::write_per_library(&desk, &with_gone, &BERLIN).unwrap_err(),
        KocWriteError::UnknownTransaction {
            id: TransactionId::from_stored("gone")
        }
    );

    let files = koc::write_per_library(&desk, &Selection::NotAccepted, &BERLIN).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].0.as_str(), "CPL");
    assert_eq!(files[0].1.ids.len(), 5);
    assert_eq!(
        files[1].1.text,
        format!(
            "{}\r\n2026-07-01 14:00:00\treturn\t39999000000002",
            koc::header()
        )
    );
    let mpl = WriteOptions {
        selection: Selection::NotAccepted,
        branchcode: Some(Branchcode::parse("MPL").unwrap()),
    };
    assert_eq!(koc::write(&desk, &mpl, &BERLIN).unwrap(), files[1].1);
}

#[test]
fn writer_refuses_times_koha_cannot_store() {
    for at in [utc(1969, 12, 31, 23, 0, 0), utc(2038, 1, 1, 0, 0, 0)] {
        let t = tx_at(at, 1, "CPL", checkin("B1"));
        let err = koc::write([&t], &WriteOptions::default(), &FixedZone::utc()).unwrap_err();
        assert_eq!(err.kind(), "out-of-range");
        assert_eq!(err, KocWriteError::OutOfRange { id: t.id.clone() });
        assert_eq!(
            err.to_string(),
            format!("transaction {} has a time outside 1970 to 2037", t.id)
        );
    }
    // The limit is on the local time: 23:30 UTC on 31 Dec 1969 is 1970 in Berlin.
    let t = tx_at(utc(1969, 12, 31, 23, 30, 0), 1, "CPL", checkin("B1"));
    assert!(koc::write([&t], &WriteOptions::default(), &BERLIN).is_ok());
}

/// Koha's reading of a `.koc` file (docs/koha.md 9.2), written here from the rules and not
/// with our reader: split at LF; the first line is the header; strip every CR; split at TAB; drop
/// trailing empty fields; field 1 the time stamp (split at single whitespace into date, time and
/// an ignored token), field 2 the command, the rest by command.
#[derive(Debug, PartialEq, Eq)]
struct KohaRow {
    timestamp: String,
    action: String,
    barcode: Option<String>,
    cardnumber: Option<String>,
    amount: Option<String>,
}

fn koha_reads(bytes: &[u8]) -> (String, Vec<KohaRow>) {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    // Perl's split drops trailing empty fields; keep the check strict anyway: a final empty
    // piece would be a blank line.
    let header = lines.remove(0).replace('\r', "");
    let mut rows = Vec::new();
    for line in lines {
        let line = line.replace('\r', "");
        let mut fields: Vec<&str> = line.split('\t').collect();
        while fields.last() == Some(&"") {
            fields.pop();
        }
        assert!(!fields.is_empty(), "a blank line: Koha stops with HTTP 500");
        let stamp: Vec<&str> = fields[0].split(char::is_whitespace).collect();
        assert!(stamp.len() >= 2, "date and time: {:?}", fields[0]);
        let get = |i: usize| fields.get(i).map(|s| s.to_string());
        let action = fields[1].to_string();
        let (barcode, cardnumber, amount) = match action.as_str() {
            "issue" => (get(3), get(2), None),
            "return" => (get(2), None, None),
            "payment" => (None, get(2), get(3)),
            other => panic!("unknown command {other:?}: Koha stops with HTTP 500"),
        };
        rows.push(KohaRow {
            timestamp: format!("{} {}", stamp[0], stamp[1]),
            action,
            barcode,
            cardnumber,
            amount,
        });
    }
    (header, rows)
}

#[test]
fn koha_reads_exactly_the_intended_lines_around_berlin_dst_changes() {
    let file = koc::write(&berlin_desk(), &cpl(), &BERLIN).unwrap();
    let (header, rows) = koha_reads(file.text.as_bytes());
    let version: Vec<(&str, &str)> = header
        .split('\t')
        .map(|part| part.split_once('=').unwrap())
        .collect();
    assert_eq!(
        version,
        vec![
            ("Version", "1.0"),
            ("Generator", "koha-offline-circ"),
            ("GeneratorVersion", GENERATOR_VERSION)
        ]
    );
    let row = |timestamp: &str,
               action: &str,
               card: Option<&str>,
               barcode: Option<&str>,
               amount: Option<&str>| KohaRow {
        timestamp: timestamp.into(),
        action: action.into(),
        cardnumber: card.map(Into::into),
        barcode: barcode.map(Into::into),
        amount: amount.map(Into::into),
    };
    assert_eq!(
        rows,
        vec![
            // 00:59:59 UTC, the last second of CET before clocks go forward.
            row(
                "2026-03-29 01:59:59",
                "issue",
                Some("23529000035676"),
                Some("39999000001310"),
                None
            ),
            // 01:00:00 UTC is 03:00 CEST: 02:xx never appears.
            row(
                "2026-03-29 03:00:00",
                "return",
                None,
                Some("39999000001310"),
                None
            ),
            // 00:30 UTC is 02:30 CEST, the first pass through the repeated hour.
            row(
                "2026-10-25 02:30:00",
                "payment",
                Some("23529000035676"),
                None,
                Some("12.50")
            ),
            // 01:30 UTC is 02:30 CET, the second pass.
            row(
                "2026-10-25 02:30:00",
                "issue",
                Some("23529000099999"),
                Some("39999000004571"),
                None
            ),
            row(
                "2026-10-25 03:00:00",
                "return",
                None,
                Some("39999000004571"),
                None
            ),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Reader: golden files of real generators
// ---------------------------------------------------------------------------------------------

#[test]
fn reads_koct_files_as_utc_with_trailing_tabs() {
    let read = koc::read(&fixture("koct-firefox-0.1.koc"), &BERLIN, None);
    assert!(read.errors.is_empty(), "{:?}", read.errors);
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    assert_eq!(read.detected_basis, TimeBasis::Utc);
    assert_eq!(read.basis, TimeBasis::Utc);
    let header = read.header.as_ref().unwrap();
    assert_eq!(header.generator.as_deref(), Some("koct-firefox"));
    assert_eq!(header.generator_version.as_deref(), Some("0.1"));
    let got: Vec<(usize, DateTime<Utc>, Action)> = read
        .rows
        .iter()
        .map(|r| (r.line, r.at, r.action.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                2,
                utc(2026, 3, 28, 23, 30, 0),
                issue("23529000035676", "39999000001310")
            ),
            (3, utc(2026, 3, 29, 1, 15, 0), checkin("39999000001310")),
            (
                4,
                utc(2026, 10, 25, 2, 30, 0),
                issue("23529000035676", "39999000004571")
            ),
        ]
    );
    // The librarian can say the file is in the server's zone after all.
    let local = koc::read(
        &fixture("koct-firefox-0.1.koc"),
        &BERLIN,
        Some(TimeBasis::ServerZone),
    );
    assert_eq!(local.detected_basis, TimeBasis::Utc);
    assert_eq!(local.basis, TimeBasis::ServerZone);
    assert_eq!(local.rows[0].at, utc(2026, 3, 28, 22, 30, 0));
    // 02:30 on 25 Oct is the repeated hour in Berlin: earlier instant, and a warning.
    assert_eq!(local.rows[2].at, utc(2026, 10, 25, 0, 30, 0));
    assert_eq!(local.warnings, vec![KocWarning::AmbiguousTime { line: 4 }]);
}

#[test]
fn reads_kocdesktop_files_with_dashes_and_milliseconds() {
    let read = koc::read(&fixture("kocdesktop-2.4.0.koc"), &BERLIN, None);
    assert!(read.errors.is_empty() && read.warnings.is_empty());
    assert_eq!(read.basis, TimeBasis::ServerZone);
    let got: Vec<(NaiveDateTime, DateTime<Utc>, Action)> = read
        .rows
        .iter()
        .map(|r| (r.local, r.at, r.action.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                naive(2026, 3, 28, 14, 5, 9),
                utc(2026, 3, 28, 13, 5, 9),
                issue("23529000035676", "39999000001310")
            ),
            (
                naive(2026, 3, 28, 14, 6, 10),
                utc(2026, 3, 28, 13, 6, 10),
                checkin("39999000001310")
            ),
            (
                naive(2026, 3, 28, 14, 7, 11),
                utc(2026, 3, 28, 13, 7, 11),
                payment("23529000035676", "12.50")
            ),
        ]
    );
}

#[test]
fn reads_the_wiki_example() {
    let zone = FixedZone(FixedOffset::east_opt(2 * 3600).unwrap());
    let read = koc::read(&fixture("wiki-kocphp-0.7.koc"), &zone, None);
    assert!(read.errors.is_empty() && read.warnings.is_empty());
    let header = read.header.unwrap();
    assert_eq!(
        (
            header.version.as_deref(),
            header.generator.as_deref(),
            header.generator_version.as_deref()
        ),
        (Some("1.0"), Some("kocPHP"), Some("0.7"))
    );
    let got: Vec<(usize, DateTime<Utc>, Action)> = read
        .rows
        .iter()
        .map(|r| (r.line, r.at, r.action.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                2,
                utc(2008, 6, 11, 10, 24, 11),
                issue("85947584", "8364585674")
            ),
            (3, utc(2008, 6, 11, 10, 24, 13), checkin("9485694847")),
            (4, utc(2008, 6, 11, 10, 24, 14), payment("90035676", "1.05")),
        ]
    );
}

#[test]
fn reads_our_own_golden_file_back() {
    let read = koc::read(&fixture("koha-offline-circ-own.koc"), &BERLIN, None);
    assert!(read.errors.is_empty());
    assert_eq!(read.basis, TimeBasis::ServerZone);
    assert_eq!(
        read.header.unwrap().generator.as_deref(),
        Some("koha-offline-circ")
    );
    let ats: Vec<DateTime<Utc>> = read.rows.iter().map(|r| r.at).collect();
    assert_eq!(
        ats,
        vec![
            utc(2026, 3, 29, 0, 59, 59),
            utc(2026, 3, 29, 1, 0, 0),
            utc(2026, 10, 25, 0, 30, 0),
            // Written at 01:30 UTC, but 02:30 local is ambiguous: the earlier instant.
            utc(2026, 10, 25, 0, 30, 0),
            utc(2026, 10, 25, 2, 0, 0),
        ]
    );
    assert_eq!(
        read.warnings,
        vec![
            KocWarning::AmbiguousTime { line: 4 },
            KocWarning::AmbiguousTime { line: 5 }
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Reader: one table per rule
// ---------------------------------------------------------------------------------------------

const HEADER: &str = "Version=1.0\tGenerator=test\tGeneratorVersion=1";

fn read_utc(text: &[u8]) -> koc::KocImport {
    koc::read(text, &FixedZone::utc(), None)
}

#[test]
fn line_ends_bom_and_blank_lines() {
    let body = "2026-01-01 10:00:00\treturn\tB1";
    let cases: [(Vec<u8>, usize, Vec<usize>); 6] = [
        (
            format!("{HEADER}\n{body}\n{body}").into_bytes(),
            0,
            vec![2, 3],
        ),
        (
            format!("{HEADER}\r\n{body}\r\n{body}\r\n").into_bytes(),
            0,
            vec![2, 3],
        ),
        (
            format!("{HEADER}\r{body}\r{body}").into_bytes(),
            0,
            vec![2, 3],
        ),
        (format!("\u{feff}{HEADER}\n{body}").into_bytes(), 0, vec![2]),
        (
            format!("{HEADER}\n\n{body}\r\n \t\r\n{body}\n\n").into_bytes(),
            3,
            vec![3, 5],
        ),
        (format!("\n{HEADER}\n{body}").into_bytes(), 1, vec![3]),
    ];
    for (bytes, blanks, lines) in cases {
        let read = read_utc(&bytes);
        assert!(read.header.is_some(), "{bytes:?}");
        assert!(read.errors.is_empty(), "{bytes:?}: {:?}", read.errors);
        let got: Vec<usize> = read.rows.iter().map(|r| r.line).collect();
        assert_eq!(got, lines, "{bytes:?}");
        let expected: Vec<KocWarning> = (blanks > 0)
            .then_some(KocWarning::BlankLines { count: blanks })
            .into_iter()
            .collect();
        assert_eq!(read.warnings, expected, "{bytes:?}");
    }
}

#[test]
fn header_detection_and_version() {
    // No header: warn, and line 1 is a transaction.
    let read = read_utc(b"2026-01-01 10:00:00\treturn\tB1\n2026-01-01 10:00:01\treturn\tB2");
    assert!(read.header.is_none());
    assert_eq!(read.rows.len(), 2);
    assert_eq!(read.rows[0].line, 1);
    assert_eq!(read.warnings, vec![KocWarning::NoHeader]);
    assert_eq!(KocWarning::NoHeader.to_string(), "the file has no header");

    for (header, version) in [
        ("Version=2.0\tGenerator=x", "2.0"),
        ("Version=\tGenerator=x", ""),
    ] {
        let read = read_utc(format!("{header}\n2026-01-01 10:00:00\treturn\tB1").as_bytes());
        assert_eq!(read.rows.len(), 1, "the import continues");
        assert_eq!(
            read.warnings,
            vec![KocWarning::UnknownVersion {
                version: version.into()
            }]
        );
    }
    assert_eq!(
        KocWarning::UnknownVersion {
            version: "2.0".into()
        }
        .to_string(),
        "file version \"2.0\" is not 1.0"
    );
    // `Generator` is case-sensitive: only exactly `koct-firefox` means UTC.
    let read = koc::read(b"Version=1.0\tGenerator=KOCT-firefox", &BERLIN, None);
    assert_eq!(read.basis, TimeBasis::ServerZone);
}

#[test]
fn fields_trailing_extra_and_missing() {
    let ok_cases = [
        ("2026-01-01 10:00:00\tissue\tC1\tB1\t\t\t", vec![]),
        (
            "2026-01-01 10:00:00\tissue\tC1\tB1\tX\t",
            vec![KocWarning::ExtraFields { line: 2, count: 1 }],
        ),
        (
            "2026-01-01 10:00:00\treturn\tB1\t\tB2",
            vec![KocWarning::ExtraFields { line: 2, count: 2 }],
        ),
        ("2026-01-01 10:00:00\tpayment\tC1\t1.50\t", vec![]),
    ];
    for (line, warnings) in ok_cases {
        let read = read_utc(format!("{HEADER}\n{line}").as_bytes());
        assert!(read.errors.is_empty(), "{line:?}: {:?}", read.errors);
        assert_eq!(read.rows.len(), 1, "{line:?}");
        assert_eq!(read.warnings, warnings, "{line:?}");
    }
    assert_eq!(
        KocWarning::ExtraFields { line: 2, count: 1 }.to_string(),
        "line 2: 1 extra fields ignored"
    );
}

#[test]
fn bad_lines_each_have_their_own_kind() {
    let long = "1".repeat(21);
    let cases: Vec<(String, LineErrorReason)> = vec![
        (
            "2026-01-01 10:00:00".into(),
            LineErrorReason::MissingCommand,
        ),
        (
            "2026-01-01 10:00:00\tIssue\tC1\tB1".into(),
            LineErrorReason::UnknownCommand {
                command: "Issue".into(),
            },
        ),
        (
            "2026-01-01 10:00:00\trenew\tC1\tB1".into(),
            LineErrorReason::UnknownCommand {
                command: "renew".into(),
            },
        ),
        (
            "2026-01-01 10:00:00\tissue\tC1".into(),
            LineErrorReason::MissingField {
                field: Field::Barcode,
            },
        ),
        (
            "2026-01-01 10:00:00\tissue".into(),
            LineErrorReason::MissingField {
                field: Field::Cardnumber,
            },
        ),
        (
            "2026-01-01 10:00:00\treturn\t\t".into(),
            LineErrorReason::MissingField {
                field: Field::Barcode,
            },
        ),
        (
            "2026-01-01 10:00:00\tpayment\tC1".into(),
            LineErrorReason::MissingField {
                field: Field::Amount,
            },
        ),
        (
            "2026-01-01 10:00:00\tpayment\tC1\t1,50".into(),
            LineErrorReason::CommaInAmount,
        ),
        (
            "2026-01-01 10:00:00\tpayment\tC1\t0".into(),
            LineErrorReason::Invalid(InputError::AmountNotPositive),
        ),
        (
            "2026-01-01 10:00:00\tpayment\tC1\tabc".into(),
            LineErrorReason::Invalid(InputError::AmountFormat),
        ),
        (
            format!("2026-01-01 10:00:00\treturn\t{long}"),
            LineErrorReason::Invalid(InputError::TooLong {
                field: Field::Barcode,
                max: 20,
            }),
        ),
        (
            "2026-01-01 10:00:00\tissue\t\tB1".into(),
            LineErrorReason::Invalid(InputError::Empty {
                field: Field::Cardnumber,
            }),
        ),
        (
            "2026-01-01 10:00:00\treturn\tB\u{7}1".into(),
            LineErrorReason::Invalid(InputError::ControlCharacter {
                field: Field::Barcode,
            }),
        ),
        (
            "1969-12-31 23:59:59\treturn\tB1".into(),
            LineErrorReason::TimestampOutOfRange {
                text: "1969-12-31 23:59:59".into(),
            },
        ),
        (
            "2038-01-01 00:00:00\treturn\tB1".into(),
            LineErrorReason::TimestampOutOfRange {
                text: "2038-01-01 00:00:00".into(),
            },
        ),
    ];
    for (line, reason) in &cases {
        let read =
            read_utc(format!("{HEADER}\n2026-01-01 09:00:00\treturn\tB0\n{line}").as_bytes());
        assert_eq!(read.rows.len(), 1, "{line:?}: the good line is kept");
        assert_eq!(
            read.errors,
            vec![LineError {
                line: 3,
                reason: reason.clone()
            }],
            "{line:?}"
        );
    }
    let bad_timestamps = [
        "2026-01-01T10:00:00",
        "2026-01-01  10:00:00",
        "2026-01-01 10:00",
        "2026-01-01 10:00:00.123",
        "2026-01-01 10:00:00 ",
        "2026-01-01 10:00:00 1 2",
        "2026-01-01 10:00:00Z",
        "2026-01-01 24:00:00",
        "2026-01-01 10:60:00",
        "2026-01-01 10:00:60",
        "2026-13-01 10:00:00",
        "2026-02-30 10:00:00",
        "26-01-01 10:00:00",
        "2026-1-01 10:00:00",
        "2026-01-01 10:00-00",
        "2026-01-01 +1:00:00",
        "",
        " 2026-01-01 10:00:00",
        "31/01/2025 10:00:00",
        "0000-00-00 00:00:00",
    ];
    for stamp in bad_timestamps {
        let read = read_utc(format!("{HEADER}\n{stamp}\treturn\tB1").as_bytes());
        assert!(read.rows.is_empty(), "{stamp:?}");
        assert_eq!(read.errors.len(), 1, "{stamp:?}");
        assert_eq!(read.errors[0].kind(), "bad-timestamp", "{stamp:?}");
    }
    let good_timestamps = [
        ("2026-01-01 10:00:00", naive(2026, 1, 1, 10, 0, 0)),
        ("2026-01-01 10-00-01", naive(2026, 1, 1, 10, 0, 1)),
        ("2026-01-01 23:59:59 547", naive(2026, 1, 1, 23, 59, 59)),
        ("2026-02-28 00-00-00 id-7", naive(2026, 2, 28, 0, 0, 0)),
    ];
    for (stamp, local) in good_timestamps {
        let read = read_utc(format!("{HEADER}\n{stamp}\treturn\tB1").as_bytes());
        assert_eq!(read.rows.len(), 1, "{stamp:?}: {:?}", read.errors);
        assert_eq!(read.rows[0].local, local);
    }
}

#[test]
fn line_error_kinds_and_messages() {
    let cases: [(LineErrorReason, &str, &str); 9] = [
        (
            LineErrorReason::InvalidUtf8,
            "invalid-utf8",
            "line 7: not valid UTF-8 text",
        ),
        (
            LineErrorReason::MissingCommand,
            "missing-command",
            "line 7: no command",
        ),
        (
            LineErrorReason::UnknownCommand {
                command: "Issue".into(),
            },
            "unknown-command",
            "line 7: unknown command \"Issue\"",
        ),
        (
            LineErrorReason::MissingField {
                field: Field::Barcode,
            },
            "missing-field",
            "line 7: barcode is missing",
        ),
        (
            LineErrorReason::CommaInAmount,
            "comma-in-amount",
            "line 7: amount has a comma",
        ),
        (
            LineErrorReason::BadTimestamp { text: "x".into() },
            "bad-timestamp",
            "line 7: time stamp \"x\" is not YYYY-MM-DD HH:MM:SS",
        ),
        (
            LineErrorReason::TimestampOutOfRange {
                text: "1900-01-01 00:00:00".into(),
            },
            "timestamp-out-of-range",
            "line 7: time stamp \"1900-01-01 00:00:00\" is outside 1970 to 2037",
        ),
        (
            LineErrorReason::Invalid(InputError::TooLong {
                field: Field::Barcode,
                max: 20,
            }),
            "invalid-field",
            "line 7: barcode is longer than 20 characters",
        ),
        (
            LineErrorReason::Invalid(InputError::AmountNotPositive),
            "invalid-field",
            "line 7: amount must be greater than zero",
        ),
    ];
    for (reason, kind, message) in cases {
        let err = LineError { line: 7, reason };
        assert_eq!(err.kind(), kind);
        assert_eq!(err.to_string(), message);
    }
    let warnings: [(KocWarning, &str, &str); 6] = [
        (KocWarning::NoHeader, "no-header", "the file has no header"),
        (
            KocWarning::UnknownVersion { version: "".into() },
            "unknown-version",
            "file version \"\" is not 1.0",
        ),
        (
            KocWarning::BlankLines { count: 2 },
            "blank-lines",
            "2 blank lines skipped",
        ),
        (
            KocWarning::ExtraFields { line: 3, count: 2 },
            "extra-fields",
            "line 3: 2 extra fields ignored",
        ),
        (
            KocWarning::AmbiguousTime { line: 4 },
            "ambiguous-time",
            "line 4: the time occurs twice; the earlier one was taken",
        ),
        (
            KocWarning::SkippedTime { line: 5 },
            "skipped-time",
            "line 5: the time does not exist; it was moved forward",
        ),
    ];
    for (warning, kind, message) in warnings {
        assert_eq!(warning.kind(), kind);
        assert_eq!(warning.to_string(), message);
    }
}

#[test]
fn invalid_utf8_is_a_line_error_and_other_lines_survive() {
    let mut bytes = format!("{HEADER}\n2026-01-01 10:00:00\treturn\tB1\n").into_bytes();
    bytes.extend_from_slice(b"2026-01-01 10:00:00\treturn\tB\xff\xfe\n");
    bytes.extend_from_slice(b"2026-01-01 10:00:01\treturn\tB2");
    let read = read_utc(&bytes);
    assert_eq!(
        read.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 4]
    );
    assert_eq!(
        read.errors,
        vec![LineError {
            line: 3,
            reason: LineErrorReason::InvalidUtf8
        }]
    );
    // Non-ASCII that is valid UTF-8 is fine.
    let read = read_utc(format!("{HEADER}\n2026-01-01 10:00:00\treturn\tBü").as_bytes());
    assert_eq!(read.rows.len(), 1);
}

#[test]
fn every_line_is_accounted_for() {
    let text = format!(
        "{HEADER}\n2026-01-01 10:00:00\treturn\tB1\n\nnonsense\n2026-01-01 10:00:00\tpayment\tC\t1,5\n\
         2026-01-01 10:00:00\tissue\tC1\tB1\textra\n"
    );
    let read = read_utc(text.as_bytes());
    let blank = read
        .warnings
        .iter()
        .find_map(|w| match w {
            KocWarning::BlankLines { count } => Some(*count),
            _ => None,
        })
        .unwrap_or(0);
    let header = usize::from(read.header.is_some());
    assert_eq!(header + read.rows.len() + read.errors.len() + blank, 6);
    assert_eq!(
        read.errors
            .iter()
            .map(|e| (e.line, e.kind()))
            .collect::<Vec<_>>(),
        vec![(4, "missing-command"), (5, "comma-in-amount")]
    );
}

#[test]
fn skipped_local_times_move_forward_with_a_warning() {
    let text = format!("{HEADER}\n2026-03-29 02:30:00\treturn\tB1");
    let read = koc::read(text.as_bytes(), &BERLIN, None);
    assert_eq!(read.rows[0].at, utc(2026, 3, 29, 1, 30, 0));
    assert_eq!(read.warnings, vec![KocWarning::SkippedTime { line: 2 }]);
    // In UTC nothing is skipped.
    let read = koc::read(text.as_bytes(), &BERLIN, Some(TimeBasis::Utc));
    assert_eq!(read.rows[0].at, utc(2026, 3, 29, 2, 30, 0));
    assert!(read.warnings.is_empty());
}

#[test]
fn duplicates_of_stored_transactions_are_flagged() {
    let stored = vec![
        tx_at(
            utc(2026, 3, 28, 13, 5, 9) + chrono::TimeDelta::milliseconds(640),
            1,
            "CPL",
            issue("23529000035676", "39999000001310"),
        ),
        // Same second, different fields: not a duplicate.
        tx_at(
            utc(2026, 3, 28, 13, 6, 10),
            2,
            "CPL",
            checkin("39999000000000"),
        ),
        tx_at(
            utc(2026, 3, 28, 13, 7, 11),
            3,
            "CPL",
            payment("23529000035676", "12.50"),
        ),
    ];
    let mut read = koc::read(&fixture("kocdesktop-2.4.0.koc"), &BERLIN, None);
    assert_eq!(read.mark_duplicates(&stored), 2);
    let flagged: Vec<Option<TransactionId>> =
        read.rows.iter().map(|r| r.duplicate_of.clone()).collect();
    assert_eq!(
        flagged,
        vec![Some(stored[0].id.clone()), None, Some(stored[2].id.clone())]
    );
    // Marking again against nothing clears the marks.
    assert_eq!(read.mark_duplicates(&[]), 0);
    assert!(read.rows.iter().all(|r| r.duplicate_of.is_none()));
}

#[test]
fn imported_rows_become_local_transactions() {
    let read = koc::read(&fixture("wiki-kocphp-0.7.koc"), &FixedZone::utc(), None);
    let row = &read.rows[2];
    let id = TransactionId::new(utc(2026, 1, 1, 0, 0, 0), 9);
    let t = row.to_transaction(id.clone(), Branchcode::parse("CPL").unwrap());
    assert_eq!(t.id, id);
    assert_eq!(t.recorded_at, row.at);
    assert_eq!(t.action, payment("90035676", "1.05"));
    assert_eq!(t.status(), &Status::Local);
}

#[test]
fn journal_to_files_per_library_then_marked_exported() {
    use koha_offline_circ::journal::Journal;
    let mut journal = Journal::from_transactions(berlin_desk());
    let files =
        koc::write_per_library(journal.in_order(), &Selection::NotAccepted, &BERLIN).unwrap();
    assert_eq!(
        files
            .iter()
            .map(|(b, f)| (b.as_str(), f.ids.len()))
            .collect::<Vec<_>>(),
        vec![("CPL", 5), ("MPL", 1)]
    );
    let golden = String::from_utf8(fixture("koha-offline-circ-own.koc")).unwrap();
    assert_eq!(
        files[0].1.text.lines().skip(1).collect::<Vec<_>>(),
        golden.lines().skip(1).collect::<Vec<_>>()
    );
    let now = utc(2026, 11, 1, 8, 0, 0);
    for (_, file) in &files {
        assert!(journal.mark_exported(&file.ids, now).is_empty());
    }
    let exported = journal
        .in_order()
        .filter(|t| t.exported_at == Some(now))
        .count();
    assert_eq!(exported, 6, "all but the queued one");
}

#[test]
fn writer_line_per_action_and_amount_format() {
    let at = utc(2026, 1, 31, 13, 5, 9);
    let cases = [
        (issue("C1", "B1"), "2026-01-31 13:05:09\tissue\tC1\tB1"),
        (checkin("B1"), "2026-01-31 13:05:09\treturn\tB1"),
        (
            payment("C1", "0,01"),
            "2026-01-31 13:05:09\tpayment\tC1\t0.01",
        ),
        (payment("C1", "1"), "2026-01-31 13:05:09\tpayment\tC1\t1.00"),
        (
            payment("C1", "12.5"),
            "2026-01-31 13:05:09\tpayment\tC1\t12.50",
        ),
        (
            payment("C1", "1000000"),
            "2026-01-31 13:05:09\tpayment\tC1\t1000000.00",
        ),
        (
            issue("Müller-ä", "Bü"),
            "2026-01-31 13:05:09\tissue\tMüller-ä\tBü",
        ),
    ];
    for (action, line) in cases {
        // Milliseconds are dropped, not rounded.
        let t = tx_at(at + chrono::TimeDelta::milliseconds(999), 1, "CPL", action);
        let file = koc::write([&t], &WriteOptions::default(), &FixedZone::utc()).unwrap();
        assert_eq!(file.text, format!("{}\r\n{line}", koc::header()));
    }
}

// ---------------------------------------------------------------------------------------------
// Export plan: what an export takes, and what it asks first (Koha has no duplicate check)
// ---------------------------------------------------------------------------------------------

mod export_plan {
    use super::*;
    use koha_offline_circ::export::{self, Answers, Chosen, Export, LeftOut, Plan, Question};

    /// A row's status for the table.
    #[derive(Clone, Copy, Debug)]
    enum S {
        Local,
        Sending,
        Queued,
        Applied,
        Rejected,
        Failed,
        Uncertain,
    }

    /// Row `n` (recorded at second `n`): its status, the second of 2026-12-03 10:00 it was last
    /// exported at, and whether it is a payment.
    fn row(n: u64, status: S, exported: Option<u32>, is_payment: bool) -> Transaction {
        let at = utc(2026, 12, 1, 9, 0, n as u32);
        let action = if is_payment {
            payment("C1", "2.5")
        } else {
            checkin(&format!("B{n}"))
        };
        let mut t = tx_at(at, n, "CPL", action);
        let end = match status {
            S::Local => None,
            S::Sending => {
                t.start_sending(at).unwrap();
                None
            }
            S::Queued => Some(Status::Queued),
            S::Applied => Some(Status::Applied),
            S::Rejected => Some(Status::Rejected {
                message: "Borrower not found.".into(),
            }),
            S::Failed => Some(Status::Failed {
                reason: koha_offline_circ::FailReason::Network,
            }),
            S::Uncertain => Some(Status::Uncertain {
                reason: koha_offline_circ::UncertainReason::ConnectionLost,
            }),
        };
        if let Some(end) = end {
            t.start_sending(at).unwrap();
            t.finish_sending(at, end).unwrap();
        }
        if let Some(s) = exported {
            t.mark_exported(utc(2026, 12, 3, 10, 0, s));
        }
        t
    }

    fn id(n: u64) -> TransactionId {
        TransactionId::new(utc(2026, 12, 1, 9, 0, n as u32), n)
    }

    fn again(count: usize, payments: usize, second: u32) -> Question {
        Question::AlreadyExported {
            count,
            payments,
            at: utc(2026, 12, 3, 10, 0, second),
        }
    }

    fn uncertain(count: usize, payments: usize) -> Question {
        Question::Uncertain { count, payments }
    }

    fn yes(q: &[Question]) -> Answers {
        Answers {
            confirmed: q.to_vec(),
            declined: vec![],
        }
    }

    fn no(q: &[Question]) -> Answers {
        Answers {
            confirmed: vec![],
            declined: q.to_vec(),
        }
    }

    fn left(sending: usize, rejected: usize, already_exported: usize, uncertain: usize) -> LeftOut {
        LeftOut {
            sending,
            rejected,
            already_exported,
            uncertain,
        }
    }

    enum Want {
        Ask(Vec<Question>),
        /// Row numbers taken, and what is left out.
        Take(Vec<u64>, LeftOut),
    }

    #[test]
    fn every_rule_with_exact_counts() {
        use S::*;
        // Koha has these: never exported, never asked about, exported before or not.
        let accepted = || vec![row(3, Queued, None, false), row(4, Applied, Some(1), true)];
        let with = |base: Vec<Transaction>, extra: Vec<Transaction>| {
            let mut rows = base;
            rows.extend(extra);
            rows
        };
        // Rows 1 and 2: new (local and failed, never exported).
        let fresh = || {
            with(
                accepted(),
                vec![row(1, Local, None, false), row(2, Failed, None, true)],
            )
        };
        let exported = || {
            vec![
                row(5, Local, Some(1), false),
                row(6, Failed, Some(7), true),
                row(7, Local, Some(3), false),
            ]
        };
        let only_exported = || with(accepted(), exported());
        let two_uncertain = || {
            with(
                fresh(),
                vec![
                    row(5, Uncertain, None, true),
                    row(6, Uncertain, None, false),
                ],
            )
        };
        let both = || {
            with(
                accepted(),
                vec![
                    row(5, Uncertain, Some(2), true),
                    row(6, Local, Some(4), false),
                ],
            )
        };
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, Vec<Transaction>, Answers, Want)> = vec![
            (
                "local and failed never exported: taken, nothing asked; accepted ones never",
                fresh(),
                Answers::default(),
                Want::Take(vec![1, 2], left(0, 0, 0, 0)),
            ),
            (
                "sending: never taken nor asked about, even when everything is confirmed",
                with(fresh(), vec![row(5, Sending, None, true), row(6, Sending, Some(9), false)]),
                yes(&[again(1, 0, 9), uncertain(1, 1)]),
                Want::Take(vec![1, 2], left(2, 0, 0, 0)),
            ),
            (
                "rejected: left out and counted, exported or not, never asked about",
                with(
                    accepted(),
                    vec![
                        row(5, Rejected, None, false),
                        row(6, Rejected, Some(2), true),
                        row(7, Rejected, None, false),
                    ],
                ),
                Answers::default(),
                Want::Take(vec![], left(0, 3, 0, 0)),
            ),
            (
                "exported before, with new rows: the new ones go, the others are not repeated, nothing is asked",
                with(fresh(), exported()),
                Answers::default(),
                Want::Take(vec![1, 2], left(0, 0, 3, 0)),
            ),
            (
                "exported before, with new rows: a confirmation of a question not asked takes nothing more",
                with(fresh(), exported()),
                yes(&[again(3, 1, 7)]),
                Want::Take(vec![1, 2], left(0, 0, 3, 0)),
            ),
            (
                "nothing new, exported before: asked, naming how many, the payments and the latest export",
                only_exported(),
                Answers::default(),
                Want::Ask(vec![again(3, 1, 7)]),
            ),
            (
                "nothing new, exported before, confirmed: taken",
                only_exported(),
                yes(&[again(3, 1, 7)]),
                Want::Take(vec![5, 6, 7], left(0, 0, 0, 0)),
            ),
            (
                "nothing new, exported before, declined: nothing",
                only_exported(),
                no(&[again(3, 1, 7)]),
                Want::Take(vec![], left(0, 0, 3, 0)),
            ),
            (
                "an answer to another question (stale) is no answer: asked again",
                only_exported(),
                yes(&[again(2, 1, 7), again(3, 1, 6), again(3, 0, 7)]),
                Want::Ask(vec![again(3, 1, 7)]),
            ),
            (
                "declined wins over confirmed",
                only_exported(),
                Answers {
                    confirmed: vec![again(3, 1, 7)],
                    declined: vec![again(3, 1, 7)],
                },
                Want::Take(vec![], left(0, 0, 3, 0)),
            ),
            (
                "uncertain: asked, naming the payments, even with new rows",
                two_uncertain(),
                Answers::default(),
                Want::Ask(vec![uncertain(2, 1)]),
            ),
            (
                "uncertain, confirmed: taken",
                two_uncertain(),
                yes(&[uncertain(2, 1)]),
                Want::Take(vec![1, 2, 5, 6], left(0, 0, 0, 0)),
            ),
            (
                "uncertain, declined: left out, the payment with them; the new rows go",
                two_uncertain(),
                no(&[uncertain(2, 1)]),
                Want::Take(vec![1, 2], left(0, 0, 0, 2)),
            ),
            (
                "an uncertain payment: a confirmation of the question without the payment does not do",
                with(accepted(), vec![row(5, Uncertain, None, true)]),
                yes(&[uncertain(1, 0)]),
                Want::Ask(vec![uncertain(1, 1)]),
            ),
            (
                "an uncertain row never exported is new: the exported ones are not repeated nor asked about",
                with(accepted(), vec![row(5, Uncertain, None, true), row(6, Local, Some(4), false)]),
                Answers::default(),
                Want::Ask(vec![uncertain(1, 1)]),
            ),
            (
                "the same, confirmed: the uncertain row only",
                with(accepted(), vec![row(5, Uncertain, None, true), row(6, Local, Some(4), false)]),
                yes(&[uncertain(1, 1)]),
                Want::Take(vec![5], left(0, 0, 1, 0)),
            ),
            (
                "an uncertain row exported before, with new rows: not repeated, not asked about",
                with(fresh(), vec![row(5, Uncertain, Some(2), true)]),
                Answers::default(),
                Want::Take(vec![1, 2], left(0, 0, 1, 0)),
            ),
            (
                "nothing new, uncertain and exported before: both questions, each counting the row",
                both(),
                Answers::default(),
                Want::Ask(vec![again(2, 1, 4), uncertain(1, 1)]),
            ),
            (
                "one answered: only the other is asked",
                both(),
                no(&[again(2, 1, 4)]),
                Want::Ask(vec![uncertain(1, 1)]),
            ),
            (
                "both confirmed: taken",
                both(),
                yes(&[again(2, 1, 4), uncertain(1, 1)]),
                Want::Take(vec![5, 6], left(0, 0, 0, 0)),
            ),
            (
                "exported-again confirmed, uncertain declined: the uncertain row stays out",
                both(),
                Answers {
                    confirmed: vec![again(2, 1, 4)],
                    declined: vec![uncertain(1, 1)],
                },
                Want::Take(vec![6], left(0, 0, 0, 1)),
            ),
            (
                "uncertain confirmed, exported-again declined: both exported rows stay out",
                both(),
                Answers {
                    confirmed: vec![uncertain(1, 1)],
                    declined: vec![again(2, 1, 4)],
                },
                Want::Take(vec![], left(0, 0, 2, 0)),
            ),
            (
                "both declined: the row counts once, as uncertain",
                both(),
                no(&[again(2, 1, 4), uncertain(1, 1)]),
                Want::Take(vec![], left(0, 0, 1, 1)),
            ),
            (
                "nothing at all",
                vec![],
                Answers::default(),
                Want::Take(vec![], left(0, 0, 0, 0)),
            ),
        ];
        for (name, rows, answers, want) in cases {
            let got = export::plan(&rows, &answers);
            let want = match want {
                Want::Ask(questions) => Plan::Ask(questions),
                Want::Take(numbers, left_out) => Plan::Take(Chosen {
                    ids: numbers.iter().map(|&n| id(n)).collect(),
                    left_out,
                }),
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn the_message_warns_when_nothing_is_taken_or_an_uncertain_row_is_left_out() {
        use koha_offline_circ::sync::Level;
        assert_eq!(left(0, 0, 0, 0).level(3), Level::Ok);
        assert_eq!(
            left(1, 2, 3, 0).level(3),
            Level::Ok,
            "on its way, refused by Koha, exported before: accounted for"
        );
        assert_eq!(left(0, 0, 0, 1).level(3), Level::Warning);
        assert_eq!(left(0, 0, 0, 0).level(0), Level::Warning);
        assert_eq!(left(0, 0, 2, 0).level(0), Level::Warning);
    }

    #[test]
    fn the_question_names_the_latest_export_in_whole_milliseconds() {
        let mut t = row(1, S::Local, None, false);
        t.mark_exported(utc(2026, 12, 3, 10, 15, 0) + chrono::TimeDelta::microseconds(1_500));
        let asked = export::questions([&t]);
        assert_eq!(
            asked,
            vec![Question::AlreadyExported {
                count: 1,
                payments: 0,
                at: utc(2026, 12, 3, 10, 15, 0) + chrono::TimeDelta::milliseconds(1),
            }]
        );
        assert_eq!(asked[0].kind(), "already-exported");
        assert_eq!(
            export::questions([&row(2, S::Uncertain, None, false)])[0].kind(),
            "uncertain"
        );
        // The question as asked is the answer that counts.
        assert!(
            matches!(export::plan([&t], &yes(&asked)), Plan::Take(c) if c.ids == vec![t.id.clone()])
        );
    }

    #[test]
    fn write_gives_files_of_the_taken_rows_and_the_record_marking_them() {
        let rows = vec![
            row(1, S::Local, None, false),
            row(2, S::Local, Some(5), false),
            row(3, S::Uncertain, None, true),
            row(4, S::Rejected, None, false),
        ];
        let at = utc(2026, 12, 4, 8, 0, 0);
        let asked = export::write(&rows, &Answers::default(), &FixedZone::utc()).unwrap();
        assert_eq!(asked, Export::Ask(vec![uncertain(1, 1)]));
        assert_eq!(asked.record(at), None, "a question writes nothing");

        let done = export::write(&rows, &yes(&[uncertain(1, 1)]), &FixedZone::utc()).unwrap();
        let Export::Files { files, left_out } = &done else {
            panic!("{done:?}")
        };
        assert_eq!(*left_out, left(0, 1, 1, 0));
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[0].1.text,
            format!(
                "{}\r\n2026-12-01 09:00:01\treturn\tB1\r\n2026-12-01 09:00:03\tpayment\tC1\t2.50",
                koc::header()
            )
        );
        let record = done.record(at).unwrap();
        assert_eq!(record.ids, vec![id(1), id(3)]);
        assert_eq!(record.at, at);

        // Declined: the new row only.
        let declined = export::write(&rows, &no(&[uncertain(1, 1)]), &FixedZone::utc()).unwrap();
        let Export::Files { files, left_out } = &declined else {
            panic!("{declined:?}")
        };
        assert_eq!(*left_out, left(0, 1, 1, 1));
        assert_eq!(files[0].1.ids, vec![id(1)]);

        // Nothing taken: no file, no record.
        let old = vec![row(2, S::Local, Some(5), false)];
        let none = export::write(&old, &no(&[again(1, 0, 5)]), &FixedZone::utc()).unwrap();
        assert_eq!(
            none,
            Export::Files {
                files: vec![],
                left_out: left(0, 0, 1, 0),
            }
        );
        assert_eq!(none.record(at), None);
    }
}
