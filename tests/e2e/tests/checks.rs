//! The offline checks in Firefox against the stand-in (issue 12): the snapshot downloaded in each
//! Koha era, the desk's warnings (record anyway or not), a failure half way that keeps the
//! snapshot stored before, deleting it, and a Koha without the REST lists.
#![allow(clippy::unwrap_used)]

use e2e::desk::{
    core_call, eval_async, put_snapshot_chunk, stored_snapshot_entries, wait_rows,
    OPEN_SNAPSHOT_DATABASE,
};
use e2e::firefox::{with_firefox, Firefox, Options};
use e2e::standin::{Config, Fault, FaultRule, Profile, RestApi, StandIn, When};
use koha_offline_circ::checks::PER_PAGE_OVERRIDE_KEY;
use serde_json::{json, Value};
use std::sync::Arc;

fn standin(profile: Profile) -> Arc<StandIn> {
    Arc::new(
        StandIn::start(Config {
            profile,
            ..Config::default()
        })
        .unwrap(),
    )
}

/// Opens the options page, fills in the stand-in's desk account and saves (which asks Firefox
/// for access to it); pages of 4 records, so every list takes several pages.
async fn set_up(ff: &Firefox, koha: &StandIn) {
    ff.open("options.html").await;
    let values = json!({
        "server": koha.base_url(), "branchcode": "DE-627", "userid": "desk",
        "password": "secret123", "mode": "queue", "timezone": "Europe/Berlin",
    });
    ff.eval(&format!(
        "(Object.entries({values}).forEach(([id, v]) => document.getElementById(id).value = v),
          localStorage.setItem('{PER_PAGE_OVERRIDE_KEY}', '4'), true)"
    ))
    .await;
    ff.eval("(delete document.getElementById('options-message').dataset.kind, true)")
        .await;
    ff.click("save").await;
    ff.wait_until(
        "saved",
        "document.getElementById('options-message').dataset.kind === 'ok'",
    )
    .await;
}

/// What the options page says about the snapshot: `#snapshot-message` and `#snapshot-status`
/// (their data and text) and the unavailable lists.
async fn shown(ff: &Firefox) -> Value {
    ff.eval(
        "(() => { const m = document.getElementById('snapshot-message');
           const s = document.getElementById('snapshot-status');
           return { message: { ...m.dataset, text: m.textContent },
                    status: { ...s.dataset, text: s.textContent },
                    unavailable: [...document.querySelectorAll('#snapshot-unavailable li')]
                      .map((li) => ({ ...li.dataset, text: li.textContent })) }; })()",
    )
    .await
}

/// Clicks "Download checks from Koha" and waits until it ends; returns [`shown`].
async fn download(ff: &Firefox) -> Value {
    ff.eval("(document.getElementById('snapshot-message').dataset.result = '', true)")
        .await;
    ff.click("snapshot-download").await;
    ff.wait_until(
        "the download's end",
        "!['', 'running'].includes(document.getElementById('snapshot-message').dataset.result)
         && document.getElementById('snapshot-download').disabled === false",
    )
    .await;
    shown(ff).await
}

/// Ticks "Download everything, not only the changes", then [`download`].
async fn download_full(ff: &Firefox) -> Value {
    ff.eval("(document.getElementById('snapshot-full').checked = true, true)")
        .await;
    download(ff).await
}

/// The pages of `path` the stand-in answered, in page order: a page fetched ahead may reach it
/// before the one asked for just before it (on a busy machine it does).
fn pages_read(koha: &StandIn, path: &str) -> Vec<String> {
    let mut pages: Vec<u32> = koha
        .log()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.param("_page").unwrap_or_default().parse().unwrap())
        .collect();
    pages.sort_unstable();
    pages.into_iter().map(|page| page.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_is_downloaded_in_each_koha_era() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(shown(&ff).await["status"]["snapshot"], "none");
        for profile in [Profile::Newest, Profile::Koha2405, Profile::Legacy] {
            koha.reset(Config {
                profile,
                ..Config::default()
            });
            let seen = download_full(&ff).await;
            assert_eq!(seen["message"]["result"], "done", "{profile:?}: {seen}");
            assert_eq!(seen["message"]["pull"], "full", "{profile:?}");
            assert_eq!(seen["status"]["snapshot"], "stored", "{profile:?}");
            assert_eq!(seen["status"]["patrons"], "13", "{profile:?}");
            assert_eq!(pages_read(&koha, "/api/v1/patrons"), ["1", "2", "3", "4"]);
            let embeds = koha
                .log()
                .iter()
                .filter(|r| r.path == "/api/v1/patrons")
                .all(|r| r.header("x-koha-embed") == Some("account_balance"));
            assert!(embeds, "every patron page asks for the balance");
            if profile == Profile::Legacy {
                // No item list in the older versions: those checks are unavailable.
                assert_eq!(seen["status"]["items"], "0");
                assert_eq!(seen["status"]["unavailable"], "items");
                assert_eq!(seen["unavailable"][0]["list"], "items");
                assert_eq!(seen["unavailable"][0]["permission"], "catalogue");
            } else {
                assert_eq!(seen["status"]["items"], "50", "{profile:?}");
                assert_eq!(seen["status"]["unavailable"], "");
                assert_eq!(pages_read(&koha, "/api/v1/items").len(), 13);
            }
            let text = seen["status"]["text"].as_str().unwrap();
            assert!(
                text.contains("13 patrons")
                    && (text.contains("just now") || text.contains("min ago")),
                "{text}"
            );
        }
        let stored = stored_snapshot_entries(&ff).await.to_string();
        assert!(stored.contains("checks:meta"));
        assert!(
            !stored.contains("Surname") && !stored.contains("example.org"),
            "no names or e-mails are kept"
        );
    })
    .await;
}

