//! The Koha stand-in over real HTTP, behaviour by behaviour (docs/koha.md).
#![allow(clippy::unwrap_used)]

use e2e::standin::{Config, Fault, FaultRule, Profile, StandIn, When};
use e2e::wait::wait_until_blocking;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SERVICE: &str = "/cgi-bin/koha/offline_circ/service.pl";
const AUTH: &str = "/cgi-bin/koha/svc/authentication";

#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn cookie(&self) -> Option<String> {
        let v = self.header("set-cookie")?;
        let first = v.split(';').next()?;
        first.strip_prefix("CGISESSID=").map(str::to_owned)
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(n, v)| format!("{}={}", enc(n), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A tiny keep-alive HTTP/1.1 client.
struct Client {
    port: u16,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Client {
    fn new(koha: &StandIn) -> Self {
        Client {
            port: koha.port(),
            conn: None,
        }
    }

    /// `Err` when the connection closed without an answer (or could not be made).
    fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Resp, String> {
        if self.conn.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let r = BufReader::new(s.try_clone().unwrap());
            self.conn = Some((s, r));
        }
        let (stream, reader) = self.conn.as_mut().unwrap();
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        );
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if method != "GET" {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        let result = (|| {
            stream
                .write_all(req.as_bytes())
                .map_err(|e| e.to_string())?;
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("closed without an answer".to_owned());
            }
            let status: u16 = line
                .split(' ')
                .nth(1)
                .ok_or("bad status")?
                .parse()
                .map_err(|_| "bad status")?;
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).map_err(|e| e.to_string())?;
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (n, v) = h.split_once(':').ok_or("bad header")?;
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            if method != "HEAD" {
                reader.read_exact(&mut body).map_err(|e| e.to_string())?;
            }
            Ok(Resp {
                status,
                headers,
                body: String::from_utf8(body).unwrap(),
            })
        })();
        if result.is_err()
            || result
                .as_ref()
                .is_ok_and(|r| r.header("connection") == Some("close"))
        {
            self.conn = None;
        }
        result
    }

    fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        params: &[(&str, &str)],
    ) -> Result<Resp, String> {
        self.send("POST", path, headers, &form(params))
    }

    fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        params: &[(&str, &str)],
    ) -> Result<Resp, String> {
        let target = if params.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", form(params))
        };
        self.send("GET", &target, headers, "")
    }

    fn control(&mut self, method: &str, path: &str, body: Value) -> Value {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let r = self
            .send(method, &format!("/__control/{path}"), &[], &body)
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }
}

/// Whether a new connection to the stand-in is accepted (not refused).
fn connects(koha: &StandIn) -> bool {
    TcpStream::connect(("127.0.0.1", koha.port())).is_ok()
}

fn start(profile: Profile) -> StandIn {
    StandIn::start(Config {
        profile,
        ..Config::default()
    })
    .unwrap()
}

fn creds<'a>(user: &'a str, pw: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("login_userid", user),
        ("login_password", pw),
        ("userid", user),
        ("password", pw),
        ("nocookie", "1"),
    ]
}

fn desk() -> Vec<(&'static str, &'static str)> {
    creds("desk", "secret123")
}

fn with<'a>(
    mut base: Vec<(&'a str, &'a str)>,
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    base.extend_from_slice(more);
    base
}

/// P1: a token and cookie from a credential-less GET.
fn p1_token(c: &mut Client) -> (String, String) {
    let r = c.get(AUTH, &[], &[]).unwrap();
    (
        r.cookie().unwrap(),
        r.header("csrf-token").unwrap().to_owned(),
    )
}

fn p1_post(c: &mut Client, session: &(String, String), params: &[(&str, &str)]) -> Resp {
    let cookie = format!("CGISESSID={}", session.0);
    c.post(
        SERVICE,
        &[("Cookie", &cookie), ("CSRF-TOKEN", &session.1)],
        params,
    )
    .unwrap()
}

#[test]
fn other_paths_are_404_and_answers_are_plain_text() {
    let koha = start(Profile::Legacy);
    let mut c = Client::new(&koha);
    assert_eq!(
        c.get("/cgi-bin/koha/circ/circulation.pl", &[], &[])
            .unwrap()
            .status,
        404
    );
    assert_eq!(c.get("/", &[], &[]).unwrap().status, 404);
    let r = c
        .post(
            SERVICE,
            &[],
            &with(desk(), &[("action", "issue"), ("pending", "true")]),
        )
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "Added."));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    // Keep-alive: all on one connection.
    let log = koha.log();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|l| l.connection == log[0].connection));
    assert_eq!(log[2].on_connection, 2);
}

#[test]
fn csrf_tokens_per_session() {
    let koha = start(Profile::Koha2405);
    let mut c = Client::new(&koha);
    let params = with(desk(), &[("action", "issue"), ("pending", "true")]);
    // No token at all: 403, HTML under HTML_ERRORS, nothing stored, no session.
    let r = c.post(SERVICE, &[], &params).unwrap();
    assert_eq!(r.status, 403);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(koha.session_count(), 0);
    koha.configure(|c| c.switches.html_errors = false);
    let r = c.post(SERVICE, &[], &params).unwrap();
    assert_eq!((r.status, r.body.as_str()), (403, "Wrong CSRF token"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(koha.session_count(), 0);

    let s = p1_token(&mut c);
    let other = p1_token(&mut c);
    assert_eq!(koha.session_count(), 2);
    // A token with another session's cookie: refused (docs/koha.md 3).
    let wrong = format!("CGISESSID={}", other.0);
    let r = c
        .post(
            SERVICE,
            &[("Cookie", &wrong), ("CSRF-TOKEN", &s.1)],
            &params,
        )
        .unwrap();
    assert_eq!(r.status, 403);
    // A token without any cookie: refused.
    assert_eq!(
        c.post(SERVICE, &[("CSRF-TOKEN", &s.1)], &params)
            .unwrap()
            .status,
        403
    );
    // An op that does not start with cud-: refused even with a good token.
    let cookie = format!("CGISESSID={}", s.0);
    let r = c
        .post(
            SERVICE,
            &[("Cookie", &cookie), ("CSRF-TOKEN", &s.1)],
            &with(params.clone(), &[("op", "add")]),
        )
        .unwrap();
    assert_eq!(r.status, 403);
    // Good: header (any case), or the csrf_token parameter; reusable.
    let r = c
        .post(
            SERVICE,
            &[("Cookie", &cookie), ("csrf-token", &s.1)],
            &params,
        )
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "Added."));
    let r = c
        .post(
            SERVICE,
            &[("Cookie", &cookie)],
            &with(params.clone(), &[("csrf_token", &s.1)]),
        )
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "Added."));
    assert_eq!(koha.model().queue.len(), 2);
    // GET passes unless op starts with cud-; other methods are refused.
    assert_eq!(
        c.get(SERVICE, &[], &with(desk(), &[("action", "")]))
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        c.get(SERVICE, &[], &with(desk(), &[("op", "cud-x")]))
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        c.send("PUT", SERVICE, &[], &form(&desk())).unwrap().status,
        403
    );
    assert_eq!(c.send("BREW", SERVICE, &[], "").unwrap().status, 403);
    // svc/authentication POSTs obey the same check.
    assert_eq!(c.post(AUTH, &[], &desk()).unwrap().status, 403);
    // CSRF off (plain CGI) and LEGACY never check.
    koha.configure(|c| c.switches.csrf = false);
    assert_eq!(c.post(SERVICE, &[], &params).unwrap().body, "Added.");
    koha.reset(Config {
        profile: Profile::Legacy,
        ..Config::default()
    });
    assert_eq!(c.post(SERVICE, &[], &params).unwrap().body, "Added.");
}

#[test]
fn credential_pairs_per_profile() {
    let cases = [
        (
            Profile::Legacy,
            ("userid", "password"),
            ("login_userid", "login_password"),
        ),
        (
            Profile::Koha2405,
            ("login_userid", "login_password"),
            ("userid", "password"),
        ),
    ];
    for (profile, good, ignored) in cases {
        let koha = start(profile);
        koha.configure(|c| c.switches.csrf = false);
        let mut c = Client::new(&koha);
        let ok = c
            .post(
                SERVICE,
                &[],
                &[(good.0, "desk"), (good.1, "secret123"), ("action", "")],
            )
            .unwrap();
        assert_eq!((ok.status, ok.body.as_str()), (200, ""), "{profile:?}");
        let no = c
            .post(
                SERVICE,
                &[],
                &[
                    (ignored.0, "desk"),
                    (ignored.1, "secret123"),
                    ("action", ""),
                ],
            )
            .unwrap();
        assert_eq!(no.body, "Authentication failed.", "{profile:?}");
        // Found by card number too; userid is the operator on the row whatever the login.
        let row = c
            .post(
                SERVICE,
                &[],
                &[
                    (good.0, "S0001"),
                    (good.1, "secret123"),
                    ("userid", "someone"),
                    ("action", "return"),
                    ("pending", "true"),
                ],
            )
            .unwrap();
        if profile == Profile::Legacy {
            // On LEGACY userid is also the login name; the first value wins.
            assert_eq!(row.body, "Added.");
            assert_eq!(koha.model().queue[0].userid, "S0001");
        } else {
            assert_eq!(row.body, "Added.");
            assert_eq!(koha.model().queue[0].userid, "someone");
        }
        // A patron account logs in too: no permission check (docs/koha.md 1).
        let patron = c
            .post(
                SERVICE,
                &[],
                &[(good.0, "patron01"), (good.1, "patron01pw"), ("action", "")],
            )
            .unwrap();
        assert_eq!(patron.body, "", "{profile:?}");
        // Every successful credential call leaves a session.
        assert_eq!(koha.model().logged_in_sessions(), 3, "{profile:?}");
    }
}

