//! The Koha protocol core: request building, encoding, classification (C1 to C9), detection
//! (docs/koha.md 10.2 and 8.2).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use chrono::{TimeZone, Utc};
use koha_offline_circ::koha::*;
use koha_offline_circ::{
    Action, Amount, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId, Userid,
};

const BASE: &str = "https://koha.example.org:8080/prefix";

fn creds() -> Credentials {
    Credentials {
        userid: Userid::parse("desk").unwrap(),
        password: "se cret+&=ä".to_owned(),
    }
}

fn tx(action: Action) -> Transaction {
    let at =
        Utc.with_ymd_and_hms(2025, 1, 31, 14, 5, 9).unwrap() + chrono::Duration::milliseconds(987);
    Transaction::record(
        TransactionId::new(at, 1),
        at,
        Branchcode::parse("DE-627").unwrap(),
        action,
    )
}

fn issue() -> Action {
    Action::Issue {
        cardnumber: Cardnumber::parse("C 1+2").unwrap(),
        barcode: Barcode::parse("B0001").unwrap(),
    }
}

fn names(r: &HttpRequest) -> Vec<&str> {
    r.params.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn debug_hides_the_password() {
    let text = format!("{:?}", creds());
    assert!(text.contains("desk"));
    assert!(!text.contains("se cret"), "{text}");
    assert!(text.contains("<hidden>"));
}

#[test]
fn form_encoding_is_exact() {
    let cases = [
        ("abc-._*XYZ019", "abc-._*XYZ019"),
        ("a b", "a+b"),
        ("1+1", "1%2B1"),
        ("a&b=c", "a%26b%3Dc"),
        ("100%", "100%25"),
        ("ä", "%C3%A4"),
        ("€", "%E2%82%AC"),
        ("a/b?c#d", "a%2Fb%3Fc%23d"),
        ("~'!", "%7E%27%21"),
        ("\t\n", "%09%0A"),
        ("", ""),
    ];
    for (raw, want) in cases {
        assert_eq!(form_encode_component(raw), want, "{raw:?}");
    }
    let pairs = vec![
        ("a b".to_owned(), "x+y".to_owned()),
        ("e".to_owned(), String::new()),
    ];
    assert_eq!(form_encode(&pairs), "a+b=x%2By&e=");
}

#[test]
fn auth_probe_is_a_bare_get() {
    let r = auth_probe_request(BASE);
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.url, format!("{BASE}/cgi-bin/koha/svc/authentication"));
    assert!(r.params.is_empty());
    assert!(r.headers.is_empty());
    assert!(r.include_cookies);
    assert_eq!(r.full_url(), r.url);
    assert_eq!(r.body(), None);
}

#[test]
fn the_request_time_out_is_60_s_and_can_only_be_shortened() {
    let r = logout_request(BASE);
    assert_eq!(r.timeout_ms(None), 60_000);
    assert_eq!(r.timeout_ms(Some("1500")), 1_500);
    assert_eq!(r.timeout_ms(Some(" 1 ")), 1);
    assert_eq!(r.timeout_ms(Some("60000")), 60_000);
    for ignored in ["0", "60001", "-5", "1.5", "", "soon", "99999999999"] {
        assert_eq!(r.timeout_ms(Some(ignored)), 60_000, "{ignored:?}");
    }
}

#[test]
fn the_library_check_waits_10_s_not_the_send_requests_60() {
    let code = Branchcode::parse("DE-627").unwrap();
    let r = library_request(BASE, &code);
    assert_eq!(r.timeout_ms(None), 10_000);
    assert_eq!(r.timeout_ms(Some("1500")), 1_500);
    assert_eq!(
        r.timeout_ms(Some("60000")),
        10_000,
        "an override never lengthens it"
    );
    for r in [
        logout_request(BASE),
        service_probe_request(BASE, Transport::P2, &creds(), Some("tok")).unwrap(),
    ] {
        assert_eq!(r.timeout_ms(None), 60_000, "{}", r.url);
    }
}

#[test]
fn logout_is_a_bare_get_of_the_start_page_with_the_session_cookie() {
    let r = logout_request(BASE);
    assert_eq!(r.method, Method::Get);
    assert_eq!(
        r.full_url(),
        format!("{BASE}/cgi-bin/koha/mainpage.pl?logout.x=1")
    );
    assert_eq!(r.body(), None);
    assert!(
        r.include_cookies,
        "the session to end is named by the cookie"
    );
    assert!(
        r.headers.is_empty(),
        "no token: the CSRF check lets a GET through"
    );
    assert_eq!(
        r.param("op"),
        None,
        "an op would make it a CSRF-checked operation"
    );
}