/// With Koha's `RESTBasicAuth` off, HTTP Basic is refused: the download logs in through
/// `svc/authentication`, reads every list with the session's cookie, and ends that session.
#[tokio::test(flavor = "multi_thread")]
async fn a_koha_with_basic_auth_off_is_read_through_the_staff_session() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        for profile in [Profile::Newest, Profile::Legacy] {
            koha.reset(Config {
                profile,
                ..Config::default()
            });
            koha.configure(|c| c.switches.rest_basic_auth = false);
            let seen = download_full(&ff).await;
            assert_eq!(seen["message"]["result"], "done", "{profile:?}: {seen}");
            assert_eq!(seen["status"]["patrons"], "13", "{profile:?}: {seen}");
            assert_eq!(
                pages_read(&koha, "/api/v1/patrons"),
                ["1", "1", "2", "3", "4"],
                "{profile:?}: page 1 refused with Basic, then asked for again"
            );
            let log = koha.log();
            let patron_pages: Vec<_> = log.iter().filter(|r| r.path == "/api/v1/patrons").collect();
            assert!(patron_pages[0].header("authorization").is_some());
            let session_pages = &patron_pages[1..];
            assert!(
                session_pages
                    .iter()
                    .all(|r| r.header("authorization").is_none()
                        && r.cookies.iter().any(|(name, _)| name == "CGISESSID")),
                "{profile:?}: the session's cookie, no Basic"
            );
            let logins = log
                .iter()
                .filter(|r| r.method == "POST" && r.path.ends_with("/svc/authentication"))
                .count();
            assert_eq!(logins, 1, "{profile:?}: one login for the whole download");
            let cookie = session_pages[0]
                .cookies
                .iter()
                .find(|(name, _)| name == "CGISESSID")
                .map(|(_, id)| id.clone())
                .unwrap();
            assert!(
                !koha.state().session_logged_in(&cookie),
                "{profile:?}: the session is ended"
            );
            assert!(koha.state().cookie_logins("desk").is_empty(), "{profile:?}");
            if profile == Profile::Newest {
                assert_eq!(seen["status"]["items"], "50");
                assert_eq!(seen["status"]["unavailable"], "");
            }
        }
    })
    .await;
}

/// Clicks "Test connection" and waits for its outcome; returns the message's `data-kind` and
/// `#checks-availability`'s lists (data and text), or `null` while it is hidden.
async fn test_connection(ff: &Firefox) -> (Value, Value) {
    ff.eval("(delete document.getElementById('options-message').dataset.kind, true)")
        .await;
    ff.click("test-connection").await;
    ff.wait_until(
        "the connection test's outcome",
        "document.getElementById('options-message').dataset.kind",
    )
    .await;
    let kind = ff
        .eval("document.getElementById('options-message').dataset.kind")
        .await;
    let lists = ff
        .eval(
            "(() => { const out = document.getElementById('checks-availability');
               return out.hidden ? null : [...out.querySelectorAll('li')]
                 .map((li) => ({ ...li.dataset, text: li.textContent })); })()",
        )
        .await;
    (kind, lists)
}

fn availability(lists: &Value) -> Vec<(String, String, String)> {
    lists
        .as_array()
        .unwrap()
        .iter()
        .map(|li| {
            let field = |name: &str| li[name].as_str().unwrap().to_owned();
            (field("list"), field("available"), field("why"))
        })
        .collect()
}

/// The connection test names the checks available and what is missing for the others; a Koha
/// whose REST API is missing or broken still tests fine for sending.
#[tokio::test(flavor = "multi_thread")]
async fn the_connection_test_names_the_checks_available_and_what_the_others_lack() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        let yes = |list: &str| (list.to_owned(), "true".to_owned(), String::new());
        let no = |list: &str, why: &str| (list.to_owned(), "false".to_owned(), why.to_owned());

        let (kind, lists) = test_connection(&ff).await;
        assert_eq!(kind, "ok");
        assert_eq!(
            availability(&lists),
            [yes("patrons"), yes("items"), yes("checkouts")]
        );
        let patrons = lists[0]["text"].as_str().unwrap();
        assert!(
            patrons.contains("view_borrower_infos_from_any_libraries"),
            "{patrons}"
        );
        let probes: Vec<_> = koha
            .log()
            .into_iter()
            .filter(|r| is_list_request(&r.path))
            .collect();
        assert_eq!(probes.len(), 3, "one page of each list");
        assert!(probes.iter().all(|r| r.param("_per_page") == Some("1")));

        koha.configure(|c| {
            c.switches.rest_missing_permissions = vec![
                "list_borrowers".into(),
                "circulate_remaining_permissions".into(),
            ];
        });
        let (kind, lists) = test_connection(&ff).await;
        assert_eq!(kind, "ok", "sending is unaffected");
        assert_eq!(
            availability(&lists),
            [
                no("patrons", "forbidden"),
                yes("items"),
                no("checkouts", "forbidden")
            ]
        );
        assert_eq!(lists[0]["permission"], "list_borrowers");
        let why = lists[2]["text"].as_str().unwrap();
        assert!(
            why.contains("circulate_remaining_permissions") && why.contains("403"),
            "{why}"
        );

        for (api, why) in [(RestApi::Absent, "not-found"), (RestApi::Broken, "broken")] {
            koha.configure(|c| {
                c.switches.rest_missing_permissions = Vec::new();
                c.switches.rest_api = api;
            });
            let (kind, lists) = test_connection(&ff).await;
            assert_eq!(kind, "ok", "{api:?}: sending is unaffected");
            assert_eq!(
                availability(&lists),
                [no("patrons", why), no("items", why), no("checkouts", why)],
                "{api:?}"
            );
        }

        // RESTBasicAuth off: the probe logs in to the staff session and ends it.
        koha.configure(|c| {
            c.switches.rest_api = RestApi::On;
            c.switches.rest_basic_auth = false;
        });
        let (kind, lists) = test_connection(&ff).await;
        assert_eq!(kind, "ok");
        assert_eq!(
            availability(&lists),
            [yes("patrons"), yes("items"), yes("checkouts")]
        );
        assert!(koha.state().cookie_logins("desk").is_empty());

        // A wrong password: sending does not work, nothing is said about the checks.
        koha.configure(|c| c.switches.rest_basic_auth = true);
        ff.eval("(document.getElementById('password').value = 'wrong-password', true)")
            .await;
        let (kind, lists) = test_connection(&ff).await;
        assert_eq!(kind, "error");
        assert_eq!(lists, Value::Null);
    })
    .await;
}

