//! Incremental pulls of the offline checks (issue 12): only the patrons and items changed since
//! the last pull, merged into the stored snapshot; checkouts whole; a full pull weekly, when
//! asked, or when Koha refuses the filter.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use koha_offline_circ::checks::{
    check_card, goes_on, payment_balance, plan_pull, pull_source, read_snapshot, write_plan,
    CardLimits, Download, DownloadError, FullWhy, Holder, Pull, Restriction, Snapshot,
    StoppedDownload,
};
use koha_offline_circ::koha::Credentials;
use koha_offline_circ::store::Change;
use koha_offline_circ::Userid;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const KOHA: &str = "https://koha.example.org";

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap()
}

fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn source() -> String {
    pull_source(KOHA, "desk")
}

type Lists = BTreeMap<&'static str, Result<Vec<Value>, u16>>;

/// Answers every request of `download` from `lists`, two records a page, each answer dated
/// `koha_now` plus a minute per page; returns the requests' `q` per list.
fn run(download: &mut Download, lists: &Lists, koha_now: DateTime<Utc>) -> Vec<(String, String)> {
    let mut asked = Vec::new();
    let mut clock = koha_now;
    while let Some(request) = download.request() {
        let path = request.url.rsplit('/').next().unwrap().to_owned();
        asked.push((
            path.clone(),
            request.param("q").unwrap_or_default().to_owned(),
        ));
        let page: usize = request.param("_page").unwrap().parse().unwrap();
        download.note_koha_time(Some(&http_date(clock)));
        clock += Duration::minutes(1);
        match &lists[path.as_str()] {
            Ok(records) => {
                let slice: Vec<&Value> = records.iter().skip((page - 1) * 2).take(2).collect();
                let total = records.len().to_string();
                download
                    .feed(200, Some(&total), &serde_json::to_string(&slice).unwrap())
                    .unwrap();
            }
            Err(status) => download.feed(*status, None, "").unwrap(),
        }
    }
    asked
}

fn patron(n: u32, restricted: bool) -> Value {
    json!({"patron_id": n, "cardnumber": format!("C{n}"), "library_id": "CPL",
           "restricted": restricted})
}

fn item(n: u32, lost: u8, on_loan: bool) -> Value {
    json!({"item_id": n, "external_id": format!("B{n}"), "lost_status": lost,
           "checked_out_date": if on_loan { json!("2026-12-24") } else { Value::Null }})
}

/// Koha on 1 December: five patrons, five items, B3 on loan to patron 2, B4 to patron 4.
fn koha_whole() -> Lists {
    BTreeMap::from([
        ("patrons", Ok((1..=5).map(|n| patron(n, false)).collect())),
        (
            "items",
            Ok((1..=5).map(|n| item(n, 0, n == 3 || n == 4)).collect()),
        ),
        (
            "checkouts",
            Ok(vec![
                json!({"item_id": 3, "patron_id": 2}),
                json!({"item_id": 4, "patron_id": 4}),
            ]),
        ),
    ])
}

/// A full pull started at 1 December 06:00 (desk) while Koha's clock said 06:02.
fn full_snapshot() -> Snapshot {
    let pull = plan_pull(None, &source(), false, at(1, 6));
    assert_eq!(
        pull,
        Pull::Full {
            why: FullWhy::NoSnapshot
        }
    );
    let mut download = Download::new(KOHA, 2, at(1, 6)).pulling(&source(), &pull, None);
    let asked = run(
        &mut download,
        &koha_whole(),
        at(1, 6) + Duration::minutes(2),
    );
    assert!(asked.iter().all(|(_, q)| q.is_empty()), "{asked:?}");
    download.finish().unwrap()
}

/// Stores `snapshot` and reads it back, as the next start of the page does.
fn stored_and_read(snapshot: &Snapshot) -> Snapshot {
    let entries: BTreeMap<String, Value> = write_plan(snapshot, None)
        .into_iter()
        .filter_map(|change| match change {
            Change::Put { key, value } => Some((key, value)),
            Change::Remove { .. } => None,
        })
        .collect();
    read_snapshot(entries.get("checks:meta"), |key| entries.get(key))
        .unwrap()
        .unwrap()
}

#[test]
fn a_full_pull_keeps_kohas_time_and_source_through_storage() {
    let snapshot = stored_and_read(&full_snapshot());
    assert_eq!(snapshot.full_at(), at(1, 6));
    assert_eq!(
        snapshot.pull().koha_at,
        Some(at(1, 6) + Duration::minutes(2)),
        "the earliest answer's Date"
    );
    assert_eq!(snapshot.pull().source.as_deref(), Some(&*source()));
}

