//! The requests the add-on sends to Koha, built as values: the paths, the transports (P1, P2, P3,
//! G), form encoding, and one `service.pl` request per transaction (docs/koha.md 2).

use crate::ids::{Branchcode, Userid};
use crate::kinds::kinds;
use crate::transaction::Transaction;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Path of the offline circulation service under the staff interface origin.
pub const SERVICE_PATH: &str = "/cgi-bin/koha/offline_circ/service.pl";
/// Path of the login helper that also hands out a `CSRF-TOKEN` on 24.05+.
pub const AUTH_PATH: &str = "/cgi-bin/koha/svc/authentication";
/// Path of the staff interface's start page, which also ends a staff session (see
/// [`logout_request`](super::logout_request)).
pub const MAINPAGE_PATH: &str = "/cgi-bin/koha/mainpage.pl";
/// The header carrying the CSRF token (Koha reads its name case-insensitively).
pub const CSRF_HEADER: &str = "CSRF-TOKEN";
/// Client timeout for one request, in seconds (docs/koha.md 8.1).
pub const REQUEST_TIMEOUT_SECS: u32 = 60;

/// A test-only `localStorage` key: a shorter request time-out in milliseconds, read by the shell
/// with every request (see [`HttpRequest::timeout_ms`]).
pub const TIMEOUT_OVERRIDE_KEY: &str = "koha-offline-circ:test-request-timeout-ms";

/// `limit_ms`, or a shorter whole number of milliseconds a test asked for (`test_override`, the
/// text of a test-only setting): used only when it is a whole number from 1 to `limit_ms`, so it
/// can make a time-out shorter, never longer or absent.
fn capped_timeout_ms(limit_ms: u32, test_override: Option<&str>) -> u32 {
    test_override
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|ms| (1..=limit_ms).contains(ms))
        .unwrap_or(limit_ms)
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

/// How requests reach `service.pl` (docs/koha.md 8.1).
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
    /// How long the whole exchange may take, in seconds ([`REQUEST_TIMEOUT_SECS`] but for a
    /// check that must not hold up its page); see [`HttpRequest::timeout_ms`].
    pub timeout_secs: u32,
}

impl HttpRequest {
    /// How long the shell waits for this exchange, in milliseconds: its own
    /// [`timeout_secs`](HttpRequest::timeout_secs), or shorter if a test stored a whole number
    /// of milliseconds under [`TIMEOUT_OVERRIDE_KEY`] (`test_override`); never longer.
    pub fn timeout_ms(&self, test_override: Option<&str>) -> u32 {
        capped_timeout_ms(self.timeout_secs.saturating_mul(1000), test_override)
    }

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

/// How transactions are sent: queued for a librarian to process in Koha (recommended), or applied
/// at once. A setting, and the `pending` parameter of every `service.pl` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `pending=true`: Koha stores each as a pending offline operation and answers `Added.`. The
    /// default.
    #[default]
    Queue,
    /// `pending=false`: Koha applies each at once and answers `Success.` or a rejection.
    Apply,
}

impl Mode {
    /// `queue` or `apply`, as in the options page's `mode` select.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Queue => "queue",
            Mode::Apply => "apply",
        }
    }
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

/// Owned name/value pairs, in order.
pub(super) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The common start of every `service.pl` request: credentials per transport (docs/koha.md 4.1).
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
        timeout_secs: REQUEST_TIMEOUT_SECS,
    })
}

/// The probe (docs/koha.md 8.2): credentials and an empty `action`, no `pending`, no `timestamp`.
/// Koha authenticates it, changes nothing and answers an empty 200. `token` is required for P1, and
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

/// One transaction for `service.pl` (parameters: docs/koha.md 2.2): credentials per transport,
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

/// The instant as `service.pl` wants it: UTC, `YYYY-MM-DD HH:MM:SS`, whole seconds
/// (docs/koha.md 6.1).
pub fn koha_timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    crate::zone::local_text(at.naive_utc(), "-", " ", ":")
}
