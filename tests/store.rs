//! Storage layout, envelopes, quarantine, migrations, reconciliation, and simulated desks over
//! in-memory stores.

// Helpers outside `#[test]` functions unwrap too; a panic is the failure report here.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use koha_offline_circ::settings::{Settings, SettingsForm};
use koha_offline_circ::store::{
    self, decode_change, decode_mirror, decode_transaction, encode_transaction, is_mirror_key,
    is_transaction_key, load_snapshot, migrate, mirror_change, mirror_key, open, reconcile,
    transaction_key, write_plan, Change, MemoryStore, Store, StoreError, StoredChange,
    CURRENT_SCHEMA,
};
use koha_offline_circ::{
    Action, Amount, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId,
};
use serde_json::{json, Value};

mod common;
use common::{at, checkout};

fn payment(n: u64) -> Transaction {
    Transaction::record(
        TransactionId::new(at(n as i64), n),
        at(n as i64),
        Branchcode::parse("DE-627").unwrap(),
        Action::Payment {
            cardnumber: Cardnumber::parse("P0001").unwrap(),
            amount: Amount::parse("2,50").unwrap(),
        },
    )
}

fn sent(mut tx: Transaction, start: i64, outcome: Status) -> Transaction {
    tx.start_sending(at(start)).unwrap();
    tx.finish_sending(at(start + 1), outcome).unwrap();
    tx
}

fn sending(mut tx: Transaction, start: i64) -> Transaction {
    tx.start_sending(at(start)).unwrap();
    tx
}

fn ids(list: &[Transaction]) -> Vec<String> {
    list.iter().map(|t| t.id.to_string()).collect()
}

fn settings_json(remember: bool) -> Value {
    Settings::from_form(&SettingsForm {
        server: "https://koha.example.org".into(),
        branchcode: "DE-627".into(),
        userid: "desk1".into(),
        password: "hunter2-secret".into(),
        remember_password: remember,
        timezone: "Europe/Berlin".into(),
        ..SettingsForm::default()
    })
    .unwrap()
    .to_storage()
}

// ---------------------------------------------------------------------------------------------
// Keys and envelopes

#[test]
fn key_layout() {
    let tx = checkout(1);
    let id = tx.id.to_string();
    assert_eq!(transaction_key(&tx.id), format!("tx:{id}"));
    assert_eq!(mirror_key(&tx.id), format!("koha-offline-circ:tx:{id}"));
    assert!(is_transaction_key(&transaction_key(&tx.id)));
    assert!(!is_transaction_key("tx:"));
    assert!(!is_transaction_key("meta"));
    assert!(!is_transaction_key("settings"));
    assert!(!is_transaction_key(&mirror_key(&tx.id)));
    assert!(is_mirror_key(&mirror_key(&tx.id)));
    assert!(!is_mirror_key("koha-offline-circ:tx:"));
    assert!(!is_mirror_key(&transaction_key(&tx.id)));
    assert_eq!(store::META_KEY, "meta");
    assert_eq!(store::SETTINGS_KEY, "settings");
    assert_eq!(CURRENT_SCHEMA, 3);
    assert!(store::is_pending_key(
        "pending:0019bb2a338c0-00000000000f4df8.f6cd0c366b67b7d5"
    ));
    assert!(!store::is_pending_key("pending:"));
    assert!(!store::is_pending_key("archive:x"));
    assert!(!store::is_archive_key("pending:x"));
    assert!(!is_transaction_key("pending:x"));
}

#[test]
fn envelope_round_trips() {
    let mut exported = sent(
        payment(3),
        10,
        Status::Rejected {
            message: "Borrower not found.".into(),
        },
    );
    exported.mark_exported(at(20));
    for tx in [checkout(1), sent(checkout(2), 5, Status::Queued), exported] {
        let value = encode_transaction(&tx);
        assert_eq!(value["v"], 1);
        assert_eq!(value["tx"]["id"], tx.id.as_str());
        assert_eq!(value.as_object().unwrap().len(), 2);
        let key = transaction_key(&tx.id);
        assert_eq!(decode_transaction(&key, &value).unwrap(), tx);
        assert_eq!(decode_mirror(&mirror_key(&tx.id), &value).unwrap(), tx);
    }
}

/// The desk's start gives the core the mirror's texts, read straight into transactions: each
/// text must read as its parsed envelope reads, good or bad, with the same error.
#[test]
fn a_mirror_text_reads_as_its_envelope() {
    let tx = sent(checkout(1), 5, Status::Queued);
    let key = mirror_key(&tx.id);
    let good = encode_transaction(&tx);
    let bare = serde_json::to_value(&tx).unwrap();
    let mut no_history = good.clone();
    no_history["tx"]["history"] = json!([]);
    let mut other_id = good.clone();
    other_id["tx"]["id"] = json!(checkout(2).id);
    let mut extra = good.clone();
    extra["note"] = json!("kept by a later version");
    let texts = [
        good.to_string(),
        extra.to_string(),
        no_history.to_string(),
        other_id.to_string(),
        bare.to_string(),
        json!({"v": 2, "tx": bare}).to_string(),
        json!({"v": "1", "tx": bare}).to_string(),
        json!({"v": 1}).to_string(),
        // The same field twice: a typed read refuses it, the tree keeps the last.
        format!(r#"{{"v": 1, "v": 1, "tx": {bare}}}"#),
    ];
    for text in texts {
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            decode_mirror(&key, &Value::String(text.clone())),
            decode_mirror(&key, &parsed),
            "{text}"
        );
    }
    assert_eq!(
        decode_mirror(&key, &Value::String(good.to_string())).unwrap(),
        tx
    );
    for unreadable in ["{\"v\": 1, \"tx\":", "\"text\"", ""] {
        let error = decode_mirror(&key, &json!(unreadable)).unwrap_err();
        assert_eq!(error.kind(), "corrupt", "{unreadable}");
    }
    assert_eq!(
        decode_mirror("koha-offline-circ:tx:", &Value::String(good.to_string()))
            .unwrap_err()
            .kind(),
        "not-a-transaction-key"
    );
}

