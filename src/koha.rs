//! Koha's `service.pl` and `svc/authentication` protocol: requests to build and answers to classify.
//!
//! Everything here is pure: the shell executes the [`HttpRequest`]s built here and feeds the
//! answers back ([`classify`], [`classify_no_answer`], [`Detector::feed`]). Section numbers refer to
//! `koha-protocol.md`.

use crate::ids::{Branchcode, Userid};
use crate::kinds::kinds;
use crate::transaction::{FailReason, Status, Transaction, UncertainReason};
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Path of the offline circulation service under the staff interface origin.
pub const SERVICE_PATH: &str = "/cgi-bin/koha/offline_circ/service.pl";
/// Path of the login helper that also hands out a `CSRF-TOKEN` on 24.05+.
pub const AUTH_PATH: &str = "/cgi-bin/koha/svc/authentication";
/// Path of the staff interface's start page, which also ends a staff session (see
/// [`logout_request`]).
pub const MAINPAGE_PATH: &str = "/cgi-bin/koha/mainpage.pl";
/// The header carrying the CSRF token (Koha reads its name case-insensitively).
pub const CSRF_HEADER: &str = "CSRF-TOKEN";
/// Suggested client timeout for one request, in seconds (§2.7).
pub const REQUEST_TIMEOUT_SECS: u32 = 60;

/// The client time-out for one request, in milliseconds: [`REQUEST_TIMEOUT_SECS`], or a shorter
/// one a test asked for (`test_override`, the text of a test-only setting). The override is used
/// only when it is a whole number from 1 to the default: it can make the time-out shorter, never
/// longer or absent.
pub fn request_timeout_ms(test_override: Option<&str>) -> u32 {
    let default = REQUEST_TIMEOUT_SECS * 1000;
    test_override
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|ms| (1..=default).contains(ms))
        .unwrap_or(default)
}

/// A Koha login. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The login name; also sent as the operator (`userid`).
    pub userid: Userid,
    /// The password, verbatim (not trimmed).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("userid", &self.userid)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// How requests reach `service.pl` (§2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Transport {
    /// 24.05+: a token from a credential-less `GET svc/authentication`, then per transaction a POST
    /// with that cookie, the `CSRF-TOKEN` header, both credential pairs and `nocookie=1`.
    P1,
    /// KOCT's flow: a session login through `POST svc/authentication`, then POSTs with that session
    /// (and its token on 24.05+) and no password: one password check per batch instead of one per
    /// transaction. Needs `edit_catalogue`; replaces the librarian's session in the browser.
    P2,
    /// ≤23.11 and 24.05+ without Plack: POST with both credential pairs and `nocookie=1`, no token.
    P3,
    /// GET with everything in the query. Last resort: only with the librarian's consent.
    G,
}

kinds!(Transport: name, NAMES {
    P1 => "P1",
    P2 => "P2",
    P3 => "P3",
    G => "G",
});

impl Transport {
    /// Whether requests carry the session cookie and (when Koha gave one) a CSRF token (P1, P2).
    pub fn uses_token(self) -> bool {
        matches!(self, Transport::P1 | Transport::P2)
    }

    /// The HTTP method used for `service.pl`.
    pub fn method(self) -> Method {
        match self {
            Transport::G => Method::Get,
            _ => Method::Post,
        }
    }
}

/// HTTP methods the add-on uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET: parameters in the query string.
    Get,
    /// POST: parameters in an urlencoded body.
    Post,
}

impl Method {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request for the shell to execute: `fetch` with `cache: "no-store"`, `redirect: "manual"`,
/// `credentials: "include"` when [`HttpRequest::include_cookies`] is set, else `"omit"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// GET or POST.
    pub method: Method,
    /// Server base plus path, without a query string.
    pub url: String,
    /// The parameters, in order: the body for POST, the query for GET.
    pub params: Vec<(String, String)>,
    /// Extra request headers (the CSRF token), in order.
    pub headers: Vec<(String, String)>,
    /// Send and store the browser's cookies for the Koha origin.
    pub include_cookies: bool,
}

