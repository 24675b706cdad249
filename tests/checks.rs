//! The offline checks (issue 12): reading Koha's REST pages, paging, the snapshot's stored form
//! and its size, and the warnings at the desk.

// Helpers outside `#[test]` functions unwrap too; a panic is the failure report here.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use koha_offline_circ::checks::{
    auto_download_change, auto_download_due, check_card, check_item, delete_plan, join_loans,
    koha_today, moved_here, parse_auto_hours, parse_checkouts, parse_items, parse_patrons,
    payment_balance, placed, read_auto_download, read_snapshot, write_plan, AutoDownload,
    Availability, CardLimits, CardProblem, Coverage, Download, Holder, ItemProblem, ItemRecord,
    ItemScan, List, Next, PageError, Pager, PatronRecord, Place, Restriction, Snapshot,
    SnapshotAge, Unavailable,
};
use koha_offline_circ::journal::Journal;
use koha_offline_circ::koha::{logout_request, Credentials, Method, NoAnswer, Reply};
use koha_offline_circ::store::{Change, MemoryStore, Store, StoreError};
use koha_offline_circ::zone::FixedZone;
use koha_offline_circ::{
    Action, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId, Userid,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const ALL: Coverage = Coverage {
    patrons: true,
    items: true,
    checkouts: true,
};

fn taken() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn patron(cardnumber: &str, patron_id: u32) -> PatronRecord {
    PatronRecord {
        cardnumber: cardnumber.into(),
        patron_id,
        expiry: Some(day(2027, 6, 30)),
        restriction: Restriction::Unrestricted,
        card_lost: false,
        address_in_doubt: false,
        balance_cents: 0,
        library: "CPL".into(),
    }
}

fn item(barcode: &str) -> ItemRecord {
    ItemRecord {
        barcode: barcode.into(),
        lost: false,
        withdrawn: false,
        not_for_loan: false,
        damaged: false,
        on_loan: None,
    }
}

// ---- Reading Koha's pages ----

#[test]
fn a_patron_page_keeps_only_what_the_checks_need() {
    let page = json!([
        {
            "patron_id": 42, "cardnumber": " C0042 ", "surname": "Muster", "firstname": "Erika",
            "email": "erika@example.org", "address": "Hauptstr. 1", "expiry_date": "2026-11-30",
            "restricted": true, "patron_card_lost": false, "incorrect_address": true,
            "library_id": "MPL", "account_balance": 12.3, "updated_on": "2026-11-30T10:00:00+01:00"
        },
        { "patron_id": 43, "cardnumber": null, "library_id": "MPL" },
        { "patron_id": 44, "cardnumber": "C0044", "expiry_date": null, "library_id": "CPL",
          "restricted": 0, "patron_card_lost": "1", "incorrect_address": null,
          "account_balance": "-4.50" }
    ]);
    let rows = parse_patrons(&page.to_string()).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0].record,
        Some(PatronRecord {
            cardnumber: "C0042".into(),
            patron_id: 42,
            expiry: Some(day(2026, 11, 30)),
            restriction: Restriction::Indefinite,
            card_lost: false,
            address_in_doubt: true,
            balance_cents: 1230,
            library: "MPL".into(),
        })
    );
    assert_eq!(rows[1].patron_id, 43);
    assert_eq!(rows[1].record, None, "no card number: nothing to scan");
    let third = rows[2].record.as_ref().unwrap();
    assert_eq!(third.expiry, None);
    assert_eq!(third.restriction, Restriction::Unrestricted);
    assert!(third.card_lost);
    assert!(!third.address_in_doubt);
    assert_eq!(third.balance_cents, -450);
}

#[test]
fn a_patron_page_without_the_balance_embed_reads_as_owing_nothing() {
    let page = r#"[{"patron_id": 1, "cardnumber": "C1", "library_id": "CPL"}]"#;
    let rows = parse_patrons(page).unwrap();
    assert_eq!(rows[0].record.as_ref().unwrap().balance_cents, 0);
}

#[test]
fn item_pages_of_each_era_read_alike() {
    // Older Koha: `item_type`, no effective status, statuses as numbers.
    let older = json!([{
        "item_id": 7, "external_id": "39001", "item_type": "BK", "lost_status": 0,
        "withdrawn": 0, "not_for_loan_status": 1, "damaged_status": 0, "checked_out_date": null,
        "biblio_id": 3, "public_notes": "kept nowhere"
    }]);
    // Newer Koha: `item_type_id`, the effective status overrides the item's own.
    let newer = json!([{
        "item_id": 7, "external_id": "39001", "item_type_id": "BK", "lost_status": 0,
        "withdrawn": false, "not_for_loan_status": 0, "effective_not_for_loan_status": 1,
        "damaged_status": 0, "checked_out_date": null
    }]);
    let a = parse_items(&older.to_string()).unwrap();
    let b = parse_items(&newer.to_string()).unwrap();
    assert_eq!(a, b);
    assert!(a[0].record.as_ref().unwrap().not_for_loan);
}

#[test]
fn item_statuses_are_flags_whatever_their_code() {
    let page = json!([
        { "item_id": 1, "external_id": "A1", "lost_status": 2, "withdrawn": "1",
          "damaged_status": 1, "not_for_loan_status": -1, "checked_out_date": "2026-12-24" },
        { "item_id": 2, "external_id": null, "lost_status": 1 },
        { "item_id": 3, "external_id": "A3" }
    ]);
    let rows = parse_items(&page.to_string()).unwrap();
    assert_eq!(
        rows[0].record,
        Some(ItemRecord {
            barcode: "A1".into(),
            lost: true,
            withdrawn: true,
            not_for_loan: true,
            damaged: true,
            on_loan: Some(Holder::Unknown),
        })
    );
    assert_eq!(rows[1].record, None, "no barcode: nothing to scan");
    assert_eq!(rows[2].record, Some(item("A3")));
}