/// The desk reads `localStorage` as two texts, its keys and its values each joined: the
/// pieces pair up only when no key or value holds the joining character.
#[test]
fn the_mirror_is_read_from_its_joined_keys_and_values() {
    let join = |items: &[&str]| items.join(&store::MIRROR_JOIN.to_string());
    let tx = checkout(1);
    let (key, text) = (mirror_key(&tx.id), encode_transaction(&tx).to_string());
    let keys = join(&[&key, "other-app", "koha-offline-circ:tx:2"]);
    let values = join(&[&text, "{}", ""]);
    assert_eq!(
        store::mirror_entries_joined(&keys, &values, 3),
        Some(vec![
            (key.as_str(), text.as_str()),
            ("koha-offline-circ:tx:2", "")
        ])
    );
    // Another page's value holding the character: more pieces than keys.
    let values = join(&[&text, &join(&["a", "b"]), ""]);
    assert_eq!(store::mirror_entries_joined(&keys, &values, 3), None);
    let keys = join(&[&key, &join(&["odd", "key"])]);
    assert_eq!(store::mirror_entries_joined(&keys, "x\u{1}y", 2), None);
    assert_eq!(store::mirror_entries_joined("", "", 0), Some(Vec::new()));
    assert_eq!(store::mirror_entries_joined("", "", 1), Some(Vec::new()));
    assert_eq!(
        store::mirror_entries_joined(&key, &text, 1),
        Some(vec![(key.as_str(), text.as_str())])
    );
}

#[test]
fn bad_entries_are_refused_with_their_kind() {
    let tx = checkout(1);
    let key = transaction_key(&tx.id);
    let good = encode_transaction(&tx);
    let bare = serde_json::to_value(&tx).unwrap();
    let mut too_long = good.clone();
    too_long["tx"]["barcode"] = json!("x".repeat(21));
    let mut no_history = good.clone();
    no_history["tx"]["history"] = json!([]);
    let cases: Vec<(&str, Value, &str)> = vec![
        (&key, json!("text"), "corrupt"),
        (&key, json!(null), "corrupt"),
        (&key, json!({"tx": {}}), "corrupt"),
        (&key, json!({"v": "1", "tx": bare.clone()}), "corrupt"),
        (&key, json!({"v": 1}), "corrupt"),
        (&key, json!({"v": 1, "tx": {"id": tx.id}}), "corrupt"),
        (&key, too_long, "corrupt"),
        (&key, no_history, "corrupt"),
        (&key, bare, "not-enveloped"),
        (&key, json!({"v": 2, "tx": {}}), "unknown-envelope"),
        ("tx:other-id", good.clone(), "key-mismatch"),
        ("tx:", good.clone(), "not-a-transaction-key"),
        ("settings", good, "not-a-transaction-key"),
    ];
    for (k, value, kind) in cases {
        let err = decode_transaction(k, &value).expect_err(&value.to_string());
        assert_eq!(err.kind(), kind, "{k} {value}");
    }
    assert_eq!(
        decode_transaction("tx:other-id", &encode_transaction(&tx))
            .unwrap_err()
            .to_string(),
        format!("tx:other-id: holds transaction {}", tx.id)
    );
    assert_eq!(
        decode_transaction(&key, &json!({"v": 7, "tx": {}}))
            .unwrap_err()
            .to_string(),
        format!("{key}: envelope version 7 is not readable by this version")
    );
}