/// A payment shows the balance the snapshot holds for the card typed, and nothing for a card it
/// does not know.
#[tokio::test(flavor = "multi_thread")]
async fn a_payment_shows_the_patrons_balance_from_the_snapshot() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(download(&ff).await["message"]["result"], "done");
        ff.open("desk.html").await;
        let balance = "(() => { const b = document.getElementById('payment-balance');
            return { hidden: b.hidden, cents: b.dataset.balanceCents, text: b.textContent }; })()";
        assert_eq!(ff.eval(balance).await["hidden"], true, "nothing typed yet");
        ff.type_into("payment-cardnumber", "C0007").await;
        ff.wait_until(
            "the balance shown",
            "document.getElementById('payment-balance').dataset.balanceCents === '1250'",
        )
        .await;
        let shown = ff.eval(balance).await;
        assert_eq!(shown["hidden"], false);
        let text = shown["text"].as_str().unwrap();
        assert!(
            text.contains("12.50") && text.contains("From Koha's data read just now"),
            "{text}"
        );
        ff.type_into("payment-cardnumber", "9").await;
        ff.wait_until(
            "an unknown card shows no balance",
            "document.getElementById('payment-balance').hidden",
        )
        .await;
        // Recording the payment clears the card and its balance.
        ff.eval("(document.getElementById('payment-cardnumber').value = '', true)")
            .await;
        ff.type_into("payment-cardnumber", "C0007").await;
        ff.type_into("payment-amount", "2.50\n").await;
        wait_rows(&ff, 1).await;
        assert_eq!(ff.eval(balance).await["hidden"], true);
    })
    .await;
}

/// Pages of the full download (4 records a page), not the connection test's probe (1 record).
fn download_pages(koha: &StandIn) -> usize {
    koha.log()
        .iter()
        .filter(|r| r.path == "/api/v1/patrons" && r.param("_per_page") == Some("4"))
        .count()
}

fn last_patron_page(koha: &StandIn) -> e2e::standin::LoggedRequest {
    koha.log()
        .into_iter()
        .rfind(|r| r.path == "/api/v1/patrons")
        .unwrap()
}

/// Makes the stored snapshot `hours` older, as if downloaded that long ago (its `checks:meta`
/// says when it was taken, in ms).
async fn age_snapshot(ff: &Firefox, hours: i64) {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         browser.storage.local.get('checks:meta').then((got) => {{
           const meta = JSON.parse(got['checks:meta']);
           meta.taken_at -= {hours} * 3600e3;
           return browser.storage.local.set({{ 'checks:meta': JSON.stringify(meta) }});
         }}).then(() => done(true), (e) => done(String(e)));"
    );
    let result = ff.client.execute_async(&script, vec![]).await.unwrap();
    assert_eq!(result, true, "{result}");
}

/// Tests the connection (Koha answers) and waits until the page decided whether to download
/// again: `data-due` of `#auto-download-hours`.
async fn test_connection_decided(ff: &Firefox) -> Value {
    ff.eval("(delete document.getElementById('auto-download-hours').dataset.due, true)")
        .await;
    let (kind, _) = test_connection(ff).await;
    assert_ne!(kind, "error");
    ff.wait_until(
        "the automatic download decided",
        "document.getElementById('auto-download-hours').dataset.due",
    )
    .await;
    ff.eval("document.getElementById('auto-download-hours').dataset.due")
        .await
}

/// A connection test downloads the snapshot again once it is older than the setting (24 hours
/// unless changed); a wrong setting is refused with its reason, 0 turns it off.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_test_downloads_again_once_the_snapshot_is_older_than_the_setting() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(
            ff.eval("document.getElementById('auto-download-hours').value")
                .await,
            "24",
            "the default"
        );
        // No snapshot yet: the first download is the librarian's.
        assert_eq!(test_connection_decided(&ff).await, "false");
        assert_eq!(download_pages(&koha), 0);
        assert_eq!(download(&ff).await["message"]["result"], "done");
        let manual = download_pages(&koha);
        assert_eq!(manual, 4);

        // A fresh snapshot: nothing more.
        assert_eq!(test_connection_decided(&ff).await, "false");
        assert_eq!(download_pages(&koha), manual);

        // The stored snapshot was taken 25 hours ago: downloaded again by itself.
        age_snapshot(&ff, 25).await;
        ff.eval("(document.getElementById('snapshot-message').dataset.result = '', true)")
            .await;
        assert_eq!(test_connection_decided(&ff).await, "true");
        ff.wait_until(
            "the automatic download's end",
            "document.getElementById('snapshot-message').dataset.result === 'done'
             && document.getElementById('snapshot-message').dataset.auto === 'true'",
        )
        .await;
        // Only the changes (none): one page of patrons, asked for with `q`.
        assert_eq!(download_pages(&koha), manual + 1);
        assert!(last_patron_page(&koha).param("q").is_some());

        // A wrong setting is refused and nothing is stored; 0 turns it off.
        let set_hours = |text: &'static str| {
            format!(
                "(() => {{ const f = document.getElementById('auto-download-hours'); f.value = '{text}';
                   delete document.getElementById('auto-download-message').dataset.kind;
                   f.dispatchEvent(new Event('change')); return true; }})()"
            )
        };
        ff.eval(&set_hours("a day")).await;
        ff.wait_until(
            "refused",
            "document.getElementById('auto-download-message').dataset.kind === 'error'",
        )
        .await;
        let why = ff
            .eval("document.getElementById('auto-download-message').textContent")
            .await;
        assert!(why.as_str().unwrap().contains("whole number of hours"), "{why}");
        ff.eval(&set_hours("0")).await;
        ff.wait_until(
            "stored",
            "document.getElementById('auto-download-message').dataset.kind === 'ok'",
        )
        .await;
        age_snapshot(&ff, 50).await;
        assert_eq!(test_connection_decided(&ff).await, "false");
        assert_eq!(download_pages(&koha), manual + 1, "0: never");
        ff.open("options.html").await;
        assert_eq!(
            ff.eval("document.getElementById('auto-download-hours').value")
                .await,
            "0",
            "kept"
        );
    })
    .await;
}

