//! Send to Koha from the desk, in Firefox, against the stand-in: every profile in both modes,
//! what the stand-in received, the statuses the desk stored, and the faults of issue 7.

use chrono::{DateTime, TimeDelta, Utc};
use e2e::desk::{core_call, record_batch, transactions, with_open_desk};
use e2e::firefox::{Firefox, Options};
use e2e::sending::{runs, send, wait_for_run, with_desk_sending_to, DeskSettings};
use e2e::standin::{Config, Fault, FaultRule, LoggedRequest, Profile, StandIn, When};
use e2e::wait::wait_until;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn options(locale: &str) -> Options {
    Options {
        locale: locale.into(),
        ..Options::granting_permissions()
    }
}

/// Request parameters, in order.
type Params = Vec<(String, String)>;

/// Five transactions: four recorded in one batch an hour ago, one checkout through the desk.
struct Recorded {
    /// (id, action, expected non-credential parameters) in recorded order.
    rows: Vec<(String, String, Params)>,
}

fn utc(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .expect("a time")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

async fn record_five(ff: &Firefox, pending: &str) -> Recorded {
    let start = (Utc::now() - TimeDelta::hours(1)).timestamp() * 1000 + 250;
    let batch = json!([
        {"action": "issue", "cardnumber": "C0001", "barcode": "B0010", "at": start},
        {"action": "return", "barcode": "B0049", "at": start + 1000},
        {"action": "payment", "cardnumber": "C0002", "amount": "12,5", "at": start + 2000},
        {"action": "issue", "cardnumber": "nobody", "barcode": "B0011", "at": start + 3000},
    ]);
    assert_eq!(record_batch(ff, &batch).await, 4);
    // The fifth through the desk's own checkout form, as a librarian scans it.
    ff.type_into("checkout-cardnumber", "C0003\n").await;
    ff.type_into("checkout-barcode", "B0020\n").await;
    ff.wait_for_css(r#"#transactions tbody tr[data-action="issue"][data-status="local"]"#)
        .await;
    let mut rows = transactions(ff).await;
    rows.reverse(); // oldest first
    assert_eq!(rows.len(), 5);
    let s = |v: &Value, k: &str| v[k].as_str().map(str::to_owned);
    let expected = rows
        .iter()
        .map(|row| {
            let action = s(row, "action").expect("action");
            let mut params = vec![
                ("userid".to_owned(), "desk".to_owned()),
                ("branchcode".to_owned(), "DE-627".to_owned()),
                ("pending".to_owned(), pending.to_owned()),
                ("action".to_owned(), action.clone()),
                (
                    "timestamp".to_owned(),
                    utc(row["recordedAt"].as_f64().expect("recordedAt") as i64),
                ),
            ];
            for name in ["barcode", "cardnumber", "amount"] {
                if let Some(v) = s(row, name) {
                    params.push((name.to_owned(), v));
                }
            }
            (s(row, "id").expect("id"), action, params)
        })
        .collect();
    Recorded { rows: expected }
}

const CREDENTIAL_PARAMS: [&str; 4] = ["login_userid", "login_password", "password", "nocookie"];

fn without_credentials(r: &LoggedRequest) -> Vec<(String, String)> {
    r.params
        .iter()
        .filter(|(n, _)| !CREDENTIAL_PARAMS.contains(&n.as_str()))
        .cloned()
        .collect()
}

/// Requests in the order Koha applies its pending table: by recorded second (stable, so
/// same-second requests keep the order they arrived in). With several requests in flight in
/// queue mode they may arrive in any order; that order is all Koha's result depends on.
fn in_queue_order(mut requests: Vec<Params>) -> Vec<Params> {
    let second = |p: &Params| {
        p.iter()
            .find(|(n, _)| n == "timestamp")
            .map(|(_, v)| v.clone())
    };
    requests.sort_by_key(second);
    requests
}

/// Statuses by id, as the core has them.
async fn statuses(ff: &Firefox) -> HashMap<String, (String, Option<String>)> {
    transactions(ff)
        .await
        .into_iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_owned(),
                (
                    r["status"].as_str().expect("status").to_owned(),
                    r["answer"]
                        .as_str()
                        .or(r["reason"].as_str())
                        .map(str::to_owned),
                ),
            )
        })
        .collect()
}