#[test]
fn record_writes_the_mirror_first_and_accepted_ones_leave_it() {
    let tx = checkout(1);
    let plan = write_plan(&tx);
    assert_eq!(
        plan.mirror,
        Change::Put {
            key: mirror_key(&tx.id),
            value: encode_transaction(&tx)
        }
    );
    assert_eq!(
        plan.primary,
        Change::Put {
            key: transaction_key(&tx.id),
            value: encode_transaction(&tx)
        }
    );
    for status in [Status::Queued, Status::Applied] {
        let accepted = sent(checkout(1), 5, status);
        assert_eq!(
            mirror_change(&accepted),
            Change::Remove {
                key: mirror_key(&accepted.id)
            }
        );
    }
    for status in [
        Status::Rejected {
            message: "Item not found.".into(),
        },
        Status::Failed {
            reason: koha_offline_circ::FailReason::Network,
        },
        Status::Uncertain {
            reason: koha_offline_circ::UncertainReason::ServerError,
        },
    ] {
        let kept = sent(checkout(1), 5, status);
        assert!(matches!(mirror_change(&kept), Change::Put { .. }));
    }
    let (primary, mirror) = store::remove_plan(&tx.id);
    assert_eq!(
        primary,
        Change::Remove {
            key: transaction_key(&tx.id)
        }
    );
    assert_eq!(
        mirror,
        Change::Remove {
            key: mirror_key(&tx.id)
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Snapshot and quarantine

#[test]
fn snapshot_reads_everything_and_keeps_bad_entries_aside() {
    let (a, b) = (checkout(2), checkout(1));
    let bad_key = "tx:0000000000000-broken".to_string();
    let bad_value = json!({"v": 1, "tx": {"id": "0000000000000-broken", "action": "fly"}});
    let entries = vec![
        ("meta".to_string(), json!({"schema": 1})),
        (transaction_key(&a.id), encode_transaction(&a)),
        (bad_key.clone(), bad_value.clone()),
        (transaction_key(&b.id), encode_transaction(&b)),
        ("settings".to_string(), settings_json(false)),
        ("badge-cache".to_string(), json!(3)),
        (format!("quarantine:{bad_key}"), json!({"key": bad_key})),
    ];
    let snap = load_snapshot(entries);
    assert_eq!(snap.schema, Some(1));
    assert_eq!(snap.transactions, vec![b, a], "sorted by id");
    assert_eq!(
        snap.settings.as_ref().unwrap().branchcode.as_str(),
        "DE-627"
    );
    assert_eq!(snap.quarantined, vec![format!("quarantine:{bad_key}")]);
    assert_eq!(snap.problems.len(), 1);
    let problem = &snap.problems[0];
    assert_eq!(problem.key, bad_key);
    assert_eq!(problem.error.kind(), "corrupt");
    // The earlier quarantine entry of the same key is not overwritten.
    let kept_at = format!("quarantine:{bad_key}#2");
    assert_eq!(problem.quarantine_key.as_deref(), Some(kept_at.as_str()));
    assert_eq!(snap.changes.len(), 2);
    match &snap.changes[0] {
        Change::Put { key, value } => {
            assert_eq!(key, &kept_at);
            assert_eq!(value["key"], bad_key.as_str());
            assert_eq!(value["value"], bad_value);
            assert_eq!(value["error"], "corrupt");
            assert!(value["message"].as_str().unwrap().starts_with(&bad_key));
        }
        other => panic!("expected the kept copy first, got {other:?}"),
    }
    assert_eq!(snap.changes[1], Change::Remove { key: bad_key });
}

#[test]
fn quarantine_is_applied_once_and_nothing_is_lost() {
    let tx = checkout(1);
    let mut primary = MemoryStore::new();
    primary
        .apply(&[
            Change::Put {
                key: "meta".into(),
                value: json!({"schema": 1}),
            },
            Change::Put {
                key: transaction_key(&tx.id),
                value: encode_transaction(&tx),
            },
            Change::Put {
                key: "tx:x".into(),
                value: json!("garbage"),
            },
            Change::Put {
                key: "settings".into(),
                value: json!({"server": "ftp://x"}),
            },
        ])
        .unwrap();
    let first = load_snapshot(primary.entries());
    assert_eq!(first.problems.len(), 2);
    assert_eq!(first.settings, None);
    primary.apply(&first.changes).unwrap();
    assert_eq!(primary.get("quarantine:tx:x").unwrap()["value"], "garbage");
    assert_eq!(
        primary.get("quarantine:settings").unwrap()["value"]["server"],
        "ftp://x"
    );
    assert_eq!(primary.get("tx:x"), None);
    // The next start finds no problem, only the kept entries.
    let second = load_snapshot(primary.entries());
    assert!(second.problems.is_empty());
    assert!(second.changes.is_empty());
    assert_eq!(second.quarantined.len(), 2);
    assert_eq!(second.transactions, vec![tx]);
}

/// The desk must keep saying that unreadable entries exist, not only at the start that found
/// them: `open` lists every `quarantine:` key, old and new, from both stores.
#[test]
fn every_start_lists_the_entries_kept_aside() {
    let tx = checkout(1);
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    primary
        .apply(&[
            write_plan(&tx).primary,
            Change::Put {
                key: "tx:x".into(),
                value: json!({"v": 1, "tx": {"id": "x", "garbage": true}}),
            },
            Change::Put {
                key: "archive:x.0".into(),
                value: json!("not a chunk"),
            },
        ])
        .unwrap();
    mirror
        .apply(&[Change::Put {
            key: "koha-offline-circ:tx:y".into(),
            value: json!("garbage"),
        }])
        .unwrap();
    let want = vec![
        "quarantine:archive:x.0".to_owned(),
        "quarantine:koha-offline-circ:tx:y".to_owned(),
        "quarantine:tx:x".to_owned(),
    ];
    let first = start(&mut primary, &mut mirror, at(100));
    assert_eq!(first.problems.len(), 3);
    assert_eq!(first.quarantined, want);
    let second = start(&mut primary, &mut mirror, at(200));
    assert!(second.problems.is_empty());
    assert_eq!(second.quarantined, want, "still listed at the next start");
    assert_eq!(second.transactions, vec![tx]);
    assert_eq!(
        primary.get("quarantine:tx:x").unwrap()["value"],
        json!({"v": 1, "tx": {"id": "x", "garbage": true}}),
        "kept unchanged"
    );
}

#[test]
fn settings_stored_with_an_unwanted_password_are_rewritten_without_it() {
    let mut leaked = settings_json(false);
    leaked["password"] = json!("hunter2-secret");
    let snap = load_snapshot(vec![("settings".to_string(), leaked)]);
    assert!(snap.problems.is_empty());
    assert_eq!(snap.settings.as_ref().unwrap().password(), None);
    assert_eq!(snap.changes.len(), 1);
    let Change::Put { key, value } = &snap.changes[0] else {
        panic!("expected a put");
    };
    assert_eq!(key, "settings");
    assert!(!value.to_string().contains("hunter2-secret"));
    // Clean settings cause no write.
    let clean = load_snapshot(vec![("settings".to_string(), settings_json(true))]);
    assert!(clean.changes.is_empty());
    assert_eq!(clean.settings.unwrap().password(), Some("hunter2-secret"));
}

// ---------------------------------------------------------------------------------------------
// Migrations

#[test]
fn fresh_install_only_writes_meta() {
    let changes = migrate(&[], None).unwrap();
    assert_eq!(
        changes,
        vec![Change::Put {
            key: "meta".into(),
            value: json!({"schema": 3})
        }]
    );
    // Foreign keys alone are not pre-release data.
    let changes = migrate(&[("other".into(), json!(1))], None).unwrap();
    assert_eq!(changes.len(), 1);
}

#[test]
fn schemas_1_and_2_only_get_a_new_meta_and_current_needs_nothing() {
    let tx = checkout(1);
    let entries = vec![
        ("meta".into(), json!({"schema": 1})),
        (transaction_key(&tx.id), encode_transaction(&tx)),
    ];
    assert_eq!(store::schema_of(&entries).unwrap(), Some(1));
    // 1 → 2 → 3 changes no data (archive chunks, export records, then pending chunks are new
    // kinds of entry): it only records the new schema, so earlier builds refuse storage they
    // would misread.
    let new_meta = vec![Change::Put {
        key: "meta".into(),
        value: json!({"schema": 3}),
    }];
    assert_eq!(migrate(&entries, Some(1)).unwrap(), new_meta);
    assert_eq!(migrate(&entries, Some(2)).unwrap(), new_meta);
    assert!(migrate(&entries, Some(3)).unwrap().is_empty());
}

#[test]
fn a_future_schema_is_refused_and_nothing_is_written() {
    let entries = vec![
        ("meta".to_string(), json!({"schema": 4})),
        ("tx:future".to_string(), json!({"v": 9, "whatever": true})),
    ];
    let err = migrate(&entries, Some(4)).unwrap_err();
    assert_eq!(
        err,
        StoreError::FutureSchema {
            found: 4,
            supported: 3
        }
    );
    assert_eq!(err.kind(), "future-schema");
    assert_eq!(
        err.to_string(),
        "storage has schema 4, newer than the 3 this version reads; update the add-on"
    );
    let err = open(entries, Vec::new(), Some(at(0))).unwrap_err();
    assert_eq!(err.kind(), "future-schema");
}

#[test]
fn pre_release_bare_transactions_are_enveloped() {
    let (a, b) = (checkout(1), sent(checkout(2), 3, Status::Applied));
    let entries: Vec<(String, Value)> = vec![
        (transaction_key(&a.id), serde_json::to_value(&a).unwrap()),
        (transaction_key(&b.id), serde_json::to_value(&b).unwrap()),
        ("tx:junk".into(), json!({"id": "junk", "action": "fly"})),
        ("settings".into(), settings_json(false)),
    ];
    assert_eq!(store::schema_of(&entries).unwrap(), None);
    let changes = migrate(&entries, None).unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(
        changes[0],
        Change::Put {
            key: transaction_key(&a.id),
            value: encode_transaction(&a)
        }
    );
    assert_eq!(
        changes[1],
        Change::Put {
            key: transaction_key(&b.id),
            value: encode_transaction(&b)
        }
    );
    assert_eq!(changes[2].key(), "meta", "meta is written last");

    let mut primary = MemoryStore::new();
    primary
        .apply(
            &entries
                .iter()
                .map(|(k, v)| Change::Put {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
    primary.apply(&changes).unwrap();
    let snap = load_snapshot(primary.entries());
    assert_eq!(snap.schema, Some(3));
    assert_eq!(snap.transactions, vec![a, b]);
    // The unreadable one was not dropped by the migration; it is reported and kept aside.
    assert_eq!(snap.problems.len(), 1);
    assert_eq!(snap.problems[0].key, "tx:junk");
    assert_eq!(snap.problems[0].error.kind(), "not-enveloped");
    // Once migrated, nothing more to do.
    assert!(migrate(&primary.entries(), Some(3)).unwrap().is_empty());
}

#[test]
fn an_interrupted_migration_runs_again_safely() {
    let (a, b) = (checkout(1), checkout(2));
    // a was already wrapped when the page died; b was not, and meta was never written.
    let entries: Vec<(String, Value)> = vec![
        (transaction_key(&a.id), encode_transaction(&a)),
        (transaction_key(&b.id), serde_json::to_value(&b).unwrap()),
    ];
    let changes = migrate(&entries, None).unwrap();
    assert_eq!(
        changes,
        vec![
            Change::Put {
                key: transaction_key(&b.id),
                value: encode_transaction(&b)
            },
            Change::Put {
                key: "meta".into(),
                value: json!({"schema": 3})
            },
        ]
    );
}

#[test]
fn a_bad_meta_is_kept_aside_and_replaced() {
    let tx = checkout(1);
    let primary = vec![
        ("meta".to_string(), json!("one")),
        (transaction_key(&tx.id), encode_transaction(&tx)),
    ];
    assert_eq!(store::schema_of(&primary).unwrap_err().kind(), "bad-meta");
    let opened = open(primary.clone(), Vec::new(), Some(at(100))).unwrap();
    assert_eq!(opened.schema_found, None);
    assert_eq!(opened.transactions, vec![tx]);
    assert_eq!(opened.problems.len(), 1);
    assert_eq!(opened.problems[0].error.kind(), "bad-meta");
    let mut store = MemoryStore::new();
    store
        .apply(
            &primary
                .into_iter()
                .map(|(key, value)| Change::Put { key, value })
                .collect::<Vec<_>>(),
        )
        .unwrap();
    store.apply(&opened.primary_changes).unwrap();
    assert_eq!(store.get("meta"), Some(json!({"schema": 3})));
    assert_eq!(store.get("quarantine:meta").unwrap()["value"], "one");
}

// ---------------------------------------------------------------------------------------------
// Reconciliation

#[test]
fn reconcile_table() {
    let local = checkout(1);
    let queued = sent(checkout(1), 10, Status::Queued);
    let failed = sent(
        checkout(1),
        10,
        Status::Failed {
            reason: koha_offline_circ::FailReason::Network,
        },
    );
    let in_flight = sending(checkout(1), 10);
    let id = local.id.clone();

    struct Case {
        name: &'static str,
        primary: Vec<Transaction>,
        mirror: Vec<Transaction>,
        merged: Transaction,
        write_primary: bool,
        write_mirror: bool,
        remove_mirror: bool,
    }
    let cases = [
        Case {
            name: "only in primary, not accepted: mirror repaired",
            primary: vec![local.clone()],
            mirror: vec![],
            merged: local.clone(),
            write_primary: false,
            write_mirror: true,
            remove_mirror: false,
        },
        Case {
            name: "only in primary, accepted: stays out of the mirror",
            primary: vec![queued.clone()],
            mirror: vec![],
            merged: queued.clone(),
            write_primary: false,
            write_mirror: false,
            remove_mirror: false,
        },
        Case {
            name: "only in mirror (primary write failed or primary lost): primary repaired",
            primary: vec![],
            mirror: vec![local.clone()],
            merged: local.clone(),
            write_primary: true,
            write_mirror: false,
            remove_mirror: false,
        },
        Case {
            name: "same in both: nothing to write",
            primary: vec![failed.clone()],
            mirror: vec![failed.clone()],
            merged: failed.clone(),
            write_primary: false,
            write_mirror: false,
            remove_mirror: false,
        },
        Case {
            name: "primary later: mirror updated",
            primary: vec![failed.clone()],
            mirror: vec![local.clone()],
            merged: failed.clone(),
            write_primary: false,
            write_mirror: true,
            remove_mirror: false,
        },
        Case {
            name: "mirror later (sending written only to the mirror): primary updated",
            primary: vec![local.clone()],
            mirror: vec![in_flight.clone()],
            merged: in_flight.clone(),
            write_primary: true,
            write_mirror: false,
            remove_mirror: false,
        },
        Case {
            name: "accepted in primary, still local in mirror: removed from mirror",
            primary: vec![queued.clone()],
            mirror: vec![local.clone()],
            merged: queued.clone(),
            write_primary: false,
            write_mirror: false,
            remove_mirror: true,
        },
        Case {
            name: "accepted in mirror only: primary learns it, mirror drops it",
            primary: vec![in_flight.clone()],
            mirror: vec![queued.clone()],
            merged: queued.clone(),
            write_primary: true,
            write_mirror: false,
            remove_mirror: true,
        },
    ];
    for case in cases {
        let r = reconcile(case.primary, case.mirror);
        assert_eq!(r.merged, vec![case.merged.clone()], "{}", case.name);
        assert_eq!(
            r.write_primary,
            if case.write_primary {
                vec![case.merged.clone()]
            } else {
                vec![]
            },
            "{}",
            case.name
        );
        assert_eq!(
            r.write_mirror,
            if case.write_mirror {
                vec![case.merged.clone()]
            } else {
                vec![]
            },
            "{}",
            case.name
        );
        assert_eq!(
            r.remove_mirror,
            if case.remove_mirror {
                vec![id.clone()]
            } else {
                vec![]
            },
            "{}",
            case.name
        );
    }
}

#[test]
fn union_of_both_sides_sorted_by_id() {
    let (a, b, c) = (checkout(1), checkout(2), checkout(3));
    let r = reconcile(vec![c.clone(), a.clone()], vec![b.clone(), a.clone()]);
    assert_eq!(r.merged, vec![a, b.clone(), c.clone()]);
    assert_eq!(r.write_primary, vec![b]);
    assert_eq!(r.write_mirror, vec![c]);
}

#[test]
fn duplicates_within_one_side_fold_to_the_newer() {
    let local = checkout(1);
    let in_flight = sending(checkout(1), 10);
    let r = reconcile(vec![], vec![in_flight.clone(), local.clone()]);
    assert_eq!(r.merged, vec![in_flight.clone()]);
    assert_eq!(r.write_primary, vec![in_flight.clone()]);
    let r = reconcile(vec![local, in_flight.clone()], vec![]);
    assert_eq!(r.merged, vec![in_flight]);
}

#[test]
fn the_longer_history_wins_whatever_the_timestamps_say() {
    let mut short = checkout(1);
    short.start_sending(at(10)).unwrap();
    let mut long = short.clone();
    long.finish_sending(
        at(10),
        Status::Failed {
            reason: koha_offline_circ::FailReason::Network,
        },
    )
    .unwrap();
    assert_eq!(short.clone().merge(long.clone()), long);
    assert_eq!(long.clone().merge(short.clone()), long);
    // A later status time does not make a shorter history win: the clock may have been wrong.
    let mut later = checkout(1);
    later.start_sending(at(50)).unwrap();
    assert_eq!(long.clone().merge(later.clone()), long);
    assert_eq!(later.clone().merge(long.clone()), long);
    // Same length, different ways: the status with more evidence from Koha wins.
    let mut resent = long.clone();
    resent.start_sending(at(60)).unwrap();
    let mut rejected = short.clone();
    rejected
        .finish_sending(
            at(5),
            Status::Rejected {
                message: "Patron not found.".into(),
            },
        )
        .unwrap();
    assert_eq!(rejected.history().len(), long.history().len());
    assert_eq!(rejected.clone().merge(long.clone()), rejected);
    assert_eq!(long.clone().merge(rejected.clone()), rejected);
    // The later export mark is kept whichever copy wins.
    let mut exported = checkout(1);
    exported.mark_exported(at(30));
    let merged = exported.merge(later.clone());
    assert_eq!(merged.status(), &Status::Sending);
    assert_eq!(merged.exported_at, Some(at(30)));
    assert_eq!(resent.clone().merge(long.clone()), resent);
}

#[test]
fn an_export_mark_only_in_the_mirror_repairs_the_primary() {
    let plain = checkout(1);
    let mut exported = plain.clone();
    exported.mark_exported(at(30));
    let r = reconcile(vec![plain], vec![exported.clone()]);
    assert_eq!(r.merged, vec![exported.clone()]);
    assert_eq!(r.write_primary, vec![exported]);
    assert!(r.write_mirror.is_empty());
}

#[test]
fn interrupted_sends_become_uncertain_and_are_written_back() {
    let in_flight = sending(payment(1), 10);
    let other = checkout(2);
    let mut r = reconcile(
        vec![in_flight.clone(), other.clone()],
        vec![in_flight.clone(), other],
    );
    assert!(r.write_primary.is_empty());
    let recovered = r.recover_interrupted(at(100));
    assert_eq!(recovered, vec![in_flight.id.clone()]);
    let now_uncertain = &r.merged[0];
    assert_eq!(now_uncertain.status().name(), "uncertain");
    assert_eq!(now_uncertain.status_since(), at(100));
    assert_eq!(ids(&r.write_primary), vec![in_flight.id.to_string()]);
    assert_eq!(ids(&r.write_mirror), vec![in_flight.id.to_string()]);
    assert_eq!(r.merged[1].status(), &Status::Local);
    // Running it again changes nothing.
    assert!(r.recover_interrupted(at(200)).is_empty());
}

/// A send run holds Koha's acceptance in the mirror until the store of record has it (the
/// store-of-record write overlaps the next request). A page dying in between: the next start
/// finds the acceptance in the mirror, not a false `uncertain`.
#[test]
fn an_acceptance_held_only_in_the_mirror_is_not_recovered_as_uncertain() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    let was_sending = sending(checkout(1), 10);
    let mut accepted = was_sending.clone();
    accepted.finish_sending(at(11), Status::Queued).unwrap();
    primary.apply(&[write_plan(&was_sending).primary]).unwrap();
    // What `mirror_hold` writes: the envelope, although Koha accepted it.
    mirror
        .apply(&[Change::Put {
            key: mirror_key(&accepted.id),
            value: encode_transaction(&accepted),
        }])
        .unwrap();
    let opened = start(&mut primary, &mut mirror, at(100));
    assert!(opened.recovered.is_empty(), "nothing was in flight");
    assert_eq!(opened.transactions, vec![accepted.clone()]);
    assert_eq!(
        decode_transaction(
            &transaction_key(&accepted.id),
            &primary.get(&transaction_key(&accepted.id)).unwrap()
        )
        .unwrap(),
        accepted,
        "the store of record repaired"
    );
    assert!(mirror.entries().is_empty(), "and the mirror let go of it");
}

// ---------------------------------------------------------------------------------------------
// Simulated desks over in-memory stores

/// A desk page: its own memory, sharing the browser's two stores with other pages.
#[derive(Default)]
struct Desk {
    memory: Vec<Transaction>,
    unsaved: Vec<Transaction>,
}

impl Desk {
    /// Records (or updates) one transaction the way the shell does: mirror synchronously, then
    /// the store of record; "recorded" only when that resolved.
    fn save(
        &mut self,
        tx: Transaction,
        primary: &mut MemoryStore,
        mirror: &mut MemoryStore,
    ) -> Result<(), StoreError> {
        let plan = write_plan(&tx);
        // A full localStorage must not stop the desk: storage.local still holds everything.
        let _ = mirror.apply(&[plan.mirror]);
        match self.memory.iter_mut().find(|t| t.id == tx.id) {
            Some(slot) => *slot = tx.clone(),
            None => self.memory.push(tx.clone()),
        }
        match primary.apply(&[plan.primary]) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.unsaved.push(tx);
                Err(e)
            }
        }
    }

    fn retry(&mut self, primary: &mut MemoryStore) -> Result<(), StoreError> {
        while let Some(tx) = self.unsaved.first() {
            primary.apply(&[write_plan(tx).primary])?;
            self.unsaved.remove(0);
        }
        Ok(())
    }
}

fn start(primary: &mut MemoryStore, mirror: &mut MemoryStore, now: DateTime<Utc>) -> store::Opened {
    let opened = open(primary.entries(), mirror.entries(), Some(now)).unwrap();
    primary.apply(&opened.primary_changes).unwrap();
    mirror.apply(&opened.mirror_changes).unwrap();
    opened
}

/// The desk clock ran ahead while a transaction was recorded (or a `.koc` row came dated in
/// the future), then was set right; the transaction was sent and Koha queued it. A stale
/// `local` copy still in the mirror (its removal never happened) carries the later timestamp.
/// It must not beat `queued` at the next start: that would send it to Koha a second time.
#[test]
fn future_dated_local_in_the_mirror_does_not_beat_queued_at_start() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    let ahead = at(86_400); // a day in the future
    let stale = Transaction::record(
        TransactionId::new(ahead, 42),
        ahead,
        Branchcode::parse("DE-627").unwrap(),
        Action::Return {
            barcode: Barcode::parse("B4242").unwrap(),
        },
    );
    // Sent after the clock was set right: every later status is dated before the recording.
    let queued = sent(stale.clone(), 10, Status::Queued);
    assert!(queued.status_since() < stale.status_since());
    primary.apply(&[write_plan(&queued).primary]).unwrap();
    mirror.apply(&[write_plan(&stale).mirror]).unwrap();

    let opened = start(&mut primary, &mut mirror, at(100));
    assert_eq!(opened.transactions, vec![queued.clone()]);
    assert_eq!(
        decode_transaction(
            &transaction_key(&queued.id),
            &primary.get(&transaction_key(&queued.id)).unwrap()
        )
        .unwrap(),
        queued,
        "the store of record keeps queued"
    );
    assert!(
        mirror.entries().is_empty(),
        "the mirror lets go of the stale copy"
    );
}

#[test]
fn two_desks_recording_alternately_keep_all_200() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    start(&mut primary, &mut mirror, at(0));
    let (mut a, mut b) = (Desk::default(), Desk::default());
    for n in 0..100u64 {
        a.save(checkout(2 * n), &mut primary, &mut mirror).unwrap();
        b.save(checkout(2 * n + 1), &mut primary, &mut mirror)
            .unwrap();
        // Desk a sends one of its own meanwhile; b's records are untouched by that write.
        if n % 10 == 0 {
            let mine = a.memory[n as usize].clone();
            a.save(
                sent(mine, 1000 + n as i64, Status::Queued),
                &mut primary,
                &mut mirror,
            )
            .unwrap();
        }
    }
    let opened = start(&mut primary, &mut mirror, at(5000));
    assert_eq!(opened.transactions.len(), 200);
    assert!(opened.problems.is_empty());
    // Nothing to repair: the start (holding the send lock) only packs the 190 unsent.
    assert!(
        opened.primary_changes.iter().all(|change| match change {
            Change::Put { key, .. } => store::is_pending_key(key),
            Change::Remove { key } => store::is_transaction_key(key),
        }),
        "{:?}",
        opened.primary_changes
    );
    assert!(opened.mirror_changes.is_empty());
    let again = start(&mut primary, &mut mirror, at(6000));
    assert!(
        again.primary_changes.is_empty(),
        "{:?}",
        again.primary_changes
    );
    assert_eq!(again.transactions, opened.transactions);
    let queued = opened
        .transactions
        .iter()
        .filter(|t| t.status() == &Status::Queued)
        .count();
    assert_eq!(queued, 10);
    // The mirror holds exactly the 190 not accepted.
    let mirrored = mirror
        .entries()
        .into_iter()
        .filter(|(k, _)| is_mirror_key(k))
        .count();
    assert_eq!(mirrored, 190);
    let mut expected: Vec<String> = a
        .memory
        .iter()
        .chain(&b.memory)
        .map(|t| t.id.to_string())
        .collect();
    expected.sort();
    assert_eq!(ids(&opened.transactions), expected);
}

#[test]
fn a_cleared_mirror_is_rebuilt_from_the_store_of_record() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    start(&mut primary, &mut mirror, at(0));
    let mut desk = Desk::default();
    for n in 0..10 {
        desk.save(checkout(n), &mut primary, &mut mirror).unwrap();
    }
    desk.save(
        sent(checkout(3), 100, Status::Applied),
        &mut primary,
        &mut mirror,
    )
    .unwrap();
    mirror.clear();
    let opened = start(&mut primary, &mut mirror, at(200));
    assert_eq!(opened.transactions.len(), 10);
    assert_eq!(opened.mirror_changes.len(), 9);
    assert_eq!(mirror.len(), 9);
    assert!(mirror.get(&mirror_key(&checkout(3).id)).is_none());
}