#[test]
fn authentication_failures_and_lockout() {
    for (profile, status, body) in [
        (Profile::Legacy, 200, "Authentication failed."),
        (Profile::Koha2405, 200, "Authentication failed."),
        (Profile::Newest, 401, ""),
    ] {
        let koha = start(profile);
        koha.configure(|c| {
            c.switches.csrf = false;
            c.switches.html_errors = false;
            c.switches.failed_login_limit = 3;
        });
        let mut c = Client::new(&koha);
        let bad = with(
            creds("desk", "wrong"),
            &[("action", "issue"), ("pending", "true")],
        );
        let r = c.post(SERVICE, &[], &bad).unwrap();
        assert_eq!((r.status, r.body.as_str()), (status, body), "{profile:?}");
        assert!(koha.model().queue.is_empty());
        assert_eq!(koha.model().account("desk").unwrap().failed_logins, 1);
        // Empty password: failed without a check (no counter).
        let r = c
            .post(SERVICE, &[], &with(creds("desk", ""), &[("action", "")]))
            .unwrap();
        assert_eq!(r.status, status);
        assert_eq!(koha.model().account("desk").unwrap().failed_logins, 1);
        c.post(SERVICE, &[], &bad).unwrap();
        c.post(SERVICE, &[], &bad).unwrap();
        let desk_now = koha.model().account("desk").unwrap().clone();
        assert!(desk_now.locked, "{profile:?}");
        // Locked: even the right password fails.
        let r = c
            .post(SERVICE, &[], &with(desk(), &[("action", "")]))
            .unwrap();
        assert_eq!(r.status, status);
        if profile == Profile::Newest {
            koha.configure(|c| c.switches.html_errors = true);
            let r = c.post(SERVICE, &[], &bad).unwrap();
            assert!(r.header("content-type").unwrap().starts_with("text/html"));
        }
    }
}

#[test]
fn cookie_fallback_and_nocookie() {
    for profile in [Profile::Koha2405, Profile::Newest] {
        let koha = start(profile);
        let mut c = Client::new(&koha);
        // The librarian's own session, via svc/authentication (P2 login).
        let (anon, token) = p1_token(&mut c);
        let cookie = format!("CGISESSID={anon}");
        let login = c
            .post(
                AUTH,
                &[("Cookie", &cookie), ("CSRF-TOKEN", &token)],
                &[
                    ("login_userid", "desk"),
                    ("login_password", "secret123"),
                    ("branch", "DE-25"),
                ],
            )
            .unwrap();
        assert!(login.body.contains("<status>ok</status>"));
        let sid = login.cookie().unwrap();
        let tok = login.header("csrf-token").unwrap().to_owned();
        let s = (sid.clone(), tok.clone());
        // Wrong credentials + nocookie=1 + the librarian's cookie.
        let r = p1_post(
            &mut c,
            &s,
            &with(
                creds("desk", "wrong"),
                &[
                    ("action", "issue"),
                    ("pending", "false"),
                    ("cardnumber", "C0001"),
                    ("barcode", "B0001"),
                ],
            ),
        );
        match profile {
            // NEWEST honours nocookie: refused.
            Profile::Newest => assert_eq!(r.status, 401),
            // 24.05 ignores it: the fallback acts as the librarian, at her session library.
            _ => {
                assert_eq!(r.body, "Success.");
                assert_eq!(
                    koha.model()
                        .item("B0001")
                        .unwrap()
                        .loan
                        .as_ref()
                        .unwrap()
                        .library,
                    "DE-25"
                );
            }
        }
        // P2: no credentials at all, the session decides (docs/koha.md 4.3).
        let r = p1_post(
            &mut c,
            &s,
            &[
                ("userid", "desk"),
                ("action", "return"),
                ("barcode", "B0049"),
                ("pending", "false"),
            ],
        );
        assert_eq!(r.body, "Success.", "{profile:?}");
        assert_eq!(
            koha.model().closed_loans.last().unwrap().return_library,
            "DE-25"
        );
        // An anonymous session's cookie authenticates nothing.
        let anon_s = p1_token(&mut c);
        let r = p1_post(&mut c, &anon_s, &[("action", "")]);
        assert_ne!((r.status, r.body.as_str()), (200, ""), "{profile:?}");
        // Sessions expire.
        koha.set_now(Some(chrono::Utc::now() + chrono::Duration::days(2)));
        let r = p1_post(&mut c, &s, &[("action", "")]);
        assert_ne!((r.status, r.body.as_str()), (200, ""), "{profile:?}");
    }
}

#[test]
fn svc_authentication_per_profile() {
    const OK: &str =
        "<?xml version='1.0' standalone='yes'?>\n<response>\n  <status>ok</status>\n</response>\n";
    const FAILED: &str = "<?xml version='1.0' standalone='yes'?>\n<response>\n  <status>failed</status>\n</response>\n";
    // LEGACY: userid/password, cookie on ok only, never a token.
    let koha = start(Profile::Legacy);
    let mut c = Client::new(&koha);
    let r = c.get(AUTH, &[], &[]).unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, FAILED));
    assert_eq!(r.header("content-type"), Some("text/xml"));
    assert_eq!((r.cookie(), r.header("csrf-token")), (None, None));
    let r = c
        .post(AUTH, &[], &[("userid", "desk"), ("password", "secret123")])
        .unwrap();
    assert_eq!(r.body, OK);
    let sid = r.cookie().unwrap();
    assert!(r.header("set-cookie").unwrap().contains("HttpOnly"));
    assert!(r.header("set-cookie").unwrap().contains("SameSite=Lax"));
    assert_eq!(r.header("csrf-token"), None);
    // Needs edit_catalogue (or superlibrarian) for a credential login.
    let r = c
        .post(AUTH, &[], &[("userid", "clerk"), ("password", "clerk123")])
        .unwrap();
    assert_eq!((r.body.as_str(), r.cookie()), (FAILED, None));
    let r = c
        .post(AUTH, &[], &[("userid", "admin"), ("password", "admin123")])
        .unwrap();
    assert_eq!(r.body, OK);
    // The cookie alone: ok; unknown: expired.
    let ck = format!("CGISESSID={sid}");
    assert_eq!(c.get(AUTH, &[("Cookie", &ck)], &[]).unwrap().body, OK);
    assert!(c
        .get(AUTH, &[("Cookie", "CGISESSID=nope")], &[])
        .unwrap()
        .body
        .contains("<status>expired</status>"));

    // NEWEST (and 24.05 with AUTH_TOKEN_HEADER): always a token; anonymous session when not ok.
    for profile in [Profile::Newest, Profile::Koha2405] {
        let koha = start(profile);
        let mut c = Client::new(&koha);
        let r = c.get(AUTH, &[], &[]).unwrap();
        assert_eq!(r.body, FAILED);
        let anon = r.cookie().unwrap();
        let token = r.header("csrf-token").unwrap().to_owned();
        assert_eq!(koha.model().sessions.len(), 1);
        assert_eq!(koha.model().sessions[0].userid, None);
        assert_eq!(koha.model().sessions[0].tokens, vec![token.clone()]);
        let ck = format!("CGISESSID={anon}");
        let r = c.get(AUTH, &[("Cookie", &ck)], &[]).unwrap();
        assert!(r.body.contains("<status>anon</status>"), "{profile:?}");
        // userid/password are not this profile's names: the name is empty, so the cookie decides.
        let r = c
            .post(
                AUTH,
                &[("Cookie", &ck), ("CSRF-TOKEN", &token)],
                &[("userid", "desk"), ("password", "secret123")],
            )
            .unwrap();
        assert!(r.body.contains("<status>anon</status>"));
        let r = c
            .post(
                AUTH,
                &[("CSRF-TOKEN", &token)],
                &[("userid", "desk"), ("password", "secret123")],
            )
            .unwrap();
        assert_eq!(r.status, 403, "a token without its cookie");
        let r = c
            .post(
                AUTH,
                &[("Cookie", &ck), ("CSRF-TOKEN", &token)],
                &[("login_userid", "desk"), ("login_password", "secret123")],
            )
            .unwrap();
        assert_eq!(r.body, OK);
        let sid = r.cookie().unwrap();
        let t2 = r.header("csrf-token").unwrap().to_owned();
        assert_ne!(sid, anon);
        let session = koha
            .model()
            .sessions
            .into_iter()
            .find(|s| s.id == sid)
            .unwrap();
        assert_eq!(
            (session.userid.as_deref(), session.library.as_deref()),
            (Some("desk"), Some("DE-627"))
        );
        assert_eq!(session.tokens, vec![t2.clone()]);
        // GET with the logged-in cookie: ok and a token for that session (bug 38826).
        let ck2 = format!("CGISESSID={sid}");
        let r = c.get(AUTH, &[("Cookie", &ck2)], &[]).unwrap();
        assert_eq!(r.body, OK);
        assert_eq!(r.cookie(), Some(sid.clone()));
        // An expired session.
        koha.set_now(Some(chrono::Utc::now() + chrono::Duration::days(3)));
        assert!(c
            .get(AUTH, &[("Cookie", &ck2)], &[])
            .unwrap()
            .body
            .contains("<status>expired</status>"));
    }
    // 24.05 without AUTH_TOKEN_HEADER: no token, no anonymous session.
    let koha = start(Profile::Koha2405);
    koha.configure(|c| c.switches.auth_token_header = false);
    let mut c = Client::new(&koha);
    let r = c.get(AUTH, &[], &[]).unwrap();
    assert_eq!((r.header("csrf-token"), r.cookie()), (None, None));
    assert_eq!(koha.session_count(), 0);
}