/// A send run that reached Koha downloads the snapshot again at the desk once it is older than
/// the setting, with the send run's login.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_run_downloads_again_once_the_snapshot_is_older_than_the_setting() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(download(&ff).await["message"]["result"], "done");
        let manual = download_pages(&koha);
        age_snapshot(&ff, 25).await;
        ff.open("desk.html").await;
        ff.type_into("payment-cardnumber", "C0007").await;
        ff.type_into("payment-amount", "2.50\n").await;
        wait_rows(&ff, 1).await;
        let outcome = e2e::sending::send(&ff, std::time::Duration::from_secs(60)).await;
        assert_eq!(outcome, "ran");
        ff.wait_until(
            "the automatic download after the send",
            "document.getElementById('message').dataset.checksAuto === 'done'",
        )
        .await;
        // Only the changes (none): one page of patrons, asked for with `q`.
        assert_eq!(download_pages(&koha), manual + 1);
        assert!(last_patron_page(&koha).param("q").is_some());
    })
    .await;
}

/// Types a checkout at the desk; the card field keeps its card between items.
async fn scan_checkout(ff: &Firefox, card: &str, barcode: &str) {
    ff.eval(&format!(
        "(document.getElementById('checkout-cardnumber').value = '{card}', true)"
    ))
    .await;
    ff.type_into("checkout-barcode", &format!("{barcode}\n"))
        .await;
}

async fn wait_question(ff: &Firefox) -> Value {
    ff.wait_for_css("#confirm[open]").await;
    ff.eval(
        "({ ...document.getElementById('confirm').dataset,
            body: document.getElementById('confirm-body').textContent })",
    )
    .await
}

async fn wait_closed(ff: &Firefox) {
    ff.wait_until(
        "the question answered",
        "!document.getElementById('confirm').open",
    )
    .await;
}

async fn row_count(ff: &Firefox) -> usize {
    ff.eval("document.querySelectorAll('#transactions tbody tr').length")
        .await
        .as_u64()
        .unwrap() as usize
}