#[test]
fn changes_since_kohas_time_are_merged_into_the_stored_snapshot() {
    let stored = stored_and_read(&full_snapshot());
    let now = at(2, 9);
    let pull = plan_pull(Some(&stored), &source(), false, now);
    // Koha's 06:02 on 1 December, less fifteen hours, without an offset.
    assert_eq!(
        pull,
        Pull::Incremental {
            since: "2026-11-30T15:02:00".into()
        }
    );
    // Since then: C2 restricted, C6 new, B1 lost, B4 returned; B3 still on loan to patron 2.
    let changes: Lists = BTreeMap::from([
        ("patrons", Ok(vec![patron(2, true), patron(6, false)])),
        ("items", Ok(vec![item(1, 1, false), item(4, 0, false)])),
        ("checkouts", Ok(vec![json!({"item_id": 3, "patron_id": 2})])),
    ]);
    let mut download = Download::new(KOHA, 2, now).pulling(&source(), &pull, Some(stored));
    assert!(download.is_incremental());
    let asked = run(&mut download, &changes, at(2, 9));
    assert_eq!(
        asked,
        [
            (
                "patrons".into(),
                r#"{"updated_on":{">=":"2026-11-30T15:02:00"}}"#.into()
            ),
            (
                "items".into(),
                r#"{"timestamp":{">=":"2026-11-30T15:02:00"}}"#.into()
            ),
            ("checkouts".into(), String::new()),
        ],
        "checkouts are always read whole"
    );
    let merged = stored_and_read(&download.finish().unwrap());
    assert_eq!(merged.patron_count(), 6);
    assert_eq!(merged.item_count(), 5);
    assert_eq!(
        merged.patron("C2").unwrap().restriction,
        Restriction::Indefinite
    );
    assert_eq!(
        merged.patron("C1").unwrap().restriction,
        Restriction::Unrestricted
    );
    assert!(merged.patron("C6").is_some());
    assert!(merged.item("B1").unwrap().lost);
    assert_eq!(merged.item("B4").unwrap().on_loan, None, "returned");
    assert_eq!(
        merged.item("B3").unwrap().on_loan,
        Some(Holder::Patron(2)),
        "unchanged, kept"
    );
    assert_eq!(merged.taken_at(), now);
    assert_eq!(merged.full_at(), at(1, 6), "still the last full pull");
    assert_eq!(merged.pull().koha_at, Some(at(2, 9)));
}

#[test]
fn a_full_pull_when_asked_or_a_week_after_the_last_one() {
    let stored = full_snapshot();
    assert_eq!(
        plan_pull(Some(&stored), &source(), true, at(2, 6)),
        Pull::Full {
            why: FullWhy::Asked
        }
    );
    assert_eq!(
        plan_pull(Some(&stored), &source(), false, at(8, 6)),
        Pull::Full {
            why: FullWhy::Weekly
        }
    );
    let pull = plan_pull(Some(&stored), &source(), false, at(8, 6));
    let mut download = Download::new(KOHA, 2, at(8, 6)).pulling(&source(), &pull, Some(stored));
    assert!(!download.is_incremental());
    let asked = run(&mut download, &koha_whole(), at(8, 6));
    assert!(asked.iter().all(|(_, q)| q.is_empty()));
    assert_eq!(download.finish().unwrap().full_at(), at(8, 6));
}

