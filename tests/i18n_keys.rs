//! Every kind, status, reason, problem and warning the core can hand the pages has its message in
//! every language. The pages build those message keys at run time (`error_${kind}`,
//! `sendStopped_${kind}`, …), so a missing one would show its raw key, or a bare fallback. The
//! kinds come from the core's own lists (`KINDS`, `NAMES`, `ALL`, generated from the same table
//! as `kind()`), and the keys are built here as the page scripts in `extension/` build them.

use koha_offline_circ::checks::{
    CardProblem, DownloadError, ItemProblem, List, Unavailable, AGE_UNITS,
};
use koha_offline_circ::clock::{ClockCheck, DateError};
use koha_offline_circ::desk::ClearError;
use koha_offline_circ::journal::{JournalError, Warning};
use koha_offline_circ::koc::{KocWarning, KocWriteError, LineErrorReason};
use koha_offline_circ::koha::{self, ConnectionProblem, LibraryCheck, Transport};
use koha_offline_circ::settings::connection::SessionReuse;
use koha_offline_circ::settings::{PasswordKept, SettingsError};
use koha_offline_circ::sync::run::StopReason;
use koha_offline_circ::sync::NotReady;
use koha_offline_circ::{
    Action, FailReason, Field, IllegalTransition, InputError, Status, UncertainReason,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The languages of the interface.
const LANGUAGES: [&str; 6] = ["cs", "de", "en", "es", "fr", "it"];

/// `kind` as the pages put it into a key: `-` becomes `_` (`connection-lost` →
/// `connection_lost`).
fn part(kind: &str) -> String {
    kind.replace('-', "_")
}

/// As `options.js` does (`key()`): also lower case (`P1` → `p1`).
fn options_part(kind: &str) -> String {
    part(kind).to_lowercase()
}

/// Every message key of one language, from all its files under `i18n/<lang>/`.
fn keys_of(lang: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("i18n")
        .join(lang);
    let mut keys = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("a translation folder") {
        let path = entry.expect("a translation file").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("readable");
            let map: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(&text).expect("a JSON object");
            keys.extend(map.into_keys());
        }
    }
    keys
}

/// Error kinds the browser shell (`src/web/`) makes itself, e.g. `error("send-busy", …)`: every
/// string literal passed to a function ending in `error(` or to `ErrorDto::new(`.
fn shell_error_kinds() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut kinds = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("src/web") {
        let text = std::fs::read_to_string(entry.expect("a file").path()).expect("readable");
        for call in ["error(\"", "ErrorDto::new(\""] {
            for (at, _) in text.match_indices(call) {
                let rest = &text[at + call.len()..];
                let end = rest.find('"').expect("a closed string literal");
                kinds.insert(rest[..end].to_owned());
            }
        }
    }
    kinds
}