#[test]
fn probes_have_an_empty_action_and_nothing_else() {
    for transport in [Transport::P1, Transport::P3, Transport::G] {
        let r = service_probe_request(BASE, transport, &creds(), Some("tok")).unwrap();
        assert_eq!(
            names(&r),
            [
                "login_userid",
                "login_password",
                "userid",
                "password",
                "nocookie",
                "action"
            ]
        );
        assert_eq!(r.param("action"), Some(""));
        assert_eq!(r.param("nocookie"), Some("1"));
        assert_eq!(r.param("pending"), None);
        assert_eq!(r.param("timestamp"), None);
        assert_eq!(
            r.url,
            format!("{BASE}/cgi-bin/koha/offline_circ/service.pl")
        );
    }
    let p2 = service_probe_request(BASE, Transport::P2, &creds(), Some("tok")).unwrap();
    assert_eq!(names(&p2), ["userid", "action"]);
}

#[test]
fn tokens_are_required_for_p1_and_p2_only() {
    let err = service_probe_request(BASE, Transport::P1, &creds(), None).unwrap_err();
    assert_eq!(err.kind(), "missing-token");
    assert!(service_probe_request(BASE, Transport::P1, &creds(), Some("")).is_err());
    // P2 on ≤23.11 has a session cookie but no token.
    let p2 = service_probe_request(BASE, Transport::P2, &creds(), None).unwrap();
    assert!(p2.headers.is_empty());
    assert!(p2.include_cookies);
    assert_eq!(
        service_probe_request(BASE, Transport::P1, &creds(), None)
            .unwrap_err()
            .to_string(),
        "transport P1 needs a CSRF token"
    );
    let p3 = service_probe_request(BASE, Transport::P3, &creds(), Some("ignored")).unwrap();
    assert!(p3.headers.is_empty());
    assert!(!p3.include_cookies);
}

#[test]
fn p1_transaction_request_is_exact() {
    let r = transaction_request(
        BASE,
        Transport::P1,
        &creds(),
        Some("t0k"),
        None,
        Mode::Queue,
        &tx(issue()),
    )
    .unwrap();
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.headers, vec![("CSRF-TOKEN".to_owned(), "t0k".to_owned())]);
    assert!(r.include_cookies);
    assert_eq!(
        r.body().unwrap(),
        "login_userid=desk&login_password=se+cret%2B%26%3D%C3%A4&userid=desk\
         &password=se+cret%2B%26%3D%C3%A4&nocookie=1&branchcode=DE-627&pending=true\
         &action=issue&timestamp=2025-01-31+14%3A05%3A09&barcode=B0001&cardnumber=C+1%2B2"
    );
    assert_eq!(r.full_url(), r.url);
}

#[test]
fn parameters_per_action_and_transport() {
    let ret = Action::Return {
        barcode: Barcode::parse("B0002").unwrap(),
    };
    let pay = Action::Payment {
        cardnumber: Cardnumber::parse("C0001").unwrap(),
        amount: Amount::parse("12,5").unwrap(),
    };
    let branch = Branchcode::parse("DE-25").unwrap();
    let r = transaction_request(
        BASE,
        Transport::P3,
        &creds(),
        None,
        None,
        Mode::Apply,
        &tx(ret),
    )
    .unwrap();
    assert_eq!(r.param("pending"), Some("false"));
    assert_eq!(r.param("action"), Some("return"));
    assert_eq!(r.param("barcode"), Some("B0002"));
    assert_eq!(r.param("cardnumber"), None);
    assert_eq!(r.param("amount"), None);
    assert!(r.headers.is_empty());
    assert!(!r.include_cookies);

    let r = transaction_request(
        BASE,
        Transport::P2,
        &creds(),
        Some("tk"),
        Some(&branch),
        Mode::Apply,
        &tx(pay.clone()),
    )
    .unwrap();
    assert_eq!(
        names(&r),
        [
            "userid",
            "branchcode",
            "branch",
            "pending",
            "action",
            "timestamp",
            "cardnumber",
            "amount"
        ]
    );
    assert_eq!(r.param("amount"), Some("12.50"));
    assert_eq!(r.param("branch"), Some("DE-25"));
    assert_eq!(r.param("branchcode"), Some("DE-627"));
    assert_eq!(r.param("timestamp"), Some("2025-01-31 14:05:09"));

    let g = transaction_request(
        BASE,
        Transport::G,
        &creds(),
        None,
        None,
        Mode::Queue,
        &tx(pay),
    )
    .unwrap();
    assert_eq!(g.method, Method::Get);
    assert_eq!(g.body(), None);
    assert!(g.full_url().starts_with(&format!(
        "{BASE}/cgi-bin/koha/offline_circ/service.pl?login_userid=desk&"
    )));
    assert!(g.full_url().ends_with("&cardnumber=C0001&amount=12.50"));
}