#[test]
fn a_full_mirror_does_not_stop_recording() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    mirror.set_quota(Some(0));
    let mut desk = Desk::default();
    desk.save(checkout(1), &mut primary, &mut mirror).unwrap();
    assert!(mirror.is_empty());
    mirror.set_quota(None);
    let opened = start(&mut primary, &mut mirror, at(10));
    assert_eq!(opened.transactions, vec![checkout(1)]);
    assert_eq!(mirror.len(), 1, "repaired at the next start");
}

#[test]
fn a_failing_primary_keeps_the_transaction_in_mirror_and_memory_then_retries() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    start(&mut primary, &mut mirror, at(0));
    let mut desk = Desk::default();
    desk.save(checkout(1), &mut primary, &mut mirror).unwrap();
    primary.set_quota(Some(primary.total_bytes()));

    let err = desk
        .save(checkout(2), &mut primary, &mut mirror)
        .unwrap_err();
    assert_eq!(err.kind(), "write-failed");
    assert_eq!(err.to_string(), "storage write failed: quota exceeded");
    assert!(primary.get(&transaction_key(&checkout(2).id)).is_none());
    assert!(mirror.get(&mirror_key(&checkout(2).id)).is_some());
    assert_eq!(desk.memory.len(), 2);
    assert_eq!(desk.unsaved, vec![checkout(2)]);

    // Still failing: the retry keeps it.
    assert!(desk.retry(&mut primary).is_err());
    assert_eq!(desk.unsaved.len(), 1);
    primary.set_quota(None);
    desk.retry(&mut primary).unwrap();
    assert!(desk.unsaved.is_empty());
    assert!(primary.get(&transaction_key(&checkout(2).id)).is_some());
}