#[tokio::test(flavor = "multi_thread")]
async fn card_and_item_warnings_ask_and_record_only_when_told() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(download(&ff).await["message"]["result"], "done");

        // A balance limit: a wrong amount is refused with its reason, a right one stored.
        let limit = |text: &str| {
            format!(
                "(() => {{ const f = document.getElementById('balance-limit'); f.value = '{text}';
                   f.dispatchEvent(new Event('change')); return true; }})()"
            )
        };
        ff.eval(&limit("ten")).await;
        ff.wait_until(
            "the amount refused",
            "document.getElementById('balance-limit-message').dataset.kind === 'error'",
        )
        .await;
        let refused = ff
            .eval("document.getElementById('balance-limit-message').textContent")
            .await;
        assert!(
            !refused.as_str().unwrap().is_empty() && !refused.as_str().unwrap().contains("error_")
        );
        ff.eval(&limit("10,00")).await;
        ff.wait_until(
            "the limit stored",
            "document.getElementById('balance-limit-message').dataset.kind === 'ok'
             && document.getElementById('balance-limit').value === '10.00'",
        )
        .await;
        ff.open("desk.html").await;

        // A patron who owes more than the limit.
        scan_checkout(&ff, "C0007", "B0003").await;
        let asked = wait_question(&ff).await;
        assert_eq!(asked["check"], "balance");
        let body = asked["body"].as_str().unwrap();
        assert!(
            body.contains("owes 12.50, more than the limit of 10.00"),
            "{body}"
        );
        ff.click("confirm-cancel").await;
        wait_closed(&ff).await;

        // A restricted patron and a damaged item: one question naming both.
        scan_checkout(&ff, "C0004", "B0047").await;
        let asked = wait_question(&ff).await;
        assert_eq!(asked["kind"], "check");
        assert_eq!(asked["check"], "restricted damaged");
        let body = asked["body"].as_str().unwrap();
        assert!(body.contains("The patron is restricted in Koha."), "{body}");
        assert!(body.contains("The item is marked damaged."), "{body}");
        assert!(body.contains("From Koha's data read just now"), "{body}");
        ff.screenshot("checks-warning-en").await;
        ff.click("confirm-cancel").await;
        wait_closed(&ff).await;
        ff.wait_until(
            "'not recorded' said",
            "document.getElementById('message').dataset.kind === 'warning'",
        )
        .await;
        assert_eq!(row_count(&ff).await, 0, "not recording leaves nothing");
        assert!(koha.log().iter().all(|r| !r.path.ends_with("service.pl")));

        // Record anyway.
        scan_checkout(&ff, "C0004", "B0047").await;
        assert_eq!(wait_question(&ff).await["check"], "restricted damaged");
        ff.click("confirm-ok").await;
        wait_rows(&ff, 1).await;

        // The card was answered for: its next item asks nothing.
        scan_checkout(&ff, "C0004", "B0001").await;
        wait_rows(&ff, 2).await;

        // An item on loan to another patron, named by card, for a card with no problem.
        scan_checkout(&ff, "C0001", "B0049").await;
        let asked = wait_question(&ff).await;
        assert_eq!(asked["check"], "on-loan-elsewhere");
        assert!(asked["body"].as_str().unwrap().contains("card C0009"));
        ff.click("confirm-cancel").await;
        wait_closed(&ff).await;

        // An expired card: its date is shown.
        scan_checkout(&ff, "C0003", "B0002").await;
        let asked = wait_question(&ff).await;
        assert_eq!(asked["check"], "expired");
        assert!(
            asked["body"].as_str().unwrap().contains("Jan 31, 2025"),
            "{asked}"
        );
        ff.click("confirm-cancel").await;
        wait_closed(&ff).await;

        // A checkin of a barcode Koha does not know.
        ff.type_into("checkin-barcode", "B9999\n").await;
        let asked = wait_question(&ff).await;
        assert_eq!(asked["check"], "unknown-item");
        ff.click("confirm-ok").await;
        wait_rows(&ff, 3).await;
        assert_eq!(row_count(&ff).await, 3);

        // "Record anyway" stands for the question asked: while the librarian reads about the
        // expired card, the item goes out to another card (another desk, here a direct call),
        // so the answer is not enough and the new warning is asked.
        scan_checkout(&ff, "C0003", "B0010").await;
        assert_eq!(wait_question(&ff).await["check"], "expired");
        let elsewhere = core_call(
            &ff,
            r#"core.record({ action: "issue", cardnumber: "C0001", barcode: "B0010" }, null)"#,
        )
        .await;
        assert_eq!(elsewhere["recorded"], true);
        ff.click("confirm-ok").await;
        ff.wait_until(
            "the new warning asked",
            "document.getElementById('confirm').open
             && document.getElementById('confirm-body').textContent
                  .includes('B0010 is checked out to card C0001 here')",
        )
        .await;
        assert_eq!(wait_question(&ff).await["check"], "expired");
        ff.click("confirm-ok").await;
        wait_closed(&ff).await;
        wait_rows(&ff, 5).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_half_way_keeps_the_snapshot_stored_before_and_the_next_download_goes_on() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(download(&ff).await["message"]["result"], "done");
        let before = stored_snapshot_entries(&ff).await;

        let items_page = |page: &str| When {
            path: Some("/api/v1/items".into()),
            params: vec![("_page".into(), page.into())],
            ..When::default()
        };
        koha.set_faults(vec![FaultRule::nth(
            Fault::Gateway { status: 500 },
            items_page("3"),
        )]);
        // A full download, so that the items are read page by page.
        let failed = download_full(&ff).await;
        assert_eq!(failed["message"]["result"], "failed");
        assert_eq!(failed["message"]["kind"], "error");
        let text = failed["message"]["text"].as_str().unwrap();
        assert!(
            text.contains("HTTP 500") && text.contains("page 3"),
            "{text}"
        );
        assert_eq!(
            stored_snapshot_entries(&ff).await,
            before,
            "nothing stored changed"
        );
        assert_eq!(failed["status"]["snapshot"], "stored");

        // A malformed page stops it too, and leaves the snapshot alone.
        koha.set_faults(vec![FaultRule::nth(
            Fault::ReplaceBody {
                body: "[{\"item_id\": 9, \"external".into(),
            },
            items_page("3"),
        )]);
        let failed = download_full(&ff).await;
        assert_eq!(failed["message"]["result"], "failed");
        assert!(failed["message"]["text"]
            .as_str()
            .unwrap()
            .contains("could not be read"));
        assert_eq!(stored_snapshot_entries(&ff).await, before);

        // Going on asks for the failed page, not the lists already read.
        let patron_pages = pages_read(&koha, "/api/v1/patrons").len();
        let done = download(&ff).await;
        assert_eq!(done["message"]["result"], "done");
        assert_eq!(pages_read(&koha, "/api/v1/patrons").len(), patron_pages);
        assert_eq!(done["status"]["items"], "50");
        assert_ne!(
            stored_snapshot_entries(&ff).await,
            before,
            "the new snapshot replaced the old"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_snapshot_removes_it_and_the_desk_asks_nothing_more() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(download(&ff).await["message"]["result"], "done");
        // Forgetting the credentials offers to delete the snapshot too, and keeps it.
        ff.click("forget-credentials").await;
        ff.wait_until(
            "the offer",
            "document.getElementById('snapshot-message').dataset.result === 'offer-delete'",
        )
        .await;
        assert_eq!(shown(&ff).await["status"]["snapshot"], "stored");
        ff.click("snapshot-delete").await;
        ff.wait_until(
            "deleted",
            "document.getElementById('snapshot-status').dataset.snapshot === 'none'",
        )
        .await;
        assert_eq!(stored_snapshot_entries(&ff).await, json!({}));
        assert_eq!(shown(&ff).await["message"]["result"], "deleted");
        ff.open("desk.html").await;
        scan_checkout(&ff, "C0004", "B0047").await;
        wait_rows(&ff, 1).await;
        assert!(!ff
            .eval("document.getElementById('confirm').open")
            .await
            .as_bool()
            .unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_koha_without_the_lists_shows_checks_unavailable_and_the_desk_records_as_before() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        // A missing permission leaves out that list only, and names the permission.
        koha.configure(|c| c.switches.rest_missing_permissions = vec!["list_borrowers".into()]);
        let seen = download(&ff).await;
        assert_eq!(seen["message"]["result"], "done");
        assert_eq!(seen["status"]["snapshot"], "stored");
        assert_eq!(seen["unavailable"][0]["list"], "patrons");
        assert_eq!(seen["unavailable"][0]["permission"], "list_borrowers");
        let why = seen["unavailable"][0]["text"].as_str().unwrap();
        assert!(
            why.contains("list_borrowers") && why.contains("HTTP 403"),
            "{why}"
        );

        koha.configure(|c| {
            c.switches.rest_missing_permissions = Vec::new();
            c.switches.rest_api = RestApi::Absent;
        });
        let seen = download(&ff).await;
        assert_eq!(seen["status"]["snapshot"], "unavailable", "{seen}");
        assert!(seen["status"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Checks unavailable"));
        let lists: Vec<&str> = seen["unavailable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["list"].as_str().unwrap())
            .collect();
        assert_eq!(lists, ["patrons", "items", "checkouts"]);

        ff.open("desk.html").await;
        scan_checkout(&ff, "C0004", "B0047").await;
        wait_rows(&ff, 1).await;
        ff.type_into("checkin-barcode", "B9999\n").await;
        wait_rows(&ff, 2).await;
        assert!(!ff
            .eval("document.getElementById('confirm').open")
            .await
            .as_bool()
            .unwrap());
    })
    .await;
}

/// The question at the desk in German and French: every line in the desk's language (no
/// message keys, no English), recording anyway works; screenshots to look at. An expired card's
/// date is the day Koha holds in any time zone (Koha sends a date without a time; read as
/// midnight UTC and shown in Toronto's zone it would be the day before).
#[tokio::test(flavor = "multi_thread")]
async fn card_and_item_warnings_read_in_german_and_french() {
    let cases = [
        (
            "de",
            "Europe/Berlin",
            "Der Leser ist in Koha gesperrt.",
            "Das Exemplar ist als beschädigt markiert.",
            "31.01.2025",
        ),
        (
            "fr",
            "America/Toronto",
            "Le lecteur est suspendu dans Koha.",
            "L'exemplaire est marqué endommagé.",
            "31 janv. 2025",
        ),
    ];
    for (locale, zone, restricted, damaged, expired_on) in cases {
        let koha = standin(Profile::Newest);
        let options = Options {
            locale: locale.into(),
            zone: Some(zone.into()),
            ..Options::granting_permissions()
        };
        with_firefox(options, move |ff| async move {
            set_up(&ff, &koha).await;
            assert_eq!(download(&ff).await["message"]["result"], "done");
            ff.open("desk.html").await;
            scan_checkout(&ff, "C0004", "B0047").await;
            let asked = wait_question(&ff).await;
            assert_eq!(asked["check"], "restricted damaged");
            let body = asked["body"].as_str().unwrap();
            assert!(body.contains(restricted), "{locale}: {body}");
            assert!(body.contains(damaged), "{locale}: {body}");
            assert!(
                !body.contains("check_") && !body.contains("restricted in Koha"),
                "{locale}: {body}"
            );
            ff.screenshot(&format!("checks-warning-{locale}")).await;
            ff.click("confirm-ok").await;
            wait_rows(&ff, 1).await;

            scan_checkout(&ff, "C0003", "B0002").await;
            let asked = wait_question(&ff).await;
            assert_eq!(asked["check"], "expired");
            let body = asked["body"].as_str().unwrap();
            assert!(body.contains(expired_on), "{locale} in {zone}: {body}");
            ff.click("confirm-cancel").await;
            wait_closed(&ff).await;
        })
        .await;
    }
}

/// Cancelling keeps what is stored and the next download goes on; run in German, whose texts
/// must all be there (no raw message keys).
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_download_stores_nothing_and_goes_on_later() {
    let koha = standin(Profile::Newest);
    let options = Options {
        locale: "de".into(),
        ..Options::granting_permissions()
    };
    with_firefox(options, move |ff| async move {
        set_up(&ff, &koha).await;
        // The second page of items comes late, so the librarian can cancel while it is read.
        koha.set_faults(vec![FaultRule::nth(
            Fault::Delay { ms: 3000 },
            When {
                path: Some("/api/v1/items".into()),
                params: vec![("_page".into(), "2".into())],
                ..When::default()
            },
        )]);
        ff.eval("(document.getElementById('snapshot-message').dataset.result = '', true)")
            .await;
        ff.click("snapshot-download").await;
        ff.wait_until(
            "the progress bar on the items",
            "!document.getElementById('snapshot-progress').hidden
             && document.getElementById('snapshot-progress').dataset.list === 'items'",
        )
        .await;
        let progress = shown(&ff).await["message"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            progress.contains("Exemplare") && progress.contains("von 50"),
            "{progress}"
        );
        ff.screenshot("checks-progress-de").await;
        ff.click("snapshot-cancel").await;
        ff.wait_until(
            "cancelled",
            "document.getElementById('snapshot-message').dataset.result === 'cancelled'",
        )
        .await;
        let seen = shown(&ff).await;
        assert_eq!(seen["status"]["snapshot"], "none");
        assert_eq!(
            stored_snapshot_entries(&ff).await,
            json!({}),
            "nothing stored"
        );
        assert!(seen["message"]["text"]
            .as_str()
            .unwrap()
            .contains("abgebrochen"));

        let patron_pages = pages_read(&koha, "/api/v1/patrons").len();
        let done = download(&ff).await;
        assert_eq!(done["message"]["result"], "done");
        assert_eq!(pages_read(&koha, "/api/v1/patrons").len(), patron_pages);
        let status = done["status"]["text"].as_str().unwrap();
        assert!(
            status.starts_with("Gespeichert: 13 Leser und 50 Exemplare"),
            "{status}"
        );
        let texts = ff
            .eval("document.getElementById('checks').textContent")
            .await;
        assert!(!texts.as_str().unwrap().contains("chk_"), "{texts}");
        ff.screenshot("checks-options-de").await;
    })
    .await;
}

/// A request for a page of one of the lists (not the connection test's library check).
fn is_list_request(path: &str) -> bool {
    path.starts_with("/api/v1/") && !path.starts_with("/api/v1/public/")
}

/// The `q` of every list request made after the first `skip` ones, per list.
fn filters_after(koha: &StandIn, skip: usize) -> Vec<(String, String)> {
    koha.log()
        .iter()
        .filter(|r| is_list_request(&r.path))
        .skip(skip)
        .map(|r| {
            let list = r.path.trim_start_matches("/api/v1/").to_owned();
            (list, r.param("q").unwrap_or_default().to_owned())
        })
        .collect()
}

fn list_requests(koha: &StandIn) -> usize {
    koha.log()
        .iter()
        .filter(|r| is_list_request(&r.path))
        .count()
}

/// Koha changes a patron and an item now: what a librarian does in Koha while the desk is up.
fn change_in_koha(koha: &StandIn, card: &str, barcode: &str) {
    let mut state = koha.state();
    let now = state.local_now();
    let patron = state.model.find_patron(card).unwrap();
    state.model.accounts[patron].restricted = true;
    state.model.accounts[patron].updated_on = Some(now.clone());
    let item = state
        .model
        .items
        .iter_mut()
        .find(|i| i.barcode == barcode)
        .unwrap();
    item.lost = true;
    item.timestamp = Some(now);
}

/// A second download asks Koha only for what changed since the first (by Koha's clock, less the
/// margin), reads the loans whole, and the desk then warns with the changed data.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_download_reads_only_the_changes_and_the_desk_warns_with_them() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        let first = download(&ff).await;
        assert_eq!(first["message"]["pull"], "full");
        assert!(filters_after(&koha, 0).iter().all(|(_, q)| q.is_empty()));
        let full_at = first["status"]["fullAt"].as_str().unwrap().to_owned();
        assert!(first["status"]["text"]
            .as_str()
            .unwrap()
            .contains("Last full download:"));

        change_in_koha(&koha, "C0001", "B0001");
        let before = list_requests(&koha);
        let second = download(&ff).await;
        assert_eq!(second["message"]["result"], "done", "{second}");
        assert_eq!(second["message"]["pull"], "incremental");
        assert_eq!(second["status"]["patrons"], "13");
        assert_eq!(second["status"]["items"], "50");
        assert_eq!(second["status"]["fullAt"], full_at, "still the first one");
        let asked = filters_after(&koha, before);
        let lists: Vec<&str> = asked.iter().map(|(list, _)| list.as_str()).collect();
        assert_eq!(
            lists,
            ["patrons", "items", "checkouts"],
            "one page of changes each, the loans whole"
        );
        let since = asked[0].1.strip_prefix(r#"{"updated_on":{">=":""#).unwrap();
        let since = since.strip_suffix(r#""}}"#).unwrap();
        assert_eq!(asked[1].1, format!(r#"{{"timestamp":{{">=":"{since}"}}}}"#));
        assert!(asked[2].1.is_empty());
        // Koha's time of the first download less fifteen hours, without an offset.
        let since = chrono::NaiveDateTime::parse_from_str(since, "%Y-%m-%dT%H:%M:%S").unwrap();
        let margin = chrono::Utc::now().naive_utc() - since;
        assert!(
            margin >= chrono::Duration::hours(15) && margin < chrono::Duration::hours(16),
            "{margin}"
        );

        ff.open("desk.html").await;
        scan_checkout(&ff, "C0001", "B0002").await;
        assert_eq!(wait_question(&ff).await["check"], "restricted");
        ff.click("confirm-cancel").await;
        wait_closed(&ff).await;
        scan_checkout(&ff, "C0002", "B0001").await;
        assert_eq!(wait_question(&ff).await["check"], "lost");
        ff.click("confirm-cancel").await;
        wait_closed(&ff).await;
        assert_eq!(row_count(&ff).await, 0);
    })
    .await;
}

/// Makes the stored snapshot's last full pull (and the snapshot itself) `days` older.
async fn age_full_pull(ff: &Firefox, days: i64) {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         browser.storage.local.get('checks:meta').then((got) => {{
           const meta = JSON.parse(got['checks:meta']);
           meta.taken_at -= {days} * 86400e3;
           if (meta.full_at !== undefined) meta.full_at -= {days} * 86400e3;
           return browser.storage.local.set({{ 'checks:meta': JSON.stringify(meta) }});
         }}).then(() => done(true), (e) => done(String(e)));"
    );
    let result = ff.client.execute_async(&script, vec![]).await.unwrap();
    assert_eq!(result, true, "{result}");
}

/// Everything is read again when the librarian asks for it, and by itself once the last full
/// download is a week old.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_download_when_asked_for_and_when_the_last_one_is_a_week_old() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(download(&ff).await["message"]["pull"], "full");
        assert_eq!(download(&ff).await["message"]["pull"], "incremental");

        let before = list_requests(&koha);
        let asked = download_full(&ff).await;
        assert_eq!(asked["message"]["pull"], "full");
        assert!(filters_after(&koha, before)
            .iter()
            .all(|(_, q)| q.is_empty()));
        let whole_item_pages = koha
            .log()
            .iter()
            .filter(|r| r.path == "/api/v1/items" && r.param("q").is_none())
            .count();
        assert_eq!(whole_item_pages, 2 * 13, "read whole twice");
        assert_eq!(
            ff.eval("document.getElementById('snapshot-full').checked")
                .await,
            false,
            "asked for once"
        );

        // Six days after the last full download: still only the changes.
        assert_eq!(download(&ff).await["message"]["pull"], "incremental");
        age_full_pull(&ff, 6).await;
        assert_eq!(download(&ff).await["message"]["pull"], "incremental");
        // Seven: everything.
        age_full_pull(&ff, 1).await;
        let before = list_requests(&koha);
        let weekly = download(&ff).await;
        assert_eq!(weekly["message"]["pull"], "full", "{weekly}");
        assert!(filters_after(&koha, before)
            .iter()
            .all(|(_, q)| q.is_empty()));
        assert_eq!(weekly["status"]["items"], "50");
    })
    .await;
}