#[test]
fn checkouts_name_who_has_an_item() {
    let items = parse_items(
        &json!([
            { "item_id": 1, "external_id": "A1", "checked_out_date": "2026-12-24" },
            { "item_id": 2, "external_id": "A2", "checked_out_date": "2026-12-24" },
            { "item_id": 3, "external_id": "A3" },
            { "item_id": 4, "external_id": null }
        ])
        .to_string(),
    )
    .unwrap();
    let checkouts = parse_checkouts(
        &json!([
            { "checkout_id": 9, "item_id": 1, "patron_id": 42, "due_date": "2026-12-24T23:59:00" },
            { "checkout_id": 10, "item_id": 3, "patron_id": 43 }
        ])
        .to_string(),
    )
    .unwrap();
    let records = join_loans(items, &checkouts);
    let loans: Vec<_> = records.iter().map(|r| (&*r.barcode, r.on_loan)).collect();
    assert_eq!(
        loans,
        [
            ("A1", Some(Holder::Patron(42))),
            ("A2", Some(Holder::Unknown)),
            ("A3", Some(Holder::Patron(43))),
        ]
    );
}

#[test]
fn a_page_that_is_not_json_is_malformed() {
    let error = parse_patrons("<html><body>Internal Server Error</body></html>").unwrap_err();
    assert_eq!(error.kind(), "malformed-json");
    assert_eq!(
        error.to_string(),
        "the page is not JSON: expected value at line 1 column 1"
    );
    let cut = parse_items(r#"[{"item_id": 1, "external_id": "A"#).unwrap_err();
    assert_eq!(cut.kind(), "malformed-json");
}

#[test]
fn a_page_of_the_wrong_shape_is_unexpected() {
    let error =
        parse_checkouts(r#"{"error": "Authorization failure. Missing required permission(s)."}"#)
            .unwrap_err();
    assert_eq!(error.kind(), "unexpected");
    assert!(error
        .to_string()
        .starts_with("the page is not a list of checkouts: invalid type: map"));
    let wrong_type = parse_items(r#"[{"item_id": "seven"}]"#).unwrap_err();
    assert_eq!(wrong_type.kind(), "unexpected");
}

#[test]
fn a_record_without_a_needed_field_names_it() {
    let page = r#"[{"patron_id": 1, "cardnumber": "C1", "library_id": "CPL"},
                   {"cardnumber": "C2", "library_id": "CPL"}]"#;
    let error = parse_patrons(page).unwrap_err();
    assert_eq!(
        error,
        PageError::MissingField {
            what: "patrons",
            index: 1,
            field: "patron_id"
        }
    );
    assert_eq!(error.to_string(), "patrons record 1 has no patron_id");
    let no_library = parse_patrons(r#"[{"patron_id": 1, "cardnumber": "C1"}]"#).unwrap_err();
    assert_eq!(no_library.to_string(), "patrons record 0 has no library_id");
    let no_item = parse_checkouts(r#"[{"patron_id": 1}]"#).unwrap_err();
    assert_eq!(no_item.to_string(), "checkouts record 0 has no item_id");
    let no_id = parse_items(r#"[{"external_id": "A"}]"#).unwrap_err();
    assert_eq!(no_id.kind(), "missing-field");
}

#[test]
fn a_date_that_is_not_a_date_is_a_bad_value() {
    let page =
        r#"[{"patron_id": 1, "cardnumber": "C1", "library_id": "CPL", "expiry_date": "soon"}]"#;
    let error = parse_patrons(page).unwrap_err();
    assert_eq!(error.kind(), "bad-value");
    assert_eq!(
        error.to_string(),
        "patrons record 0: expiry_date is not readable: soon"
    );
}

#[test]
fn every_page_error_has_a_kind() {
    assert_eq!(
        PageError::KINDS,
        ["malformed-json", "unexpected", "missing-field", "bad-value"]
    );
}

// ---- Paging ----

#[test]
fn a_list_is_read_page_by_page_until_the_total() {
    let mut pager = Pager::new("https://koha.example.org", List::Checkouts, 500);
    let mut urls = Vec::new();
    while let Some(request) = pager.request() {
        urls.push(request.full_url());
        pager.feed(500, Some("1500"));
    }
    assert_eq!(
        urls,
        [
            "https://koha.example.org/api/v1/checkouts?_page=1&_per_page=500&_order_by=%2Bcheckout_id",
            "https://koha.example.org/api/v1/checkouts?_page=2&_per_page=500&_order_by=%2Bcheckout_id",
            "https://koha.example.org/api/v1/checkouts?_page=3&_per_page=500&_order_by=%2Bcheckout_id",
        ]
    );
    assert_eq!(pager.progress().received, 1500);
    assert_eq!(pager.progress().total, Some(1500));
}

#[test]
fn an_empty_list_is_done_after_one_page() {
    let mut pager = Pager::new("https://koha.example.org", List::Patrons, 100);
    assert!(pager.feed(0, Some("0")).done);
    assert!(pager.request().is_none());
}

#[test]
fn a_download_resumes_where_it_stopped() {
    let mut pager = Pager::new("https://koha.example.org", List::Items, 100);
    pager.feed(100, Some("250"));
    // A failed request feeds nothing: the page is asked for again, here after a restart.
    let saved = serde_json::to_string(&pager).unwrap();
    let mut resumed: Pager = serde_json::from_str(&saved).unwrap();
    assert_eq!(resumed.request().unwrap().param("_page"), Some("2"));
    resumed.feed(100, Some("250"));
    let progress = resumed.feed(50, Some("250"));
    assert!(progress.done);
    assert_eq!(progress.received, 250);
}

#[test]
fn a_missing_or_garbled_total_leaves_the_short_page_to_end_the_list() {
    let mut pager = Pager::new("https://koha.example.org", List::Items, 10);
    assert!(!pager.feed(10, Some("many")).done);
    assert_eq!(pager.progress().total, None);
    assert!(pager.feed(3, None).done);
}

// ---- Warnings ----

fn desk_snapshot() -> Snapshot {
    let mut expired = patron("C-EXPIRED", 2);
    expired.expiry = Some(day(2026, 11, 30));
    let mut restricted = patron("C-RESTRICTED", 3);
    restricted.restriction = Restriction::Indefinite;
    let mut until = patron("C-UNTIL", 4);
    until.restriction = Restriction::Until(day(2026, 12, 2));
    let mut over = patron("C-OVER", 5);
    over.restriction = Restriction::Until(day(2026, 11, 1));
    let mut troubled = patron("C-TROUBLED", 6);
    troubled.card_lost = true;
    troubled.address_in_doubt = true;
    troubled.balance_cents = 1001;
    troubled.expiry = Some(day(2026, 12, 1));
    let patrons = vec![
        patron("C-OK", 1),
        expired,
        restricted,
        until,
        over,
        troubled,
    ];
    let mut lost = item("B-LOST");
    lost.lost = true;
    lost.damaged = true;
    let mut withdrawn = item("B-WITHDRAWN");
    withdrawn.withdrawn = true;
    withdrawn.not_for_loan = true;
    let mut with_ok = item("B-LOAN-OK");
    with_ok.on_loan = Some(Holder::Patron(1));
    let mut with_gone = item("B-LOAN-GONE");
    with_gone.on_loan = Some(Holder::Patron(99));
    let mut with_unknown = item("B-LOAN-UNKNOWN");
    with_unknown.on_loan = Some(Holder::Unknown);
    let items = vec![
        item("B-OK"),
        lost,
        withdrawn,
        with_ok,
        with_gone,
        with_unknown,
    ];
    Snapshot::new(taken(), ALL, patrons, items)
}

fn card_kinds(snapshot: &Snapshot, card: &str, limit: Option<i64>) -> Vec<CardProblem> {
    let limits = CardLimits {
        balance_cents: limit,
    };
    let now = taken() + Duration::hours(3);
    check_card(snapshot, card, limits, day(2026, 12, 1), now)
        .into_iter()
        .map(|w| w.problem)
        .collect()
}

fn item_problems(snapshot: &Snapshot, barcode: &str, borrower: Option<&str>) -> Vec<ItemProblem> {
    let scan = ItemScan {
        barcode,
        borrower,
        moved_here: false,
    };
    check_item(snapshot, scan, taken())
        .into_iter()
        .map(|w| w.problem)
        .collect()
}

#[test]
fn the_day_a_card_expires_is_kohas_day_not_the_desks() {
    // Koha in Berlin (UTC+1 in winter); the desk's clock says 23:30 UTC on 30 November: in
    // Berlin it is already 1 December, the first day the card of C-EXPIRED is no longer valid.
    let berlin = FixedZone(FixedOffset::east_opt(3600).unwrap());
    let new_york = FixedZone(FixedOffset::west_opt(5 * 3600).unwrap());
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 23, 30, 0).unwrap();
    assert_eq!(koha_today(now, &berlin), day(2026, 12, 1));
    assert_eq!(koha_today(now, &FixedZone::utc()), day(2026, 11, 30));
    assert_eq!(koha_today(now, &new_york), day(2026, 11, 30));
    let limits = CardLimits {
        balance_cents: None,
    };
    let expired = |zone: &FixedZone| {
        check_card(
            &desk_snapshot(),
            "C-EXPIRED",
            limits,
            koha_today(now, zone),
            now,
        )
        .len()
    };
    assert_eq!(expired(&berlin), 1);
    assert_eq!(
        expired(&new_york),
        0,
        "the expiry day itself is still valid"
    );
}

#[test]
fn a_good_card_gives_no_warning() {
    assert_eq!(card_kinds(&desk_snapshot(), "C-OK", Some(0)), []);
    assert_eq!(card_kinds(&desk_snapshot(), " C-OK ", Some(0)), []);
}

#[test]
fn each_card_problem_is_told() {
    let snapshot = desk_snapshot();
    assert_eq!(
        card_kinds(&snapshot, "C-NOBODY", None),
        [CardProblem::UnknownCard]
    );
    assert_eq!(
        card_kinds(&snapshot, "C-EXPIRED", None),
        [CardProblem::Expired {
            on: day(2026, 11, 30)
        }]
    );
    assert_eq!(
        card_kinds(&snapshot, "C-RESTRICTED", None),
        [CardProblem::Restricted { until: None }]
    );
    assert_eq!(
        card_kinds(&snapshot, "C-UNTIL", None),
        [CardProblem::Restricted {
            until: Some(day(2026, 12, 2))
        }]
    );
    assert_eq!(
        card_kinds(&snapshot, "C-OVER", None),
        [],
        "a restriction that ended"
    );
    assert_eq!(
        card_kinds(&snapshot, "C-TROUBLED", Some(1000)),
        [
            CardProblem::CardLost,
            CardProblem::AddressInDoubt,
            CardProblem::BalanceAboveLimit {
                balance_cents: 1001,
                limit_cents: 1000
            },
        ],
        "a card is valid through its expiry day"
    );
    assert_eq!(
        card_kinds(&snapshot, "C-TROUBLED", Some(1001)),
        [CardProblem::CardLost, CardProblem::AddressInDoubt],
        "owing exactly the limit is fine"
    );
}

#[test]
fn each_item_problem_is_told() {
    let snapshot = desk_snapshot();
    assert_eq!(
        item_problems(&snapshot, "B-NONE", Some("C-OK")),
        [ItemProblem::UnknownBarcode]
    );
    assert_eq!(item_problems(&snapshot, "B-OK", Some("C-OK")), []);
    assert_eq!(
        item_problems(&snapshot, "B-LOST", None),
        [ItemProblem::Lost, ItemProblem::Damaged]
    );
    assert_eq!(
        item_problems(&snapshot, "B-WITHDRAWN", Some("C-OK")),
        [ItemProblem::Withdrawn, ItemProblem::NotForLoan]
    );
}

#[test]
fn an_item_on_loan_warns_only_when_another_patron_borrows_it() {
    let snapshot = desk_snapshot();
    assert_eq!(
        item_problems(&snapshot, "B-LOAN-OK", Some("C-OK")),
        [],
        "the holder renews"
    );
    assert_eq!(
        item_problems(&snapshot, "B-LOAN-OK", Some("C-EXPIRED")),
        [ItemProblem::OnLoanToAnother {
            cardnumber: Some("C-OK".into())
        }]
    );
    assert_eq!(
        item_problems(&snapshot, "B-LOAN-OK", None),
        [],
        "a checkin of a loan"
    );
    assert_eq!(
        item_problems(&snapshot, "B-LOAN-GONE", Some("C-OK")),
        [ItemProblem::OnLoanToAnother { cardnumber: None }],
        "a holder not in the patron list"
    );
    assert_eq!(
        item_problems(&snapshot, "B-LOAN-UNKNOWN", Some("C-NOBODY")),
        [ItemProblem::OnLoanToAnother { cardnumber: None }]
    );
}

fn recorded(n: u64, at: DateTime<Utc>, action: Action) -> Transaction {
    Transaction::record(
        TransactionId::new(at, n),
        at,
        Branchcode::parse("CPL").unwrap(),
        action,
    )
}

fn checkin(barcode: &str) -> Action {
    Action::Return {
        barcode: Barcode::parse(barcode).unwrap(),
    }
}

/// The desk's own checkouts and checkins outrank the snapshot's loans when Koha may not know them.
#[test]
fn the_desk_journal_outranks_the_snapshot_for_loans() {
    let snapshot = desk_snapshot();
    let barcode = Barcode::parse("B-LOAN-OK").unwrap();
    let now = taken() + Duration::hours(2);
    let knows = |journal: &Journal| moved_here(journal, &barcode, &snapshot, now);

    assert!(!knows(&Journal::new()));
    // Checked in here during the outage: not on loan any more.
    let journal = Journal::from_transactions(vec![recorded(1, now, checkin("B-LOAN-OK"))]);
    assert!(knows(&journal));
    let scan = ItemScan {
        barcode: "B-LOAN-OK",
        borrower: Some("C-EXPIRED"),
        moved_here: knows(&journal),
    };
    assert_eq!(check_item(&snapshot, scan, now), []);

    // Checked in here yesterday and applied by Koha before the snapshot: the snapshot knows.
    let yesterday = taken() - Duration::days(1);
    let mut applied = recorded(2, yesterday, checkin("B-LOAN-OK"));
    applied.start_sending(yesterday).unwrap();
    applied.finish_sending(yesterday, Status::Applied).unwrap();
    assert!(!knows(&Journal::from_transactions(vec![applied.clone()])));

    // The same, but only queued in Koha's pending list: Koha has not applied it yet.
    let mut queued = recorded(3, yesterday, checkin("B-LOAN-OK"));
    queued.start_sending(yesterday).unwrap();
    queued.finish_sending(yesterday, Status::Queued).unwrap();
    assert!(knows(&Journal::from_transactions(vec![queued])));

    // Rejected by Koha: it changed nothing.
    let mut rejected = recorded(4, now, checkin("B-LOAN-OK"));
    rejected.start_sending(now).unwrap();
    rejected
        .finish_sending(
            now,
            Status::Rejected {
                message: "Item not issued.".into(),
            },
        )
        .unwrap();
    assert!(!knows(&Journal::from_transactions(vec![applied, rejected])));

    // Checked out here to a card after the snapshot: the journal's own warning covers it.
    let issue = Action::Issue {
        cardnumber: Cardnumber::parse("C-TROUBLED").unwrap(),
        barcode: barcode.clone(),
    };
    let journal = Journal::from_transactions(vec![recorded(5, now, issue)]);
    assert!(knows(&journal));
}

#[test]
fn warnings_carry_the_snapshot_age() {
    let snapshot = desk_snapshot();
    let now = taken() + Duration::minutes(90);
    let scan = ItemScan {
        barcode: "B-NONE",
        borrower: None,
        moved_here: false,
    };
    let warnings = check_item(&snapshot, scan, now);
    assert_eq!(warnings[0].kind(), "unknown-barcode");
    assert_eq!(
        warnings[0].age,
        SnapshotAge {
            taken_at: taken(),
            minutes: 90
        }
    );
    let limits = CardLimits {
        balance_cents: None,
    };
    let behind = check_card(
        &snapshot,
        "C-NOBODY",
        limits,
        day(2026, 12, 1),
        taken() - Duration::hours(1),
    );
    assert_eq!(behind[0].kind(), "unknown-card");
    assert_eq!(behind[0].age.minutes, 0, "a desk clock behind Koha's");
    assert_eq!(
        serde_json::to_value(&behind[0]).unwrap(),
        json!({"problem": {"kind": "unknown-card"},
               "age": {"takenAt": "2026-12-01T06:00:00Z", "minutes": 0}})
    );
}

#[test]
fn a_list_not_downloaded_checks_nothing() {
    let snapshot = desk_snapshot();
    let patrons_only = Snapshot::new(
        taken(),
        Coverage {
            patrons: true,
            items: false,
            checkouts: false,
        },
        snapshot.patrons().to_vec(),
        Vec::new(),
    );
    assert_eq!(item_problems(&patrons_only, "B-ANY", Some("C-OK")), []);
    let nothing = Snapshot::new(taken(), Coverage::default(), Vec::new(), Vec::new());
    assert_eq!(card_kinds(&nothing, "C-ANY", Some(0)), []);
}

#[test]
fn every_warning_kind_is_listed() {
    assert_eq!(
        CardProblem::KINDS,
        [
            "unknown-card",
            "expired",
            "restricted",
            "card-lost",
            "address-in-doubt",
            "balance-above-limit"
        ]
    );
    assert_eq!(
        ItemProblem::KINDS,
        [
            "unknown-barcode",
            "lost",
            "withdrawn",
            "not-for-loan",
            "damaged",
            "on-loan-to-another"
        ]
    );
}

// ---- Storing the snapshot ----

fn stored(store: &MemoryStore) -> BTreeMap<String, Value> {
    store.entries().into_iter().collect()
}

fn read_back(store: &MemoryStore) -> Result<Option<Snapshot>, StoreError> {
    let entries = stored(store);
    read_snapshot(entries.get("checks:meta"), |key| entries.get(key))
}

fn apply_all(store: &mut MemoryStore, changes: &[Change]) {
    for change in changes {
        store.apply(std::slice::from_ref(change)).unwrap();
    }
}

#[test]
fn a_stored_snapshot_reads_back_equal() {
    let snapshot = desk_snapshot();
    let mut store = MemoryStore::new();
    assert_eq!(read_back(&store).unwrap(), None);
    apply_all(&mut store, &write_plan(&snapshot, None));
    assert_eq!(read_back(&store).unwrap(), Some(snapshot));
}

#[test]
fn a_new_snapshot_replaces_the_old_and_removes_its_chunks() {
    let mut store = MemoryStore::new();
    apply_all(&mut store, &write_plan(&desk_snapshot(), None));
    let newer = Snapshot::new(
        taken() + Duration::days(1),
        ALL,
        vec![patron("C-NEW", 7)],
        vec![item("B-NEW")],
    );
    let meta = store.get("checks:meta");
    let plan = write_plan(&newer, meta.as_ref());
    apply_all(&mut store, &plan);
    assert_eq!(read_back(&store).unwrap(), Some(newer));
    let keys: Vec<String> = stored(&store).into_keys().collect();
    assert_eq!(
        keys,
        ["checks:2:items:0", "checks:2:patrons:0", "checks:meta"]
    );
}

#[test]
fn a_write_refused_half_way_keeps_the_previous_snapshot() {
    let old = desk_snapshot();
    let mut store = MemoryStore::new();
    apply_all(&mut store, &write_plan(&old, None));
    let big = Snapshot::new(
        taken() + Duration::days(1),
        ALL,
        Vec::new(),
        (0..50_000).map(|n| item(&format!("B{n:07}"))).collect(),
    );
    let meta = store.get("checks:meta");
    let plan = write_plan(&big, meta.as_ref());
    assert!(plan.len() > 3, "several chunks, then the meta");
    store.set_quota(Some(store.total_bytes() + 60_000));
    let refused = plan
        .iter()
        .position(|change| store.apply(std::slice::from_ref(change)).is_err());
    assert!(refused.is_some_and(|at| at < plan.len() - 1));
    assert_eq!(read_back(&store).unwrap(), Some(old));
    // The next attempt overwrites what the failed one left.
    store.set_quota(None);
    let meta = store.get("checks:meta");
    apply_all(&mut store, &write_plan(&big, meta.as_ref()));
    assert_eq!(read_back(&store).unwrap(), Some(big));
}

#[test]
fn deleting_removes_every_checks_entry_and_nothing_else() {
    let mut store = MemoryStore::new();
    store
        .apply(&[Change::Put {
            key: "settings".into(),
            value: json!({}),
        }])
        .unwrap();
    apply_all(&mut store, &write_plan(&desk_snapshot(), None));
    // A chunk a failed download left behind.
    store
        .apply(&[Change::Put {
            key: "checks:9:items:0".into(),
            value: json!("left over"),
        }])
        .unwrap();
    let entries = store.entries();
    let plan = delete_plan(entries.iter().map(|(key, _)| key.as_str()));
    assert_eq!(plan[0].key(), "checks:meta", "the meta goes first");
    store.apply(&plan).unwrap();
    let keys: Vec<String> = stored(&store).into_keys().collect();
    assert_eq!(keys, ["settings"]);
    assert_eq!(read_back(&store).unwrap(), None);
}

/// `browser.storage.local` and the add-on's chunk database, written as the shell does.
struct Places {
    local: MemoryStore,
    chunks: MemoryStore,
}

impl Places {
    fn new() -> Self {
        Places {
            local: MemoryStore::new(),
            chunks: MemoryStore::new(),
        }
    }

    fn apply(&mut self, plan: Vec<Change>) {
        for (place, change) in placed(plan) {
            let store = match place {
                Place::Local => &mut self.local,
                Place::Chunks => &mut self.chunks,
            };
            store.apply(std::slice::from_ref(&change)).unwrap();
        }
    }

    /// As the shell reads: the meta from storage.local, a chunk from the database or else from
    /// storage.local.
    fn read_back(&self) -> Result<Option<Snapshot>, StoreError> {
        let (local, chunks) = (stored(&self.local), stored(&self.chunks));
        read_snapshot(local.get("checks:meta"), |key| {
            chunks.get(key).or_else(|| local.get(key))
        })
    }

    fn checks_keys(&self) -> (Vec<String>, Vec<String>) {
        let keys = |store: &MemoryStore| -> Vec<String> {
            stored(store)
                .into_keys()
                .filter(|key| key.starts_with("checks:"))
                .collect()
        };
        (keys(&self.local), keys(&self.chunks))
    }

    fn all_keys(&self) -> Vec<String> {
        let (mut local, chunks) = self.checks_keys();
        local.extend(
            stored(&self.local)
                .into_keys()
                .filter(|k| !k.starts_with("checks:")),
        );
        local.extend(chunks);
        local
    }
}

#[test]
fn the_chunks_go_to_their_database_before_the_meta_names_them() {
    let snapshot = desk_snapshot();
    let writes = placed(write_plan(&snapshot, None));
    let meta_at = writes
        .iter()
        .position(|(place, change)| *place == Place::Local && change.key() == "checks:meta")
        .unwrap();
    assert_eq!(meta_at, writes.len() - 1, "the meta last: {writes:?}");
    assert!(writes[..meta_at]
        .iter()
        .all(|(place, change)| *place == Place::Chunks && matches!(change, Change::Put { .. })));
    let mut places = Places::new();
    places.apply(write_plan(&snapshot, None));
    assert_eq!(
        places.checks_keys(),
        (
            vec!["checks:meta".to_owned()],
            vec![
                "checks:1:items:0".to_owned(),
                "checks:1:patrons:0".to_owned()
            ]
        )
    );
    assert_eq!(places.read_back().unwrap(), Some(snapshot));
}

#[test]
fn a_snapshot_kept_whole_in_storage_local_is_read_then_moved_and_deleted_everywhere() {
    let mut places = Places::new();
    places
        .local
        .apply(&[Change::Put {
            key: "settings".into(),
            value: json!({}),
        }])
        .unwrap();
    // An earlier build wrote every entry to storage.local.
    apply_all(&mut places.local, &write_plan(&desk_snapshot(), None));
    assert_eq!(places.read_back().unwrap(), Some(desk_snapshot()));
    let newer = Snapshot::new(
        taken() + Duration::days(1),
        ALL,
        vec![patron("C-NEW", 7)],
        vec![item("B-NEW")],
    );
    let meta = places.local.get("checks:meta");
    places.apply(write_plan(&newer, meta.as_ref()));
    assert_eq!(places.read_back().unwrap(), Some(newer));
    assert_eq!(
        places.checks_keys(),
        (
            vec!["checks:meta".to_owned()],
            vec![
                "checks:2:items:0".to_owned(),
                "checks:2:patrons:0".to_owned()
            ]
        ),
        "the old generation's chunks left storage.local"
    );
    let keys = places.all_keys();
    let plan = delete_plan(keys.iter().map(String::as_str));
    places.apply(plan);
    assert_eq!(places.checks_keys(), (Vec::new(), Vec::new()));
    assert_eq!(
        stored(&places.local).into_keys().collect::<Vec<_>>(),
        ["settings"]
    );
    assert_eq!(places.read_back().unwrap(), None);
}

#[test]
fn a_damaged_or_newer_snapshot_is_refused_not_misread() {
    let mut store = MemoryStore::new();
    apply_all(&mut store, &write_plan(&desk_snapshot(), None));
    let mut entries = stored(&store);
    entries.insert(
        "checks:1:items:0".into(),
        json!(r#"{"v":1,"count":6,"data":"AAAA"}"#),
    );
    let error = read_snapshot(entries.get("checks:meta"), |key| entries.get(key)).unwrap_err();
    assert_eq!(error.kind(), "corrupt");
    assert!(error.to_string().starts_with("checks:1:items:0: "));

    entries.remove("checks:1:items:0");
    let error = read_snapshot(entries.get("checks:meta"), |key| entries.get(key)).unwrap_err();
    assert_eq!(error.to_string(), "checks:1:items:0: missing");

    let newer = json!(r#"{"v":2}"#);
    let error = read_snapshot(Some(&newer), |key| entries.get(key)).unwrap_err();
    assert_eq!(
        error,
        StoreError::UnknownEnvelope {
            key: "checks:meta".into(),
            version: 2
        }
    );
}

// ---- A whole download ----

/// Answers `download`'s requests from these records per list (`Err(status)`: the list answers that status
/// on its first page), until it asks for nothing more.
fn run(download: &mut Download, lists: &BTreeMap<&str, Result<Vec<Value>, u16>>, per_page: usize) {
    while let Some(request) = download.request() {
        let path = request.url.rsplit('/').next().unwrap().to_owned();
        let page: usize = request.param("_page").unwrap().parse().unwrap();
        match &lists[path.as_str()] {
            Ok(records) => {
                let slice: Vec<&Value> = records
                    .iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .collect();
                let total = records.len().to_string();
                download
                    .feed(200, Some(&total), &serde_json::to_string(&slice).unwrap())
                    .unwrap();
            }
            Err(status) => download.feed(*status, None, "").unwrap(),
        }
    }
}

fn koha_lists() -> BTreeMap<&'static str, Result<Vec<Value>, u16>> {
    let patrons = (1..=5)
        .map(|n| {
            json!({"patron_id": n, "cardnumber": format!("C{n}"), "library_id": "CPL",
                        "surname": "kept nowhere", "account_balance": n})
        })
        .collect();
    let items = (1..=7)
        .map(|n| {
            json!({"item_id": n, "external_id": format!("B{n}"),
                        "checked_out_date": if n == 3 { json!("2026-12-24") } else { Value::Null }})
        })
        .collect();
    let checkouts = vec![json!({"item_id": 3, "patron_id": 2})];
    BTreeMap::from([
        ("patrons", Ok(patrons)),
        ("items", Ok(items)),
        ("checkouts", Ok(checkouts)),
    ])
}

#[test]
fn a_download_reads_the_three_lists_into_one_snapshot() {
    let mut download = Download::new("https://koha.example.org", 2, taken());
    run(&mut download, &koha_lists(), 2);
    assert!(download.unavailable().is_empty());
    let snapshot = download.finish().unwrap();
    assert_eq!(snapshot.taken_at(), taken());
    assert_eq!(snapshot.coverage(), ALL);
    assert_eq!(snapshot.patrons().len(), 5);
    assert_eq!(snapshot.items().len(), 7);
    assert_eq!(snapshot.patron("C5").unwrap().balance_cents, 500);
    assert_eq!(
        snapshot.item("B3").unwrap().on_loan,
        Some(Holder::Patron(2))
    );
}

/// The page fetched ahead is always the one asked for next, within a list, and none is
/// offered past a list's end or before its first page gave the total (issue 12: a thousand
/// pages of items read while the next one travels).
#[test]
fn the_page_fetched_ahead_is_the_next_one_asked_for() {
    let lists = koha_lists();
    let mut download = Download::new("https://koha.example.org", 2, taken());
    let mut offered = Vec::new();
    while let Some(request) = download.request() {
        let after = download.page_after();
        if let Some(after) = &after {
            offered.push(after.full_url());
        }
        let path = request.url.rsplit('/').next().unwrap().to_owned();
        let page: usize = request.param("_page").unwrap().parse().unwrap();
        let records = lists[path.as_str()].as_ref().unwrap();
        let slice: Vec<&Value> = records.iter().skip((page - 1) * 2).take(2).collect();
        let total = records.len().to_string();
        download
            .feed(200, Some(&total), &serde_json::to_string(&slice).unwrap())
            .unwrap();
        if let Some(after) = after {
            assert_eq!(
                download.request(),
                Some(after),
                "offered ahead, then asked for"
            );
        }
    }
    let pages = |list: &str| {
        offered
            .iter()
            .filter(|url| url.contains(list))
            .map(|url| url.split("_page=").nth(1).unwrap()[..1].to_owned())
            .collect::<Vec<_>>()
    };
    // Five patrons are pages 1 to 3: page 3 is offered while page 2 travels.
    assert_eq!(pages("patrons"), ["3"]);
    assert_eq!(pages("items"), ["3", "4"]);
    assert!(pages("checkouts").is_empty());
    assert!(download.finish().is_some());
    let probe = Download::probing("https://koha.example.org", taken(), desk_login());
    assert_eq!(probe.page_after(), None, "a probe reads one page a list");
}

#[test]
fn a_list_refused_on_its_first_page_is_left_out_and_the_rest_goes_on() {
    let mut lists = koha_lists();
    lists.insert("items", Err(404));
    lists.insert("checkouts", Err(403));
    let mut download = Download::new("https://koha.example.org", 2, taken());
    run(&mut download, &lists, 2);
    assert_eq!(
        download.unavailable(),
        [
            (List::Items, Unavailable::NotFound),
            (List::Checkouts, Unavailable::Forbidden { http_status: 403 })
        ]
    );
    let snapshot = download.finish().unwrap();
    assert_eq!(
        snapshot.coverage(),
        Coverage {
            patrons: true,
            items: false,
            checkouts: false
        }
    );
    assert_eq!(item_problems(&snapshot, "B1", Some("C1")), []);
}

#[test]
fn a_failure_half_way_stops_the_download_and_the_same_page_resumes_it() {
    let lists = koha_lists();
    let mut download = Download::new("https://koha.example.org", 2, taken());
    download
        .feed(
            200,
            Some("5"),
            &json!([{"patron_id": 1, "cardnumber": "C1", "library_id": "CPL"},
                                      {"patron_id": 2, "cardnumber": "C2", "library_id": "CPL"}])
            .to_string(),
        )
        .unwrap();
    let error = download
        .feed(500, None, "Internal Server Error")
        .unwrap_err();
    assert_eq!(error.kind(), "status");
    assert_eq!(error.to_string(), "patrons page 2: Koha answered HTTP 500");
    let error = download.feed(403, None, "").unwrap_err();
    assert_eq!(
        error.kind(),
        "status",
        "a refusal after the first page is not a permission"
    );
    let error = download
        .feed(200, Some("5"), "[{\"patron_id\": 3,")
        .unwrap_err();
    assert_eq!(error.kind(), "page");
    assert_eq!(download.request().unwrap().param("_page"), Some("2"));
    assert!(
        download.clone().finish().is_none(),
        "no snapshot before the end"
    );
    // Koha answers the rest, from page 2 on.
    run(&mut download, &lists, 2);
    let snapshot = download.finish().unwrap();
    assert_eq!(snapshot.patrons().len(), 5);
}

// ---- How a download logs in ----

const KOHA: &str = "https://koha.example.org";

fn desk_login() -> Credentials {
    Credentials {
        userid: Userid::parse("desk").unwrap(),
        password: "secret".to_owned(),
    }
}

fn auth_reply(status: u16, token: Option<&str>, auth_status: &str) -> Reply {
    Reply::Http {
        status,
        csrf_token: token.map(str::to_owned),
        body: format!("<response><status>{auth_status}</status></response>"),
        date: None,
    }
}

fn header<'a>(request: &'a koha_offline_circ::koha::HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Koha with `RESTBasicAuth` off refuses the first page: the download logs in through
/// `svc/authentication` and asks for the same page again with the session's cookie.
fn log_in_after_basic_refused(download: &mut Download) {
    let Next::Page(basic) = download.next() else {
        panic!("a page first")
    };
    assert!(header(&basic, "Authorization")
        .unwrap()
        .starts_with("Basic "));
    assert!(!basic.include_cookies, "Basic sends no cookie");
    download.feed(401, None, "").unwrap();
    let Next::Login(probe) = download.next() else {
        panic!("the login after a refused Basic")
    };
    assert_eq!(probe.method, Method::Get);
    assert!(probe.url.ends_with("/cgi-bin/koha/svc/authentication"));
    download
        .feed_login(&auth_reply(200, Some("t0k"), "anon"))
        .unwrap();
    let Next::Login(login) = download.next() else {
        panic!("the login itself")
    };
    assert_eq!(login.method, Method::Post);
    assert_eq!(login.param("login_userid"), Some("desk"));
    assert_eq!(header(&login, "CSRF-TOKEN"), Some("t0k"));
}

#[test]
fn a_download_where_basic_works_never_logs_in_to_a_session() {
    let mut download = Download::logging_in(KOHA, 2, taken(), desk_login());
    run(&mut download, &koha_lists(), 2);
    assert!(!download.uses_session());
    assert_eq!(download.logout(), None);
    assert_eq!(download.finish().unwrap().coverage(), ALL);
}

#[test]
fn where_koha_refuses_basic_the_download_goes_on_with_the_staff_session() {
    let mut download = Download::logging_in(KOHA, 2, taken(), desk_login());
    log_in_after_basic_refused(&mut download);
    download
        .feed_login(&auth_reply(200, Some("t1k"), "ok"))
        .unwrap();
    assert!(download.uses_session());
    let Next::Page(page) = download.next() else {
        panic!("the same page again")
    };
    assert_eq!(page.param("_page"), Some("1"));
    assert!(page.url.ends_with("/api/v1/patrons"));
    assert_eq!(header(&page, "Authorization"), None);
    assert!(page.include_cookies, "the session's cookie goes with it");
    run(&mut download, &koha_lists(), 2);
    assert!(download.unavailable().is_empty());
    assert_eq!(
        download.logout(),
        Some(logout_request(KOHA)),
        "the session it opened is ended"
    );
    assert_eq!(download.logout(), None, "once");
    assert_eq!(download.finish().unwrap().coverage(), ALL);
}

#[test]
fn where_koha_refuses_the_session_too_every_list_is_left_out_as_refused() {
    let mut download = Download::logging_in(KOHA, 2, taken(), desk_login());
    log_in_after_basic_refused(&mut download);
    download
        .feed_login(&auth_reply(200, None, "failed"))
        .unwrap();
    let mut refused = koha_lists();
    for list in ["patrons", "items", "checkouts"] {
        refused.insert(list, Err(401));
    }
    run(&mut download, &refused, 2);
    let forbidden = Unavailable::Forbidden { http_status: 401 };
    assert_eq!(
        download.unavailable(),
        [
            (List::Patrons, forbidden),
            (List::Items, forbidden),
            (List::Checkouts, forbidden)
        ]
    );
    assert_eq!(download.logout(), None, "never logged in");
    assert_eq!(download.finish().unwrap().coverage(), Coverage::default());
}

#[test]
fn a_login_without_an_answer_stops_the_download_and_the_next_start_logs_in_again() {
    let mut download = Download::logging_in(KOHA, 2, taken(), desk_login());
    log_in_after_basic_refused(&mut download);
    let error = download
        .feed_login(&Reply::NoAnswer {
            why: NoAnswer::Timeout,
        })
        .unwrap_err();
    assert_eq!(error.kind(), "login");
    assert_eq!(
        download.logout(),
        Some(logout_request(KOHA)),
        "Koha may have logged in all the same"
    );
    let Next::Login(probe) = download.next() else {
        panic!("the login again")
    };
    assert_eq!(probe.method, Method::Get);
    download.feed_login(&auth_reply(200, None, "anon")).unwrap();
    download.feed_login(&auth_reply(200, None, "ok")).unwrap();
    run(&mut download, &koha_lists(), 2);
    assert_eq!(download.finish().unwrap().coverage(), ALL);
}

#[test]
fn a_download_stopped_after_logging_in_logs_in_again_when_it_goes_on() {
    let mut download = Download::logging_in(KOHA, 2, taken(), desk_login());
    log_in_after_basic_refused(&mut download);
    download.feed_login(&auth_reply(200, None, "ok")).unwrap();
    download
        .feed(500, None, "Internal Server Error")
        .unwrap_err();
    assert!(download.logout().is_some());
    assert!(matches!(download.next(), Next::Login(_)));
}

// ---- The connection test's probe ----

/// Answers a probe's requests: each list's first page from `lists` (one record), until done.
fn probe(lists: &BTreeMap<&str, Result<Vec<Value>, u16>>) -> Vec<Availability> {
    let mut download = Download::probing(KOHA, taken(), desk_login());
    let mut asked = Vec::new();
    while let Some(request) = download.request() {
        assert_eq!(request.param("_per_page"), Some("1"), "a cheap probe");
        let path = request.url.rsplit('/').next().unwrap().to_owned();
        asked.push(path.clone());
        match &lists[path.as_str()] {
            Ok(records) => {
                let first: Vec<&Value> = records.iter().take(1).collect();
                let total = records.len().to_string();
                download
                    .feed(200, Some(&total), &serde_json::to_string(&first).unwrap())
                    .unwrap();
            }
            Err(status) => download.feed(*status, None, "").unwrap(),
        }
    }
    assert_eq!(asked, ["patrons", "items", "checkouts"], "one page of each");
    download.availability().unwrap()
}

fn unavailable(found: &[Availability]) -> Vec<(List, Option<Unavailable>)> {
    found.iter().map(|a| (a.list, a.unavailable)).collect()
}

#[test]
fn a_probe_reads_one_record_of_each_list_and_says_all_are_available() {
    let found = probe(&koha_lists());
    assert_eq!(
        unavailable(&found),
        [
            (List::Patrons, None),
            (List::Items, None),
            (List::Checkouts, None)
        ]
    );
    assert_eq!(found[0].permission, "list_borrowers");
}

#[test]
fn a_probe_names_what_is_missing_and_a_broken_api_is_not_a_failure() {
    let mut lists = koha_lists();
    lists.insert("patrons", Err(403));
    lists.insert("items", Err(404));
    lists.insert("checkouts", Err(500));
    let found = probe(&lists);
    assert_eq!(
        unavailable(&found),
        [
            (
                List::Patrons,
                Some(Unavailable::Forbidden { http_status: 403 })
            ),
            (List::Items, Some(Unavailable::NotFound)),
            (
                List::Checkouts,
                Some(Unavailable::Broken { http_status: 500 })
            ),
        ]
    );
    assert_eq!(found[2].permission, "circulate_remaining_permissions");
    assert_eq!(Unavailable::Broken { http_status: 500 }.kind(), "broken");
}

#[test]
fn a_probe_of_a_page_that_cannot_be_read_calls_the_list_broken() {
    let mut download = Download::probing(KOHA, taken(), desk_login());
    download.feed(200, Some("1"), "<html>oops").unwrap();
    assert_eq!(download.availability(), None, "not done yet");
    assert!(download.request().unwrap().url.ends_with("/api/v1/items"));
    download.feed(200, Some("0"), "[]").unwrap();
    download.feed(200, Some("0"), "[]").unwrap();
    let found = download.availability().unwrap();
    assert_eq!(
        unavailable(&found),
        [
            (
                List::Patrons,
                Some(Unavailable::Broken { http_status: 200 })
            ),
            (List::Items, None),
            (List::Checkouts, None)
        ]
    );
}

#[test]
fn a_download_is_not_a_probe_a_server_error_stops_it() {
    let mut download = Download::logging_in(KOHA, 2, taken(), desk_login());
    assert_eq!(download.feed(500, None, "").unwrap_err().kind(), "status");
    assert_eq!(download.availability(), None);
}

// ---- A payment at the desk ----

#[test]
fn a_payment_shows_the_balance_of_a_known_card_with_the_snapshot_age() {
    let snapshot = desk_snapshot();
    let now = taken() + Duration::hours(3);
    let shown = payment_balance(&snapshot, " c-troubled ", now).unwrap();
    assert_eq!(shown.balance_cents, 1001);
    assert_eq!((shown.age.unit, shown.age.amount), ("hours", 3));
    assert_eq!(shown.age.taken_at, taken());
    assert_eq!(
        payment_balance(&snapshot, "C-OK", now)
            .unwrap()
            .balance_cents,
        0
    );
    assert_eq!(payment_balance(&snapshot, "C-NOBODY", now), None);
    assert_eq!(payment_balance(&snapshot, "", now), None);
    let without_patrons = Snapshot::new(
        taken(),
        Coverage {
            patrons: false,
            items: true,
            checkouts: true,
        },
        Vec::new(),
        vec![item("B-OK")],
    );
    assert_eq!(payment_balance(&without_patrons, "C-OK", now), None);
}

// ---- The automatic download ----

#[test]
fn the_automatic_download_setting_reads_hours_and_refuses_anything_else() {
    assert_eq!(
        parse_auto_hours(""),
        Ok(AutoDownload::After { hours: 24 }),
        "the default"
    );
    assert_eq!(
        parse_auto_hours(" 6 "),
        Ok(AutoDownload::After { hours: 6 })
    );
    assert_eq!(parse_auto_hours("0"), Ok(AutoDownload::Never));
    for bad in ["abc", "-1", "1.5", "9000", "24h"] {
        assert!(parse_auto_hours(bad).is_err(), "{bad}");
    }
    let stored = |setting| match auto_download_change(setting) {
        Change::Put { key, value } => {
            assert_eq!(key, "checks-auto-hours");
            read_auto_download(Some(&value))
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        stored(AutoDownload::After { hours: 6 }),
        AutoDownload::After { hours: 6 }
    );
    assert_eq!(stored(AutoDownload::Never), AutoDownload::Never);
    assert_eq!(read_auto_download(None), AutoDownload::After { hours: 24 });
    assert_eq!(
        read_auto_download(Some(&json!("{\"v\": 99, \"hours\": 2}"))),
        AutoDownload::After { hours: 24 },
        "another version reads as the default"
    );
}

#[test]
fn a_snapshot_is_downloaded_by_itself_only_once_older_than_the_setting() {
    let snapshot = desk_snapshot();
    let every_day = AutoDownload::After { hours: 24 };
    let at = |hours| taken() + Duration::hours(hours);
    assert!(!auto_download_due(every_day, Some(&snapshot), at(23)));
    assert!(auto_download_due(every_day, Some(&snapshot), at(24)));
    assert!(
        auto_download_due(every_day, Some(&snapshot), at(-1)),
        "taken in the future: the clock was wrong"
    );
    assert!(!auto_download_due(
        AutoDownload::Never,
        Some(&snapshot),
        at(1000)
    ));
    assert!(
        !auto_download_due(every_day, None, at(1000)),
        "the first download is the librarian's"
    );
}