#[test]
fn timestamps_are_utc_whole_seconds() {
    let at =
        Utc.with_ymd_and_hms(2026, 3, 29, 1, 2, 3).unwrap() + chrono::Duration::milliseconds(999);
    assert_eq!(koha_timestamp(at), "2026-03-29 01:02:03");
}

fn failed(r: &str) -> Status {
    Status::Failed {
        reason: koha_offline_circ::FailReason::from_name(r).unwrap(),
    }
}
fn uncertain(r: &str) -> Status {
    Status::Uncertain {
        reason: koha_offline_circ::UncertainReason::from_name(r).unwrap(),
    }
}
fn rejected(m: &str) -> Status {
    Status::Rejected { message: m.into() }
}

#[test]
fn classification_table() {
    use Flow::*;
    let cases: Vec<(u16, &str, &str, Status, Flow)> = vec![
        (200, "Added.", "C1", Status::Queued, Continue),
        (200, " Added.\r\n", "C1", Status::Queued, Continue),
        (200, "Success.", "C2", Status::Applied, Continue),
        (200, "Success.\n", "C2", Status::Applied, Continue),
        (
            200,
            "Item not found.",
            "C3",
            rejected("Item not found."),
            Continue,
        ),
        (
            200,
            "Item not issued.",
            "C3",
            rejected("Item not issued."),
            Continue,
        ),
        (
            200,
            "Barcode not found.",
            "C3",
            rejected("Barcode not found."),
            Continue,
        ),
        (
            200,
            "\tBorrower not found. ",
            "C3",
            rejected("Borrower not found."),
            Continue,
        ),
        (200, "", "C4", rejected(""), Continue),
        (200, " \r\n", "C4", rejected(""), Continue),
        (
            200,
            "Authentication failed.",
            "C5",
            failed("authentication"),
            Stop,
        ),
        (401, "", "C5", failed("authentication"), Stop),
        (
            401,
            "<html>Error 401</html>",
            "C5",
            failed("authentication"),
            Stop,
        ),
        (403, "Wrong CSRF token", "C5", failed("csrf"), Stop),
        (403, "<html>403</html>", "C5", failed("csrf"), Stop),
        (301, "", "C6", failed("configuration"), Stop),
        (302, "", "C6", failed("configuration"), Stop),
        (404, "Not found", "C6", failed("configuration"), Stop),
        (405, "", "C6", failed("configuration"), Stop),
        (414, "", "C6", failed("configuration"), Stop),
        (400, "", "C6", failed("configuration"), Stop),
        (
            500,
            "<html>Software error</html>",
            "C7",
            uncertain("server-error"),
            Stop,
        ),
        (502, "", "C7", uncertain("server-error"), Stop),
        (503, "", "C7", uncertain("server-error"), Stop),
        (
            200,
            "<html>login</html>",
            "C7",
            uncertain("unexpected-answer"),
            Stop,
        ),
        (200, "added.", "C7", uncertain("unexpected-answer"), Stop),
        (200, "Success", "C7", uncertain("unexpected-answer"), Stop),
        (200, "Deleted.", "C7", uncertain("unexpected-answer"), Stop),
        (
            200,
            "Item not checked out.",
            "C7",
            uncertain("unexpected-answer"),
            Stop,
        ),
        (204, "", "C7", uncertain("server-error"), Stop),
    ];
    for (status, body, rule, outcome, flow) in cases {
        let a = classify(status, body);
        assert_eq!(a.rule(), rule, "{status} {body:?}");
        assert_eq!(a.outcome(), outcome, "{status} {body:?}");
        assert_eq!(a.flow(), flow, "{status} {body:?}");
    }
    let n = classify_no_answer(NoAnswer::Network);
    assert_eq!(
        (n.rule(), n.outcome(), n.flow()),
        ("C8", uncertain("connection-lost"), Stop)
    );
    let t = classify_no_answer(NoAnswer::Timeout);
    assert_eq!(
        (t.rule(), t.outcome(), t.flow()),
        ("C9", uncertain("timeout"), Stop)
    );
    assert!(classify(403, "").is_forbidden());
    assert!(!classify(401, "").is_forbidden());
}