#[test]
fn p1_flow_end_to_end_on_newest() {
    let koha = start(Profile::Newest);
    let mut c = Client::new(&koha);
    let s = p1_token(&mut c);
    let probe = p1_post(&mut c, &s, &with(desk(), &[("action", "")]));
    assert_eq!((probe.status, probe.body.as_str()), (200, ""));
    let r = p1_post(
        &mut c,
        &s,
        &with(
            desk(),
            &[
                ("branchcode", "DE-627"),
                ("pending", "true"),
                ("action", "issue"),
                ("timestamp", "2025-01-31 14:05:09"),
                ("barcode", "B0001"),
                ("cardnumber", "C0001"),
            ],
        ),
    );
    assert_eq!(r.body, "Added.");
    let row = &koha.model().queue[0];
    assert_eq!(
        json!(row),
        json!({"operationid": 1, "userid": "desk", "branchcode": "DE-627", "timestamp": "2025-01-31 15:05:09",
               "action": "issue", "barcode": "B0001", "cardnumber": "C0001", "amount": "0.000000"})
    );
    // The anonymous session stays anonymous: P1 leaves sessions alone, and each credential call
    // leaves an orphan session.
    let m = koha.model();
    assert_eq!(
        m.sessions.iter().find(|x| x.id == s.0).unwrap().userid,
        None
    );
    assert_eq!(m.logged_in_sessions(), 2);
}

#[test]
fn queue_versus_apply() {
    let koha = start(Profile::Legacy);
    let mut c = Client::new(&koha);
    let post = |c: &mut Client, extra: &[(&str, &str)]| {
        c.post(SERVICE, &[], &with(desk(), extra)).unwrap().body
    };
    // pending other than exactly "true" applies.
    for pending in ["false", "undefined", "TRUE", "1"] {
        assert_eq!(
            post(
                &mut c,
                &[
                    ("pending", pending),
                    ("action", "return"),
                    ("barcode", "B0002")
                ]
            ),
            "Item not issued."
        );
    }
    assert!(koha.model().queue.is_empty());
    // No validation when queued; '' for absent values, amount 0.
    assert_eq!(
        post(
            &mut c,
            &[
                ("pending", "true"),
                ("action", "frobnicate"),
                ("branchcode", "")
            ]
        ),
        "Added."
    );
    let row = koha.model().queue[0].clone();
    assert_eq!(
        (
            row.action.as_str(),
            row.barcode.as_deref(),
            row.cardnumber.as_deref(),
            row.amount.as_deref()
        ),
        ("frobnicate", Some(""), Some(""), Some("0.000000"))
    );
    // Direct: checkout, renewal, force-return by another patron, checkin, rejections.
    let ts = [("timestamp", "2025-03-01 09:00:00"), ("pending", "false")];
    let p = |more: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        ts.iter().copied().chain(more.iter().copied()).collect()
    };
    assert_eq!(
        post(
            &mut c,
            &p(&[
                ("action", "issue"),
                ("cardnumber", " C0001\t"),
                ("barcode", "\nB0003 ")
            ])
        ),
        "Success."
    );
    let loan = koha.model().item("B0003").unwrap().loan.clone().unwrap();
    assert_eq!(
        (
            loan.cardnumber.as_str(),
            loan.issued_at.as_str(),
            loan.due_at.as_str(),
            loan.library.as_str()
        ),
        (
            "C0001",
            "2025-03-01 10:00:00",
            "2025-03-15 23:59:00",
            "DE-627"
        )
    );
    // By user name when no card number matches.
    assert_eq!(
        post(
            &mut c,
            &p(&[
                ("action", "issue"),
                ("cardnumber", "patron01"),
                ("barcode", "B0003")
            ])
        ),
        "Success."
    );
    assert_eq!(
        koha.model()
            .item("B0003")
            .unwrap()
            .loan
            .as_ref()
            .unwrap()
            .renewals,
        1
    );
    assert_eq!(
        post(
            &mut c,
            &[
                ("timestamp", "2025-02-01 00:00:00"),
                ("action", "issue"),
                ("cardnumber", "C0002"),
                ("barcode", "B0003")
            ]
        ),
        "Success."
    );
    let closed = koha.model().closed_loans[0].clone();
    assert_eq!(
        (closed.loan.cardnumber.as_str(), closed.returned_at.as_str()),
        ("C0001", "2025-02-01 01:00:00")
    );
    assert_eq!(
        post(
            &mut c,
            &p(&[
                ("action", "issue"),
                ("cardnumber", "nobody"),
                ("barcode", "B0004")
            ])
        ),
        "Borrower not found."
    );
    assert_eq!(
        post(
            &mut c,
            &p(&[
                ("action", "issue"),
                ("cardnumber", "C0001"),
                ("barcode", "X")
            ])
        ),
        "Barcode not found."
    );
    assert_eq!(
        post(&mut c, &p(&[("action", "return"), ("barcode", "X")])),
        "Item not found."
    );
    assert_eq!(
        post(&mut c, &p(&[("action", "return"), ("barcode", "B0050")])),
        "Success."
    );
    let b50 = koha.model().item("B0050").unwrap().clone();
    assert!(!b50.lost && b50.loan.is_none());
    assert_eq!(post(&mut c, &p(&[("action", "Issue")])), "");
    assert_eq!(post(&mut c, &p(&[("action", "")])), "");
    // Payment: a credit at branchcode, interface koc, date now; unknown patron or amount <= 0: 500.
    koha.set_now(Some("2026-07-01T10:00:00Z".parse().unwrap()));
    assert_eq!(
        post(
            &mut c,
            &p(&[
                ("action", "payment"),
                ("cardnumber", "C0003"),
                ("amount", "12.50"),
                ("branchcode", "DE-25")
            ])
        ),
        "Success."
    );
    let credit = koha.model().credits[0].clone();
    assert_eq!(
        json!(credit),
        json!({"cardnumber": "C0003", "amount": "12.500000", "library": "DE-25", "interface": "koc", "date": "2026-07-01 12:00:00"})
    );
    for (card, amount) in [
        ("nobody", "5"),
        ("C0003", "0"),
        ("C0003", "-1"),
        ("C0003", ""),
        ("C0003", "abc"),
    ] {
        let r = c
            .post(
                SERVICE,
                &[],
                &with(
                    desk(),
                    &p(&[
                        ("action", "payment"),
                        ("cardnumber", card),
                        ("amount", amount),
                    ]),
                ),
            )
            .unwrap();
        assert_eq!(r.status, 500, "{card} {amount}");
    }
    // "1,50" is read as 1.
    post(
        &mut c,
        &p(&[
            ("action", "payment"),
            ("cardnumber", "C0003"),
            ("amount", "1,50"),
        ]),
    );
    assert_eq!(koha.model().credits[1].amount, "1.000000");
    assert_eq!(koha.model().credits.len(), 2);
}