/// Every key the pages can build from what the core (and the shell) hands them, each with where
/// it comes from.
fn needed_keys() -> Vec<(String, &'static str)> {
    let mut keys: Vec<(String, &'static str)> = Vec::new();
    let mut add = |key: String, from: &'static str| keys.push((key, from));

    // lib/i18n.js errorMessage: `error_${kind}`, and `field_${field}` for its placeholder.
    let mut error_kinds: Vec<&str> = Vec::new();
    error_kinds.extend(InputError::KINDS);
    error_kinds.extend(JournalError::KINDS);
    error_kinds.extend(ClearError::KINDS);
    error_kinds.extend(KocWriteError::KINDS);
    error_kinds.push(IllegalTransition::KIND);
    for kind in error_kinds {
        add(
            format!("error_{}", part(kind)),
            "a core error kind (errorMessage)",
        );
    }
    for kind in shell_error_kinds() {
        add(
            format!("error_{}", part(&kind)),
            "an error kind made in src/web/",
        );
    }
    for field in Field::NAMES {
        add(
            format!("field_{field}"),
            "Field (errorMessage's placeholder)",
        );
    }
    // An import's bad lines (web/dto.rs ImportLineDto): `line-<kind>`, except a field the desk
    // would refuse, which keeps its InputError kind (listed above).
    let invalid_field = LineErrorReason::Invalid(InputError::AmountFormat).kind();
    for kind in LineErrorReason::KINDS
        .iter()
        .filter(|k| **k != invalid_field)
    {
        add(format!("error_line_{}", part(kind)), "LineErrorReason");
    }
    // desk/files.js reportLines: `importWarning_${kind}`.
    for kind in KocWarning::KINDS {
        add(format!("importWarning_{}", part(kind)), "KocWarning");
    }

    // desk/table.js: `action_${action}`, `status_${status}`; desk/record.js: `recorded_${action}`
    // and `warning_${kind}_${action}` for every warning the journal can give for an action.
    for action in Action::KOHA_NAMES {
        add(format!("action_{action}"), "Action");
        add(format!("recorded_{action}"), "Action (recorded)");
    }
    for status in Status::NAMES {
        add(format!("status_{status}"), "Status");
    }
    for kind in Warning::KINDS {
        let actions: &[&str] = if *kind == "checked-out-to-other-card" {
            &["issue"] // only a checkout can go to another card
        } else {
            Action::KOHA_NAMES
        };
        for action in actions {
            add(
                format!("warning_{}_{action}", part(kind)),
                "journal Warning",
            );
        }
    }

    // desk/table.js answerText: `answer_${answerKey}`: Koha's texts (koha::message_key) and
    // `reason-<name>` of a failed or uncertain status (web/dto.rs RowDto).
    for (_, key) in koha::MESSAGE_KEYS {
        add(format!("answer_{}", part(key)), "koha::message_key (table)");
    }
    for reason in FailReason::ALL {
        add(
            format!("answer_reason_{}", part(reason.name())),
            "FailReason",
        );
    }
    for reason in UncertainReason::ALL {
        add(
            format!("answer_reason_{}", part(reason.name())),
            "UncertainReason",
        );
        // desk-send.js uncertainItem: `uncertainReason_${reason}`.
        add(
            format!("uncertainReason_{}", part(reason.name())),
            "UncertainReason (list)",
        );
    }

    // desk/checks.js checkText: `check_${kind}` for each offline check, `check_restricted_until`
    // when the end is known; ageText and options-checks.js: `age_${unit}`.
    for kind in CardProblem::KINDS.iter().chain(ItemProblem::KINDS) {
        add(format!("check_{}", part(kind)), "an offline check (desk)");
    }
    add(
        "check_restricted_until".to_owned(),
        "CardProblem::Restricted with an end",
    );
    for unit in AGE_UNITS {
        add(format!("age_{unit}"), "AgeText unit");
    }
    // options-checks.js: `chk_list_${list}`, `chk_unavailable_${why}`, and `chk_failed_${problem}`
    // (a DownloadError kind, or an answer that never came: src/web/checks.rs).
    for list in List::NAMES {
        add(format!("chk_list_{list}"), "checks List");
    }
    for kind in Unavailable::KINDS {
        add(
            format!("chk_unavailable_{}", part(kind)),
            "checks Unavailable",
        );
    }
    for kind in DownloadError::KINDS.iter().chain(&["no-answer", "timeout"]) {
        add(format!("chk_failed_{}", part(kind)), "checks DownloadError");
    }

    // desk-send.js: `sendMissing_${missing}`, `sendStopped_${stopped}`, `sendProblem_${problem}`,
    // and a rejection's `t(key)` (koha::message_key), else `koha_other_answer`.
    for kind in NotReady::KINDS {
        add(format!("sendMissing_{}", part(kind)), "NotReady");
    }
    for kind in StopReason::KINDS {
        add(format!("sendStopped_{}", part(kind)), "StopReason");
    }
    for kind in ConnectionProblem::KINDS {
        add(
            format!("sendProblem_{}", part(kind)),
            "ConnectionProblem (send)",
        );
        // options.js testLines: `opt_test_${problem}`.
        add(
            format!("opt_test_{}", options_part(kind)),
            "ConnectionProblem (test)",
        );
    }
    for (_, key) in koha::MESSAGE_KEYS {
        add(part(key), "koha::message_key (send summary)");
    }
    add("koha_other_answer".to_owned(), "send summary");

    // options.js: `opt_test_works_${transport}`, `opt_reuse_${sessionReuse}` when reuse failed,
    // `opt_password_kept_${kept}`, `opt_err_${field}_${kind}`, `opt_clock_${state}` when off.
    for transport in Transport::NAMES {
        add(
            format!("opt_test_works_{}", options_part(transport)),
            "Transport",
        );
    }
    let reuse_shown = SessionReuse::KINDS
        .iter()
        .filter(|k| ![SessionReuse::Off.kind(), SessionReuse::Works.kind()].contains(k));
    for kind in reuse_shown {
        add(format!("opt_reuse_{}", options_part(kind)), "SessionReuse");
    }
    // options.js showLibrary: `opt_library_${state}`.
    for kind in LibraryCheck::KINDS {
        add(
            format!("opt_library_{}", options_part(kind)),
            "LibraryCheck",
        );
    }
    for kind in PasswordKept::KINDS {
        add(
            format!("opt_password_kept_{}", options_part(kind)),
            "PasswordKept",
        );
    }
    for (field, kind) in SettingsError::every_kind() {
        let key = format!(
            "opt_err_{}_{}",
            options_part(field.id()),
            options_part(kind)
        );
        add(key, "SettingsError");
    }
    for check in clock_checks().iter().filter(|c| c.is_off()) {
        add(
            format!("opt_clock_{}", options_part(check.kind())),
            "ClockCheck",
        );
    }
    keys
}

/// One check of every kind (the test fails when a kind has none here).
fn clock_checks() -> Vec<ClockCheck> {
    let koha = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
    let by = chrono::TimeDelta::minutes(10);
    vec![
        ClockCheck::InStep,
        ClockCheck::DeskAhead {
            by,
            desk: koha + by,
            koha,
        },
        ClockCheck::DeskBehind {
            by,
            desk: koha - by,
            koha,
        },
        ClockCheck::Unknown(DateError::Missing),
    ]
}

#[test]
fn the_interface_has_six_languages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("i18n");
    let found: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("i18n/")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(found, LANGUAGES.iter().map(|l| l.to_string()).collect());
}