impl HttpRequest {
    /// The parameters form-encoded (see [`form_encode`]).
    pub fn encoded_params(&self) -> String {
        form_encode(&self.params)
    }

    /// The URL to fetch: for GET with a non-empty query, `url?query`.
    pub fn full_url(&self) -> String {
        match self.method {
            Method::Get if !self.params.is_empty() => {
                format!("{}?{}", self.url, self.encoded_params())
            }
            _ => self.url.clone(),
        }
    }

    /// The body for POST (`application/x-www-form-urlencoded`), none for GET.
    pub fn body(&self) -> Option<String> {
        match self.method {
            Method::Post => Some(self.encoded_params()),
            Method::Get => None,
        }
    }

    /// The value of the first parameter with this name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Content type of a POST body built here.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Form-encodes one name or value: UTF-8 bytes, `A–Z a–z 0–9 - . _ *` kept, space as `+`,
/// everything else (including `+`, `&`, `=`, `%`) as `%XX` with upper-case hex.
pub fn form_encode_component(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
    out
}

/// Form-encodes name/value pairs as `name=value&name=value`, in order.
pub fn form_encode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(n, v)| format!("{}={}", form_encode_component(n), form_encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether the transaction goes to Koha's queue (`pending=true`) or is applied at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `pending=true`: Koha stores a queue row and answers `Added.`.
    Queue,
    /// `pending=false`: Koha applies it and answers `Success.` or a rejection.
    Apply,
}

/// A request needs something the caller did not supply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// P1 needs the CSRF token from `svc/authentication`.
    #[error("transport {transport} needs a CSRF token")]
    MissingToken {
        /// The transport asked for.
        transport: &'static str,
    },
}

impl RequestError {
    /// Stable kind: `missing-token`.
    pub fn kind(&self) -> &'static str {
        "missing-token"
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// `GET svc/authentication` without credentials (detection step 1, and a token refresh). Cookies
/// are included so that the session Koha sets is the one the token belongs to.
pub fn auth_probe_request(base: &str) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url: format!("{base}{AUTH_PATH}"),
        params: Vec::new(),
        headers: Vec::new(),
        include_cookies: true,
    }
}

/// P2's login: `POST svc/authentication` with the cookie and token of [`auth_probe_request`]
/// (24.05+; no token on ≤23.11) and both credential pairs (plus `branch` when given). Koha answers
/// with a new session cookie and, on 24.05+, a new `CSRF-TOKEN`; see [`interpret_session_login`].
pub fn session_login_request(
    base: &str,
    creds: &Credentials,
    token: Option<&str>,
    branch: Option<&Branchcode>,
) -> HttpRequest {
    let mut params = pairs(&[
        ("login_userid", creds.userid.as_str()),
        ("login_password", &creds.password),
        ("userid", creds.userid.as_str()),
        ("password", &creds.password),
    ]);
    if let Some(branch) = branch {
        params.push(("branch".to_owned(), branch.as_str().to_owned()));
    }
    HttpRequest {
        method: Method::Post,
        url: format!("{base}{AUTH_PATH}"),
        params,
        headers: token
            .filter(|t| !t.is_empty())
            .map(|t| vec![(CSRF_HEADER.to_owned(), t.to_owned())])
            .unwrap_or_default(),
        include_cookies: true,
    }
}

/// Ends the Koha staff session named by the browser's `CGISESSID` cookie: `GET mainpage.pl` with
/// `logout.x=1`, cookies included, no token. Send it after a session login (P2) succeeded, once
/// the session is no longer needed, so that nobody opening the staff interface in this browser
/// afterwards is logged in as the desk's account. The answer (Koha's login page) does not matter.
///
/// What it relies on in Koha:
/// - every staff page authenticates through `C4::Auth::checkauth`, which reads the parameter
///   `logout.x` whatever the method; when it is true it deletes the session named by the
///   `CGISESSID` cookie, clears the user environment and answers with the login page (and a new
///   anonymous session cookie). This is so from 3.x through 23.11, 24.05, 24.11 and main, and the
///   staff interface's own "Log out" link is still exactly `mainpage.pl?logout.x=1`;
/// - on 24.05+ under Plack the CSRF middleware lets a GET through unless its `op` starts with
///   `cud-`, so no token is needed (and no `op` is sent). A POST would need a token and gains
///   nothing, and no version has a `cud-logout` operation for the staff interface;
/// - a GET that is repeated (Firefox re-sends a GET whose connection dropped) is harmless: the
///   second one finds no session to delete.
///
/// It must not be sent when the add-on did not log in itself: the cookie may then be the
/// librarian's own session (a P1 token probe uses whatever session the browser has).
pub fn logout_request(base: &str) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url: format!("{base}{MAINPAGE_PATH}"),
        params: pairs(&[("logout.x", "1")]),
        headers: Vec::new(),
        include_cookies: true,
    }
}

