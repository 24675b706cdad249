//! The offline checks as the desk and the options page use them (issue 12): which checks a
//! checkout, a checkin and a payment ask about, the names the pages show them by, the snapshot's
//! age in words, and what the options page says about a stored snapshot.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use koha_offline_circ::checks::{
    card_accepted_after, desk_checks, read_snapshot, snapshot_keys, snapshot_status, write_plan,
    AgeText, CardLimits, Coverage, Holder, ItemRecord, List, PatronRecord, Restriction, Snapshot,
    SnapshotAge, Unavailable,
};
use koha_offline_circ::journal::Journal;
use koha_offline_circ::store::Change;
use koha_offline_circ::{
    Action, Amount, Barcode, Branchcode, Cardnumber, Transaction, TransactionId,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn taken() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

fn patron(cardnumber: &str, patron_id: u32) -> PatronRecord {
    PatronRecord {
        cardnumber: cardnumber.into(),
        patron_id,
        expiry: None,
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

fn snapshot() -> Snapshot {
    let mut restricted = patron("C-RESTRICTED", 2);
    restricted.restriction = Restriction::Indefinite;
    restricted.balance_cents = 2000;
    let mut damaged = item("B-DAMAGED");
    damaged.damaged = true;
    damaged.not_for_loan = true;
    let mut lost = item("B-LOST");
    lost.lost = true;
    let mut lent = item("B-LENT");
    lent.on_loan = Some(Holder::Patron(1));
    let all = Coverage {
        patrons: true,
        items: true,
        checkouts: true,
    };
    Snapshot::new(
        taken(),
        all,
        vec![patron("C-OK", 1), restricted],
        vec![item("B-OK"), damaged, lost, lent],
    )
}

fn issue(card: &str, barcode: &str) -> Action {
    Action::Issue {
        cardnumber: Cardnumber::parse(card).unwrap(),
        barcode: Barcode::parse(barcode).unwrap(),
    }
}

fn checks(action: &Action, accepted: Option<&str>, journal: &Journal) -> Vec<&'static str> {
    let accepted = accepted.map(|c| Cardnumber::parse(c).unwrap());
    let limits = CardLimits {
        balance_cents: Some(1000),
    };
    let now = taken() + Duration::minutes(30);
    desk_checks(
        &snapshot(),
        action,
        journal,
        limits,
        accepted.as_ref(),
        today(),
        now,
    )
    .into_iter()
    .map(|c| c.check)
    .collect()
}

#[test]
fn a_checkout_asks_about_the_card_then_the_item() {
    let none = Journal::new();
    assert_eq!(checks(&issue("C-OK", "B-OK"), None, &none), [] as [&str; 0]);
    assert_eq!(
        checks(&issue("C-RESTRICTED", "B-DAMAGED"), None, &none),
        ["restricted", "balance", "not-for-loan", "damaged"]
    );
    assert_eq!(
        checks(&issue("C-NOBODY", "B-NOTHING"), None, &none),
        ["unknown-card", "unknown-item"]
    );
    assert_eq!(
        checks(&issue("C-OK", "B-LENT"), None, &none),
        [] as [&str; 0],
        "on loan to the same patron: a renewal"
    );
    assert_eq!(
        checks(&issue("C-RESTRICTED", "B-LENT"), None, &none),
        ["restricted", "balance", "on-loan-elsewhere"]
    );
}

#[test]
fn a_card_recorded_anyway_is_not_asked_about_again_for_its_next_items() {
    let none = Journal::new();
    assert_eq!(
        checks(&issue("C-RESTRICTED", "B-OK"), Some("C-RESTRICTED"), &none),
        [] as [&str; 0]
    );
    assert_eq!(
        checks(
            &issue("C-RESTRICTED", "B-LOST"),
            Some("C-RESTRICTED"),
            &none
        ),
        ["lost"]
    );
    assert_eq!(
        checks(&issue("C-RESTRICTED", "B-OK"), Some("C-OK"), &none),
        ["restricted", "balance"],
        "another card's answer does not count"
    );
}

#[test]
fn a_checkin_asks_only_about_unknown_lost_and_withdrawn_items() {
    let none = Journal::new();
    let checkin = |barcode: &str| Action::Return {
        barcode: Barcode::parse(barcode).unwrap(),
    };
    assert_eq!(checks(&checkin("B-LENT"), None, &none), [] as [&str; 0]);
    assert_eq!(checks(&checkin("B-DAMAGED"), None, &none), [] as [&str; 0]);
    assert_eq!(checks(&checkin("B-LOST"), None, &none), ["lost"]);
    assert_eq!(checks(&checkin("B-NOTHING"), None, &none), ["unknown-item"]);
}

#[test]
fn a_payment_asks_only_about_an_unknown_card() {
    let none = Journal::new();
    let pay = |card: &str| Action::Payment {
        cardnumber: Cardnumber::parse(card).unwrap(),
        amount: Amount::parse("5").unwrap(),
    };
    assert_eq!(checks(&pay("C-RESTRICTED"), None, &none), [] as [&str; 0]);
    assert_eq!(checks(&pay("C-NOBODY"), None, &none), ["unknown-card"]);
}

#[test]
fn the_desks_own_checkin_outranks_the_snapshots_loan() {
    let at = taken() + Duration::minutes(10);
    let back = Transaction::record(
        TransactionId::new(at, 1),
        at,
        Branchcode::parse("CPL").unwrap(),
        Action::Return {
            barcode: Barcode::parse("B-LENT").unwrap(),
        },
    );
    let journal = Journal::from_transactions(vec![back]);
    assert_eq!(
        checks(
            &issue("C-RESTRICTED", "B-LENT"),
            Some("C-RESTRICTED"),
            &journal
        ),
        [] as [&str; 0]
    );
}

#[test]
fn a_check_carries_its_kind_details_and_the_age_for_the_page() {
    let action = issue("C-RESTRICTED", "B-LENT");
    let now = taken() + Duration::minutes(30);
    let limits = CardLimits {
        balance_cents: Some(1000),
    };
    let found = desk_checks(
        &snapshot(),
        &action,
        &Journal::new(),
        limits,
        None,
        today(),
        now,
    );
    let value = serde_json::to_value(&found).unwrap();
    assert_eq!(value[1]["check"], "balance");
    assert_eq!(value[1]["kind"], "balance-above-limit");
    assert_eq!(value[1]["balance_cents"], 2000);
    assert_eq!(value[2]["kind"], "on-loan-to-another");
    assert_eq!(value[2]["cardnumber"], "C-OK");
    assert_eq!(value[2]["age"]["unit"], "minutes");
    assert_eq!(value[2]["age"]["amount"], 30);
}

#[test]
fn the_age_reads_in_minutes_hours_or_days() {
    let age = |minutes: i64| {
        let a = AgeText::of(SnapshotAge::at(
            taken(),
            taken() + Duration::minutes(minutes),
        ));
        (a.unit, a.amount)
    };
    assert_eq!(age(0), ("now", 0));
    assert_eq!(age(1), ("minutes", 1));
    assert_eq!(age(119), ("minutes", 119));
    assert_eq!(age(120), ("hours", 2));
    assert_eq!(age(47 * 60 + 59), ("hours", 47));
    assert_eq!(age(48 * 60), ("days", 2));
    assert_eq!(age(-5), ("now", 0), "a desk clock behind the snapshot");
}

/// What Koha refused is kept with the snapshot, so the options page can name the permission.
#[test]
fn the_status_names_each_unavailable_list_and_its_permission_after_a_round_trip() {
    let coverage = Coverage {
        patrons: false,
        items: true,
        checkouts: false,
    };
    let stored =
        Snapshot::new(taken(), coverage, Vec::new(), vec![item("B1")]).with_unavailable(vec![
            (List::Patrons, Unavailable::Forbidden { http_status: 403 }),
            (List::Checkouts, Unavailable::NotFound),
        ]);
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for change in write_plan(&stored, None) {
        if let Change::Put { key, value } = change {
            entries.insert(key, value);
        }
    }
    let read = read_snapshot(entries.get("checks:meta"), |k| entries.get(k))
        .unwrap()
        .unwrap();
    assert_eq!(read, stored);
    let status = serde_json::to_value(snapshot_status(&read, taken() + Duration::days(3))).unwrap();
    assert_eq!(
        status["unavailable"],
        json!([
            {"list": "patrons", "permission": "list_borrowers",
             "why": {"kind": "forbidden", "http_status": 403}},
            {"list": "checkouts", "permission": "circulate_remaining_permissions",
             "why": {"kind": "not-found"}}
        ])
    );
    assert_eq!(status["items"], 1);
    assert_eq!(status["age"]["unit"], "days");
    assert_eq!(status["noneAvailable"], false);
}

#[test]
fn a_snapshot_stored_before_the_reasons_were_kept_still_reads() {
    let stored = Snapshot::new(taken(), Coverage::default(), Vec::new(), Vec::new());
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for change in write_plan(&stored, None) {
        if let Change::Put { key, value } = change {
            entries.insert(key, value);
        }
    }
    let meta = entries["checks:meta"].as_str().unwrap();
    let mut old: Value = serde_json::from_str(meta).unwrap();
    old.as_object_mut().unwrap().remove("unavailable");
    let old = Value::String(old.to_string());
    let read = read_snapshot(Some(&old), |k| entries.get(k))
        .unwrap()
        .unwrap();
    assert!(read.unavailable().is_empty());
    assert!(snapshot_status(&read, taken()).none_available);
}

#[test]
fn the_accepted_card_lasts_while_its_checkouts_go_on() {
    let card = |c: &str| Cardnumber::parse(c).unwrap();
    let a = Some(card("C-A"));
    let asked = |action: &Action| {
        let now = taken() + Duration::minutes(30);
        let limits = CardLimits {
            balance_cents: None,
        };
        desk_checks(
            &snapshot(),
            action,
            &Journal::new(),
            limits,
            None,
            today(),
            now,
        )
    };
    let about_the_card = asked(&issue("C-RESTRICTED", "B-OK"));
    let about_the_item = asked(&issue("C-OK", "B-LOST"));
    assert!(!about_the_card.is_empty() && !about_the_item.is_empty());
    assert_eq!(
        card_accepted_after(None, &issue("C-A", "B1"), Some(&about_the_card)),
        a
    );
    assert_eq!(card_accepted_after(a.clone(), &issue("C-A", "B2"), None), a);
    let checkin = Action::Return {
        barcode: Barcode::parse("B1").unwrap(),
    };
    assert_eq!(card_accepted_after(a.clone(), &checkin, None), a);
    assert_eq!(
        card_accepted_after(a.clone(), &issue("C-B", "B3"), None),
        None
    );
    assert_eq!(
        card_accepted_after(a.clone(), &issue("C-B", "B3"), Some(&about_the_card)),
        Some(card("C-B"))
    );
    // "Record anyway" to a question about the item only says nothing about the card.
    assert_eq!(
        card_accepted_after(None, &issue("C-B", "B4"), Some(&about_the_item)),
        None
    );
    assert_eq!(
        card_accepted_after(a, &issue("C-B", "B4"), Some(&[])),
        None,
        "nor does one about a repeated scan (no check at all)"
    );
}

#[test]
fn the_chunk_keys_are_named_by_the_meta() {
    let stored = snapshot();
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for change in write_plan(&stored, None) {
        if let Change::Put { key, value } = change {
            entries.insert(key, value);
        }
    }
    let mut keys = snapshot_keys(&entries["checks:meta"]);
    keys.push("checks:meta".into());
    keys.sort();
    assert_eq!(keys, entries.keys().cloned().collect::<Vec<_>>());
    assert!(snapshot_keys(&Value::String("garbage".into())).is_empty());
}

#[test]
fn the_balance_limit_is_typed_stored_and_read_back() {
    use koha_offline_circ::checks::{
        balance_limit_change, card_limits, parse_balance_limit, read_balance_limit,
    };
    assert_eq!(parse_balance_limit("  ").unwrap(), None);
    let limit = parse_balance_limit("12,5").unwrap().unwrap();
    assert_eq!(limit.cents(), 1250);
    assert_eq!(
        parse_balance_limit("twelve").unwrap_err().kind(),
        "amount-format"
    );
    assert_eq!(
        parse_balance_limit("0").unwrap_err().kind(),
        "amount-not-positive"
    );
    let Change::Put { key, value } = balance_limit_change(Some(limit)) else {
        panic!("a put")
    };
    assert_eq!(key, "checks-balance-limit");
    assert!(
        !key.starts_with("checks:"),
        "deleting the snapshot keeps it"
    );
    assert_eq!(read_balance_limit(Some(&value)), Some(limit));
    assert_eq!(card_limits(Some(limit)).balance_cents, Some(1250));
    assert!(matches!(balance_limit_change(None), Change::Remove { .. }));
    assert_eq!(read_balance_limit(None), None);
    assert_eq!(
        read_balance_limit(Some(&Value::String("{\"v\":9}".into()))),
        None
    );
    assert_eq!(card_limits(None).balance_cents, None);
}

/// Every problem has its own `data-check` name, from the list the browser tests rely on.
#[test]
fn every_problem_has_a_distinct_check_name_from_the_ui_contract() {
    use koha_offline_circ::checks::{CardProblem, ItemProblem, Problem};
    let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let problems = [
        Problem::Card(CardProblem::UnknownCard),
        Problem::Card(CardProblem::Expired { on: day }),
        Problem::Card(CardProblem::Restricted { until: None }),
        Problem::Card(CardProblem::CardLost),
        Problem::Card(CardProblem::AddressInDoubt),
        Problem::Card(CardProblem::BalanceAboveLimit {
            balance_cents: 2,
            limit_cents: 1,
        }),
        Problem::Item(ItemProblem::UnknownBarcode),
        Problem::Item(ItemProblem::Lost),
        Problem::Item(ItemProblem::Withdrawn),
        Problem::Item(ItemProblem::NotForLoan),
        Problem::Item(ItemProblem::Damaged),
        Problem::Item(ItemProblem::OnLoanToAnother { cardnumber: None }),
    ];
    assert_eq!(
        problems.len(),
        CardProblem::KINDS.len() + ItemProblem::KINDS.len()
    );
    let names: Vec<&str> = problems.iter().map(Problem::check).collect();
    assert_eq!(
        names,
        [
            "unknown-card",
            "expired",
            "restricted",
            "card-lost",
            "address",
            "balance",
            "unknown-item",
            "lost",
            "withdrawn",
            "not-for-loan",
            "damaged",
            "on-loan-elsewhere"
        ]
    );
    let kinds: Vec<&str> = problems.iter().map(Problem::kind).collect();
    let mut all: Vec<&str> = CardProblem::KINDS.to_vec();
    all.extend(ItemProblem::KINDS);
    assert_eq!(kinds, all);
}