/// Statuses as the desk shows them after a reload (what was stored, not what was in memory).
async fn statuses_after_reload(ff: &Firefox) -> HashMap<String, String> {
    ff.client.refresh().await.expect("reload");
    ff.wait_ready().await;
    let rows = ff
        .eval(r##"[...document.querySelectorAll("#transactions tbody tr")].map(r => [r.dataset.id, r.dataset.status])"##)
        .await;
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r[0].as_str().expect("id").to_owned(),
                r[1].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

async fn summary_count(ff: &Firefox, name: &str) -> Value {
    ff.eval(&format!(
        r#"document.querySelector('#send-summary [data-count="{name}"]')?.dataset.n ?? "0""#
    ))
    .await
}

/// On 24.05 and newer every POST carried a CSRF token that the stand-in accepted.
fn assert_every_post_had_a_valid_token(koha: &StandIn, profile: Profile) {
    if profile == Profile::Legacy {
        return;
    }
    let log = koha.log();
    let posts: Vec<&LoggedRequest> = log.iter().filter(|r| r.method == "POST").collect();
    assert!(!posts.is_empty());
    for post in posts {
        assert!(
            post.header("CSRF-TOKEN").is_some_and(|t| !t.is_empty()),
            "POST #{} without a token",
            post.n
        );
        assert!(
            post.cookies.iter().any(|(n, _)| n == "CGISESSID"),
            "POST #{} without its session cookie",
            post.n
        );
        assert_ne!(
            post.status,
            Some(403),
            "POST #{} refused: {}",
            post.n,
            post.answer
        );
    }
}

async fn profile_and_mode(profile: Profile, mode: &'static str, login_once: bool, locale: &str) {
    let koha = StandIn::start(Config {
        profile,
        ..Config::default()
    })
    .expect("stand-in");
    let shot = format!("send-{profile:?}-{mode}-{locale}").to_lowercase();
    let settings = DeskSettings {
        mode,
        login_once,
        ..DeskSettings::queue(&koha)
    };
    with_desk_sending_to(options(locale), koha, settings, move |ff, koha| async move {
        let pending = if mode == "queue" { "true" } else { "false" };
        let recorded = record_five(&ff, pending).await;

        assert_eq!(send(&ff, WAIT).await, "ran");
        // The table follows a run only every so often, but shows every outcome as soon as the
        // run has ended.
        let shown = ff
            .eval(r##"[...document.querySelectorAll("#transactions tbody tr")].map(r => r.dataset.status)"##)
            .await;
        let shown: Vec<&str> = shown.as_array().expect("rows").iter().filter_map(Value::as_str).collect();
        assert_eq!(shown.len(), 5);
        assert!(
            shown.iter().all(|s| ["queued", "applied", "rejected"].contains(s)),
            "the table at the end of the run: {shown:?}"
        );

        // Exactly these five requests, with exactly these parameters: in recorded order where
        // Koha applies them at once; in queue mode (several in flight) in any order that is
        // recorded order once Koha sorts its pending table.
        let sent = koha.transaction_requests();
        let got: Vec<Params> = sent.iter().map(without_credentials).collect();
        let want: Vec<Params> = recorded.rows.iter().map(|(_, _, p)| p.clone()).collect();
        if mode == "queue" {
            assert_eq!(in_queue_order(got), want);
        } else {
            assert_eq!(got, want);
        }
        for r in &sent {
            // One login per batch: no password in any transaction request; otherwise the
            // credentials travel with each one (both pairs, and nocookie).
            assert_eq!(r.param("login_password").is_some(), !login_once, "{r:?}");
            assert_eq!(r.param("password").is_some(), !login_once);
            assert_eq!(r.param("nocookie").is_some(), !login_once);
            assert_eq!(r.method, "POST");
        }
        if login_once {
            // The probe and the session login: two password checks for the whole batch.
            assert_eq!(koha.password_checks(), 2);
        } else {
            assert_eq!(koha.password_checks(), 1 + 5);
        }
        assert_every_post_had_a_valid_token(&koha, profile);

        // Every row's status is the stand-in's answer to its request.
        let answers: Vec<(u16, String)> = sent
            .iter()
            .map(|r| (r.status.expect("answered"), r.answer.clone()))
            .collect();
        let expected_answers: Vec<(u16, &str)> = if mode == "queue" {
            vec![(200, "Added."); 5]
        } else {
            vec![
                (200, "Success."),
                (200, "Success."),
                (200, "Success."),
                (200, "Borrower not found."),
                (200, "Success."),
            ]
        };
        let answers: Vec<(u16, &str)> = answers.iter().map(|(s, a)| (*s, a.as_str())).collect();
        assert_eq!(answers, expected_answers);
        let now = statuses(&ff).await;
        for ((id, _, _), (_, answer)) in recorded.rows.iter().zip(&expected_answers) {
            let want = match *answer {
                "Added." => ("queued", None),
                "Success." => ("applied", None),
                other => ("rejected", Some(other.to_owned())),
            };
            assert_eq!(now[id], (want.0.to_owned(), want.1), "{id}");
        }

        // The summary counts and, for the rejection, the translation with the original.
        let (queued, applied, rejected) = if mode == "queue" {
            (5, 0, 0)
        } else {
            (0, 4, 1)
        };
        assert_eq!(
            summary_count(&ff, "queued").await,
            json!(queued.to_string())
        );
        assert_eq!(
            summary_count(&ff, "applied").await,
            json!(applied.to_string())
        );
        assert_eq!(
            summary_count(&ff, "rejected").await,
            json!(rejected.to_string())
        );
        assert_eq!(
            ff.eval(r#"document.getElementById("send-summary").dataset.stopped"#)
                .await,
            "finished"
        );
        if rejected > 0 {
            let text = ff
                .eval(r##"document.querySelector("#send-summary .rejections li").textContent"##)
                .await;
            let text = text.as_str().expect("text");
            assert!(text.contains("(Koha: “Borrower not found.”)"), "{text}");
            // Firefox ESR here has only its English UI; de and fr are checked at build time.
            assert!(
                text.starts_with("Checkout · nobody · B0011: Patron not found"),
                "{text}"
            );
        }
        // The stand-in holds what the answers say.
        let model = koha.model();
        if mode == "queue" {
            assert_eq!(model.queue.len(), 5);
            assert!(model.queue.iter().all(|q| q.branchcode == "DE-627"));
            assert!(model.credits.is_empty());
        } else {
            assert!(model.queue.is_empty());
            assert_eq!(model.credits.len(), 1);
            assert_eq!(model.credits[0].amount, "12.500000");
            assert_eq!(model.credits[0].library, "DE-627");
        }
        ff.screenshot(&shot).await;

        // What was stored survives a reload, status by status.
        let shown = statuses_after_reload(&ff).await;
        for (id, (status, _)) in &now {
            assert_eq!(&shown[id], status);
        }
        // Sending again sends nothing: queued, applied and rejected are never resent.
        let before = koha.log().len();
        assert_eq!(send(&ff, WAIT).await, "nothing");
        assert_eq!(koha.log().len(), before);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_queue() {
    profile_and_mode(Profile::Legacy, "queue", true, "en-US").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_apply() {
    profile_and_mode(Profile::Legacy, "apply", false, "en-US").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn koha_24_05_queue() {
    profile_and_mode(Profile::Koha2405, "queue", true, "en-US").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn koha_24_05_apply() {
    profile_and_mode(Profile::Koha2405, "apply", false, "en-US").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn newest_queue() {
    profile_and_mode(Profile::Newest, "queue", false, "en-US").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn newest_apply() {
    profile_and_mode(Profile::Newest, "apply", true, "en-US").await;
}

fn drop_the_payment() -> Vec<FaultRule> {
    vec![FaultRule::nth(
        Fault::Drop,
        When {
            method: Some("POST".into()),
            path: Some("service.pl".into()),
            params: vec![("action".into(), "payment".into())],
            ..When::default()
        },
    )]
}

/// F2 after the stand-in stored the third operation (the payment): exactly that row is
/// uncertain, the ones before it are queued, the ones after it were not sent; sending again sends
/// those and never the payment; then the librarian marks the payment as found in Koha.
#[tokio::test(flavor = "multi_thread")]
async fn dropped_third_operation_is_uncertain_and_never_duplicated() {
    for profile in [Profile::Newest, Profile::Legacy] {
        let koha = StandIn::start(Config {
            profile,
            keep_alive: false,
            ..Config::default()
        })
        .expect("stand-in");
        koha.set_faults(drop_the_payment());
        // One at a time, so nothing after it is in flight (several at once: send_flight.rs).
        let settings = DeskSettings {
            in_flight: 1,
            ..DeskSettings::queue(&koha)
        };
        with_desk_sending_to(options("en-US"), koha, settings, move |ff, koha| async move {
            let recorded = record_five(&ff, "true").await;
            let ids: Vec<&str> = recorded.rows.iter().map(|(id, _, _)| id.as_str()).collect();

            assert_eq!(send(&ff, WAIT).await, "ran");
            let payment_requests = |koha: &StandIn| {
                koha.transaction_requests()
                    .iter()
                    .filter(|r| r.param("action") == Some("payment"))
                    .count()
            };
            assert_eq!(
                payment_requests(&koha),
                1,
                "Firefox did not repeat the POST"
            );
            assert_eq!(
                koha.model().queue.len(),
                3,
                "the payment was stored before the drop"
            );
            let s = statuses(&ff).await;
            let names: Vec<&str> = ids.iter().map(|id| s[*id].0.as_str()).collect();
            assert_eq!(names, ["queued", "queued", "uncertain", "local", "local"]);
            assert_eq!(s[ids[2]].1.as_deref(), Some("connection-lost"));
            assert_eq!(
                ff.eval(r#"document.getElementById("send-summary").dataset.stopped"#)
                    .await,
                "network"
            );
            assert_eq!(summary_count(&ff, "uncertain").await, "1");
            assert_eq!(summary_count(&ff, "notSent").await, "2");
            // The desk lists the uncertain payment with its own question.
            ff.wait_for_css(&format!(
                r#"#uncertain-list li[data-id="{}"][data-action="payment"]"#,
                ids[2]
            ))
            .await;
            assert_eq!(
                ff.eval(&format!(
                    r#"window.kocCore.uncertainTransactions().find((r) => r.id === "{}")?.question"#,
                    ids[2]
                ))
                .await,
                "resend-payment"
            );
            ff.screenshot(&format!("send-f2-uncertain-{profile:?}").to_lowercase())
                .await;

            // Sending again: the two not sent go, the uncertain payment does not.
            assert_eq!(send(&ff, WAIT).await, "ran");
            assert_eq!(payment_requests(&koha), 1);
            assert_eq!(koha.transaction_requests().len(), 5);
            assert_eq!(koha.model().queue.len(), 5);
            let s = statuses(&ff).await;
            let names: Vec<&str> = ids.iter().map(|id| s[*id].0.as_str()).collect();
            assert_eq!(names, ["queued", "queued", "uncertain", "queued", "queued"]);
            let shown = statuses_after_reload(&ff).await;
            assert_eq!(shown[ids[2]], "uncertain");

            // Resending the payment asks first, naming the double charge; cancelling sends
            // nothing.
            let item = format!(r#"#uncertain-list li[data-id="{}"]"#, ids[2]);
            ff.wait_for_css(&item).await;
            ff.client
                .find(fantoccini::Locator::Css(&format!(
                    r#"{item} [data-role="resend"]"#
                )))
                .await
                .expect("resend button")
                .click()
                .await
                .expect("click");
            ff.wait_for_css(r#"#confirm[open][data-kind="resend-payment"]"#)
                .await;
            ff.screenshot(&format!("send-resend-payment-{profile:?}").to_lowercase())
                .await;
            ff.click("confirm-cancel").await;
            assert_eq!(payment_requests(&koha), 1);

            // The librarian found it in Koha's pending list: queued, without sending.
            ff.client
                .find(fantoccini::Locator::Css(&format!(
                    r#"{item} [data-role="mark-done"]"#
                )))
                .await
                .expect("mark-done button")
                .click()
                .await
                .expect("click");
            ff.wait_for_css(r#"#confirm[open][data-kind="mark-done"]"#)
                .await;
            ff.click("confirm-ok").await;
            ff.wait_until(
                "the payment marked queued",
                r#"document.getElementById("uncertain-area").hidden"#,
            )
            .await;
            let s = statuses(&ff).await;
            assert_eq!(s[ids[2]].0, "queued");
            assert_eq!(payment_requests(&koha), 1);
            assert_eq!(koha.model().queue.len(), 5);
        })
        .await;
    }
}

/// What keep-alive does to a dropped POST (docs/koha.md 8.1): on a reused connection
/// Firefox re-sends it by itself, so Koha stores the payment twice while the desk sees a clean
/// `Added.`. This is why an F2 test needs `keep_alive: false`, and why uncertainty cannot be
/// detected when a front end drops reused connections (`fetch` cannot ask for a fresh one).
#[tokio::test(flavor = "multi_thread")]
async fn with_keep_alive_firefox_silently_repeats_a_dropped_post() {
    let koha = StandIn::start(Config::default()).expect("stand-in");
    koha.set_faults(drop_the_payment());
    let settings = DeskSettings::queue(&koha);
    with_desk_sending_to(
        options("en-US"),
        koha,
        settings,
        move |ff, koha| async move {
            let recorded = record_five(&ff, "true").await;
            assert_eq!(send(&ff, WAIT).await, "ran");
            let payments: Vec<LoggedRequest> = koha
                .transaction_requests()
                .into_iter()
                .filter(|r| r.param("action") == Some("payment"))
                .collect();
            let s = statuses(&ff).await;
            let payment = &s[&recorded.rows[2].0].0;
            eprintln!(
                "keep-alive F2: {} payment request(s) reached the stand-in (connections {:?}, \
             request on connection {:?}); the desk stored `{payment}`",
                payments.len(),
                payments.iter().map(|r| r.connection).collect::<Vec<_>>(),
                payments.iter().map(|r| r.on_connection).collect::<Vec<_>>()
            );
            if payments[0].on_connection > 0 {
                // A reused connection: Firefox repeated the request, Koha stored it twice.
                assert_eq!(payments.len(), 2);
                assert_eq!(payment, "queued");
                assert_eq!(
                    koha.model()
                        .queue
                        .iter()
                        .filter(|q| q.action == "payment")
                        .count(),
                    2
                );
            } else {
                // A fresh connection: no repeat, the desk says uncertain.
                assert_eq!(payments.len(), 1);
                assert_eq!(payment, "uncertain");
            }
        },
    )
    .await;
}

/// A wrong password stops everything at the first request (the probe): no transaction request
/// is made, nothing is marked sent, the password is asked again; the right one then sends all.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_stops_at_the_first_request() {
    for profile in [Profile::Legacy, Profile::Koha2405, Profile::Newest] {
        let koha = StandIn::start(Config {
            profile,
            ..Config::default()
        })
        .expect("stand-in");
        let settings = DeskSettings {
            mode: "apply",
            password: None,
            ..DeskSettings::queue(&koha)
        };
        with_desk_sending_to(
            options("en-US"),
            koha,
            settings,
            move |ff, koha| async move {
                let recorded = record_five(&ff, "false").await;
                // No remembered password: the desk asks for one (after the permission).
                assert_eq!(send(&ff, WAIT).await, "password");
                ff.wait_for_css("#password-area:not([hidden])").await;
                let before = runs(&ff).await;
                ff.type_into("password-prompt", "wrong-one\n").await;
                let outcome = wait_for_run(&ff, before, WAIT).await;
                assert_eq!(outcome, "problem-wrong-credentials");
                assert!(koha.transaction_requests().is_empty());
                assert_eq!(koha.service_requests().len(), 1, "only the probe");
                assert_eq!(koha.password_checks(), 1);
                let s = statuses(&ff).await;
                assert!(s.values().all(|(status, _)| status == "local"), "{s:?}");
                assert_eq!(
                    ff.eval(r#"document.getElementById("message").dataset.kind"#)
                        .await,
                    "error"
                );
                ff.wait_for_css("#password-area:not([hidden])").await;
                assert_eq!(
                    core_call(&ff, "browser.storage.session.get(null)").await,
                    json!({}),
                    "a refused password is not kept"
                );
                ff.screenshot(&format!("send-wrong-password-{profile:?}").to_lowercase())
                    .await;
                // The right one: kept for the session, and everything goes.
                let before = runs(&ff).await;
                ff.type_into("password-prompt", "secret123").await;
                ff.click("password-prompt-ok").await;
                assert_eq!(wait_for_run(&ff, before, WAIT).await, "ran");
                assert_eq!(koha.transaction_requests().len(), 5);
                let s = statuses(&ff).await;
                let names: Vec<&str> = recorded
                    .rows
                    .iter()
                    .map(|(id, _, _)| s[id].0.as_str())
                    .collect();
                assert_eq!(
                    names,
                    ["applied", "applied", "applied", "rejected", "applied"]
                );
                assert_eq!(
                    core_call(&ff, "browser.storage.session.get(null)").await,
                    json!({ koha_offline_circ::settings::SESSION_PASSWORD_KEY: "secret123" })
                );
                assert_every_post_had_a_valid_token(&koha, profile);
            },
        )
        .await;
    }
}

/// No settings: the desk explains and links to the settings; nothing is sent.
#[tokio::test(flavor = "multi_thread")]
async fn without_settings_the_desk_explains() {
    with_open_desk(options("en-US"), |ff| async move {
        ff.type_into("checkout-cardnumber", "C0001\n").await;
        ff.type_into("checkout-barcode", "B0001\n").await;
        assert_eq!(send(&ff, WAIT).await, "not-ready");
        ff.wait_for_css("#send-setup:not([hidden]) #send-options[href=\"options.html\"]")
            .await;
        let text = ff
            .eval(r#"document.getElementById("send-setup-text").textContent"#)
            .await;
        assert!(
            text.as_str().expect("text").contains("Open the settings"),
            "{text}"
        );
        assert_eq!(
            ff.eval(r#"document.getElementById("send-grant").hidden"#)
                .await,
            true
        );
    })
    .await;
}

/// Cancel: the request in flight finishes and is stored, then the run stops; the rest stays
/// unsent and goes with the next run.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_lets_the_request_in_flight_finish() {
    let koha = StandIn::start(Config {
        round_trip_ms: 150,
        ..Config::default()
    })
    .expect("stand-in");
    // One at a time, so nothing after it is in flight (several at once: send_flight.rs).
    let settings = DeskSettings {
        in_flight: 1,
        ..DeskSettings::queue(&koha)
    };
    with_desk_sending_to(options("en-US"), koha, settings, move |ff, koha| async move {
        let recorded = record_five(&ff, "true").await;
        // Grant first, so that the click below starts the run itself.
        assert_eq!(send(&ff, WAIT).await, "ran");
        koha.reset(Config {
            round_trip_ms: 150,
            ..Config::default()
        });
        let more = json!([
            {"action": "return", "barcode": "B0001"},
            {"action": "return", "barcode": "B0002"},
            {"action": "return", "barcode": "B0003"},
            {"action": "return", "barcode": "B0004"},
        ]);
        record_batch(&ff, &more).await;
        let before = runs(&ff).await;
        ff.click("send").await;
        ff.wait_until(
            "one transaction sent",
            r#"document.getElementById("send-progress").hasAttribute("value") && document.getElementById("send-progress").value >= 1"#,
        )
        .await;
        assert_eq!(
            ff.eval(r#"document.getElementById("send-progress").hidden"#)
                .await,
            false
        );
        ff.screenshot("send-progress").await;
        ff.click("send-cancel").await;
        assert_eq!(
            wait_for_run(&ff, before, WAIT).await,
            "ran"
        );
        assert_eq!(
            ff.eval(r#"document.getElementById("send-summary").dataset.stopped"#)
                .await,
            "cancelled"
        );
        let sent = koha.transaction_requests().len();
        assert!(
            (1..4).contains(&sent),
            "{sent} sent before the cancel took effect"
        );
        let s = statuses(&ff).await;
        let queued = s.values().filter(|(st, _)| st == "queued").count();
        let local = s.values().filter(|(st, _)| st == "local").count();
        assert_eq!(
            queued,
            5 + sent,
            "every request that left is stored as answered"
        );
        assert_eq!(local, 4 - sent);
        assert_eq!(
            summary_count(&ff, "notSent").await,
            json!((4 - sent).to_string())
        );
        assert!(s.values().all(|(st, _)| st != "sending"));
        // The rest goes with the next run.
        assert_eq!(send(&ff, WAIT).await, "ran");
        assert_eq!(koha.transaction_requests().len(), 4);
        let _ = recorded;
    })
    .await;
}

/// A 24.05 without the token header refuses POST: only GET (password in the URL) would work.
/// The desk asks, naming the risk and the payments; declining sends nothing, consenting sends.
#[tokio::test(flavor = "multi_thread")]
async fn get_only_with_consent_naming_the_risk() {
    let config = || {
        let mut c = Config {
            profile: Profile::Koha2405,
            ..Config::default()
        };
        c.switches.auth_token_header = false;
        c
    };
    let koha = StandIn::start(config()).expect("stand-in");
    let settings = DeskSettings {
        login_once: false,
        ..DeskSettings::queue(&koha)
    };
    with_desk_sending_to(
        options("en-US"),
        koha,
        settings,
        move |ff, koha| async move {
            let recorded = record_five(&ff, "true").await;
            let before = runs(&ff).await;
            ff.click("send").await;
            ff.wait_for_css("#send-grant:not([hidden])").await;
            ff.click("send-grant").await;
            ff.wait_for_css(r#"#confirm[open][data-kind="send-get"]"#)
                .await;
            let body = ff
                .eval(r#"document.getElementById("confirm-body").textContent"#)
                .await;
            let body = body.as_str().expect("text");
            assert!(body.contains("log files"), "{body}");
            assert!(body.contains("1 payment(s)"), "{body}");
            ff.screenshot("send-get-consent").await;
            ff.click("confirm-cancel").await;
            assert_eq!(wait_for_run(&ff, before + 1, WAIT).await, "get-declined");
            assert!(koha.transaction_requests().is_empty());
            assert!(koha
                .log()
                .iter()
                .all(|r| r.method != "GET" || !r.query.contains("password")));

            let before = runs(&ff).await;
            ff.click("send").await;
            ff.wait_for_css(r#"#confirm[open][data-kind="send-get"]"#)
                .await;
            ff.click("confirm-ok").await;
            assert_eq!(wait_for_run(&ff, before, WAIT).await, "ran");
            let sent = koha.transaction_requests();
            assert_eq!(sent.len(), 5);
            assert!(sent.iter().all(|r| r.method == "GET"));
            let got: Vec<Params> = sent.iter().map(without_credentials).collect();
            let want: Vec<Params> = recorded.rows.iter().map(|(_, _, p)| p.clone()).collect();
            assert_eq!(in_queue_order(got), want);
            let s = statuses(&ff).await;
            assert!(s.values().all(|(st, _)| st == "queued"), "{s:?}");
        },
    )
    .await;
}

/// The password stops working in the middle of a run (changed in Koha): the transaction Koha
/// refused is `failed` (nothing reached Koha, it may be sent again), the run stops at once (no
/// second refused login, lockout risk), the rest stays unsent.
#[tokio::test(flavor = "multi_thread")]
async fn a_password_refused_mid_run_fails_that_row_and_stops() {
    for profile in [Profile::Newest, Profile::Legacy] {
        let koha = StandIn::start(Config {
            profile,
            ..Config::default()
        })
        .expect("stand-in");
        // The first transaction is answered slowly: meanwhile the password changes in Koha.
        koha.set_faults(vec![FaultRule::nth(
            Fault::Delay { ms: 1500 },
            When::action("issue"),
        )]);
        // One at a time: with several in flight, each one in flight meets the changed password
        // (one failed login each).
        let settings = DeskSettings {
            login_once: false,
            in_flight: 1,
            ..DeskSettings::queue(&koha)
        };
        with_desk_sending_to(
            options("en-US"),
            koha,
            settings,
            move |ff, koha| async move {
                let recorded = record_five(&ff, "true").await;
                let before = runs(&ff).await;
                ff.click("send").await;
                ff.wait_for_css("#send-grant:not([hidden])").await;
                ff.click("send-grant").await;
                // Queued, not only logged: the stand-in logs a request before it checks the
                // password, and a change in between would refuse the first one too.
                wait_until("Koha to queue the first transaction", WAIT, || async {
                    koha.model().queue.len() == 1
                })
                .await;
                for account in &mut koha.state().model.accounts {
                    if account.userid == "desk" {
                        account.password = "changed-in-koha".into();
                    }
                }
                assert_eq!(wait_for_run(&ff, before + 1, WAIT).await, "ran");
                let s = statuses(&ff).await;
                let names: Vec<(&str, Option<&str>)> = recorded
                    .rows
                    .iter()
                    .map(|(id, _, _)| (s[id].0.as_str(), s[id].1.as_deref()))
                    .collect();
                assert_eq!(
                    names,
                    [
                        ("queued", None),
                        ("failed", Some("authentication")),
                        ("local", None),
                        ("local", None),
                        ("local", None)
                    ]
                );
                assert_eq!(koha.transaction_requests().len(), 2);
                assert_eq!(koha.model().queue.len(), 1);
                assert_eq!(
                    ff.eval(r#"document.getElementById("send-summary").dataset.stopped"#)
                        .await,
                    "authentication"
                );
                assert_eq!(summary_count(&ff, "failed").await, "1");
                assert_eq!(summary_count(&ff, "notSent").await, "3");
            },
        )
        .await;
    }
}

/// The librarian resends an uncertain checkin after confirming (`resend-uncertain`): exactly that
/// one goes again, and its new answer is stored.
#[tokio::test(flavor = "multi_thread")]
async fn an_uncertain_checkin_is_resent_only_when_the_librarian_confirms() {
    let koha = StandIn::start(Config {
        keep_alive: false,
        ..Config::default()
    })
    .expect("stand-in");
    koha.set_faults(vec![FaultRule::nth(Fault::Drop, When::action("return"))]);
    // One at a time: with several in flight, the rows after the checkin may all be answered
    // before the dropped one stops the run, and the ordinary second run would find nothing.
    let settings = DeskSettings {
        in_flight: 1,
        ..DeskSettings::queue(&koha)
    };
    with_desk_sending_to(
        options("en-US"),
        koha,
        settings,
        move |ff, koha| async move {
            let recorded = record_five(&ff, "true").await;
            let checkin = recorded.rows[1].0.clone();
            assert_eq!(send(&ff, WAIT).await, "ran");
            assert_eq!(statuses(&ff).await[&checkin].0, "uncertain");
            assert_eq!(
                koha.transaction_requests().len(),
                2,
                "the dropped checkin stopped the run"
            );
            // An ordinary run sends the rest and leaves it alone.
            assert_eq!(send(&ff, WAIT).await, "ran");
            let returns = |koha: &StandIn| {
                koha.transaction_requests()
                    .iter()
                    .filter(|r| r.param("action") == Some("return"))
                    .count()
            };
            assert_eq!(returns(&koha), 1);
            assert_eq!(statuses(&ff).await[&checkin].0, "uncertain");

            let item = format!(r#"#uncertain-list li[data-id="{checkin}"]"#);
            let before = runs(&ff).await;
            ff.wait_for_css(&format!(r#"{item} [data-role="resend"]"#))
                .await
                .click()
                .await
                .expect("click");
            ff.wait_for_css(r#"#confirm[open][data-kind="resend-uncertain"]"#)
                .await;
            ff.click("confirm-ok").await;
            assert_eq!(wait_for_run(&ff, before, WAIT).await, "ran");
            assert_eq!(returns(&koha), 2, "sent again, as the librarian chose");
            assert_eq!(statuses(&ff).await[&checkin].0, "queued");
            assert_eq!(koha.transaction_requests().len(), 6);
        },
    )
    .await;
}

/// A send run with "log in once" logs the desk's account in to Koha (P2) and, once done, ends
/// that session: the stand-in has no logged-in session of the desk left, and the cookie Firefox
/// keeps (which anyone opening the staff interface in this browser would use) authenticates
/// nothing. Koha 23.11 sets the cookie only for a successful login, 24.05+ always.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_run_with_login_once_leaves_no_session_logged_in() {
    for profile in [Profile::Newest, Profile::Legacy] {
        let koha = StandIn::start(Config {
            profile,
            ..Config::default()
        })
        .expect("stand-in");
        let settings = DeskSettings::queue(&koha);
        with_desk_sending_to(options("en-US"), koha, settings, move |ff, koha| async move {
            let batch = json!([
                {"action": "return", "barcode": "B0049"},
                {"action": "issue", "cardnumber": "C0001", "barcode": "B0010"},
            ]);
            assert_eq!(record_batch(&ff, &batch).await, 2);
            assert_eq!(send(&ff, WAIT).await, "ran");
            let sent = koha.transaction_requests();
            assert_eq!(sent.len(), 2);
            assert!(
                sent.iter().all(|r| r.param("login_password").is_none()),
                "{profile:?}: sent with the session, not the password"
            );

            // The cookie Firefox holds, tried through the cookie fallback (docs/koha.md 4.3): a
            // bare GET without credentials.
            let url = format!("{}/cgi-bin/koha/offline_circ/service.pl?action=", koha.base_url());
            let script = format!(
                "const done = arguments[arguments.length - 1];
                 fetch({}, {{ credentials: 'include', cache: 'no-store' }})
                   .then(async (r) => done([r.status, await r.text()]), (e) => done([0, String(e)]));",
                json!(url)
            );
            let answer = ff.client.execute_async(&script, vec![]).await.expect("a fetch");
            assert_ne!(
                answer,
                json!([200, ""]),
                "{profile:?}: Firefox's cookie still logs in to Koha as the desk"
            );
            let carried = koha
                .log()
                .into_iter()
                .rfind(|r| r.query == "action=")
                .expect("the fallback request")
                .cookies
                .into_iter()
                .find(|(n, _)| n == "CGISESSID");
            if let Some((_, cookie)) = carried {
                assert!(!koha.session_logged_in(&cookie), "{profile:?}");
            }
            let left = koha.cookie_logins("desk");
            assert!(left.is_empty(), "{profile:?}: left logged in: {left:?}");
        })
        .await;
    }
}

/// A Koha (or proxy) that sends an answer's headers and then stalls: the request times out (here
/// after the 2 s a test may set instead of 60 s), the run ends, and that transaction is
/// `uncertain` (reason `timeout`): it may have reached Koha. The next one is not sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_answer_ends_the_run_with_the_transaction_uncertain() {
    let koha = StandIn::start(Config {
        profile: Profile::Newest,
        ..Config::default()
    })
    .expect("stand-in");
    koha.set_faults(vec![FaultRule::nth(
        Fault::Stall { ms: 120_000 },
        When {
            method: Some("POST".into()),
            path: Some("service.pl".into()),
            params: vec![("action".into(), "issue".into())],
            ..When::default()
        },
    )]);
    let settings = DeskSettings {
        login_once: false,
        ..DeskSettings::queue(&koha)
    };
    with_desk_sending_to(
        options("en-US"),
        koha,
        settings,
        move |ff, koha| async move {
            // A test-only shorter time-out, read with every request.
            ff.eval(&format!(
                "(localStorage.setItem('{}', '2000'), true)",
                koha_offline_circ::koha::TIMEOUT_OVERRIDE_KEY
            ))
            .await;
            let batch = json!([
                {"action": "return", "barcode": "B0049"},
                {"action": "issue", "cardnumber": "C0001", "barcode": "B0010"},
                {"action": "return", "barcode": "B0010"},
            ]);
            assert_eq!(record_batch(&ff, &batch).await, 3);
            let mut rows = transactions(&ff).await;
            rows.reverse(); // oldest first
            let ids: Vec<String> = rows
                .iter()
                .map(|r| r["id"].as_str().expect("id").to_owned())
                .collect();

            // Well within the 60 s default: only the short time-out can end this run in time.
            assert_eq!(send(&ff, Duration::from_secs(30)).await, "ran");
            let s = statuses(&ff).await;
            let got: Vec<(&str, Option<&str>)> = ids
                .iter()
                .map(|id| (s[id].0.as_str(), s[id].1.as_deref()))
                .collect();
            assert_eq!(
                got,
                [
                    ("queued", None),
                    ("uncertain", Some("timeout")),
                    ("local", None)
                ]
            );
            assert_eq!(
                ff.eval(r#"document.getElementById("send-summary").dataset.stopped"#)
                    .await,
                "timeout"
            );
            let stalled: Vec<LoggedRequest> = koha
                .transaction_requests()
                .into_iter()
                .filter(|r| r.faults.contains(&"F7".to_owned()))
                .collect();
            assert_eq!(stalled.len(), 1, "sent once, not repeated");
            assert!(
                stalled[0].processed,
                "Koha had stored it: uncertain is the truth"
            );
            assert_eq!(koha.model().queue.len(), 2);
            // What was stored says the same after a reload.
            assert_eq!(statuses_after_reload(&ff).await[&ids[1]], "uncertain");
        },
    )
    .await;
}