/// The common start of every `service.pl` request: credentials per transport (§2.7).
fn service_request(
    base: &str,
    transport: Transport,
    creds: &Credentials,
    token: Option<&str>,
) -> Result<HttpRequest, RequestError> {
    let login = creds.userid.as_str();
    let password = creds.password.as_str();
    let params = match transport {
        Transport::P2 => pairs(&[("userid", login)]),
        _ => pairs(&[
            ("login_userid", login),
            ("login_password", password),
            ("userid", login),
            ("password", password),
            ("nocookie", "1"),
        ]),
    };
    let token = token.filter(|t| !t.is_empty());
    let headers = match (transport, token) {
        (Transport::P1 | Transport::P2, Some(token)) => {
            vec![(CSRF_HEADER.to_owned(), token.to_owned())]
        }
        // P2 on ≤23.11 (or without Plack) has a session but no token.
        (Transport::P2, None) | (Transport::P3 | Transport::G, _) => Vec::new(),
        (Transport::P1, None) => {
            return Err(RequestError::MissingToken {
                transport: transport.name(),
            })
        }
    };
    Ok(HttpRequest {
        method: transport.method(),
        url: format!("{base}{SERVICE_PATH}"),
        params,
        headers,
        include_cookies: transport.uses_token(),
    })
}

/// The probe (§2.6 step 2): credentials and an empty `action`, no `pending`, no `timestamp`. Koha
/// authenticates it, changes nothing and answers an empty 200. `token` is required for P1, and
/// sent with P2 when Koha gave one.
pub fn service_probe_request(
    base: &str,
    transport: Transport,
    creds: &Credentials,
    token: Option<&str>,
) -> Result<HttpRequest, RequestError> {
    let mut request = service_request(base, transport, creds, token)?;
    request.params.push(("action".to_owned(), String::new()));
    Ok(request)
}

/// One transaction for `service.pl`, parameters exactly as §2.7: credentials per transport,
/// `branchcode` from the transaction, `branch` only when given (a desk library validated against
/// Koha's list), `pending`, `action`, `timestamp` (the recording instant in UTC,
/// `YYYY-MM-DD HH:MM:SS`), then `barcode`, `cardnumber` and `amount` where the action has them.
pub fn transaction_request(
    base: &str,
    transport: Transport,
    creds: &Credentials,
    token: Option<&str>,
    branch: Option<&Branchcode>,
    mode: Mode,
    tx: &Transaction,
) -> Result<HttpRequest, RequestError> {
    let mut request = service_request(base, transport, creds, token)?;
    let mut push = |name: &str, value: String| request.params.push((name.to_owned(), value));
    push("branchcode", tx.branchcode.as_str().to_owned());
    if let Some(branch) = branch {
        push("branch", branch.as_str().to_owned());
    }
    push(
        "pending",
        match mode {
            Mode::Queue => "true",
            Mode::Apply => "false",
        }
        .to_owned(),
    );
    push("action", tx.action.koha_name().to_owned());
    push("timestamp", koha_timestamp(tx.recorded_at));
    if let Some(barcode) = tx.action.barcode() {
        push("barcode", barcode.as_str().to_owned());
    }
    if let Some(cardnumber) = tx.action.cardnumber() {
        push("cardnumber", cardnumber.as_str().to_owned());
    }
    if let Some(amount) = tx.action.amount() {
        push("amount", amount.to_string());
    }
    Ok(request)
}