#[test]
fn message_keys() {
    let cases = [
        ("Borrower not found.", Some("koha-borrower-not-found")),
        ("Barcode not found.", Some("koha-barcode-not-found")),
        ("Item not found.", Some("koha-item-not-found")),
        ("Item not issued.", Some("koha-item-not-issued")),
        ("Added.", Some("koha-added")),
        ("Success.", Some("koha-success")),
        ("Authentication failed.", Some("koha-authentication-failed")),
        ("", Some("koha-empty-answer")),
        ("item not found.", None),
        ("Item not found", None),
    ];
    for (text, key) in cases {
        assert_eq!(message_key(text), key, "{text:?}");
    }
}

#[test]
fn auth_status_xml() {
    let canonical =
        "<?xml version='1.0' standalone='yes'?>\n<response>\n  <status>ok</status>\n</response>\n";
    assert_eq!(parse_auth_status(canonical), Some(AuthStatus::Ok));
    let cases = [
        (
            "<response><status>failed</status></response>",
            Some(AuthStatus::Failed),
        ),
        (
            "<response><status>\n anon \n</status></response>",
            Some(AuthStatus::Anon),
        ),
        ("<status>expired</status>", Some(AuthStatus::Expired)),
        (
            "<status>maintenance</status>",
            Some(AuthStatus::Maintenance),
        ),
        ("<status>restricted</status>", Some(AuthStatus::Restricted)),
        (
            "<status>password_expired</status>",
            Some(AuthStatus::PasswordExpired),
        ),
        (
            "<status>additional-auth-needed</status>",
            Some(AuthStatus::AdditionalAuthNeeded),
        ),
        (
            "<status>weird</status>",
            Some(AuthStatus::Other("weird".into())),
        ),
        ("<html>login</html>", None),
        ("<status>ok", None),
        ("", None),
    ];
    for (xml, want) in cases {
        assert_eq!(parse_auth_status(xml), want, "{xml:?}");
    }
}

fn http(status: u16, token: Option<&str>, body: &str) -> Reply {
    Reply::Http {
        status,
        csrf_token: token.map(str::to_owned),
        body: body.into(),
        date: None,
    }
}

const XML_FAILED: &str =
    "<?xml version='1.0' standalone='yes'?>\n<response>\n  <status>failed</status>\n</response>\n";

fn sent(step: DetectStep) -> HttpRequest {
    match step {
        DetectStep::Send(r) => r,
        DetectStep::Done(d) => panic!("expected a request, got {d:?}"),
    }
}

fn done(step: DetectStep) -> Detection {
    match step {
        DetectStep::Done(d) => d,
        DetectStep::Send(r) => panic!("expected an outcome, got {r:?}"),
    }
}

#[test]
fn detection_prefers_p1_with_a_token() {
    let mut d = Detector::new(BASE, creds());
    assert_eq!(d.start(), auth_probe_request(BASE));
    let probe = sent(d.feed(http(200, Some("abc"), XML_FAILED)));
    assert_eq!(
        probe,
        service_probe_request(BASE, Transport::P1, &creds(), Some("abc")).unwrap()
    );
    assert_eq!(
        done(d.feed(http(200, None, ""))),
        Detection::Works {
            transport: Transport::P1,
            token: Some("abc".into())
        }
    );
}

#[test]
fn detection_falls_back_to_p3_and_asks_before_g() {
    let mut d = Detector::new(BASE, creds());
    d.start();
    let probe = sent(d.feed(http(200, None, XML_FAILED)));
    assert_eq!(probe.headers, vec![]);
    assert_eq!(
        probe,
        service_probe_request(BASE, Transport::P3, &creds(), None).unwrap()
    );
    assert_eq!(
        done(d.clone().feed(http(200, None, ""))),
        Detection::Works {
            transport: Transport::P3,
            token: None
        }
    );
    let needs = done(d.feed(http(403, None, "Wrong CSRF token")));
    assert_eq!(
        needs,
        Detection::Problem(ConnectionProblem::NeedsGetConsent)
    );
}

