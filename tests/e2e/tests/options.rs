//! The options page in a real Firefox against the Koha stand-in: "Test connection" in every Koha
//! profile, every bad input refused with nothing saved, and where the password is (not) kept.
//!
//! Firefox asks the user before granting an optional host permission, also for a temporary
//! add-on in headless mode; nobody can answer that prompt here, so `permissions.request` would
//! never settle (checked: Save still saves, Test connection waits). The tests therefore set
//! `extensions.webextOptionalPermissionPrompts = false`, with which Firefox grants a requested
//! optional permission without a prompt. The request itself still runs, from the real click.

use e2e::firefox::{with_firefox, Firefox, Options};
use e2e::standin::{Config, Fault, FaultRule, Profile, StandIn, When};
use koha_offline_circ::settings::SESSION_PASSWORD_KEY;
use serde_json::{json, Value};

/// Grants optional permissions without the prompt nobody can click in a headless test.
pub const NO_PERMISSION_PROMPT: &str = "extensions.webextOptionalPermissionPrompts";

fn options() -> Options {
    Options {
        prefs: vec![(NO_PERMISSION_PROMPT.into(), json!(false))],
        height: 1300,
        ..Options::default()
    }
}

fn standin(profile: Profile) -> StandIn {
    StandIn::start(Config {
        profile,
        ..Config::default()
    })
    .expect("the stand-in starts")
}

/// Sets inputs and selects by id (JSON-escaped), as if typed.
async fn set(ff: &Firefox, fields: &[(&str, &str)]) {
    for (id, value) in fields {
        let script = format!(
            "(document.getElementById({id}).value = {value}, true)",
            id = json!(id),
            value = json!(value)
        );
        ff.eval(&script).await;
    }
}

async fn check(ff: &Firefox, id: &str, on: bool) {
    let script = format!("(document.getElementById({}).checked = {on}, document.getElementById({0}).dispatchEvent(new Event('change')), true)", json!(id));
    ff.eval(&script).await;
}

/// A complete, valid form for this server.
async fn fill(ff: &Firefox, server: &str, userid: &str, password: &str) {
    set(
        ff,
        &[
            ("server", server),
            ("branchcode", "DE-627"),
            ("userid", userid),
            ("password", password),
            ("mode", "queue"),
            ("timezone", "Europe/Berlin"),
        ],
    )
    .await;
}

/// Everything in `storage.local` and `storage.session`, read from the page.
async fn stored(ff: &Firefox) -> Value {
    let script = "const done = arguments[arguments.length - 1];
        Promise.all([browser.storage.local.get(null), browser.storage.session.get(null)])
          .then(([local, session]) => done({ local, session }), (e) => done({ error: String(e) }));";
    let value = ff
        .client
        .execute_async(script, vec![])
        .await
        .expect("storage readable");
    assert!(value.get("error").is_none(), "storage: {value}");
    value
}

/// The `options-message` after clicking `button` and waiting for its outcome.
async fn press(ff: &Firefox, button: &str) -> Value {
    ff.eval("(delete document.getElementById('options-message').dataset.kind, true)")
        .await;
    ff.click(button).await;
    ff.wait_until(
        "an outcome in #options-message",
        "document.getElementById('options-message').dataset.kind",
    )
    .await;
    ff.eval(
        "(() => { const m = document.getElementById('options-message');
           return { ...m.dataset, text: m.textContent }; })()",
    )
    .await
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// The test's message is a sentence, not a key or a placeholder.
fn assert_translated(message: &Value) {
    let text = message["text"].as_str().unwrap_or_default();
    assert!(
        !text.is_empty() && !text.contains("opt_") && !text.contains('$'),
        "{message}"
    );
}

fn assert_works(message: &Value, kind: &str, transport: &str, reuse: &str) {
    assert_eq!(message["outcome"], "works", "{message}");
    assert_eq!(message["kind"], kind, "{message}");
    assert_eq!(message["transport"], transport, "{message}");
    assert_eq!(message["sessionReuse"], reuse, "{message}");
    assert_translated(message);
}