/// The instant as `service.pl` wants it: UTC, `YYYY-MM-DD HH:MM:SS`, whole seconds (§5.1).
pub fn koha_timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    crate::zone::local_text(at.naive_utc(), "-", " ", ":")
}

/// The four messages with which Koha refuses a direct transaction and changes nothing (C3).
pub const REJECTIONS: [&str; 4] = [
    "Item not found.",
    "Item not issued.",
    "Barcode not found.",
    "Borrower not found.",
];

/// What an answer from `service.pl` means (§3.2). Each variant names its rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum Answer {
    /// C1: 200 `Added.`.
    Queued,
    /// C2: 200 `Success.`.
    Applied,
    /// C3: 200 with one of [`REJECTIONS`]; Koha changed nothing.
    Rejected {
        /// Koha's message, trimmed.
        message: String,
    },
    /// C4: 200 with an empty body (an unknown action; a bug on our side).
    Empty,
    /// C5: 200 `Authentication failed.`, any 401 or 403. Nothing was applied.
    AuthProblem {
        /// The HTTP status (200, 401 or 403).
        http_status: u16,
    },
    /// C6: 3xx, 404, 405, 414 or another 4xx: a wrong URL or a gateway. Nothing was applied.
    Misdirected {
        /// The HTTP status.
        http_status: u16,
    },
    /// C7: 5xx, or 200 with any other body. Maybe applied.
    ServerError {
        /// The HTTP status.
        http_status: u16,
    },
    /// C8: no HTTP answer (refused, reset, DNS, TLS, offline). Maybe applied.
    NetworkError,
    /// C9: the client gave up waiting. Maybe applied.
    Timeout,
}

/// After an answer: go on with the next transaction or stop the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// C1 to C4.
    Continue,
    /// C5 to C9.
    Stop,
}

/// Why no HTTP answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoAnswer {
    /// Refused, reset, DNS, TLS or offline: C8.
    Network,
    /// The client timed out: C9.
    Timeout,
}

fn trim_ascii(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// Classifies an HTTP answer from `service.pl` by C1 to C7. The body is trimmed of ASCII
/// whitespace and compared exactly, whatever the mode and the content type.
pub fn classify(http_status: u16, content_type: &str, body: &str) -> Answer {
    // The content type does not change the class (§3.2: classify by the body).
    let _ = content_type;
    let text = trim_ascii(body);
    match http_status {
        200 => match text {
            "Added." => Answer::Queued,
            "Success." => Answer::Applied,
            "" => Answer::Empty,
            "Authentication failed." => Answer::AuthProblem { http_status },
            t if REJECTIONS.contains(&t) => Answer::Rejected {
                message: t.to_owned(),
            },
            _ => Answer::ServerError { http_status },
        },
        401 | 403 => Answer::AuthProblem { http_status },
        300..=499 => Answer::Misdirected { http_status },
        // 5xx, and anything else odd (1xx, other 2xx, beyond 599): the server did something
        // unexpected, so the request may have been processed.
        _ => Answer::ServerError { http_status },
    }
}

/// Classifies whatever the shell got for a `service.pl` request (C1 to C9).
pub fn classify_reply(reply: &Reply) -> Answer {
    match reply {
        Reply::Http {
            status,
            content_type,
            body,
            ..
        } => classify(*status, content_type, body),
        Reply::NoAnswer { why, .. } => classify_no_answer(*why),
    }
}

/// Classifies a request that got no HTTP answer (C8, C9).
pub fn classify_no_answer(why: NoAnswer) -> Answer {
    match why {
        NoAnswer::Network => Answer::NetworkError,
        NoAnswer::Timeout => Answer::Timeout,
    }
}

impl Answer {
    /// The rule of §3.2: `C1` to `C9`.
    pub fn rule(&self) -> &'static str {
        match self {
            Answer::Queued => "C1",
            Answer::Applied => "C2",
            Answer::Rejected { .. } => "C3",
            Answer::Empty => "C4",
            Answer::AuthProblem { .. } => "C5",
            Answer::Misdirected { .. } => "C6",
            Answer::ServerError { .. } => "C7",
            Answer::NetworkError => "C8",
            Answer::Timeout => "C9",
        }
    }

    /// The transaction's status after this answer. Reasons are stable kinds:
    /// failed `authentication`, `csrf` (403) or `configuration`; uncertain `server-error`,
    /// `unexpected-answer` (200 with another body), `connection-lost` or `timeout`.
    pub fn outcome(&self) -> Status {
        let failed = |reason| Status::Failed { reason };
        let uncertain = |reason| Status::Uncertain { reason };
        match self {
            Answer::Queued => Status::Queued,
            Answer::Applied => Status::Applied,
            Answer::Rejected { message } => Status::Rejected {
                message: message.clone(),
            },
            Answer::Empty => Status::Rejected {
                message: String::new(),
            },
            Answer::AuthProblem { http_status: 403 } => failed(FailReason::Csrf),
            Answer::AuthProblem { .. } => failed(FailReason::Authentication),
            Answer::Misdirected { .. } => failed(FailReason::Configuration),
            Answer::ServerError { http_status: 200 } => {
                uncertain(UncertainReason::UnexpectedAnswer)
            }
            Answer::ServerError { .. } => uncertain(UncertainReason::ServerError),
            Answer::NetworkError => uncertain(UncertainReason::ConnectionLost),
            Answer::Timeout => uncertain(UncertainReason::Timeout),
        }
    }

    /// Continue after C1 to C4, stop after C5 to C9 (§3.3 rule 4).
    pub fn flow(&self) -> Flow {
        match self {
            Answer::Queued | Answer::Applied | Answer::Rejected { .. } | Answer::Empty => {
                Flow::Continue
            }
            _ => Flow::Stop,
        }
    }

    /// A 403: with P1 or P2 the token may be stale; nothing was applied, so one token refresh and
    /// one retry of the same transaction are allowed.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Answer::AuthProblem { http_status: 403 })
    }
}

