//! Koha's login helper `svc/authentication` (docs/koha.md 5) and the staff session: the token
//! probe, P2's session login and its answer, the logout that ends that session.

use super::answer::trim_ascii;
use super::request::pairs;
use super::{
    ConnectionProblem, Credentials, HttpRequest, Method, Reply, AUTH_PATH, CSRF_HEADER,
    MAINPAGE_PATH, REQUEST_TIMEOUT_SECS,
};
use crate::ids::Branchcode;
use serde::{Deserialize, Serialize};

/// `GET svc/authentication` without credentials (detection step 1, and a token refresh). Cookies
/// are included so that the session Koha sets is the one the token belongs to.
pub fn auth_probe_request(base: &str) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url: format!("{base}{AUTH_PATH}"),
        params: Vec::new(),
        headers: Vec::new(),
        include_cookies: true,
        timeout_secs: REQUEST_TIMEOUT_SECS,
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
        timeout_secs: REQUEST_TIMEOUT_SECS,
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
        timeout_secs: REQUEST_TIMEOUT_SECS,
    }
}

/// The `<status>` of a `svc/authentication` answer (docs/koha.md 5).
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

/// Interprets the answer to [`session_login_request`] (P2): `ok`, with the new token on 24.05+
/// (none on ≤23.11). Run it after a successful service probe, so that `failed` means a missing
/// permission (`edit_catalogue`).
pub fn interpret_session_login(reply: &Reply) -> Result<Option<String>, ConnectionProblem> {
    match reply {
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