#[test]
fn a_page_that_dies_before_the_retry_loses_nothing() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    start(&mut primary, &mut mirror, at(0));
    let mut desk = Desk::default();
    desk.save(checkout(1), &mut primary, &mut mirror).unwrap();
    primary.set_failing(Some("database is broken"));
    assert_eq!(
        desk.save(checkout(2), &mut primary, &mut mirror)
            .unwrap_err()
            .to_string(),
        "storage write failed: database is broken"
    );
    // The send of checkout(1) got as far as `sending` in the mirror only.
    let in_flight = sending(checkout(1), 20);
    assert!(desk.save(in_flight, &mut primary, &mut mirror).is_err());
    drop(desk);
    primary.set_failing(None);

    let opened = start(&mut primary, &mut mirror, at(100));
    assert_eq!(ids(&opened.transactions), ids(&[checkout(1), checkout(2)]));
    assert_eq!(opened.recovered, vec![checkout(1).id]);
    assert_eq!(opened.transactions[0].status().name(), "uncertain");
    let stored = decode_transaction(
        &transaction_key(&checkout(2).id),
        &primary.get(&transaction_key(&checkout(2).id)).unwrap(),
    )
    .unwrap();
    assert_eq!(stored, checkout(2));
    let stored = decode_transaction(
        &transaction_key(&checkout(1).id),
        &primary.get(&transaction_key(&checkout(1).id)).unwrap(),
    )
    .unwrap();
    assert_eq!(stored.status().name(), "uncertain");
    let mirrored = decode_mirror(
        &mirror_key(&checkout(1).id),
        &mirror.get(&mirror_key(&checkout(1).id)).unwrap(),
    )
    .unwrap();
    assert_eq!(mirrored, stored);
}