#[test]
fn timestamps_convert_to_server_tz() {
    let koha = start(Profile::Legacy);
    let mut c = Client::new(&koha);
    let queue = |c: &mut Client, ts: &str| {
        c.post(
            SERVICE,
            &[],
            &with(
                desk(),
                &[
                    ("pending", "true"),
                    ("action", "return"),
                    ("barcode", "B1"),
                    ("timestamp", ts),
                ],
            ),
        )
        .unwrap()
    };
    let cases = [
        ("2025-01-31 14:05:09", "2025-01-31 15:05:09"),
        ("2025-07-31 14:05:09", "2025-07-31 16:05:09"),
        ("2025-01-31T14:05:09Z", "2025-01-31 15:05:09"),
        ("2025-01-31T14:05:09+01:00", "2025-01-31 14:05:09"),
        ("2025-01-31 23:30", "2025-02-01 00:30:00"),
        ("2025-01-31", "2025-01-31 01:00:00"),
        ("2026-03-29 01:30:00", "2026-03-29 03:30:00"),
    ];
    for (i, (input, stored)) in cases.iter().enumerate() {
        assert_eq!(queue(&mut c, input).body, "Added.", "{input}");
        assert_eq!(koha.model().queue[i].timestamp, *stored, "{input}");
    }
    for bad in [
        "2025-01-31 14:05:09.123",
        "2025-01-31 14-05-09",
        "0000-00-00 00:00:00",
        "31/01/2025 10:00:00",
        "2025-02-30",
    ] {
        let r = queue(&mut c, bad);
        assert_eq!(r.status, 500, "{bad}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
    }
    assert_eq!(koha.model().queue.len(), cases.len());
    // Empty: the stand-in's now, in SERVER_TZ.
    koha.set_now(Some("2026-01-10T08:00:00Z".parse().unwrap()));
    queue(&mut c, "");
    assert_eq!(
        koha.model().queue.last().unwrap().timestamp,
        "2026-01-10 09:00:00"
    );
    // Another zone.
    koha.configure(|c| c.switches.server_tz = "America/New_York".into());
    queue(&mut c, "2025-01-31 14:05:09");
    assert_eq!(
        koha.model().queue.last().unwrap().timestamp,
        "2025-01-31 09:05:09"
    );
    // The old parser (LEGACY only): a T loses the time, a fraction is ignored.
    koha.configure(|c| {
        c.switches.old_date_parser = true;
        c.switches.server_tz = "UTC".into();
    });
    queue(&mut c, "2025-01-31T14:05:09Z");
    assert_eq!(
        koha.model().queue.last().unwrap().timestamp,
        "2025-01-31 00:00:00"
    );
    assert_eq!(queue(&mut c, "2025-01-31 14:05:09.123").body, "Added.");
    assert_eq!(
        koha.model().queue.last().unwrap().timestamp,
        "2025-01-31 14:05:09"
    );
    // ...and does not apply to other profiles.
    koha.configure(|c| c.profile = Profile::Koha2405);
    koha.configure(|c| c.switches.csrf = false);
    let r = c
        .post(
            SERVICE,
            &[],
            &with(
                desk(),
                &[
                    ("pending", "true"),
                    ("timestamp", "2025-01-31 14:05:09.123"),
                ],
            ),
        )
        .unwrap();
    assert_eq!(r.status, 500);
}

#[test]
fn truncation_versus_strict_sql() {
    let koha = start(Profile::Legacy);
    let mut c = Client::new(&koha);
    let long_card = "K".repeat(40);
    let long_bar = "1234567890123456789012345";
    let params = with(
        vec![
            ("userid", "desk"),
            ("password", "secret123"),
            ("login_userid", "x"),
        ],
        &[
            ("pending", "true"),
            ("action", "issue-long-x"),
            ("branchcode", "DE-627-LONG-CODE"),
            ("barcode", long_bar),
            ("cardnumber", &long_card),
            ("amount", "1,5"),
        ],
    );
    assert_eq!(c.post(SERVICE, &[], &params).unwrap().body, "Added.");
    let row = koha.model().queue[0].clone();
    assert_eq!(row.action, "issue-long");
    assert_eq!(row.branchcode, "DE-627-LON");
    assert_eq!(row.barcode.as_deref(), Some("12345678901234567890"));
    assert_eq!(row.cardnumber.unwrap().len(), 32);
    assert_eq!(row.amount.as_deref(), Some("1.000000"));
    koha.configure(|c| c.switches.strict_sql = true);
    let r = c.post(SERVICE, &[], &params).unwrap();
    assert_eq!(r.status, 500);
    // Each column on its own: one character over fails, exactly at the width passes (24.05
    // credentials, so that `userid` is only the operator).
    koha.configure(|c| {
        c.profile = Profile::Koha2405;
        c.switches.csrf = false;
    });
    let cols = [
        ("userid", 30),
        ("branchcode", 10),
        ("action", 10),
        ("barcode", 20),
        ("cardnumber", 32),
    ];
    for (name, width) in cols {
        for (len, status) in [(width, 200), (width + 1, 500)] {
            let value = "ä".repeat(len);
            let params = [
                ("login_userid", "desk"),
                ("login_password", "secret123"),
                ("pending", "true"),
                (name, value.as_str()),
            ];
            let r = c.post(SERVICE, &[], &params).unwrap();
            assert_eq!(r.status, status, "{name} {len}");
        }
    }
    koha.state().model.queue.clear();
    koha.configure(|c| c.profile = Profile::Legacy);
    // Non-numeric amount alone fails too; a clean row passes.
    let r = c
        .post(
            SERVICE,
            &[],
            &with(
                desk(),
                &[
                    ("pending", "true"),
                    ("action", "payment"),
                    ("amount", "abc"),
                ],
            ),
        )
        .unwrap();
    assert_eq!(r.status, 500);
    let r = c
        .post(
            SERVICE,
            &[],
            &with(
                desk(),
                &[
                    ("pending", "true"),
                    ("action", "payment"),
                    ("amount", "2.5"),
                ],
            ),
        )
        .unwrap();
    assert_eq!(r.body, "Added.");
    assert_eq!(koha.model().queue.len(), 1);
    assert_eq!(koha.model().queue[0].amount.as_deref(), Some("2.500000"));
}

#[test]
fn no_deduplication() {
    let koha = start(Profile::Legacy);
    let mut c = Client::new(&koha);
    let issue = with(
        desk(),
        &[
            ("pending", "false"),
            ("action", "issue"),
            ("cardnumber", "C0001"),
            ("barcode", "B0005"),
        ],
    );
    let pay = with(
        desk(),
        &[
            ("pending", "false"),
            ("action", "payment"),
            ("cardnumber", "C0001"),
            ("amount", "3.00"),
        ],
    );
    let queue = with(
        desk(),
        &[
            ("pending", "true"),
            ("action", "payment"),
            ("cardnumber", "C0001"),
            ("amount", "3.00"),
        ],
    );
    for _ in 0..2 {
        assert_eq!(c.post(SERVICE, &[], &issue).unwrap().body, "Success.");
        assert_eq!(c.post(SERVICE, &[], &pay).unwrap().body, "Success.");
        assert_eq!(c.post(SERVICE, &[], &queue).unwrap().body, "Added.");
    }
    let m = koha.model();
    assert_eq!(m.item("B0005").unwrap().loan.as_ref().unwrap().renewals, 1);
    assert_eq!(m.credits.len(), 2);
    assert_eq!(m.queue.len(), 2);
}

#[test]
fn faults_f1_to_f6() {
    let koha = start(Profile::Legacy);
    let issue = |n: &'static str| {
        with(
            desk(),
            &[("pending", "true"), ("action", "issue"), ("barcode", n)],
        )
    };
    let third_issue = When {
        path: Some("service.pl".into()),
        params: vec![("action".into(), "issue".into())],
        nth: Some(3),
        ..When::default()
    };
    // F2 on the third service.pl request with action=issue: processed, then no answer.
    koha.set_faults(vec![FaultRule::nth(Fault::Drop, third_issue.clone())]);
    let mut c = Client::new(&koha);
    c.post(
        SERVICE,
        &[],
        &with(desk(), &[("action", "return"), ("pending", "true")]),
    )
    .unwrap();
    assert_eq!(c.post(SERVICE, &[], &issue("1")).unwrap().body, "Added.");
    assert_eq!(c.post(SERVICE, &[], &issue("2")).unwrap().body, "Added.");
    assert!(c.post(SERVICE, &[], &issue("3")).is_err());
    assert_eq!(koha.model().queue.len(), 4, "the dropped one was stored");
    let log = koha.log();
    assert_eq!(
        (log[3].faults.clone(), log[3].processed, log[3].status),
        (vec!["F2".to_owned()], true, None)
    );
    // Once only: the next one answers, on a new connection.
    assert_eq!(c.post(SERVICE, &[], &issue("4")).unwrap().body, "Added.");
    assert_ne!(koha.log()[4].connection, log[3].connection);

    // F1: delay.
    koha.reset(Config {
        profile: Profile::Legacy,
        ..Config::default()
    });
    koha.set_faults(vec![FaultRule::nth(
        Fault::Delay { ms: 300 },
        When {
            request: Some(1),
            ..When::default()
        },
    )]);
    let t = Instant::now();
    assert_eq!(c.post(SERVICE, &[], &issue("1")).unwrap().body, "Added.");
    assert!(t.elapsed() >= Duration::from_millis(300));
    // The fault was for the first request only (how long the second took is not asserted:
    // a busy machine may be slow; the delay is a lower bound).
    c.post(SERVICE, &[], &issue("1")).unwrap();

    // F3: process, then 500 / 502.
    for status in [500, 502] {
        koha.reset(Config {
            profile: Profile::Legacy,
            ..Config::default()
        });
        koha.set_faults(vec![FaultRule::nth(
            Fault::ErrorAfterProcessing { status },
            When::default(),
        )]);
        let r = c.post(SERVICE, &[], &issue("1")).unwrap();
        assert_eq!(r.status, status);
        assert_eq!(koha.model().queue.len(), 1);
    }

    // F5: 502/503 without processing; F6: 302 to the login page without processing.
    for (fault, status) in [
        (Fault::Gateway { status: 503 }, 503),
        (Fault::Gateway { status: 502 }, 502),
        (Fault::RedirectToLogin, 302),
    ] {
        koha.reset(Config {
            profile: Profile::Legacy,
            ..Config::default()
        });
        koha.set_faults(vec![FaultRule::nth(fault, When::default())]);
        let r = c.post(SERVICE, &[], &issue("1")).unwrap();
        assert_eq!(r.status, status);
        if status == 302 {
            assert!(r
                .header("location")
                .unwrap()
                .ends_with("/cgi-bin/koha/mainpage.pl"));
        }
        assert!(koha.model().queue.is_empty());
        assert!(!koha.log()[0].processed);
    }

    // F4: this connection closes unprocessed, and new connections are refused for a while.
    koha.reset(Config {
        profile: Profile::Legacy,
        ..Config::default()
    });
    koha.set_faults(vec![FaultRule::nth(
        Fault::Refuse { ms: 400 },
        When::default(),
    )]);
    let asked = Instant::now();
    assert!(c.post(SERVICE, &[], &issue("1")).is_err());
    // The listener closed before this connection did.
    assert!(
        !connects(&koha),
        "a connection right after the close should be refused"
    );
    assert!(koha.model().queue.is_empty());
    wait_until_blocking("the listener to be back", Duration::from_secs(10), || {
        connects(&koha)
    });
    assert!(
        asked.elapsed() >= Duration::from_millis(400),
        "back too early"
    );
    assert_eq!(c.post(SERVICE, &[], &issue("1")).unwrap().body, "Added.");
}

#[test]
fn keep_alive_can_be_switched_off() {
    let koha = start(Profile::Legacy);
    let mut c = Client::new(&koha);
    c.get(AUTH, &[], &[]).unwrap();
    c.get(AUTH, &[], &[]).unwrap();
    koha.configure(|c| c.keep_alive = false);
    let r = c.get(AUTH, &[], &[]).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    c.get(AUTH, &[], &[]).unwrap();
    let conns: Vec<u64> = koha.log().iter().map(|l| l.connection).collect();
    assert_eq!(conns[0], conns[1]);
    assert_eq!(conns[1], conns[2]);
    assert_ne!(conns[2], conns[3]);
}