/// Maps Koha's exact answer texts to stable i18n keys (the UI translates; §3.3 rule 6).
/// Returns `None` for any other text.
pub fn message_key(koha_text: &str) -> Option<&'static str> {
    MESSAGE_KEYS
        .iter()
        .find(|(text, _)| *text == koha_text)
        .map(|(_, key)| *key)
}

/// Koha's answer texts that [`message_key`] knows, each with its key.
pub const MESSAGE_KEYS: &[(&str, &str)] = &[
    ("Borrower not found.", "koha-borrower-not-found"),
    ("Barcode not found.", "koha-barcode-not-found"),
    ("Item not found.", "koha-item-not-found"),
    ("Item not issued.", "koha-item-not-issued"),
    ("Added.", "koha-added"),
    ("Success.", "koha-success"),
    ("Authentication failed.", "koha-authentication-failed"),
    ("", "koha-empty-answer"),
];

/// The `<status>` of a `svc/authentication` answer (§2.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthStatus {
    /// `ok`: logged in.
    Ok,
    /// `failed`: no, wrong or locked credentials, or a missing permission.
    Failed,
    /// `anon`: the cookie names an anonymous session.
    Anon,
    /// `expired`: the cookie names an unknown or timed-out session.
    Expired,
    /// `maintenance`.
    Maintenance,
    /// `restricted`.
    Restricted,
    /// `password_expired`.
    PasswordExpired,
    /// `additional-auth-needed`.
    AdditionalAuthNeeded,
    /// Any other text, verbatim.
    Other(String),
}

/// Reads the status of a `svc/authentication` XML answer, whatever its whitespace. `None` when
/// there is no `<status>` element.
pub fn parse_auth_status(xml_body: &str) -> Option<AuthStatus> {
    let start = xml_body.find("<status>")? + "<status>".len();
    let len = xml_body[start..].find("</status>")?;
    let text = trim_ascii(&xml_body[start..start + len]);
    Some(match text {
        "ok" => AuthStatus::Ok,
        "failed" => AuthStatus::Failed,
        "anon" => AuthStatus::Anon,
        "expired" => AuthStatus::Expired,
        "maintenance" => AuthStatus::Maintenance,
        "restricted" => AuthStatus::Restricted,
        "password_expired" => AuthStatus::PasswordExpired,
        "additional-auth-needed" => AuthStatus::AdditionalAuthNeeded,
        other => AuthStatus::Other(other.to_owned()),
    })
}