fn assert_problem(message: &Value, kind: &str, problem: &str) {
    assert_eq!(message["outcome"], "problem", "{message}");
    assert_eq!(message["kind"], kind, "{message}");
    assert_eq!(message["problem"], problem, "{message}");
    assert_translated(message);
}

/// The options page filled in for the stand-in at `base`, one login per send, and saved.
async fn saved_without_login_once(ff: &Firefox, base: &str) {
    ff.open("options.html").await;
    fill(ff, base, "desk", "secret123").await;
    check(ff, "login-once", false).await;
    assert_eq!(press(ff, "save").await["kind"], "ok");
}

/// The line under the library code: `{hidden, text, warning}`.
async fn library_line(ff: &Firefox) -> Value {
    ff.eval(
        "(() => { const p = document.getElementById('options-library');
           return { hidden: p.hidden, text: p.textContent,
                    warning: p.classList.contains('warning') }; })()",
    )
    .await
}

/// Every outcome of "Test connection" against one Koha profile. `plain` is the transport that
/// works without session reuse there (P1 with a CSRF token, P3 before 24.05).
async fn test_connection_outcomes(profile: Profile, plain: &'static str) {
    let koha = standin(profile);
    let base = koha.base_url();
    with_firefox(options(), move |ff| async move {
        saved_without_login_once(&ff, &base).await;

        // Works, one password check per transaction.
        let m = press(&ff, "test-connection").await;
        assert_works(&m, "ok", plain, "off");
        let saved = stored(&ff).await;
        assert_eq!(saved["local"]["settings"]["detectedTransport"], plain);

        // The library code: Koha 21.11 and later say whether they have it (the legacy profile
        // stands for the versions before, which cannot).
        let library = || library_line(&ff);
        let answers = profile != Profile::Legacy;
        let unchecked = |code: &str| {
            json!(format!(
                "Koha did not say whether it knows the library code {code}: that needs Koha \
                 21.11 or later with its public REST API switched on. Please make sure the \
                 code is the one Koha uses."
            ))
        };
        let shown = library().await;
        assert_eq!(shown["hidden"], false, "{shown}");
        if answers {
            assert_eq!(
                shown["text"],
                "Koha knows the library code DE-627: Verbundzentrale des GBV."
            );
        } else {
            assert_eq!(shown["text"], unchecked("DE-627"), "{shown}");
        }
        assert_eq!(shown["warning"], false, "{shown}");
        set(&ff, &[("branchcode", "DE-999")]).await;
        let m = press(&ff, "test-connection").await;
        assert_works(&m, "ok", plain, "off");
        let shown = library().await;
        if answers {
            assert_eq!(shown["warning"], true, "{shown}");
            assert!(
                shown["text"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("Koha has no library with the code DE-999."),
                "{shown}"
            );
            let into_view = "(document.getElementById('options-library')
                .scrollIntoView({ block: 'center' }), true)";
            ff.eval(into_view).await;
            ff.screenshot(&format!("options-library-unknown-{profile:?}").to_lowercase())
                .await;
        } else {
            assert_eq!(shown["text"], unchecked("DE-999"), "{shown}");
            assert_eq!(shown["warning"], false, "{shown}");
        }
        set(&ff, &[("branchcode", "DE-627")]).await;

        // Log in once: desk has edit_catalogue, so the session login works.
        check(&ff, "login-once", true).await;
        let m = press(&ff, "test-connection").await;
        assert_works(&m, "ok", "P2", "works");
        assert_eq!(
            stored(&ff).await["local"]["settings"]["detectedTransport"],
            "P2"
        );

        // The clerk lacks edit_catalogue: sending works, but not with one login per send.
        set(&ff, &[("userid", "clerk"), ("password", "clerk123")]).await;
        let m = press(&ff, "test-connection").await;
        assert_works(&m, "warning", plain, "missing-permission");
        check(&ff, "login-once", false).await;
        let m = press(&ff, "test-connection").await;
        assert_works(&m, "ok", plain, "off");

        // Wrong password.
        set(&ff, &[("userid", "desk"), ("password", "wrong-password")]).await;
        let m = press(&ff, "test-connection").await;
        assert_problem(&m, "error", "wrong-credentials");

        // A wrong path prefix: no Koha there.
        set(
            &ff,
            &[
                ("server", &format!("{base}/wrong")),
                ("password", "secret123"),
            ],
        )
        .await;
        let m = press(&ff, "test-connection").await;
        assert_problem(&m, "error", "not-found");

        // Nobody listening.
        let closed = format!("http://127.0.0.1:{}", closed_port());
        set(&ff, &[("server", &closed)]).await;
        let m = press(&ff, "test-connection").await;
        assert_problem(&m, "error", "unreachable");
        assert!(
            m["text"].as_str().unwrap_or_default().contains("127.0.0.1"),
            "{m}"
        );

        // A server error on the probe.
        koha.set_faults(vec![FaultRule::nth(
            Fault::Gateway { status: 503 },
            When {
                path: Some("service.pl".into()),
                ..When::default()
            },
        )]);
        set(&ff, &[("server", &base)]).await;
        let m = press(&ff, "test-connection").await;
        assert_problem(&m, "error", "server-error");
        assert!(
            m["text"].as_str().unwrap_or_default().contains("503"),
            "{m}"
        );

        // A test never creates a transaction: only probes with an empty action reached Koha.
        assert!(koha.model().queue.is_empty());
        let probes = koha.service_requests();
        assert!(probes.len() >= 6, "{probes:?}");
        for probe in probes {
            assert_eq!(probe.param("action"), Some(""), "{probe:?}");
            assert_eq!(probe.param("pending"), None, "{probe:?}");
            assert_eq!(probe.param("timestamp"), None, "{probe:?}");
            assert_eq!(probe.query, "", "credentials never in a URL: {probe:?}");
        }
        // The failed tests left the transport of the last working one.
        assert_eq!(
            stored(&ff).await["local"]["settings"]["detectedTransport"],
            plain
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_outcomes_newest() {
    test_connection_outcomes(Profile::Newest, "P1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_outcomes_koha_24_05() {
    test_connection_outcomes(Profile::Koha2405, "P1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_outcomes_legacy() {
    test_connection_outcomes(Profile::Legacy, "P3").await;
}

/// 24.05 under Plack whose `svc/authentication` sends no token: only GET would work. The page
/// explains the log exposure and does not switch to GET.
#[tokio::test(flavor = "multi_thread")]
async fn test_connection_without_token_asks_for_get_consent() {
    let koha = standin(Profile::Koha2405);
    koha.configure(|c| c.switches.auth_token_header = false);
    let base = koha.base_url();
    with_firefox(options(), move |ff| async move {
        ff.open("options.html").await;
        fill(&ff, &base, "desk", "secret123").await;
        let m = press(&ff, "test-connection").await;
        assert_problem(&m, "warning", "needs-get-consent");
        assert!(
            koha.log()
                .iter()
                .all(|r| r.method != "GET" || r.query.is_empty()),
            "no GET with parameters was sent"
        );
        assert!(stored(&ff).await["local"].get("settings").is_none());
    })
    .await;
}

/// Without the host permission the test says so, sends nothing, and the page says so on open.
#[tokio::test(flavor = "multi_thread")]
async fn without_host_permission_the_test_says_how_to_grant_it() {
    let koha = standin(Profile::Newest);
    let base = koha.base_url();
    with_firefox(options(), move |ff| async move {
        ff.open("options.html").await;
        fill(&ff, &base, "desk", "secret123").await;
        assert_eq!(press(&ff, "save").await["kind"], "ok");
        let script = "const done = arguments[arguments.length - 1];
            browser.permissions.remove({ origins: ['http://127.0.0.1/*'] }).then(done, (e) => done(String(e)));";
        assert_eq!(ff.client.execute_async(script, vec![]).await.expect("removed"), json!(true));
        let before = koha.log().len();

        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        let m = ff
            .eval("(() => { const m = document.getElementById('options-message'); return { ...m.dataset, text: m.textContent }; })()")
            .await;
        assert_eq!(m["kind"], "warning", "{m}");
        assert!(m["text"].as_str().unwrap_or_default().contains("about:addons"), "{m}");

        // A click from a script is no user gesture: Firefox refuses the permission request, and
        // the test reports the missing access without sending anything.
        set(&ff, &[("password", "secret123")]).await;
        ff.eval("(delete document.getElementById('options-message').dataset.kind, true)").await;
        ff.eval("(document.getElementById('test-connection').click(), true)").await;
        ff.wait_until("the report", "document.getElementById('options-message').dataset.kind").await;
        let m = ff
            .eval("(() => { const m = document.getElementById('options-message'); return { ...m.dataset, text: m.textContent }; })()")
            .await;
        assert_eq!(m["outcome"], "no-access", "{m}");
        assert_eq!(m["kind"], "error", "{m}");
        assert!(m["text"].as_str().unwrap_or_default().contains("127.0.0.1"), "{m}");
        assert_eq!(koha.log().len(), before, "nothing reached Koha");
    })
    .await;
}

/// Every kind of bad input is refused with its own message on its own field, and nothing is
/// saved: not the settings, not the password.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_and_nothing_is_saved() {
    let koha = standin(Profile::Newest);
    let base = koha.base_url();
    with_firefox(options(), move |ff| async move {
        ff.open("options.html").await;
        let cases: &[(&str, &str, &str)] = &[
            ("server", "", "empty"),
            ("server", "javascript:alert(1)", "unsupported-scheme"),
            ("server", "ftp://koha.example.org", "unsupported-scheme"),
            ("server", "https://koha example.org", "space"),
            ("server", "http://koha.example.org", "http-not-allowed"),
            ("server", "koha.example.org", "missing-scheme"),
            ("server", "https://user:pw@koha.example.org", "userinfo"),
            ("server", "https://koha.example.org:99999", "invalid-port"),
            ("server", "https://", "missing-host"),
            ("server", "https://koha.example.org/a/../b", "invalid-path"),
            ("branchcode", "", "empty"),
            ("branchcode", "DE-627-ABCDE", "too-long"),
            ("branchcode", "DE\t627", "control-character"),
            ("userid", "desk\t1", "control-character"),
            ("timezone", "", "empty"),
            ("timezone", "Berlin", "shape"),
            ("timezone", "Europe/ Berlin", "space"),
            ("timezone", "Mars/Olympus_Mons", "unknown"),
        ];
        for (field, value, kind) in cases {
            fill(&ff, &base, "desk", "secret123").await;
            set(&ff, &[(field, value)]).await;
            let m = press(&ff, "save").await;
            assert_eq!(m["kind"], "error", "{field}={value:?}: {m}");
            let marked = ff
                .eval(&format!(
                    "(() => {{ const e = document.getElementById('{field}-error');
                       return {{ invalid: document.getElementById('{field}').getAttribute('aria-invalid'),
                                 kind: e.dataset.kind, hidden: e.hidden, text: e.textContent,
                                 others: [...document.querySelectorAll('[aria-invalid]')].map(x => x.id) }}; }})()"
                ))
                .await;
            assert_eq!(marked["invalid"], "true", "{field}={value:?}: {marked}");
            assert_eq!(marked["kind"], *kind, "{field}={value:?}: {marked}");
            assert_eq!(marked["hidden"], false, "{field}={value:?}: {marked}");
            assert_eq!(marked["others"], json!([field]), "{field}={value:?}: {marked}");
            let text = marked["text"].as_str().unwrap_or_default();
            assert!(!text.is_empty() && !text.starts_with("opt_"), "{marked}");
            let storage = stored(&ff).await;
            assert!(storage["local"].get("settings").is_none(), "{field}={value:?} saved: {storage}");
            assert_eq!(storage["session"], json!({}), "{field}={value:?}: {storage}");
        }

        // A remembered password without a user name.
        fill(&ff, &base, "", "secret123").await;
        check(&ff, "remember-password", true).await;
        press(&ff, "save").await;
        assert_eq!(ff.eval("document.getElementById('userid-error').dataset.kind").await, "password-without-userid");
        check(&ff, "remember-password", false).await;

        // Several at once: every one is marked, the first gets the focus.
        fill(&ff, &base, "desk", "secret123").await;
        set(&ff, &[("server", "javascript:alert(1)"), ("branchcode", ""), ("timezone", "Mars/Olympus_Mons")]).await;
        let m = press(&ff, "save").await;
        assert_eq!(m["kind"], "error");
        assert!(m["text"].as_str().unwrap_or_default().contains('3'), "{m}");
        let marked = ff.eval("[...document.querySelectorAll('[aria-invalid=\"true\"]')].map(x => x.id)").await;
        assert_eq!(marked, json!(["server", "branchcode", "timezone"]));
        assert_eq!(ff.eval("document.activeElement.id").await, "server");
        ff.screenshot("options-invalid-en-light").await;
        assert!(stored(&ff).await["local"].get("settings").is_none());

        // A valid save normalises the address, then a bad save changes nothing.
        fill(&ff, &format!("{}/cgi-bin/koha/mainpage.pl?x=1", base.to_uppercase()), "desk", "secret123").await;
        assert_eq!(press(&ff, "save").await["kind"], "ok");
        assert_eq!(ff.eval("document.getElementById('server').value").await, base.as_str());
        assert_eq!(ff.eval("document.querySelectorAll('[aria-invalid]').length").await, 0);
        let good = stored(&ff).await;
        assert_eq!(good["local"]["settings"]["server"], base.as_str());
        fill(&ff, "ftp://elsewhere.example.org", "other", "other-password").await;
        set(&ff, &[("branchcode", "")]).await;
        assert_eq!(press(&ff, "save").await["kind"], "error");
        assert_eq!(stored(&ff).await, good);
    })
    .await;
}

/// Not remembered: never in storage.local. Remembered: there, with the warning shown. Forget:
/// gone from storage.local, storage.session and the form.
#[tokio::test(flavor = "multi_thread")]
async fn password_is_kept_only_where_allowed_and_forget_removes_it() {
    const PASSWORD: &str = "Geheim-123!x";
    let mut config = Config::default();
    let desk = config
        .fixture
        .accounts
        .iter_mut()
        .find(|a| a.userid == "desk");
    desk.expect("the desk account").password = PASSWORD.into();
    let koha = StandIn::start(config).expect("the stand-in starts");
    let base = koha.base_url();
    with_firefox(options(), move |ff| async move {
        ff.open("options.html").await;
        assert_eq!(
            ff.eval("document.getElementById('remember-password').checked")
                .await,
            false
        );
        assert_eq!(
            ff.eval("document.getElementById('login-once').checked")
                .await,
            true
        );
        fill(&ff, &base, "desk", PASSWORD).await;
        assert_eq!(
            ff.eval("document.getElementById('remember-note').hidden")
                .await,
            true
        );
        assert_eq!(press(&ff, "save").await["kind"], "ok");

        let storage = stored(&ff).await;
        assert!(
            !storage["local"].to_string().contains(PASSWORD),
            "{storage}"
        );
        assert_eq!(storage["local"]["settings"]["rememberPassword"], false);
        assert_eq!(storage["session"][SESSION_PASSWORD_KEY], PASSWORD);
        assert_eq!(
            ff.eval("document.getElementById('password').value").await,
            ""
        );

        // After a reload the field stays empty; the session copy serves the test.
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        assert_eq!(
            ff.eval("document.getElementById('password').value").await,
            ""
        );
        assert_eq!(
            ff.eval("document.getElementById('password').type").await,
            "password"
        );
        assert_eq!(
            ff.eval("document.getElementById('userid').value").await,
            "desk"
        );
        let m = press(&ff, "test-connection").await;
        assert_works(&m, "ok", "P2", "works");
        assert!(!stored(&ff).await["local"].to_string().contains(PASSWORD));

        // Remembered (the field left empty: the session copy moves to storage.local).
        check(&ff, "remember-password", true).await;
        assert_eq!(
            ff.eval("document.getElementById('remember-note').hidden")
                .await,
            false
        );
        assert_eq!(press(&ff, "save").await["kind"], "ok");
        let storage = stored(&ff).await;
        assert_eq!(storage["local"]["settings"]["password"], PASSWORD);
        assert!(
            storage["session"].get(SESSION_PASSWORD_KEY).is_none(),
            "{storage}"
        );
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        assert_eq!(
            ff.eval("document.getElementById('password').value").await,
            ""
        );
        assert_eq!(
            ff.eval("document.getElementById('remember-note').hidden")
                .await,
            false
        );

        // Forget: gone everywhere, including the form.
        set(&ff, &[("password", "typed-but-not-saved")]).await;
        assert_eq!(press(&ff, "forget-credentials").await["kind"], "ok");
        let storage = stored(&ff).await;
        let text = storage.to_string();
        assert!(
            !text.contains(PASSWORD) && !text.contains("typed-but-not-saved"),
            "{storage}"
        );
        assert!(
            storage["local"]["settings"].get("userid").is_none(),
            "{storage}"
        );
        assert_eq!(storage["local"]["settings"]["rememberPassword"], false);
        assert_eq!(storage["session"], json!({}));
        assert_eq!(
            storage["local"]["settings"]["server"],
            base.as_str(),
            "the rest stays"
        );
        for id in ["userid", "password"] {
            assert_eq!(
                ff.eval(&format!("document.getElementById('{id}').value"))
                    .await,
                ""
            );
        }
        assert_eq!(
            ff.eval("document.getElementById('remember-password').checked")
                .await,
            false
        );
        // Nothing is left to test with.
        let m = press(&ff, "test-connection").await;
        assert_eq!(m["kind"], "error");
        let marked = ff
            .eval("[...document.querySelectorAll('[aria-invalid=\"true\"]')].map(x => x.id)")
            .await;
        assert_eq!(marked, json!(["userid", "password"]));
    })
    .await;
}

/// A Koha whose public library route does not answer: "Test connection" gives up on that check
/// after its own 10 s (not the send requests' 60 s, past this test's 30 s wait for an outcome),
/// reports the connection as working and the library code as not checked.
#[tokio::test(flavor = "multi_thread")]
async fn a_library_check_koha_leaves_unanswered_gives_up_and_leaves_the_code_unchecked() {
    let koha = standin(Profile::Newest);
    let base = koha.base_url();
    koha.set_faults(vec![FaultRule::nth(
        Fault::Delay { ms: 40_000 },
        When {
            path: Some("/api/v1/public/libraries/DE-627".into()),
            ..When::default()
        },
    )]);
    with_firefox(options(), move |ff| async move {
        saved_without_login_once(&ff, &base).await;
        let m = press(&ff, "test-connection").await;
        assert_works(&m, "ok", "P1", "off");
        let line = library_line(&ff).await;
        assert_eq!(line["hidden"], false, "{line}");
        assert_eq!(line["warning"], false, "{line}");
        assert!(
            line["text"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Koha did not say whether it knows the library code DE-627"),
            "{line}"
        );
        let asked = koha
            .log()
            .into_iter()
            .filter(|r| r.path.ends_with("/libraries/DE-627"))
            .count();
        assert_eq!(asked, 1, "the route was asked once");
    })
    .await;
}

/// The test-only `localStorage` key with which a test shortens the 60 s request time-out.
const TIMEOUT_KEY: &str = koha_offline_circ::koha::TIMEOUT_OVERRIDE_KEY;

/// What the cookie Firefox now holds for the stand-in is worth: a bare `service.pl` GET from the
/// page with the browser's cookies and no credentials, which only the cookie fallback
/// (docs/koha.md 4.3) can authenticate. Returns `(status, body, the CGISESSID it carried)`.
async fn cookie_fallback(ff: &Firefox, koha: &StandIn) -> (u64, String, Option<String>) {
    let url = format!(
        "{}/cgi-bin/koha/offline_circ/service.pl?action=",
        koha.base_url()
    );
    let script = format!(
        "const done = arguments[arguments.length - 1];
         fetch({}, {{ credentials: 'include', cache: 'no-store' }})
           .then(async (r) => done([r.status, await r.text()]), (e) => done([0, String(e)]));",
        json!(url)
    );
    let answer = ff
        .client
        .execute_async(&script, vec![])
        .await
        .expect("a fetch");
    let carried = koha
        .log()
        .into_iter()
        .rfind(|r| r.path.ends_with("service.pl") && r.query == "action=")
        .expect("the fallback request reached the stand-in")
        .cookies
        .into_iter()
        .find(|(n, _)| n == "CGISESSID")
        .map(|(_, v)| v);
    (
        answer[0].as_u64().unwrap_or_default(),
        answer[1].as_str().unwrap_or_default().to_owned(),
        carried,
    )
}

/// No session of the desk's account is left logged in, and the cookie Firefox keeps
/// authenticates nothing.
async fn assert_no_desk_session_left(ff: &Firefox, koha: &StandIn, what: &str) {
    let (status, body, cookie) = cookie_fallback(ff, koha).await;
    assert!(
        (status, body.as_str()) != (200, ""),
        "{what}: Firefox's cookie {cookie:?} still logs in to Koha as the desk"
    );
    if let Some(cookie) = &cookie {
        assert!(
            !koha.session_logged_in(cookie),
            "{what}: {cookie} is logged in"
        );
    }
    let left = koha.cookie_logins("desk");
    assert!(left.is_empty(), "{what}: sessions left logged in: {left:?}");
}

/// "Test connection" with "log in once" logs the desk's account in to Koha (P2). Afterwards no
/// session of it is left: the stand-in has none, and the cookie Firefox keeps (which anyone
/// opening the staff interface in this browser would use) authenticates nothing. Koha 23.11 sets
/// the cookie only for a successful login, 24.05+ always.
#[tokio::test(flavor = "multi_thread")]
async fn test_connection_with_login_once_leaves_no_session_logged_in() {
    for profile in [Profile::Newest, Profile::Koha2405, Profile::Legacy] {
        let koha = standin(profile);
        let base = koha.base_url();
        with_firefox(options(), move |ff| async move {
            ff.open("options.html").await;
            fill(&ff, &base, "desk", "secret123").await;
            check(&ff, "login-once", true).await;
            let m = press(&ff, "test-connection").await;
            assert_works(&m, "ok", "P2", "works");
            let logins = koha
                .log()
                .into_iter()
                .filter(|r| r.method == "POST" && r.path.ends_with("svc/authentication"))
                .count();
            assert_eq!(logins, 1, "{profile:?}: the test logged in once");
            assert_no_desk_session_left(&ff, &koha, &format!("{profile:?}")).await;
        })
        .await;
    }
}

/// A server that sends its answer's headers and then stalls: the test ends with a time-out
/// (here after the 1.5 s a test may set instead of 60 s), not with a page that waits forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_answer_gives_a_time_out() {
    let koha = standin(Profile::Newest);
    let base = koha.base_url();
    for path in ["svc/authentication", "service.pl"] {
        koha.set_faults(vec![FaultRule {
            when: When {
                path: Some(path.into()),
                ..When::default()
            },
            fault: Fault::Stall { ms: 60_000 },
            times: 0,
        }]);
        let base = base.clone();
        with_firefox(options(), |ff| async move {
            ff.open("options.html").await;
            ff.eval(&format!(
                "(localStorage.setItem({}, '1500'), true)",
                json!(TIMEOUT_KEY)
            ))
            .await;
            fill(&ff, &base, "desk", "secret123").await;
            check(&ff, "login-once", false).await;
            let m = press(&ff, "test-connection").await;
            assert_problem(&m, "error", "timeout");
            assert!(
                m["text"].as_str().unwrap_or_default().contains("127.0.0.1"),
                "{m}"
            );
        })
        .await;
        let stalled = koha
            .log()
            .into_iter()
            .rfind(|r| r.path.ends_with(path))
            .expect("sent");
        assert_eq!(stalled.faults, ["F7"], "{path}");
    }
}

/// The desk's clock is compared with Koha's `Date`: 10 minutes apart, the test names both times
/// in the page's language; in step, it says nothing about the clock.
#[tokio::test(flavor = "multi_thread")]
async fn test_connection_warns_when_the_clocks_differ() {
    let koha = standin(Profile::Newest);
    let base = koha.base_url();
    with_firefox(options(), move |ff| async move {
        ff.open("options.html").await;
        fill(&ff, &base, "desk", "secret123").await;
        check(&ff, "login-once", false).await;

        // Koha's clock 10 minutes ahead of this machine's.
        let koha_now = chrono::Utc::now() + chrono::Duration::minutes(10);
        koha.set_now(Some(koha_now));
        let m = press(&ff, "test-connection").await;
        assert_works(&m, "warning", "P1", "off");
        let clock = ff
            .eval(
                "(() => { const c = document.getElementById('options-clock');
                   const when = (ms) => new Intl.DateTimeFormat(document.documentElement.lang,
                     { dateStyle: 'medium', timeStyle: 'medium' }).format(Number(ms));
                   return { ...c.dataset, hidden: c.hidden, text: c.textContent,
                            deskText: when(c.dataset.desk), kohaText: when(c.dataset.koha) }; })()",
            )
            .await;
        assert_eq!(clock["state"], "desk-behind", "{clock}");
        assert_eq!(clock["hidden"], false, "{clock}");
        let text = clock["text"].as_str().unwrap_or_default();
        for shown in [&clock["deskText"], &clock["kohaText"]] {
            let shown = shown.as_str().unwrap_or_default();
            assert!(!shown.is_empty() && text.contains(shown), "{shown:?} in {text:?}");
        }
        assert!(text.contains("behind") && !text.contains("opt_"), "{text}");
        let ms = |k: &str| clock[k].as_str().and_then(|v| v.parse::<i64>().ok()).expect(k);
        // Koha's time is the stand-in's Date (whole seconds); the desk's is this machine's.
        assert_eq!(ms("koha"), koha_now.timestamp() * 1000);
        assert!((ms("desk") - chrono::Utc::now().timestamp_millis()).abs() < 60_000, "{clock}");
        ff.eval("(document.getElementById('options-clock').scrollIntoView(), true)")
            .await;
        ff.screenshot("options-clock-warning-en").await;

        // In step: no warning.
        koha.set_now(None);
        let m = press(&ff, "test-connection").await;
        assert_works(&m, "ok", "P1", "off");
        let clock = ff
            .eval("(() => { const c = document.getElementById('options-clock'); return { ...c.dataset, hidden: c.hidden, text: c.textContent }; })()")
            .await;
        assert_eq!(clock["state"], "in-step", "{clock}");
        assert_eq!(clock["hidden"], true, "{clock}");
        assert_eq!(clock["text"], "", "{clock}");
    })
    .await;
}