#[test]
fn password_check_cost_and_round_trip() {
    let koha = StandIn::start(Config {
        profile: Profile::Legacy,
        password_check_ms: 120,
        round_trip_ms: 30,
        ..Config::default()
    })
    .unwrap();
    let mut c = Client::new(&koha);
    let t = Instant::now();
    let checks = koha.password_checks();
    c.post(SERVICE, &[], &with(desk(), &[("action", "")]))
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(koha.password_checks(), checks + 1);
    // No credentials, no password check: only the round trip is paid.
    let t = Instant::now();
    c.post(SERVICE, &[], &[("action", "")]).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(koha.password_checks(), checks + 1);
}

#[test]
fn control_interface_over_http() {
    let koha = start(Profile::Newest);
    let mut c = Client::new(&koha);
    let cfg = c.control(
        "POST",
        "config",
        json!({"profile": "LEGACY", "switches": {"STRICT_SQL": true}}),
    );
    assert_eq!(
        (
            cfg["profile"].as_str(),
            cfg["switches"]["STRICT_SQL"].as_bool(),
            cfg["switches"]["CSRF"].as_bool()
        ),
        (Some("LEGACY"), Some(true), Some(true))
    );
    c.control("POST", "now", json!({"now": "2026-03-29T00:30:00Z"}));
    let body = "Version=1.0\tGenerator=test\tGeneratorVersion=1\r\n\
                2026-03-29 02:00:00 123\tissue\tC0001\tB0007\t\r\n\
                2026-03-29 01-59-00\treturn\tB0049\r\n\
                2026-03-29 03:00:00\tpayment\tC0002\t4.50\r\n\
                2026-03-29 03:00:01\tIssue\tC0002\tB0001\r\n\
                2026-03-29 03:00:02\treturn\tB0002\r\n";
    let r = c.control(
        "POST",
        "koc",
        json!({"userid": "desk", "library": "DE-627", "body": body}),
    );
    assert_eq!(r, json!({"added": 3, "warnings": [], "status": 500}));
    let r = c.control("POST", "koc", json!({"userid": "desk", "library": "DE-25", "body": "Version=2.0\n2026-03-29 04:00:00\treturn\tB0003\n"}));
    assert_eq!(r["warnings"].as_array().unwrap().len(), 1);
    let q = c.control("GET", "queue?library=DE-627", Value::Null);
    let stamps: Vec<&str> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap())
        .collect();
    assert_eq!(
        stamps,
        [
            "2026-03-29 01:59:00",
            "2026-03-29 02:00:00",
            "2026-03-29 03:00:00"
        ]
    );
    assert_eq!(q[2]["barcode"], Value::Null);
    // Processing (docs/koha.md 9.1) as a librarian of DE-627: the checkin, the stored time as local
    // time.
    let id = q[0]["operationid"].as_u64().unwrap();
    let r = c.control(
        "POST",
        "queue/process",
        json!({"operationid": id, "library": "DE-627"}),
    );
    assert_eq!(r["answer"], "Success.");
    let model = c.control("GET", "model", Value::Null);
    let closed = &model["model"]["closed_loans"][0];
    assert_eq!(
        (closed["barcode"].as_str(), closed["returned_at"].as_str()),
        (Some("B0049"), Some("2026-03-29 01:59:00"))
    );
    assert_eq!(model["model"]["queue"].as_array().unwrap().len(), 3);
    let id2 = q[1]["operationid"].as_u64().unwrap();
    assert_eq!(
        c.control("POST", "queue/delete", json!({"operationid": id2}))["answer"],
        "Deleted."
    );
    // A payment row for an unknown patron dies and stays.
    c.post(
        SERVICE,
        &[],
        &[
            ("userid", "desk"),
            ("password", "secret123"),
            ("pending", "true"),
            ("action", "payment"),
            ("cardnumber", "ghost"),
            ("amount", "1"),
            ("branchcode", "DE-627"),
        ],
    )
    .unwrap();
    let ghost = koha.model().queue.last().unwrap().operationid;
    let r = c
        .send(
            "POST",
            "/__control/queue/process",
            &[],
            &json!({"operationid": ghost, "library": "DE-627"}).to_string(),
        )
        .unwrap();
    assert_eq!(r.status, 500);
    assert!(koha.model().queue.iter().any(|r| r.operationid == ghost));
    // Faults and the log over HTTP.
    let f = c.control("POST", "faults", json!([{"when": {"path": "service.pl", "nth": 1}, "fault": {"kind": "gateway", "status": 503}}]));
    assert_eq!(f[0]["fired"], 0);
    assert_eq!(c.post(SERVICE, &[], &[("action", "")]).unwrap().status, 503);
    assert_eq!(c.control("GET", "faults", Value::Null)[0]["fired"], 1);
    let log = c.control("GET", "log", Value::Null);
    assert_eq!(
        log.as_array().unwrap().last().unwrap()["faults"],
        json!(["F5"])
    );
    assert_eq!(model["session_count"], 0);
    assert_eq!(model["failed_logins"]["desk"], 0);
    // Reset brings the fixture back.
    c.control("POST", "reset", Value::Null);
    let model = c.control("GET", "model", Value::Null);
    assert!(model["model"]["queue"].as_array().unwrap().is_empty());
    assert_eq!(model["config"]["profile"], "NEWEST");
    assert_eq!(model["model"]["items"].as_array().unwrap().len(), 50);
    assert!(c
        .control("GET", "log", Value::Null)
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn koc_import_edge_cases_and_f4_for_everyone() {
    let koha = start(Profile::Legacy);
    // A blank line in the middle stops the import with 500; earlier rows stay; a final newline is
    // fine; a trailing TAB is harmless; empty middle fields shift the others.
    let body = "Version=1.0\tGenerator=x\tGeneratorVersion=1\n2026-01-01 10:00:00\treturn\tB0001\t\n\n2026-01-01 10:00:01\treturn\tB0002\n";
    let r = koha.import_koc("desk", "DE-627", body);
    assert_eq!((r.added, r.status), (1, 500));
    let r = koha.import_koc(
        "desk",
        "DE-627",
        "Version=1.0\n2026-01-01 10:00:02\tissue\t\tB0003\n",
    );
    assert_eq!((r.added, r.status), (1, 200));
    let q = koha.model().queue;
    assert_eq!(q[0].barcode.as_deref(), Some("B0001"));
    assert_eq!(
        (q[1].cardnumber.as_deref(), q[1].barcode.as_deref()),
        (Some(""), Some("B0003"))
    );
    // No header: the first transaction is read as the header and lost, with a warning.
    let r = koha.import_koc("desk", "DE-627", "2026-01-01 10:00:03\treturn\tB0004\n");
    assert_eq!((r.added, r.warnings.len()), (0, 1));
    // A double space leaves the time empty.
    koha.import_koc(
        "desk",
        "DE-25",
        "Version=1.0\n2026-01-01  10:00:04\treturn\tB0005",
    );
    assert_eq!(koha.queue_for("DE-25")[0].timestamp, "2026-01-01 ");
    // F4 for everyone through the control interface: refused, then back.
    let mut c = Client::new(&koha);
    let asked = Instant::now();
    c.control("POST", "refuse", json!({"ms": 300}));
    // The control answer comes after the listener closed.
    assert!(!connects(&koha), "a connection should be refused");
    wait_until_blocking("the listener to be back", Duration::from_secs(10), || {
        connects(&koha)
    });
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "back too early"
    );
    c.conn = None; // a fresh connection: the listener is back
    assert_eq!(c.get(AUTH, &[], &[]).unwrap().status, 200);
}

const MAINPAGE: &str = "/cgi-bin/koha/mainpage.pl";

/// A session login through `svc/authentication` as the add-on's P2 does it (with a token first
/// where the profile hands them out): the logged-in session's cookie.
fn session_login(c: &mut Client, profile: Profile) -> String {
    let (names, headers) = if profile == Profile::Legacy {
        (("userid", "password"), Vec::new())
    } else {
        let (anon, token) = p1_token(c);
        (
            ("login_userid", "login_password"),
            vec![
                ("Cookie".to_owned(), format!("CGISESSID={anon}")),
                ("CSRF-TOKEN".to_owned(), token),
            ],
        )
    };
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let r = c
        .post(AUTH, &headers, &[(names.0, "desk"), (names.1, "secret123")])
        .unwrap();
    assert!(
        r.body.contains("<status>ok</status>"),
        "{profile:?}: {}",
        r.body
    );
    r.cookie().unwrap()
}

/// Whether a cookie alone still authenticates `service.pl` (the cookie fallback, docs/koha.md 4.3).
fn cookie_authenticates(c: &mut Client, sid: &str) -> bool {
    let r = c
        .get(
            SERVICE,
            &[("Cookie", &format!("CGISESSID={sid}"))],
            &[("action", "")],
        )
        .unwrap();
    r.status == 200 && r.body.is_empty()
}