/// Why "Test connection" (or the start of a send run) found no way to send. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConnectionProblem {
    /// No HTTP answer: network, DNS, refused, offline.
    #[error("the Koha server cannot be reached")]
    Unreachable,
    /// The secure connection failed (when the shell can tell).
    #[error("the secure connection to the Koha server failed")]
    Tls,
    /// 404: the address is not a Koha staff interface.
    #[error("no Koha staff interface at this address (HTTP 404)")]
    NotFound,
    /// Koha refused the user name or password.
    #[error("Koha refused the user name or password")]
    WrongCredentials,
    /// The login works but lacks a permission the transport needs (`edit_catalogue` for P2).
    #[error("the account lacks the permission this transport needs")]
    MissingPermission,
    /// Koha refused the CSRF token, even a fresh one.
    #[error("Koha refused the CSRF token")]
    CsrfRefused,
    /// The server failed.
    #[error("the Koha server failed (HTTP {http_status})")]
    ServerError {
        /// The HTTP status.
        http_status: u16,
    },
    /// Only GET would work, which puts the password in the URL: ask the librarian.
    #[error("only GET requests would work, which put the password into URLs and logs")]
    NeedsGetConsent,
    /// The server accepted the connection but did not answer in time (only "Test connection"
    /// tells this apart from [`ConnectionProblem::Unreachable`]).
    #[error("the Koha server did not answer in time")]
    Timeout,
    /// An answer Koha does not give.
    #[error("unexpected answer from the server (HTTP {http_status})")]
    UnexpectedAnswer {
        /// The HTTP status.
        http_status: u16,
    },
}

kinds!(ConnectionProblem {
    Unreachable => "unreachable",
    Tls => "tls",
    NotFound => "not-found",
    WrongCredentials => "wrong-credentials",
    MissingPermission => "missing-permission",
    CsrfRefused => "csrf-refused",
    ServerError => "server-error",
    NeedsGetConsent => "needs-get-consent",
    Timeout => "timeout",
    UnexpectedAnswer => "unexpected-answer",
});

/// The result of detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Detection {
    /// This transport works with these credentials.
    Works {
        /// The transport to use.
        transport: Transport,
        /// The CSRF token for P1 (its session cookie is in the browser's jar).
        token: Option<String>,
    },
    /// No transport can be used now.
    Problem(ConnectionProblem),
}

/// What the shell got back for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Reply {
    /// An HTTP answer.
    Http {
        /// The status code.
        status: u16,
        /// The `CSRF-TOKEN` header, if present (even if empty).
        csrf_token: Option<String>,
        /// The `Content-Type` header, or empty.
        content_type: String,
        /// The body as text.
        body: String,
        /// The `Date` header, verbatim, if present: the server's clock (see [`crate::clock`]).
        #[serde(default)]
        date: Option<String>,
    },
    /// No HTTP answer.
    NoAnswer {
        /// Timeout or network.
        why: NoAnswer,
        /// The shell could tell it was a TLS failure.
        tls: bool,
    },
}

/// What detection wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectStep {
    /// Send this request and feed its reply.
    Send(HttpRequest),
    /// Detection is over.
    Done(Detection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    AuthProbe,
    ServiceProbe(Transport),
    SessionLogin(Transport),
    Finished,
}

/// Detection as a pure state machine (§2.6): call [`Detector::start`], send the request, feed each
/// reply to [`Detector::feed`] until it says [`DetectStep::Done`]. A 403 on the P1 probe is retried
/// once with a fresh token.
#[derive(Debug, Clone)]
pub struct Detector {
    base: String,
    creds: Credentials,
    stage: Stage,
    token: Option<String>,
    refreshed: bool,
    session_reuse: bool,
}

impl Detector {
    /// Detection for a normalised server base (`https://koha.example.org:8080/prefix`).
    pub fn new(base: &str, creds: Credentials) -> Self {
        Detector {
            base: base.to_owned(),
            creds,
            stage: Stage::AuthProbe,
            token: None,
            refreshed: false,
            session_reuse: false,
        }
    }