#[test]
fn every_clock_kind_has_an_example() {
    let kinds: Vec<&str> = clock_checks().iter().map(ClockCheck::kind).collect();
    assert_eq!(kinds, ClockCheck::KINDS);
}

#[test]
fn text_kinds_are_input_error_kinds() {
    for kind in InputError::TEXT_KINDS {
        assert!(InputError::KINDS.contains(kind), "{kind}");
    }
}

#[test]
fn the_shell_is_scanned_for_its_own_error_kinds() {
    // The scan finds what src/web/ makes itself; if it found nothing, it would check nothing.
    let kinds = shell_error_kinds();
    for kind in ["storage", "send-busy", "not-found"] {
        assert!(kinds.contains(kind), "{kind} not found in {kinds:?}");
    }
}

#[test]
fn every_kind_the_core_gives_has_a_message_in_every_language() {
    let mut needed: BTreeMap<String, &str> = BTreeMap::new();
    for (key, from) in needed_keys() {
        needed.entry(key).or_insert(from);
    }
    assert!(needed.len() > 150, "only {} keys", needed.len());
    let mut missing = Vec::new();
    for lang in LANGUAGES {
        let keys = keys_of(lang);
        for (key, from) in &needed {
            if !keys.contains(key) {
                missing.push(format!("{lang}: {key} (from {from})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing messages:\n{}",
        missing.join("\n")
    );
}