#[test]
fn a_send_in_flight_on_another_page_is_left_alone() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    let mut sender = Desk::default();
    sender
        .save(sending(checkout(1), 10), &mut primary, &mut mirror)
        .unwrap();
    // A second desk opens while the first holds the send lock.
    let opened = open(primary.entries(), mirror.entries(), None).unwrap();
    assert!(opened.recovered.is_empty());
    assert_eq!(opened.transactions[0].status(), &Status::Sending);
    assert!(opened
        .primary_changes
        .iter()
        .all(|c| !is_transaction_key(c.key())));
    // Without the lock held elsewhere, the same state is an interrupted send.
    let opened = open(primary.entries(), mirror.entries(), Some(at(50))).unwrap();
    assert_eq!(opened.recovered, vec![checkout(1).id]);
}

#[test]
fn a_start_while_another_page_sends_repairs_only_accepted_transactions() {
    // The sending page wrote `sending` to the mirror; its store-of-record write has not landed
    // when a second page reads. A repair from that read would land over whatever the sending
    // page writes next (its acceptance).
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    primary
        .apply(&[
            write_plan(&checkout(1)).primary,
            write_plan(&checkout(2)).primary,
        ])
        .unwrap();
    mirror
        .apply(&[
            mirror_change(&sending(checkout(1), 10)),
            // An acceptance whose store-of-record write has not landed either.
            Change::Put {
                key: mirror_key(&checkout(2).id),
                value: encode_transaction(&sent(checkout(2), 10, Status::Queued)),
            },
        ])
        .unwrap();
    let transaction_writes = |opened: &store::Opened| -> Vec<String> {
        opened
            .primary_changes
            .iter()
            .map(|c| c.key().to_owned())
            .filter(|k| is_transaction_key(k))
            .collect()
    };
    let opened = open(primary.entries(), mirror.entries(), None).unwrap();
    assert_eq!(
        transaction_writes(&opened),
        vec![transaction_key(&checkout(2).id)]
    );
    assert!(opened
        .mirror_changes
        .iter()
        .all(|c| matches!(c, Change::Remove { .. })));
    // The page itself knows the newest copies.
    let statuses: Vec<&str> = opened
        .transactions
        .iter()
        .map(|t| t.status().name())
        .collect();
    assert_eq!(statuses, vec!["sending", "queued"]);
    // Holding the lock, the same start repairs both.
    let opened = open(primary.entries(), mirror.entries(), Some(at(50))).unwrap();
    assert_eq!(
        transaction_writes(&opened),
        vec![
            transaction_key(&checkout(1).id),
            transaction_key(&checkout(2).id)
        ]
    );
}

