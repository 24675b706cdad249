//! What Send asks before anything leaves, in Firefox against the stand-in: rows already exported
//! to a `.koc` file (Koha would record them twice if the file was uploaded), and a desk clock
//! that differs from Koha's (every recorded time would be off in Koha).

use chrono::{TimeDelta, Utc};
use e2e::desk::{clear_message_kind, core_call, record_batch, transactions};
use e2e::firefox::{Firefox, Options};
use e2e::sending::{runs, wait_for_run, with_desk_sending_to, DeskSettings};
use e2e::standin::{Config, Fault, FaultRule, Profile, StandIn, When};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn options() -> Options {
    Options::granting_permissions()
}

async fn status_counts(ff: &Firefox) -> (usize, usize) {
    let rows = transactions(ff).await;
    let count = |s: &str| rows.iter().filter(|r| r["status"] == s).count();
    (count("local"), count("queued"))
}

/// Clicks Send, grants the host permission the first time, and waits for a question.
async fn send_until_asked(ff: &Firefox, kind: &str, first: bool) {
    ff.click("send").await;
    if first {
        ff.wait_for_css("#send-grant:not([hidden])").await;
        ff.click("send-grant").await;
    }
    ff.wait_for_css(&format!(r#"#confirm[open][data-kind="{kind}"]"#))
        .await;
}

/// A stand-in of today's Koha, and the desk's settings for it: queue mode, a login with every
/// transaction.
fn newest() -> (StandIn, DeskSettings) {
    let koha = StandIn::start(Config {
        profile: Profile::Newest,
        ..Config::default()
    })
    .expect("stand-in");
    let settings = DeskSettings {
        login_once: false,
        ..DeskSettings::queue(&koha)
    };
    (koha, settings)
}

/// Issue 11, path 1: rows exported to a `.koc` file stayed sendable, so after an upload Send
/// recorded every one of them a second time in Koha.
#[tokio::test(flavor = "multi_thread")]
async fn exported_rows_are_sent_only_when_the_librarian_says_so() {
    let (koha, settings) = newest();
    with_desk_sending_to(options(), koha, settings, move |ff, koha| async move {
        let start = (Utc::now() - TimeDelta::hours(1)).timestamp() * 1000;
        let three = json!([
            {"action": "return", "barcode": "B0001", "at": start},
            {"action": "return", "barcode": "B0002", "at": start + 1000},
            {"action": "payment", "cardnumber": "C0001", "amount": "2,50", "at": start + 2000},
        ]);
        assert_eq!(record_batch(&ff, &three).await, 3);
        let exported = core_call(&ff, "core.exportKoc({confirmed: [], declined: []})").await;
        assert_eq!(exported["files"][0]["count"], 3, "{exported}");
        let later = json!([{"action": "return", "barcode": "B0003", "at": start + 3000}]);
        assert_eq!(record_batch(&ff, &later).await, 1);

        // Send asks before any request; "only the others" sends the new row alone.
        let before = runs(&ff).await;
        send_until_asked(&ff, "send-exported", true).await;
        let body = ff
            .eval(r#"document.getElementById("confirm-body").textContent"#)
            .await;
        let body = body.as_str().expect("text");
        assert!(body.contains("3 of the transactions"), "{body}");
        assert!(body.contains("1 of them are payments"), "{body}");
        ff.screenshot("send-exported-question").await;
        assert_eq!(koha.transaction_requests().len(),
            0, "asked before sending anything");
        ff.click("confirm-extra").await;
        assert_eq!(wait_for_run(&ff, before + 1, WAIT).await, "ran");
        assert_eq!(koha.transaction_requests().len(), 1);
        assert_eq!(status_counts(&ff).await, (3, 1));
        let left_out = ff
            .eval(r#"document.querySelector('#send-summary [data-count="leftOutExported"]')?.dataset.n"#)
            .await;
        assert_eq!(left_out, json!("3"));

        // Declining sends nothing; confirming sends the exported ones, each once.
        let before = runs(&ff).await;
        send_until_asked(&ff, "send-exported", false).await;
        ff.click("confirm-cancel").await;
        assert_eq!(
            wait_for_run(&ff, before, WAIT).await,
            "exported-declined"
        );
        assert_eq!(koha.transaction_requests().len(), 1);
        let before = runs(&ff).await;
        send_until_asked(&ff, "send-exported", false).await;
        ff.click("confirm-ok").await;
        assert_eq!(wait_for_run(&ff, before, WAIT).await, "ran");
        assert_eq!(koha.transaction_requests().len(), 4);
        assert_eq!(status_counts(&ff).await, (0, 4));
        assert_eq!(koha.queue_for("DE-627").len(), 4);
    })
    .await;
}

/// Issue 11, path 11 (sending): the desk's clock was never compared with Koha's, so a desk
/// whose clock was off sent every time off by as much.
#[tokio::test(flavor = "multi_thread")]
async fn send_asks_first_when_the_desk_clock_differs_from_kohas() {
    let (koha, settings) = newest();
    with_desk_sending_to(options(), koha, settings, move |ff, koha| async move {
        let rows = json!([{"action": "return", "barcode": "B0001"}]);
        assert_eq!(record_batch(&ff, &rows).await, 1);
        let koha_now = Utc::now() + TimeDelta::minutes(10);
        koha.set_now(Some(koha_now));
        let before = runs(&ff).await;
        send_until_asked(&ff, "send-clock", true).await;
        let body = ff
            .eval(r#"document.getElementById("confirm-body").textContent"#)
            .await;
        let body = body.as_str().expect("text");
        assert!(body.contains("This computer's clock shows"), "{body}");
        ff.screenshot("send-clock-question").await;
        ff.click("confirm-cancel").await;
        assert_eq!(wait_for_run(&ff, before + 1, WAIT).await, "clock-declined");
        assert_eq!(koha.transaction_requests().len(), 0);
        assert_eq!(status_counts(&ff).await, (1, 0));

        let before = runs(&ff).await;
        send_until_asked(&ff, "send-clock", false).await;
        ff.click("confirm-ok").await;
        assert_eq!(wait_for_run(&ff, before, WAIT).await, "ran");
        assert_eq!(koha.transaction_requests().len(), 1);

        // In step: no question.
        koha.set_now(None);
        assert_eq!(
            record_batch(&ff, &json!([{"action": "return", "barcode": "B0002"}])).await,
            1
        );
        let before = runs(&ff).await;
        ff.click("send").await;
        assert_eq!(wait_for_run(&ff, before, WAIT).await, "ran");
        assert_eq!(koha.transaction_requests().len(), 2);
    })
    .await;
}

/// Found by the send-run simulation: an export while another tab sends takes the row whose
/// request is on its way (that tab's `sending` not seen yet), and the uploaded file records it a
/// second time. Export now waits for no send: it is refused, translated, and nothing is marked.
#[tokio::test(flavor = "multi_thread")]
async fn export_is_refused_while_a_send_runs() {
    let (koha, settings) = newest();
    with_desk_sending_to(options(), koha, settings, move |ff, koha| async move {
        let rows = json!([
            {"action": "return", "barcode": "B0001"},
            {"action": "return", "barcode": "B0002"},
        ]);
        assert_eq!(record_batch(&ff, &rows).await, 2);
        // The first transaction's answer takes five seconds: the run is in flight meanwhile.
        koha.set_faults(vec![FaultRule {
            when: When {
                params: vec![("barcode".into(), "B0001".into())],
                ..When::default()
            },
            fault: Fault::Delay { ms: 5_000 },
            times: 1,
        }]);
        let before = runs(&ff).await;
        ff.click("send").await;
        ff.wait_for_css("#send-grant:not([hidden])").await;
        ff.click("send-grant").await;
        ff.wait_for_css("#send-progress:not([hidden])").await;
        clear_message_kind(&ff).await;
        ff.click("export").await;
        ff.wait_until(
            "the export's refusal",
            r#"document.getElementById("message").textContent.includes("send to Koha is going on")"#,
        )
        .await;
        let exported = ff
            .eval("window.kocCore.listPage('', 0, 10).rows.filter((r) => r.exported).length")
            .await;
        assert_eq!(exported, json!(0));
        assert_eq!(wait_for_run(&ff, before + 1, WAIT).await, "ran");
        assert_eq!(koha.transaction_requests().len(), 2);
        assert_eq!(status_counts(&ff).await, (0, 2));
    })
    .await;
}