#[test]
fn detection_retries_a_p1_403_once_with_a_fresh_token() {
    let mut d = Detector::new(BASE, creds());
    d.start();
    sent(d.feed(http(200, Some("old"), XML_FAILED)));
    let again = sent(d.feed(http(403, None, "Wrong CSRF token")));
    assert_eq!(again, auth_probe_request(BASE));
    let probe = sent(d.feed(http(200, Some("new"), XML_FAILED)));
    assert_eq!(probe.headers[0].1, "new");
    let mut twice = d.clone();
    assert_eq!(
        done(twice.feed(http(403, None, ""))),
        Detection::Problem(ConnectionProblem::CsrfRefused)
    );
    assert_eq!(
        done(d.feed(http(200, None, ""))),
        Detection::Works {
            transport: Transport::P1,
            token: Some("new".into())
        }
    );
}

#[test]
fn detection_problems() {
    use ConnectionProblem as P;
    let no = || Reply::NoAnswer {
        why: NoAnswer::Network,
    };
    // (auth probe reply, probe reply if any, expected)
    let cases: Vec<(Reply, Option<Reply>, P)> = vec![
        (no(), None, P::Unreachable),
        (
            Reply::NoAnswer {
                why: NoAnswer::Timeout,
            },
            None,
            P::Unreachable,
        ),
        (http(404, None, "nope"), None, P::NotFound),
        (
            http(500, None, ""),
            None,
            P::ServerError { http_status: 500 },
        ),
        (
            http(302, None, ""),
            None,
            P::UnexpectedAnswer { http_status: 302 },
        ),
        (
            http(200, None, "<html>hello</html>"),
            None,
            P::UnexpectedAnswer { http_status: 200 },
        ),
        (
            http(200, Some("t"), ""),
            Some(http(200, None, "Authentication failed.")),
            P::WrongCredentials,
        ),
        (
            http(200, Some("t"), ""),
            Some(http(401, None, "")),
            P::WrongCredentials,
        ),
        (
            http(200, None, XML_FAILED),
            Some(http(200, None, "Authentication failed.")),
            P::WrongCredentials,
        ),
        (
            http(200, None, XML_FAILED),
            Some(http(404, None, "")),
            P::NotFound,
        ),
        (
            http(200, None, XML_FAILED),
            Some(http(502, None, "")),
            P::ServerError { http_status: 502 },
        ),
        (
            http(200, None, XML_FAILED),
            Some(http(302, None, "")),
            P::UnexpectedAnswer { http_status: 302 },
        ),
        (
            http(200, None, XML_FAILED),
            Some(http(200, None, "Added.")),
            P::UnexpectedAnswer { http_status: 200 },
        ),
        (http(200, None, XML_FAILED), Some(no()), P::Unreachable),
    ];
    for (first, second, want) in cases {
        let mut d = Detector::new(BASE, creds());
        d.start();
        let step = d.feed(first.clone());
        let outcome = match second {
            Some(reply) => {
                sent(step);
                done(d.feed(reply))
            }
            None => done(step),
        };
        assert_eq!(outcome, Detection::Problem(want), "{first:?}");
    }
}

#[test]
fn problem_kinds_and_texts() {
    use ConnectionProblem as P;
    let cases = [
        (
            P::Unreachable,
            "unreachable",
            "the Koha server cannot be reached",
        ),
        (
            P::NotFound,
            "not-found",
            "no Koha staff interface at this address (HTTP 404)",
        ),
        (
            P::WrongCredentials,
            "wrong-credentials",
            "Koha refused the user name or password",
        ),
        (
            P::MissingPermission,
            "missing-permission",
            "the account lacks the permission this transport needs",
        ),
        (
            P::CsrfRefused,
            "csrf-refused",
            "Koha refused the CSRF token",
        ),
        (
            P::ServerError { http_status: 503 },
            "server-error",
            "the Koha server failed (HTTP 503)",
        ),
        (
            P::NeedsGetConsent,
            "needs-get-consent",
            "only GET requests would work, which put the password into URLs and logs",
        ),
        (
            P::UnexpectedAnswer { http_status: 302 },
            "unexpected-answer",
            "unexpected answer from the server (HTTP 302)",
        ),
    ];
    for (p, kind, text) in cases {
        assert_eq!(p.kind(), kind);
        assert_eq!(p.to_string(), text);
        assert_eq!(serde_json::to_value(&p).unwrap()["kind"], kind);
    }
}