/// An incremental download that fails half way stores nothing: the desk keeps warning from the
/// snapshot before it; the next download brings the change.
#[tokio::test(flavor = "multi_thread")]
async fn an_incremental_download_that_fails_half_way_keeps_the_snapshot_before() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(download(&ff).await["message"]["result"], "done");
        let before = stored_snapshot_entries(&ff).await;
        // Five patrons changed: two pages of changes; the second fails.
        for card in ["C0001", "C0002", "C0003", "C0005", "C0006"] {
            change_in_koha(&koha, card, "B0001");
        }
        koha.set_faults(vec![FaultRule::nth(
            Fault::Gateway { status: 500 },
            When {
                path: Some("/api/v1/patrons".into()),
                params: vec![("_page".into(), "2".into())],
                ..When::default()
            },
        )]);
        let failed = download(&ff).await;
        assert_eq!(failed["message"]["result"], "failed", "{failed}");
        assert!(last_patron_page(&koha).param("q").is_some());
        assert_eq!(
            stored_snapshot_entries(&ff).await,
            before,
            "nothing stored changed"
        );
        assert_eq!(failed["status"]["snapshot"], "stored");

        ff.open("desk.html").await;
        scan_checkout(&ff, "C0001", "B0002").await;
        wait_rows(&ff, 1).await;
        assert_eq!(
            ff.eval("document.getElementById('confirm').open").await,
            false,
            "C0001 is not restricted in the snapshot kept"
        );

        ff.open("options.html").await;
        let done = download(&ff).await;
        assert_eq!(done["message"]["result"], "done");
        assert_eq!(done["message"]["pull"], "incremental");
        ff.open("desk.html").await;
        scan_checkout(&ff, "C0001", "B0003").await;
        assert_eq!(wait_question(&ff).await["check"], "restricted");
        ff.click("confirm-cancel").await;
        wait_closed(&ff).await;
    })
    .await;
}