/// The page as admins see it, in English and German, light and dark; the password stays masked.
/// Queue mode's requests at once: 3 on a first visit, saved as chosen, shown again after a
/// reload.
#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_are_saved_and_shown_again() {
    let koha = standin(Profile::Newest);
    let base = koha.base_url();
    with_firefox(options(), move |ff| async move {
        ff.open("options.html").await;
        let shown = "document.getElementById('in-flight').value";
        assert_eq!(ff.eval(shown).await, "3", "the default");
        fill(&ff, &base, "desk", "secret123").await;
        set(&ff, &[("in-flight", "2")]).await;
        assert_eq!(press(&ff, "save").await["kind"], "ok");
        assert_eq!(stored(&ff).await["local"]["settings"]["inFlight"], 2);
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        assert_eq!(ff.eval(shown).await, "2");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshots() {
    for (locale, dark) in [
        ("en-US", false),
        ("en-US", true),
        ("de", false),
        ("de", true),
    ] {
        let koha = standin(Profile::Newest);
        let base = koha.base_url();
        let opts = Options {
            locale: locale.into(),
            dark,
            ..options()
        };
        with_firefox(opts, move |ff| async move {
            ff.open("options.html").await;
            fill(&ff, &base, "desk", "secret123").await;
            check(&ff, "remember-password", true).await;
            let m = press(&ff, "test-connection").await;
            assert_works(&m, "ok", "P2", "works");
            assert_eq!(
                ff.eval("document.getElementById('password').type").await,
                "password"
            );
            let lang = locale.split('-').next().unwrap_or(locale);
            let scheme = if dark { "dark" } else { "light" };
            ff.screenshot(&format!("options-{lang}-{scheme}")).await;
            let _ = &koha;
        })
        .await;
    }
}