#[test]
fn mainpage_logout_ends_the_session_named_by_the_cookie_in_every_profile() {
    for profile in [Profile::Legacy, Profile::Koha2405, Profile::Newest] {
        let koha = start(profile);
        let mut c = Client::new(&koha);
        let sid = session_login(&mut c, profile);
        assert!(koha.session_logged_in(&sid));
        assert_eq!(koha.cookie_logins("desk").len(), 1, "{profile:?}");
        assert!(cookie_authenticates(&mut c, &sid), "{profile:?}");
        let ck = format!("CGISESSID={sid}");

        // Without logout.x (or with a false one) nothing ends: the start page.
        for params in [&[][..], &[("logout.x", "0")][..], &[("logout.x", "")][..]] {
            let r = c.get(MAINPAGE, &[("Cookie", &ck)], params).unwrap();
            assert_eq!(r.status, 200);
            assert!(r.body.contains("Koha staff interface"), "{params:?}");
            assert!(koha.session_logged_in(&sid), "{profile:?} {params:?}");
        }
        // A POST is CSRF-checked like any other (24.05+ under Plack): refused without a token.
        if profile != Profile::Legacy {
            let r = c
                .post(MAINPAGE, &[("Cookie", &ck)], &[("logout.x", "1")])
                .unwrap();
            assert_eq!(r.status, 403, "{profile:?}");
            assert!(koha.session_logged_in(&sid), "{profile:?}");
        }

        // The logout the add-on sends: GET with the cookie, no token.
        let r = c
            .get(MAINPAGE, &[("Cookie", &ck)], &[("logout.x", "1")])
            .unwrap();
        assert_eq!(r.status, 200, "{profile:?}");
        assert!(r.body.contains("loginform"), "the login page: {}", r.body);
        let fresh = r.cookie().expect("a new anonymous session cookie");
        assert_ne!(fresh, sid);
        assert!(!koha.session_logged_in(&sid), "{profile:?}");
        assert!(!koha.session_logged_in(&fresh), "anonymous");
        assert!(koha.cookie_logins("desk").is_empty(), "{profile:?}");
        assert!(!cookie_authenticates(&mut c, &sid), "{profile:?}");
        let asked = c.control("GET", &format!("session?id={sid}"), Value::Null);
        assert_eq!(
            asked,
            json!({"known": false, "userid": null, "logged_in": false})
        );
        // The log shows it was processed.
        let logout = koha
            .log()
            .into_iter()
            .rfind(|r| r.path == MAINPAGE)
            .unwrap();
        assert!(logout.processed);
        assert_eq!(logout.query, "logout.x=1");

        // Logging out again (a repeated GET) is harmless.
        let r = c
            .get(MAINPAGE, &[("Cookie", &ck)], &[("logout.x", "1")])
            .unwrap();
        assert_eq!(r.status, 200);
    }
}

#[test]
fn control_session_and_logins_report_live_logged_in_sessions() {
    let koha = start(Profile::Newest);
    let mut c = Client::new(&koha);
    let sid = session_login(&mut c, Profile::Newest);
    let asked = c.control("GET", &format!("session?id={sid}"), Value::Null);
    assert_eq!(
        asked,
        json!({"known": true, "userid": "desk", "logged_in": true})
    );
    // A service.pl credential check leaves an orphan session; it is not a cookie login.
    let (anon, token) = p1_token(&mut c);
    let r = p1_post(
        &mut c,
        &(anon.clone(), token),
        &with(desk(), &[("action", "")]),
    );
    assert_eq!(r.status, 200);
    assert_eq!(koha.model().logged_in_sessions(), 2);
    let logins = c.control("GET", "logins?userid=desk", Value::Null);
    assert_eq!(logins.as_array().unwrap().len(), 1, "{logins}");
    assert_eq!(logins[0]["id"], sid.as_str());
    let asked = c.control("GET", &format!("session?id={anon}"), Value::Null);
    assert_eq!(
        asked,
        json!({"known": true, "userid": null, "logged_in": false})
    );
    // A timed-out session is no longer logged in.
    koha.set_now(Some(chrono::Utc::now() + chrono::Duration::days(2)));
    assert!(!koha.session_logged_in(&sid));
    assert!(koha.cookie_logins("desk").is_empty());
}

#[test]
fn every_answer_is_dated_by_the_standins_now() {
    use chrono::TimeZone;
    let koha = start(Profile::Newest);
    let mut c = Client::new(&koha);
    let then = chrono::Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap();
    c.control("POST", "now", json!({"now": "2026-03-29T01:30:00Z"}));
    let want = "Sun, 29 Mar 2026 01:30:00 GMT";
    assert_eq!(e2e::standin::http::http_date(then), want);
    let answers = [
        c.get(AUTH, &[], &[]).unwrap(),
        c.post(SERVICE, &[], &with(desk(), &[("action", "")]))
            .unwrap(),
        c.get(MAINPAGE, &[], &[]).unwrap(),
        c.get("/nowhere", &[], &[]).unwrap(),
        c.send("GET", "/__control/model", &[], "").unwrap(),
    ];
    for r in &answers {
        assert_eq!(r.header("date"), Some(want), "{} {}", r.status, r.body);
    }
    // The add-on's clock check reads it.
    assert_eq!(koha_offline_circ::clock::parse_http_date(want), Ok(then));
    // Back to the real clock.
    koha.set_now(None);
    let before = chrono::Utc::now().timestamp();
    let r = c.get(AUTH, &[], &[]).unwrap();
    let date = koha_offline_circ::clock::parse_http_date(r.header("date").unwrap()).unwrap();
    assert!((before - 1..=chrono::Utc::now().timestamp()).contains(&date.timestamp()));
}