/// A stored snapshot that cannot be read does not stand in the way: the next download reads
/// everything and replaces it.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_snapshot_is_replaced_by_a_full_download() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(download(&ff).await["message"]["result"], "done");
        put_snapshot_chunk(
            &ff,
            "checks:1:patrons:0",
            r#"{"v":1,"count":13,"data":"!!"}"#,
        )
        .await;
        ff.open("options.html").await;
        ff.wait_until(
            "the status read",
            "document.getElementById('snapshot-status').dataset.snapshot === 'unreadable'",
        )
        .await;
        let seen = download(&ff).await;
        assert_eq!(seen["message"]["result"], "done", "{seen}");
        assert_eq!(seen["message"]["pull"], "full");
        assert_eq!(seen["status"]["snapshot"], "stored");
        assert_eq!(seen["status"]["patrons"], "13");
    })
    .await;
}

/// The `checks:` keys in `browser.storage.local`, sorted.
async fn checks_keys_in_local(ff: &Firefox) -> Value {
    eval_async(
        ff,
        "const all = await browser.storage.local.get(null);
         return Object.keys(all).filter((k) => k.startsWith('checks:')).sort();",
    )
    .await
}

/// A snapshot an earlier build stored whole in `browser.storage.local` (chunks beside
/// `checks:meta`) is still read; the next download puts its chunks in the add-on's database and
/// removes the old ones from storage.local; a deletion leaves nothing in either.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_stored_by_an_earlier_build_is_read_then_replaced() {
    let koha = standin(Profile::Newest);
    with_firefox(Options::granting_permissions(), move |ff| async move {
        set_up(&ff, &koha).await;
        assert_eq!(download_full(&ff).await["message"]["result"], "done");
        let stored = stored_snapshot_entries(&ff).await;
        let chunk_keys: Vec<String> = stored
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "checks:meta")
            .cloned()
            .collect();
        assert!(!chunk_keys.is_empty(), "{stored}");
        assert_eq!(checks_keys_in_local(&ff).await, json!(["checks:meta"]), "only the meta in storage.local");
        // As an earlier build left it: the chunks in storage.local, none in the database.
        eval_async(
            &ff,
            &format!(
                "const entries = {stored};
                 delete entries['checks:meta'];
                 await browser.storage.local.set(entries);
                 const db = await {OPEN_SNAPSHOT_DATABASE};
                 const tx = db.transaction('chunks', 'readwrite');
                 tx.objectStore('chunks').clear();
                 await new Promise((ok, ko) => {{ tx.oncomplete = ok; tx.onerror = () => ko(tx.error); }});
                 db.close();
                 return true;"
            ),
        )
        .await;
        assert_eq!(stored_snapshot_entries(&ff).await, stored, "the same entries, moved");
        ff.open("options.html").await;
        ff.wait_until(
            "the status read",
            "document.getElementById('snapshot-status').dataset.snapshot === 'stored'",
        )
        .await;
        let status = ff
            .eval("({ ...document.getElementById('snapshot-status').dataset })")
            .await;
        assert_eq!(status["patrons"], "13", "{status}");
        // The desk reads it too: the restricted patron and the damaged item are asked about.
        ff.open("desk.html").await;
        scan_checkout(&ff, "C0004", "B0047").await;
        assert_eq!(wait_question(&ff).await["check"], "restricted damaged");
        ff.click("confirm-cancel").await;
        wait_closed(&ff).await;
        // The next download writes the database and removes the old chunks from storage.local.
        ff.open("options.html").await;
        let seen = download_full(&ff).await;
        assert_eq!(seen["message"]["result"], "done", "{seen}");
        assert_eq!(checks_keys_in_local(&ff).await, json!(["checks:meta"]));
        let after = stored_snapshot_entries(&ff).await;
        assert!(after.as_object().unwrap().keys().all(|k| !chunk_keys.contains(k)), "{after}");
        assert!(after.as_object().unwrap().len() > 1, "{after}");
        ff.click("snapshot-delete").await;
        ff.wait_until(
            "the snapshot deleted",
            "document.getElementById('snapshot-status').dataset.snapshot === 'none'",
        )
        .await;
        assert_eq!(stored_snapshot_entries(&ff).await, json!({}));
    })
    .await;
}