#[test]
fn a_koha_that_refuses_the_filter_gets_a_full_pull_from_the_start() {
    let stored = full_snapshot();
    let pull = plan_pull(Some(&stored), &source(), false, at(2, 9));
    let mut download = Download::new(KOHA, 2, at(2, 9)).pulling(&source(), &pull, Some(stored));
    let first = download.request().unwrap();
    assert!(first.param("q").is_some());
    download.feed(400, None, r#"{"error":"bad q"}"#).unwrap();
    assert!(!download.is_incremental());
    let asked = run(&mut download, &koha_whole(), at(2, 9));
    assert!(asked.iter().all(|(_, q)| q.is_empty()), "{asked:?}");
    assert_eq!(asked[0].0, "patrons");
    let snapshot = download.finish().unwrap();
    assert_eq!(snapshot.full_at(), at(2, 9));
    assert_eq!(snapshot.patron_count(), 5);
}

#[test]
fn an_incremental_pull_that_fails_half_way_gives_no_snapshot() {
    let stored = full_snapshot();
    let pull = plan_pull(Some(&stored), &source(), false, at(2, 9));
    let mut download =
        Download::new(KOHA, 2, at(2, 9)).pulling(&source(), &pull, Some(stored.clone()));
    let patrons = json!([patron(2, true), patron(6, false)]).to_string();
    download.feed(200, Some("3"), &patrons).unwrap();
    let error = download.feed(500, None, "").unwrap_err();
    assert!(matches!(error, DownloadError::Status { page: 2, .. }));
    assert!(
        download.clone().finish().is_none(),
        "nothing to store: the stored snapshot stays"
    );
    assert_eq!(
        stored.patron("C2").unwrap().restriction,
        Restriction::Unrestricted
    );
    assert!(
        download.request().unwrap().param("q").is_some(),
        "it goes on, still incremental"
    );
    assert!(goes_on(&download, false));
    assert!(
        !goes_on(&download, true),
        "a full pull asked for starts anew"
    );
    // Kept for the server and login it read.
    let login = |userid: &str| Credentials {
        userid: Userid::parse(userid).unwrap(),
        password: "secret".into(),
    };
    let stopped = || StoppedDownload::new(KOHA, login("desk"), download.clone());
    assert!(stopped().resume(KOHA, &login("desk"), false).is_some());
    assert!(stopped().resume(KOHA, &login("desk"), true).is_none());
    assert!(
        stopped().resume(KOHA, &login("other"), false).is_none(),
        "another login sees other records"
    );
    assert!(stopped()
        .resume("https://other.example.org", &login("desk"), false)
        .is_none());
}

#[test]
fn an_answer_without_a_date_leaves_kohas_time_unknown_and_the_next_pull_full() {
    let pull = plan_pull(None, &source(), false, at(1, 6));
    let mut download = Download::new(KOHA, 2, at(1, 6)).pulling(&source(), &pull, None);
    download.note_koha_time(None);
    download.note_koha_time(Some("yesterday"));
    let lists = koha_whole();
    while let Some(request) = download.request() {
        let path = request.url.rsplit('/').next().unwrap().to_owned();
        let page: usize = request.param("_page").unwrap().parse().unwrap();
        let records = lists[path.as_str()].as_ref().unwrap();
        let slice: Vec<&Value> = records.iter().skip((page - 1) * 2).take(2).collect();
        download
            .feed(200, None, &serde_json::to_string(&slice).unwrap())
            .unwrap();
    }
    let snapshot = download.finish().unwrap();
    assert_eq!(snapshot.pull().koha_at, None);
    assert_eq!(
        plan_pull(Some(&snapshot), &source(), false, at(2, 6)),
        Pull::Full {
            why: FullWhy::NoKohaTime
        }
    );
}

/// Payments and fines do not change a patron's `updated_on`, so a balance is as old as the last
/// full download, whatever the changes since: the desk says so for a balance, and gives the
/// other warnings the age of the latest download.
#[test]
fn a_balance_is_as_old_as_the_last_full_download() {
    let stored = stored_and_read(&full_snapshot());
    let now = at(3, 6);
    let pull = plan_pull(Some(&stored), &source(), false, now);
    let mut owing = patron(2, true);
    owing["account_balance"] = json!(20.0);
    let changes: Lists = BTreeMap::from([
        ("patrons", Ok(vec![owing])),
        ("items", Ok(Vec::new())),
        ("checkouts", Ok(Vec::new())),
    ]);
    let mut download = Download::new(KOHA, 2, now).pulling(&source(), &pull, Some(stored));
    run(&mut download, &changes, now);
    let merged = download.finish().unwrap();
    let later = now + Duration::hours(1);
    let shown = payment_balance(&merged, "C2", later).unwrap();
    assert_eq!(shown.age.taken_at, at(1, 6), "the full download's time");
    assert_eq!((shown.age.unit, shown.age.amount), ("days", 2));
    let limits = CardLimits {
        balance_cents: Some(1000),
    };
    let warnings = check_card(&merged, "C2", limits, later.date_naive(), later);
    let ages: Vec<(&str, DateTime<Utc>)> = warnings
        .iter()
        .map(|w| (w.kind(), w.age.taken_at))
        .collect();
    assert_eq!(
        ages,
        [("restricted", now), ("balance-above-limit", at(1, 6))]
    );
}