#[test]
fn f7_stall_sends_the_head_and_body_then_waits_for_a_byte_more() {
    use std::io::ErrorKind;
    let koha = start(Profile::Legacy);
    koha.set_faults(vec![FaultRule {
        when: When {
            path: Some("service.pl".into()),
            ..When::default()
        },
        fault: Fault::Stall { ms: 60_000 },
        times: 0,
    }]);
    let body = form(&with(
        desk(),
        &[
            ("pending", "true"),
            ("action", "return"),
            ("barcode", "B0001"),
        ],
    ));
    let request = format!(
        "POST {SERVICE} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // The head, then the body: one byte short of the announced length.
    let read_answer = |s: &TcpStream| -> String {
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Length: 7\r\n"), "{head}");
        let mut got = vec![0; 6];
        reader.read_exact(&mut got).unwrap();
        String::from_utf8(got).unwrap()
    };

    // The client gives up first: the stand-in notices the close and ends the connection.
    let mut s = TcpStream::connect(("127.0.0.1", koha.port())).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    assert_eq!(read_answer(&s), "Added.");
    // No last byte comes.
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let err = s.read(&mut byte).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    drop(s);
    let log = koha.log();
    assert_eq!(log[0].faults, ["F7"]);
    assert_eq!(log[0].status, Some(200));
    assert!(log[0].processed, "processed before the stall");
    assert_eq!(koha.model().queue.len(), 1);

    // Or it waits out `ms`, then the stand-in closes without the last byte.
    koha.set_faults(vec![FaultRule::nth(
        Fault::Stall { ms: 200 },
        When::default(),
    )]);
    let mut s = TcpStream::connect(("127.0.0.1", koha.port())).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    assert_eq!(read_answer(&s), "Added.");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    assert_eq!(
        s.read(&mut byte).unwrap(),
        0,
        "closed, short of the announced length"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------------------
// The add-on's pure core (koha::Detector, koha::transaction_request, sync::SendRun) driven against
// the stand-in, with this file's client standing in for the browser's fetch and cookie jar.

mod core_against_standin {
    use super::*;
    use chrono::TimeZone;
    use koha_offline_circ::journal::Journal;
    use koha_offline_circ::koha::{
        self, ConnectionProblem, Credentials, DetectStep, Detection, Detector, HttpRequest, Mode,
        NoAnswer, Reply, Transport,
    };
    use koha_offline_circ::settings::{Settings, SettingsForm};
    use koha_offline_circ::sync::{Command, RunEnd, RunOptions, SendRun, Setup, StopReason};
    use koha_offline_circ::{
        Action, Amount, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId, Userid,
    };

    /// The browser: one keep-alive connection and a cookie jar for CGISESSID.
    struct Browser {
        client: Client,
        base: String,
        jar: Option<String>,
    }

    impl Browser {
        fn new(koha: &StandIn) -> Self {
            Browser {
                client: Client::new(koha),
                base: koha.base_url(),
                jar: None,
            }
        }

        fn fetch(&mut self, req: &HttpRequest) -> Reply {
            let path = req
                .url
                .strip_prefix(&self.base)
                .expect("same origin")
                .to_owned();
            let cookie = self
                .jar
                .clone()
                .filter(|_| req.include_cookies)
                .map(|c| format!("CGISESSID={c}"));
            let mut headers: Vec<(&str, &str)> = req
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            if let Some(cookie) = &cookie {
                headers.push(("Cookie", cookie));
            }
            let result = match req.body() {
                Some(body) => self
                    .client
                    .send(req.method.as_str(), &path, &headers, &body),
                None => {
                    let query = req.full_url();
                    let target = query.strip_prefix(&self.base).unwrap().to_owned();
                    self.client.send("GET", &target, &headers, "")
                }
            };
            match result {
                Ok(r) => {
                    if req.include_cookies {
                        if let Some(c) = r.cookie() {
                            self.jar = Some(c);
                        }
                    }
                    Reply::Http {
                        status: r.status,
                        csrf_token: r.header("csrf-token").map(str::to_owned),
                        date: r.header("date").map(str::to_owned),
                        body: r.body,
                    }
                }
                Err(_) => Reply::NoAnswer {
                    why: NoAnswer::Network,
                },
            }
        }

        fn detect(&mut self, base: &str, password: &str) -> Detection {
            self.detect_with(Detector::new(base, login(password)))
        }

        fn detect_with(&mut self, mut d: Detector) -> Detection {
            let mut req = d.start();
            loop {
                let reply = self.fetch(&req);
                match d.feed(reply) {
                    DetectStep::Send(next) => req = next,
                    DetectStep::Done(outcome) => return outcome,
                }
            }
        }
    }

    fn login(password: &str) -> Credentials {
        Credentials {
            userid: Userid::parse("desk").unwrap(),
            password: password.to_owned(),
        }
    }

    fn at(s: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, s).unwrap()
    }

    fn desk_transactions() -> Vec<Transaction> {
        let b = |s: &str| Barcode::parse(s).unwrap();
        let c = |s: &str| Cardnumber::parse(s).unwrap();
        let actions = [
            Action::Issue {
                cardnumber: c("C0001"),
                barcode: b("B0010"),
            },
            Action::Return {
                barcode: b("B0049"),
            },
            Action::Issue {
                cardnumber: c("nobody"),
                barcode: b("B0011"),
            },
            Action::Payment {
                cardnumber: c("C0002"),
                amount: Amount::parse("12,5").unwrap(),
            },
            Action::Return {
                barcode: b("B0012"),
            },
        ];
        actions
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let t = at(i as u32);
                Transaction::record(
                    TransactionId::new(t, i as u64),
                    t,
                    Branchcode::parse("DE-627").unwrap(),
                    a,
                )
            })
            .collect()
    }

    /// The shell's loop: performs what the core's send run asks (its own detection first),
    /// with storage that always takes the writes, and copies the outcomes back into `txs`.
    fn send_all(
        browser: &mut Browser,
        detection: &Detection,
        mode: Mode,
        txs: &mut [Transaction],
        password: &str,
    ) -> koha_offline_circ::sync::Summary {
        send_all_with(browser, detection, mode, txs, password, || {})
    }

    /// [`send_all`], calling `before_first` just before the first transaction request leaves
    /// (after the run's own detection).
    fn send_all_with(
        browser: &mut Browser,
        detection: &Detection,
        mode: Mode,
        txs: &mut [Transaction],
        password: &str,
        mut before_first: impl FnMut(),
    ) -> koha_offline_circ::sync::Summary {
        let mut first = true;
        let Detection::Works { transport, .. } = detection.clone() else {
            panic!("{detection:?}")
        };
        let settings = Settings::from_form(&SettingsForm {
            server: browser.base.clone(),
            branchcode: "DE-627".into(),
            userid: "desk".into(),
            password: password.into(),
            remember_password: true,
            mode: match mode {
                Mode::Queue => "queue",
                Mode::Apply => "apply",
            }
            .into(),
            timezone: "Europe/Berlin".into(),
            login_once: transport == Transport::P2,
            ..SettingsForm::default()
        })
        .unwrap();
        let mut journal = Journal::from_transactions(txs.to_vec());
        let setup = Setup {
            settings: Some(settings),
            host_permission: true,
            session_password: None,
            // The test's clock is not the stand-in's; the clock check has tests of its own.
            options: RunOptions {
                allow_get: transport == Transport::G,
                clock_confirmed: true,
                ..RunOptions::default()
            },
        };
        let (mut run, mut command) = SendRun::start(setup, &journal, at(49));
        let summary = loop {
            command = match command {
                Command::Finish(RunEnd::Ran(summary)) => break summary,
                Command::Finish(other) => panic!("the run did not run: {other:?}"),
                // This driver answers each request before asking for more: nothing to wait for.
                Command::Wait => unreachable!("a run waited with nothing outstanding"),
                Command::Mirror(_) => run
                    .as_mut()
                    .unwrap()
                    .mirrored(true, &mut journal, at(50))
                    .unwrap(),
                Command::Perform { id, request, .. } => {
                    if first && request.as_ref().is_some_and(is_transaction) {
                        first = false;
                        before_first();
                    }
                    let reply = request.map(|r| browser.fetch(&r));
                    run.as_mut()
                        .unwrap()
                        .performed(id, Ok(()), reply, &mut journal, at(51))
                        .unwrap()
                }
            };
        };
        for tx in txs.iter_mut() {
            *tx = journal.get(&tx.id).unwrap().clone();
        }
        summary
    }

    /// "Test connection" with log-in-once, run by the core's `ConnectionTest` against each
    /// profile: it logs in (P2), then ends that session, so the cookie the browser keeps no
    /// longer authenticates anything; and the report carries the clock check.
    #[test]
    fn connection_test_ends_the_session_it_logged_in_and_checks_the_clock() {
        use koha_offline_circ::clock::ClockCheck;
        use koha_offline_circ::settings::connection::{ConnectionTest, TestOutcome, TestStep};
        use koha_offline_circ::settings::KohaUrl;
        for profile in [Profile::Legacy, Profile::Koha2405, Profile::Newest] {
            let koha = start(profile);
            // Koha's clock 10 minutes ahead of this machine's.
            koha.set_now(Some(chrono::Utc::now() + chrono::Duration::minutes(10)));
            let mut browser = Browser::new(&koha);
            let server = KohaUrl::parse(&koha.base_url()).unwrap();
            let mut test = ConnectionTest::new(&server, login("secret123"), true);
            let mut request = test.start();
            let mut sent = Vec::new();
            let report = loop {
                sent.push(request.clone());
                let at = chrono::Utc::now();
                let reply = browser.fetch(&request);
                match test.feed(reply, at, chrono::Utc::now()) {
                    TestStep::Send(next) => request = next,
                    TestStep::Done(report) => break report,
                }
            };
            assert_eq!(
                report.outcome,
                TestOutcome::Works(Transport::P2),
                "{profile:?}"
            );
            assert_eq!(sent.last(), Some(&koha::logout_request(&koha.base_url())));
            let jar = browser.jar.clone().expect("a cookie");
            assert!(!koha.session_logged_in(&jar), "{profile:?}");
            assert!(koha.cookie_logins("desk").is_empty(), "{profile:?}");
            assert!(
                !cookie_authenticates(&mut browser.client, &jar),
                "{profile:?}"
            );
            match report.clock {
                ClockCheck::DeskBehind { by, .. } => {
                    assert!((9..=10).contains(&by.num_minutes()), "{by:?}");
                }
                other => panic!("{profile:?}: {other:?}"),
            }
        }
    }

    fn is_transaction(request: &HttpRequest) -> bool {
        request.param("action").is_some_and(|a| !a.is_empty())
    }

    #[test]
    fn detection_per_profile() {
        type Case = (Profile, fn(&mut Config), Detection);
        let cases: Vec<Case> = vec![
            (
                Profile::Newest,
                |_| {},
                Detection::Works {
                    transport: Transport::P1,
                    token: None,
                },
            ),
            (
                Profile::Koha2405,
                |_| {},
                Detection::Works {
                    transport: Transport::P1,
                    token: None,
                },
            ),
            (
                Profile::Legacy,
                |_| {},
                Detection::Works {
                    transport: Transport::P3,
                    token: None,
                },
            ),
            (
                Profile::Koha2405,
                |c| c.switches.auth_token_header = false,
                Detection::Problem(ConnectionProblem::NeedsGetConsent),
            ),
            (
                Profile::Koha2405,
                |c| {
                    c.switches.auth_token_header = false;
                    c.switches.csrf = false
                },
                Detection::Works {
                    transport: Transport::P3,
                    token: None,
                },
            ),
        ];
        for (profile, tweak, want) in cases {
            let koha = start(profile);
            koha.configure(tweak);
            let mut browser = Browser::new(&koha);
            let got = browser.detect(&koha.base_url(), "secret123");
            let got = match got {
                Detection::Works { transport, token } => {
                    assert_eq!(token.is_some(), transport == Transport::P1, "{profile:?}");
                    Detection::Works {
                        transport,
                        token: None,
                    }
                }
                other => other,
            };
            assert_eq!(got, want, "{profile:?}");
            // The probe changed nothing.
            let m = koha.model();
            assert!(m.queue.is_empty() && m.closed_loans.is_empty() && m.credits.is_empty());
            assert!(koha
                .service_requests()
                .iter()
                .all(|r| r.param("pending").is_none() && r.param("timestamp").is_none()));
        }
    }

    #[test]
    fn detection_problems_against_the_standin() {
        for profile in [Profile::Legacy, Profile::Koha2405, Profile::Newest] {
            let koha = start(profile);
            let mut browser = Browser::new(&koha);
            assert_eq!(
                browser.detect(&koha.base_url(), "wrong"),
                Detection::Problem(ConnectionProblem::WrongCredentials),
                "{profile:?}"
            );
            assert_eq!(
                koha.model().account("desk").unwrap().failed_logins,
                1,
                "one check only"
            );
            assert_eq!(
                browser.detect(&format!("{}/prefix", koha.base_url()), "secret123"),
                Detection::Problem(ConnectionProblem::NotFound)
            );
        }
        let koha = start(Profile::Newest);
        let base = koha.base_url();
        let mut browser = Browser::new(&koha);
        koha.set_faults(vec![FaultRule {
            when: When::default(),
            fault: Fault::Gateway { status: 503 },
            times: 0,
        }]);
        assert_eq!(
            browser.detect(&base, "secret123"),
            Detection::Problem(ConnectionProblem::ServerError { http_status: 503 })
        );
        drop(koha);
        assert_eq!(
            browser.detect(&base, "secret123"),
            Detection::Problem(ConnectionProblem::Unreachable)
        );
    }

    #[test]
    fn every_profile_in_both_modes() {
        for profile in [Profile::Legacy, Profile::Koha2405, Profile::Newest] {
            for mode in [Mode::Queue, Mode::Apply] {
                let koha = start(profile);
                let mut browser = Browser::new(&koha);
                let detection = browser.detect(&koha.base_url(), "secret123");
                let mut txs = desk_transactions();
                let summary = send_all(&mut browser, &detection, mode, &mut txs, "secret123");
                let statuses: Vec<Status> = txs.iter().map(|t| t.status().clone()).collect();
                let sent: Vec<_> = koha
                    .service_requests()
                    .into_iter()
                    .filter(|r| r.param("action").is_some_and(|a| !a.is_empty()))
                    .collect();
                assert_eq!(sent.len(), 5, "{profile:?} {mode:?}");
                // Exactly what arrived: both credential pairs, nocookie, pending, UTC timestamps.
                for (req, tx) in sent.iter().zip(&txs) {
                    assert_eq!(req.method, "POST");
                    assert_eq!(req.param("login_userid"), Some("desk"));
                    assert_eq!(req.param("password"), Some("secret123"));
                    assert_eq!(req.param("nocookie"), Some("1"));
                    assert_eq!(req.param("branchcode"), Some("DE-627"));
                    assert_eq!(
                        req.param("pending"),
                        Some(if mode == Mode::Queue { "true" } else { "false" })
                    );
                    assert_eq!(req.param("action"), Some(tx.action.koha_name()));
                    assert_eq!(
                        req.param("timestamp"),
                        Some(koha::koha_timestamp(tx.recorded_at).as_str())
                    );
                    if profile != Profile::Legacy {
                        assert!(
                            req.header("csrf-token").is_some(),
                            "no POST without a token"
                        );
                    }
                }
                assert_eq!(sent[3].param("amount"), Some("12.50"));
                match mode {
                    Mode::Queue => {
                        assert!(
                            statuses.iter().all(|s| *s == Status::Queued),
                            "{statuses:?}"
                        );
                        assert_eq!(summary.queued, 5);
                        let q = koha.model().queue;
                        assert_eq!(q.len(), 5);
                        // 09:00 UTC is 10:00 in Berlin.
                        assert_eq!(q[0].timestamp, "2026-01-15 10:00:00");
                        assert_eq!(q[3].amount.as_deref(), Some("12.500000"));
                    }
                    Mode::Apply => {
                        assert_eq!(
                            statuses,
                            vec![
                                Status::Applied,
                                Status::Applied,
                                Status::Rejected {
                                    message: "Borrower not found.".into()
                                },
                                Status::Applied,
                                Status::Rejected {
                                    message: "Item not issued.".into()
                                },
                            ],
                            "{profile:?}"
                        );
                        assert_eq!((summary.applied, summary.rejected.len()), (3, 2));
                        let m = koha.model();
                        assert_eq!(
                            m.item("B0010").unwrap().loan.as_ref().unwrap().issued_at,
                            "2026-01-15 10:00:00"
                        );
                        assert_eq!(m.credits.len(), 1);
                        assert_eq!(m.closed_loans.len(), 1);
                    }
                }
                assert_eq!(summary.stopped, Some(StopReason::Finished));
            }
        }
    }

    #[test]
    fn dropped_third_operation_is_uncertain_and_never_duplicated() {
        for profile in [Profile::Legacy, Profile::Newest] {
            let koha = start(profile);
            let mut browser = Browser::new(&koha);
            let detection = browser.detect(&koha.base_url(), "secret123");
            koha.set_faults(vec![FaultRule::nth(
                Fault::Drop,
                When {
                    path: Some("service.pl".into()),
                    params: vec![("pending".into(), "true".into())],
                    nth: Some(3),
                    ..When::default()
                },
            )]);
            let mut txs = desk_transactions();
            let summary = send_all(&mut browser, &detection, Mode::Queue, &mut txs, "secret123");
            let names: Vec<&str> = txs.iter().map(|t| t.status().name()).collect();
            assert_eq!(
                names,
                ["queued", "queued", "uncertain", "local", "local"],
                "{profile:?}"
            );
            assert_eq!(
                (summary.stopped, summary.uncertain, summary.not_sent),
                (Some(StopReason::Network), 1, 2)
            );
            assert_eq!(koha.model().queue.len(), 3, "the third was stored");
            // Sending again: only the two unsent ones go; nothing is duplicated.
            let detection = browser.detect(&koha.base_url(), "secret123");
            let summary = send_all(&mut browser, &detection, Mode::Queue, &mut txs, "secret123");
            assert_eq!(summary.queued, 2);
            let q = koha.model().queue;
            assert_eq!(q.len(), 5);
            let mut keys: Vec<_> = q
                .iter()
                .map(|r| (r.timestamp.clone(), r.action.clone()))
                .collect();
            keys.dedup();
            assert_eq!(keys.len(), 5, "no duplicate rows");
            assert_eq!(txs[2].status().name(), "uncertain");
        }
    }

    #[test]
    fn wrong_password_stops_at_the_first_request() {
        let koha = start(Profile::Koha2405);
        let mut browser = Browser::new(&koha);
        let detection = browser.detect(&koha.base_url(), "secret123");
        let mut txs = desk_transactions();
        // The password is changed in Koha after the run's detection, before its first request.
        let summary = send_all_with(
            &mut browser,
            &detection,
            Mode::Apply,
            &mut txs,
            "secret123",
            || koha.state().model.accounts[0].password = "changed".into(),
        );
        let names: Vec<&str> = txs.iter().map(|t| t.status().name()).collect();
        assert_eq!(names, ["failed", "local", "local", "local", "local"]);
        assert_eq!(summary.stopped, Some(StopReason::Authentication));
        assert_eq!(
            koha.service_requests().len(),
            3,
            "the test's probe, the run's probe, one"
        );
        assert_eq!(koha.model().account("desk").unwrap().failed_logins, 1);
    }

    #[test]
    fn a_lost_csrf_session_is_refreshed_once() {
        let koha = start(Profile::Newest);
        let mut browser = Browser::new(&koha);
        let detection = browser.detect(&koha.base_url(), "secret123");
        let mut txs = desk_transactions();
        // The anonymous session behind the run's token disappears (e.g. cleaned up by Koha).
        let summary = send_all_with(
            &mut browser,
            &detection,
            Mode::Queue,
            &mut txs,
            "secret123",
            || koha.state().model.sessions.retain(|s| s.userid.is_some()),
        );
        assert_eq!(
            (summary.queued, summary.stopped),
            (5, Some(StopReason::Finished))
        );
        let statuses: Vec<Option<u16>> = koha.service_requests().iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                Some(200),
                Some(200),
                Some(403),
                Some(200),
                Some(200),
                Some(200),
                Some(200),
                Some(200)
            ]
        );
        assert_eq!(koha.model().queue.len(), 5);
        let auth = koha
            .log()
            .iter()
            .filter(|r| r.path.ends_with("authentication"))
            .count();
        assert_eq!(auth, 3, "the test's detection, the run's, one refresh");
    }

    #[test]
    fn session_reuse_costs_one_password_check_per_batch() {
        for profile in [Profile::Legacy, Profile::Koha2405, Profile::Newest] {
            for mode in [Mode::Queue, Mode::Apply] {
                let koha = start(profile);
                let mut browser = Browser::new(&koha);
                let base = koha.base_url();
                let detection = browser
                    .detect_with(Detector::new(&base, login("secret123")).with_session_reuse());
                let Detection::Works { transport, token } = &detection else {
                    panic!("{detection:?}")
                };
                assert_eq!(*transport, Transport::P2, "{profile:?}");
                assert_eq!(token.is_some(), profile != Profile::Legacy);
                let mut txs = desk_transactions();
                let checks_before = koha.password_checks();
                let summary = send_all(&mut browser, &detection, mode, &mut txs, "secret123");
                assert_eq!(summary.stopped, Some(StopReason::Finished));
                assert_eq!(
                    summary.queued + summary.applied + summary.rejected.len(),
                    5,
                    "{profile:?} {mode:?}"
                );
                // The run's probe and session login; none per transaction.
                assert_eq!(
                    koha.password_checks() - checks_before,
                    2,
                    "{profile:?} {mode:?}"
                );
                let sent = koha.service_requests();
                for r in sent
                    .iter()
                    .filter(|r| r.param("action").is_some_and(|a| !a.is_empty()))
                {
                    assert_eq!(r.param("password"), None);
                    assert_eq!(r.param("login_password"), None);
                    assert_eq!(r.param("userid"), Some("desk"));
                    assert_eq!(r.header("csrf-token").is_some(), profile != Profile::Legacy);
                }
                if mode == Mode::Apply {
                    // Recorded at the session's library.
                    assert_eq!(
                        koha.model()
                            .item("B0010")
                            .unwrap()
                            .loan
                            .as_ref()
                            .unwrap()
                            .library,
                        "DE-627"
                    );
                } else {
                    assert!(koha.model().queue.iter().all(|r| r.userid == "desk"));
                }
            }
        }
        // Without edit_catalogue: P1 stays, one check per transaction.
        let koha = start(Profile::Newest);
        koha.state().model.accounts[0].permission = e2e::standin::Permission::None;
        let mut browser = Browser::new(&koha);
        let detection = browser
            .detect_with(Detector::new(&koha.base_url(), login("secret123")).with_session_reuse());
        assert!(
            matches!(
                detection,
                Detection::Works {
                    transport: Transport::P1,
                    ..
                }
            ),
            "{detection:?}"
        );
        // The detection above: the probe and the refused session login.
        assert_eq!(koha.password_checks(), 1 + 1);
        let mut txs = desk_transactions();
        send_all(&mut browser, &detection, Mode::Queue, &mut txs, "secret123");
        // The run's probe, then one check per transaction.
        assert_eq!(koha.password_checks(), 2 + 1 + 5);
    }
}