#[test]
fn p2_login_and_g_probe() {
    let branch = Branchcode::parse("DE-627").unwrap();
    let r = session_login_request(BASE, &creds(), Some("tok"), Some(&branch));
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.url, format!("{BASE}/cgi-bin/koha/svc/authentication"));
    assert!(r.include_cookies);
    assert_eq!(
        names(&r),
        [
            "login_userid",
            "login_password",
            "userid",
            "password",
            "branch"
        ]
    );
    assert_eq!(r.headers, vec![("CSRF-TOKEN".into(), "tok".into())]);
    let legacy = session_login_request(BASE, &creds(), None, None);
    assert!(legacy.headers.is_empty());
    assert_eq!(
        interpret_session_login(&http(200, None, "<status>ok</status>")),
        Ok(None)
    );
    let ok = "<response><status>ok</status></response>";
    assert_eq!(
        interpret_session_login(&http(200, Some("new"), ok)),
        Ok(Some("new".into()))
    );
    assert_eq!(
        interpret_session_login(&http(200, Some("x"), XML_FAILED)),
        Err(ConnectionProblem::MissingPermission)
    );
    assert_eq!(
        interpret_session_login(&http(403, None, "")),
        Err(ConnectionProblem::CsrfRefused)
    );
    assert_eq!(interpret_get_probe(&http(200, None, "")), Ok(()));
    assert_eq!(
        interpret_get_probe(&http(200, None, "Authentication failed.")),
        Err(ConnectionProblem::WrongCredentials)
    );
    assert_eq!(refreshed_token(&http(200, Some("z"), ok)), Some("z".into()));
    assert_eq!(refreshed_token(&http(200, Some(""), ok)), None);
    assert_eq!(refreshed_token(&http(500, Some("z"), ok)), None);
}

#[test]
fn session_reuse_upgrades_to_p2_or_keeps_what_worked() {
    const OK: &str = "<response><status>ok</status></response>";
    // 24.05+: P1 probe, then a session login with the token.
    let mut d = Detector::new(BASE, creds()).with_session_reuse();
    d.start();
    sent(d.feed(http(200, Some("anon"), XML_FAILED)));
    let login = sent(d.feed(http(200, None, "")));
    assert_eq!(
        login,
        session_login_request(BASE, &creds(), Some("anon"), None)
    );
    assert_eq!(
        done(d.clone().feed(http(200, Some("sess"), OK))),
        Detection::Works {
            transport: Transport::P2,
            token: Some("sess".into())
        }
    );
    // No edit_catalogue: keep P1 and its token.
    assert_eq!(
        done(d.feed(http(200, Some("other"), XML_FAILED))),
        Detection::Works {
            transport: Transport::P1,
            token: Some("anon".into())
        }
    );
    // ≤23.11: P3 probe, then a session login without a token.
    let mut d = Detector::new(BASE, creds()).with_session_reuse();
    d.start();
    sent(d.feed(http(200, None, XML_FAILED)));
    let login = sent(d.feed(http(200, None, "")));
    assert!(login.headers.is_empty());
    assert_eq!(
        done(d.clone().feed(http(200, None, OK))),
        Detection::Works {
            transport: Transport::P2,
            token: None
        }
    );
    assert_eq!(
        done(d.feed(http(500, None, ""))),
        Detection::Works {
            transport: Transport::P3,
            token: None
        }
    );
    // A failed probe never tries the login.
    let mut d = Detector::new(BASE, creds()).with_session_reuse();
    d.start();
    sent(d.feed(http(200, None, XML_FAILED)));
    assert_eq!(
        done(d.feed(http(200, None, "Authentication failed."))),
        Detection::Problem(ConnectionProblem::WrongCredentials)
    );
}

#[test]
fn classify_reply_covers_both_shapes() {
    assert_eq!(classify_reply(&http(200, None, "Added.")), Answer::Queued);
    assert_eq!(
        classify_reply(&Reply::NoAnswer {
            why: NoAnswer::Timeout,
        }),
        Answer::Timeout
    );
    assert_eq!(
        classify_reply(&Reply::NoAnswer {
            why: NoAnswer::Network,
        }),
        Answer::NetworkError
    );
}