    /// Opt-in: once P1 or P3 works, also try a session login (P2) so that a batch costs one
    /// password check instead of one per transaction. It needs `edit_catalogue` and replaces the
    /// librarian's `CGISESSID` in this browser, so the UI must say so. Without the permission (or
    /// on any other refusal) detection keeps the transport that worked.
    pub fn with_session_reuse(mut self) -> Self {
        self.session_reuse = true;
        self
    }

    /// The first request: `GET svc/authentication`.
    pub fn start(&mut self) -> HttpRequest {
        self.stage = Stage::AuthProbe;
        auth_probe_request(&self.base)
    }

    fn done(&mut self, detection: Detection) -> DetectStep {
        self.stage = Stage::Finished;
        DetectStep::Done(detection)
    }

    fn problem(&mut self, problem: ConnectionProblem) -> DetectStep {
        self.done(Detection::Problem(problem))
    }

    fn probe(&mut self, transport: Transport) -> DetectStep {
        self.stage = Stage::ServiceProbe(transport);
        match service_probe_request(&self.base, transport, &self.creds, self.token.as_deref()) {
            Ok(request) => DetectStep::Send(request),
            // Unreachable: P1 is chosen only with a non-empty token.
            Err(_) => self.problem(ConnectionProblem::CsrfRefused),
        }
    }

    fn works(&mut self, transport: Transport) -> DetectStep {
        let token = self.token.clone().filter(|_| transport.uses_token());
        self.done(Detection::Works { transport, token })
    }

    /// Feeds the reply to the last request.
    pub fn feed(&mut self, reply: Reply) -> DetectStep {
        let (status, csrf_token, content_type, body, date) = match reply {
            Reply::NoAnswer { tls: true, .. } => return self.problem(ConnectionProblem::Tls),
            Reply::NoAnswer { .. } => return self.problem(ConnectionProblem::Unreachable),
            Reply::Http {
                status,
                csrf_token,
                content_type,
                body,
                date,
            } => (status, csrf_token, content_type, body, date),
        };
        match self.stage {
            Stage::AuthProbe => self.after_auth_probe(status, csrf_token, &body),
            Stage::ServiceProbe(transport) => {
                self.after_service_probe(transport, classify(status, &content_type, &body))
            }
            Stage::SessionLogin(fallback) => {
                let reply = Reply::Http {
                    status,
                    csrf_token,
                    content_type,
                    body,
                    date,
                };
                match interpret_session_login(&reply) {
                    Ok(token) => self.done(Detection::Works {
                        transport: Transport::P2,
                        token,
                    }),
                    Err(_) => self.works(fallback),
                }
            }
            Stage::Finished => {
                DetectStep::Done(Detection::Problem(ConnectionProblem::UnexpectedAnswer {
                    http_status: status,
                }))
            }
        }
    }

    fn after_auth_probe(&mut self, status: u16, token: Option<String>, body: &str) -> DetectStep {
        match status {
            200 => {}
            404 => return self.problem(ConnectionProblem::NotFound),
            500..=599 => {
                return self.problem(ConnectionProblem::ServerError {
                    http_status: status,
                })
            }
            _ => {
                return self.problem(ConnectionProblem::UnexpectedAnswer {
                    http_status: status,
                })
            }
        }
        match token.filter(|t| !t.is_empty()) {
            Some(token) => {
                self.token = Some(token);
                self.probe(Transport::P1)
            }
            None if parse_auth_status(body).is_some() => {
                self.token = None;
                self.probe(Transport::P3)
            }
            None => self.problem(ConnectionProblem::UnexpectedAnswer {
                http_status: status,
            }),
        }
    }