#[test]
fn a_corrupt_primary_entry_is_kept_aside_and_repaired_from_the_mirror() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    start(&mut primary, &mut mirror, at(0));
    let mut desk = Desk::default();
    desk.save(checkout(1), &mut primary, &mut mirror).unwrap();
    let key = transaction_key(&checkout(1).id);
    let broken = json!({"v": 1, "tx": {"id": checkout(1).id, "history": "??"}});
    primary
        .apply(&[Change::Put {
            key: key.clone(),
            value: broken.clone(),
        }])
        .unwrap();
    let opened = start(&mut primary, &mut mirror, at(10));
    assert_eq!(opened.problems.len(), 1);
    assert_eq!(opened.problems[0].key, key);
    assert_eq!(opened.transactions, vec![checkout(1)]);
    assert_eq!(
        decode_transaction(&key, &primary.get(&key).unwrap()).unwrap(),
        checkout(1)
    );
    assert_eq!(
        primary.get(&format!("quarantine:{key}")).unwrap()["value"],
        broken
    );
}

#[test]
fn a_corrupt_mirror_entry_is_kept_in_the_store_of_record() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    start(&mut primary, &mut mirror, at(0));
    let key = "koha-offline-circ:tx:abc".to_string();
    mirror
        .apply(&[Change::Put {
            key: key.clone(),
            value: json!({"v": 1}),
        }])
        .unwrap();
    let opened = start(&mut primary, &mut mirror, at(10));
    assert_eq!(opened.problems.len(), 1);
    assert_eq!(opened.problems[0].key, key);
    assert!(mirror.get(&key).is_none());
    let kept = primary.get(&format!("quarantine:{key}")).unwrap();
    assert_eq!(kept["value"], json!({"v": 1}));
}

#[test]
fn bytes_written_per_record_do_not_grow_with_the_journal() {
    let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
    start(&mut primary, &mut mirror, at(0));
    let before = primary.written().len();
    let mut desk = Desk::default();
    for n in 0..2000 {
        desk.save(checkout(n), &mut primary, &mut mirror).unwrap();
    }
    let per_record = &primary.written()[before..];
    assert_eq!(per_record.len(), 2000);
    let first = per_record[0];
    assert!(first > 100 && first < 1000, "{first} bytes");
    assert!(
        per_record.iter().all(|&b| b == first),
        "record sizes vary: min {:?} max {:?}",
        per_record.iter().min(),
        per_record.iter().max()
    );
    assert!(primary.total_bytes() > 2000 * first);
    // The mirror copy is the same envelope under a longer key.
    let mirror_writes = &mirror.written()[mirror.written().len() - 2000..];
    let longer_key = store::MIRROR_PREFIX.len() - store::TX_PREFIX.len();
    assert!(mirror_writes.iter().all(|&b| b == first + longer_key));
}

#[test]
fn storage_changes_are_interpreted_for_other_pages() {
    let tx = checkout(1);
    let key = transaction_key(&tx.id);
    assert_eq!(
        decode_change(&key, Some(&encode_transaction(&tx)), None).unwrap(),
        StoredChange::Transaction(tx.clone())
    );
    assert_eq!(
        decode_change(&key, None, None).unwrap(),
        StoredChange::Removed(tx.id.clone())
    );
    match decode_change("settings", Some(&settings_json(false)), None).unwrap() {
        StoredChange::Settings(Some(s)) => assert_eq!(s.branchcode.as_str(), "DE-627"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decode_change("settings", None, None).unwrap(),
        StoredChange::Settings(None)
    );
    assert_eq!(
        decode_change("meta", Some(&json!({"schema": 1})), None).unwrap(),
        StoredChange::Other
    );
    assert_eq!(
        decode_change("quarantine:tx:x", None, None).unwrap(),
        StoredChange::Other
    );
    assert_eq!(
        decode_change(&key, Some(&json!(3)), None)
            .unwrap_err()
            .kind(),
        "corrupt"
    );
}

#[test]
fn changes_serialise_for_the_shell() {
    let change = Change::Put {
        key: "meta".into(),
        value: json!({"schema": 1}),
    };
    assert_eq!(
        serde_json::to_value(&change).unwrap(),
        json!({"op": "put", "key": "meta", "value": {"schema": 1}})
    );
    assert_eq!(
        serde_json::to_value(Change::Remove { key: "tx:a".into() }).unwrap(),
        json!({"op": "remove", "key": "tx:a"})
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The life of one transaction after `steps` status changes (0: local).
    fn progressed(n: u64, steps: usize, accepted: bool) -> Transaction {
        let mut tx = checkout(n);
        let t = 100 + n as i64 * 10;
        let outcome = if accepted {
            Status::Applied
        } else {
            Status::Failed {
                reason: koha_offline_circ::FailReason::Network,
            }
        };
        if steps >= 1 {
            tx.start_sending(at(t)).unwrap();
        }
        if steps >= 2 {
            tx.finish_sending(at(t + 1), outcome).unwrap();
        }
        tx
    }

    proptest! {
        /// Both copies of a transaction are stages of one life; whatever each store holds, the
        /// merge keeps the furthest stage, and once the writes are applied both stores agree and
        /// a second reconciliation has nothing to do.
        #[test]
        fn reconciliation_converges(
            plan in proptest::collection::vec(
                (proptest::option::of(0usize..3), proptest::option::of(0usize..3), any::<bool>()),
                0..25,
            )
        ) {
            let mut primary = Vec::new();
            let mut mirror = Vec::new();
            let mut expected = BTreeMap::new();
            for (n, (p, m, accepted)) in plan.iter().enumerate() {
                let n = n as u64;
                if let Some(steps) = p {
                    primary.push(progressed(n, *steps, *accepted));
                }
                if let Some(steps) = m {
                    mirror.push(progressed(n, *steps, *accepted));
                }
                if let Some(furthest) = p.max(m) {
                    let tx = progressed(n, *furthest, *accepted);
                    expected.insert(tx.id.clone(), tx);
                }
            }
            let r = reconcile(primary.clone(), mirror.clone());
            prop_assert_eq!(&r.merged, &expected.values().cloned().collect::<Vec<_>>());

            let mut p: BTreeMap<_, _> = primary.into_iter().map(|t| (t.id.clone(), t)).collect();
            let mut m: BTreeMap<_, _> = mirror.into_iter().map(|t| (t.id.clone(), t)).collect();
            for tx in &r.write_primary {
                p.insert(tx.id.clone(), tx.clone());
            }
            for tx in &r.write_mirror {
                m.insert(tx.id.clone(), tx.clone());
            }
            for id in &r.remove_mirror {
                m.remove(id);
            }
            prop_assert_eq!(p.values().cloned().collect::<Vec<_>>(), r.merged.clone());
            prop_assert!(m.values().all(|t| !t.status().is_accepted()));
            let unaccepted: Vec<_> =
                r.merged.iter().filter(|t| !t.status().is_accepted()).cloned().collect();
            prop_assert_eq!(m.values().cloned().collect::<Vec<_>>(), unaccepted);
            let again = reconcile(p.into_values().collect(), m.into_values().collect());
            prop_assert_eq!(again.merged, r.merged);
            prop_assert!(again.write_primary.is_empty());
            prop_assert!(again.write_mirror.is_empty());
            prop_assert!(again.remove_mirror.is_empty());
        }
    }
}