    fn after_service_probe(&mut self, transport: Transport, answer: Answer) -> DetectStep {
        match answer {
            Answer::Empty if self.session_reuse && transport != Transport::G => {
                self.stage = Stage::SessionLogin(transport);
                DetectStep::Send(session_login_request(
                    &self.base,
                    &self.creds,
                    self.token.as_deref(),
                    None,
                ))
            }
            Answer::Empty => self.works(transport),
            Answer::AuthProblem { http_status: 403 } => match transport {
                Transport::P1 if !self.refreshed => {
                    self.refreshed = true;
                    DetectStep::Send(self.start())
                }
                Transport::P1 | Transport::P2 => self.problem(ConnectionProblem::CsrfRefused),
                Transport::P3 => self.problem(ConnectionProblem::NeedsGetConsent),
                Transport::G => {
                    self.problem(ConnectionProblem::UnexpectedAnswer { http_status: 403 })
                }
            },
            Answer::AuthProblem { .. } => self.problem(ConnectionProblem::WrongCredentials),
            Answer::Misdirected { http_status: 404 } => self.problem(ConnectionProblem::NotFound),
            Answer::ServerError { http_status } if http_status >= 500 => {
                self.problem(ConnectionProblem::ServerError { http_status })
            }
            Answer::NetworkError | Answer::Timeout => self.problem(ConnectionProblem::Unreachable),
            Answer::Misdirected { http_status } | Answer::ServerError { http_status } => {
                self.problem(ConnectionProblem::UnexpectedAnswer { http_status })
            }
            // A probe has an empty action: anything that names an outcome is not Koha.
            Answer::Queued | Answer::Applied | Answer::Rejected { .. } => {
                self.problem(ConnectionProblem::UnexpectedAnswer { http_status: 200 })
            }
        }
    }
}

/// Interprets a G probe sent after the librarian consented: `Ok` when it works.
pub fn interpret_get_probe(reply: &Reply) -> Result<(), ConnectionProblem> {
    match reply {
        Reply::NoAnswer { tls: true, .. } => Err(ConnectionProblem::Tls),
        Reply::NoAnswer { .. } => Err(ConnectionProblem::Unreachable),
        Reply::Http {
            status,
            content_type,
            body,
            ..
        } => match classify(*status, content_type, body) {
            Answer::Empty => Ok(()),
            Answer::AuthProblem { http_status: 403 } => Err(ConnectionProblem::CsrfRefused),
            Answer::AuthProblem { .. } => Err(ConnectionProblem::WrongCredentials),
            Answer::Misdirected { http_status: 404 } => Err(ConnectionProblem::NotFound),
            Answer::ServerError { http_status } if http_status >= 500 => {
                Err(ConnectionProblem::ServerError { http_status })
            }
            _ => Err(ConnectionProblem::UnexpectedAnswer {
                http_status: *status,
            }),
        },
    }
}

/// Interprets the answer to [`session_login_request`] (P2): `ok`, with the new token on 24.05+
/// (none on ≤23.11). Run it after a successful service probe, so that `failed` means a missing
/// permission (`edit_catalogue`).
pub fn interpret_session_login(reply: &Reply) -> Result<Option<String>, ConnectionProblem> {
    match reply {
        Reply::NoAnswer { tls: true, .. } => Err(ConnectionProblem::Tls),
        Reply::NoAnswer { .. } => Err(ConnectionProblem::Unreachable),
        Reply::Http { status: 403, .. } => Err(ConnectionProblem::CsrfRefused),
        Reply::Http {
            status: 200,
            csrf_token,
            body,
            ..
        } => match parse_auth_status(body) {
            Some(AuthStatus::Ok) => Ok(csrf_token.clone().filter(|t| !t.is_empty())),
            Some(AuthStatus::Failed) => Err(ConnectionProblem::MissingPermission),
            _ => Err(ConnectionProblem::UnexpectedAnswer { http_status: 200 }),
        },
        Reply::Http { status: 404, .. } => Err(ConnectionProblem::NotFound),
        Reply::Http { status, .. } if *status >= 500 => Err(ConnectionProblem::ServerError {
            http_status: *status,
        }),
        Reply::Http { status, .. } => Err(ConnectionProblem::UnexpectedAnswer {
            http_status: *status,
        }),
    }
}

/// Reads the token from a token-refresh reply ([`auth_probe_request`] during a send run).
pub fn refreshed_token(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Http {
            status: 200,
            csrf_token,
            ..
        } => csrf_token.clone().filter(|t| !t.is_empty()),
        _ => None,
    }
}
