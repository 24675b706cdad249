//! `service.pl` and `svc/authentication` as Koha answers them (docs/koha.md 1 to 7), plus the
//! queue processing and `.koc` import of docs/koha.md 9.

use super::dates;
use super::http::{Request, Response};
use super::model::{ClosedLoan, Credit, Loan, Model, Permission, QueueRow, Session};
use super::{Profile, Shared, State};
use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::thread;

/// The first value of a parameter, or `''` (docs/koha.md 2.1).
pub fn param(params: &[(String, String)], name: &str) -> String {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Outer space, tab, CR and LF removed, nothing else (docs/koha.md 2.2).
fn strip(text: &str) -> String {
    text.trim_matches([' ', '\t', '\r', '\n']).to_owned()
}

/// An error page or the raw body, per `HTML_ERRORS` (docs/koha.md 3, 4.4).
pub fn error_response(state: &State, status: u16, raw: &str) -> Response {
    if state.config.switches.html_errors {
        let page = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><title>Error {status} › Koha</title></head>\
             <body><h1>Error {status}</h1><p>An error has occurred.</p></body></html>\n"
        );
        Response::new(status, "text/html; charset=utf-8", page)
    } else {
        Response::text(status, raw)
    }
}

fn server_error(state: &State) -> Response {
    error_response(state, 500, "Software error")
}

/// Which parameters the CSRF check sees: the request's parameters plus a POST's query string.
fn csrf_param(req: &Request, params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .chain(super::http::form_decode(&req.query).iter())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// Whether the CSRF middleware refuses this request (docs/koha.md 3).
pub fn csrf_refused(state: &State, req: &Request, params: &[(String, String)]) -> bool {
    if !state.csrf_active() {
        return false;
    }
    let op = csrf_param(req, params, "op");
    match req.method.as_str() {
        "GET" | "HEAD" | "OPTIONS" | "TRACE" => op.is_some_and(|op| op.starts_with("cud-")),
        "POST" | "PUT" | "DELETE" | "PATCH" => {
            if op.is_some_and(|op| !op.starts_with("cud-")) {
                return true;
            }
            let token = csrf_param(req, params, "csrf_token")
                .filter(|t| !t.is_empty())
                .or_else(|| {
                    req.header("csrf-token")
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                });
            let Some(token) = token else { return true };
            let Some(cookie) = req.cookie("CGISESSID") else {
                return true;
            };
            !state
                .model
                .sessions
                .iter()
                .any(|s| s.id == cookie && s.tokens.contains(&token))
        }
        _ => true,
    }
}

/// A session's state for a cookie.
enum CookieSession {
    /// Live and logged in: (user, library).
    User(String, String),
    /// Live and anonymous.
    Anonymous,
    /// Unknown or timed out.
    Expired,
}

fn cookie_session(state: &mut State, cookie: &str) -> CookieSession {
    let now = state.now();
    let timeout = Duration::seconds(state.config.switches.session_timeout_secs);
    let Some(session) = state.model.sessions.iter_mut().find(|s| s.id == cookie) else {
        return CookieSession::Expired;
    };
    if now - session.last_use > timeout {
        return CookieSession::Expired;
    }
    match &session.userid {
        Some(user) => {
            // A cookie that passes refreshes the session's last use.
            session.last_use = now;
            CookieSession::User(user.clone(), session.library.clone().unwrap_or_default())
        }
        None => CookieSession::Anonymous,
    }
}

/// The outcome of a password check.
enum Check {
    Ok {
        userid: String,
        library: String,
        session: String,
    },
    Failed,
    NoPermission,
}

/// One credential check (docs/koha.md 4.2), paying the configured cost outside the lock.
fn credential_check(
    shared: &Shared,
    name: &str,
    password: &str,
    branch: &str,
    peer: &str,
    created_by: &str,
    need_permission: bool,
) -> Check {
    let cost = shared.lock().config.password_check_ms;
    if cost > 0 {
        thread::sleep(std::time::Duration::from_millis(cost));
    }
    let mut state = shared.lock();
    state.password_checks += 1;
    let limit = state.config.switches.failed_login_limit;
    let Some(index) = state.model.find_login(name) else {
        return Check::Failed;
    };
    let account = &mut state.model.accounts[index];
    if account.locked {
        return Check::Failed;
    }
    if account.password != password {
        account.failed_logins += 1;
        if limit > 0 && account.failed_logins >= limit {
            account.locked = true;
        }
        return Check::Failed;
    }
    account.failed_logins = 0;
    let account = account.clone();
    if need_permission && account.permission == Permission::None {
        return Check::NoPermission;
    }
    let by_ip = state
        .model
        .libraries
        .iter()
        .find(|l| l.ip_prefix.as_deref().is_some_and(|p| peer.starts_with(p)))
        .map(|l| l.code.clone());
    let library = by_ip.unwrap_or_else(|| {
        if branch.is_empty() {
            account.home_library.clone()
        } else {
            branch.to_owned()
        }
    });
    let session = state.new_session(
        Some(account.userid.clone()),
        Some(library.clone()),
        created_by,
    );
    Check::Ok {
        userid: account.userid,
        library,
        session,
    }
}

/// Who the `service.pl` request runs as, or `None` (docs/koha.md 4).
fn authenticate_service(
    shared: &Shared,
    req: &Request,
    params: &[(String, String)],
    peer: &str,
) -> Option<(String, String)> {
    let profile = shared.lock().config.profile;
    let (name_key, pass_key) = profile.credential_names();
    let name = param(params, name_key);
    let password = param(params, pass_key);
    let cookie = req.cookie("CGISESSID");
    let from_cookie = |cookie: &Option<String>| {
        let cookie = cookie.as_ref()?;
        match cookie_session(&mut shared.lock(), cookie) {
            CookieSession::User(u, l) => Some((u, l)),
            _ => None,
        }
    };
    let step1 = if name.is_empty() && cookie.is_some() {
        from_cookie(&cookie)
    } else if name.is_empty() || password.is_empty() {
        None
    } else {
        let branch = param(params, "branch");
        match credential_check(shared, &name, &password, &branch, peer, "service.pl", false) {
            Check::Ok {
                userid, library, ..
            } => Some((userid, library)),
            _ => None,
        }
    };
    if step1.is_some() {
        return step1;
    }
    let nocookie = param(params, "nocookie");
    if profile == Profile::Newest && !nocookie.is_empty() && nocookie != "0" {
        return None;
    }
    from_cookie(&cookie)
}

/// `offline_circ/service.pl`.
pub fn service(
    shared: &Shared,
    req: &Request,
    params: &[(String, String)],
    peer: &str,
) -> (Response, bool) {
    {
        let state = shared.lock();
        if csrf_refused(&state, req, params) {
            return (error_response(&state, 403, "Wrong CSRF token"), false);
        }
    }
    let Some((_login, library)) = authenticate_service(shared, req, params, peer) else {
        let state = shared.lock();
        return match state.config.profile {
            Profile::Newest => (error_response(&state, 401, ""), false),
            _ => (Response::text(200, "Authentication failed."), false),
        };
    };
    let mut state = shared.lock();
    let raw_ts = param(params, "timestamp");
    let timestamp = if raw_ts.is_empty() {
        state.local_now()
    } else {
        let old = state.config.profile == Profile::Legacy && state.config.switches.old_date_parser;
        match dates::convert(&raw_ts, old, state.tz()) {
            Some(t) => t,
            None => return (server_error(&state), false),
        }
    };
    let action = param(params, "action");
    if param(params, "pending") == "true" {
        let row = NewRow {
            userid: param(params, "userid"),
            branchcode: param(params, "branchcode"),
            timestamp,
            action,
            barcode: Some(strip(&param(params, "barcode"))),
            cardnumber: Some(strip(&param(params, "cardnumber"))),
            amount: Some(param(params, "amount")),
        };
        return match state.insert_row(row) {
            Ok(()) => (Response::text(200, "Added."), true),
            Err(StrictSqlError) => (server_error(&state), false),
        };
    }
    let direct = Direct {
        action,
        barcode: strip(&param(params, "barcode")),
        cardnumber: strip(&param(params, "cardnumber")),
        amount: param(params, "amount"),
        branchcode: param(params, "branchcode"),
        timestamp,
        library,
    };
    match state.apply(&direct) {
        Some(message) => (Response::text(200, &message), true),
        None => (server_error(&state), false),
    }
}

/// `svc/authentication` (docs/koha.md 5).
pub fn authentication(
    shared: &Shared,
    req: &Request,
    params: &[(String, String)],
    peer: &str,
) -> (Response, bool) {
    let profile = {
        let state = shared.lock();
        if csrf_refused(&state, req, params) {
            return (error_response(&state, 403, "Wrong CSRF token"), false);
        }
        state.config.profile
    };
    let (name_key, pass_key) = profile.credential_names();
    let name = param(params, name_key);
    let password = param(params, pass_key);
    let cookie = req.cookie("CGISESSID");
    let (status, session) = match &cookie {
        Some(cookie) if name.is_empty() => match cookie_session(&mut shared.lock(), cookie) {
            CookieSession::User(..) => ("ok", Some(cookie.clone())),
            CookieSession::Anonymous if profile != Profile::Legacy => ("anon", None),
            _ => ("expired", None),
        },
        _ if name.is_empty() || password.is_empty() => ("failed", None),
        _ => {
            let branch = param(params, "branch");
            match credential_check(
                shared,
                &name,
                &password,
                &branch,
                peer,
                "svc/authentication",
                true,
            ) {
                Check::Ok { session, .. } => ("ok", Some(session)),
                Check::Failed | Check::NoPermission => ("failed", None),
            }
        }
    };
    let body = format!(
        "<?xml version='1.0' standalone='yes'?>\n<response>\n  <status>{status}</status>\n</response>\n"
    );
    let mut response = Response::new(200, "text/xml", body);
    let mut state = shared.lock();
    let token_mode = state.token_mode();
    let session = match session {
        Some(id) => Some(id),
        None if token_mode => Some(state.new_session(None, None, "svc/authentication")),
        None => None,
    };
    if let Some(id) = session {
        response = response.with_header(
            "Set-Cookie",
            &format!("CGISESSID={id}; path=/; HttpOnly; SameSite=Lax"),
        );
        if token_mode {
            let token = state.new_token(&id);
            response = response.with_header("CSRF-TOKEN", &token);
        }
    }
    (response, status == "ok")
}

/// `mainpage.pl`, as far as the add-on uses it: ending a staff session. Koha's `checkauth` (every
/// version from 3.x to main) reads `logout.x` whatever the method; when it is true (non-empty, not
/// `0`) it deletes the session named by `CGISESSID` and answers the login page with a new anonymous
/// session cookie. The CSRF middleware (docs/koha.md 3) runs first, so a GET passes and a POST
/// needs a token. Without `logout.x`: the start page for a live logged-in session, else the login
/// page. Nothing else of the page is modelled.
pub fn mainpage(shared: &Shared, req: &Request, params: &[(String, String)]) -> (Response, bool) {
    let mut state = shared.lock();
    if csrf_refused(&state, req, params) {
        return (error_response(&state, 403, "Wrong CSRF token"), false);
    }
    let logout = param(params, "logout.x");
    let cookie = req.cookie("CGISESSID");
    let logging_out = !logout.is_empty() && logout != "0";
    if logging_out {
        if let Some(id) = &cookie {
            state.model.sessions.retain(|s| &s.id != id);
        }
    } else if let Some(id) = cookie.as_deref().filter(|id| state.session_logged_in(id)) {
        let page = "<!DOCTYPE html>\n<html><head><title>Koha staff interface</title></head>\
                    <body><h1>Koha staff interface</h1></body></html>\n";
        let response = Response::new(200, "text/html; charset=utf-8", page).with_header(
            "Set-Cookie",
            &format!("CGISESSID={id}; path=/; HttpOnly; SameSite=Lax"),
        );
        return (response, false);
    }
    let anonymous = state.new_session(None, None, "mainpage.pl");
    let page = "<!DOCTYPE html>\n<html><head><title>Log in to Koha</title></head>\
                <body><form id=\"loginform\" method=\"post\"></form></body></html>\n";
    let response = Response::new(200, "text/html; charset=utf-8", page).with_header(
        "Set-Cookie",
        &format!("CGISESSID={anonymous}; path=/; HttpOnly; SameSite=Lax"),
    );
    (response, logging_out)
}

/// A queue row before the column widths apply (docs/koha.md 7.1).
#[derive(Debug, Clone)]
pub struct NewRow {
    /// Operator.
    pub userid: String,
    /// Library.
    pub branchcode: String,
    /// Server-local timestamp.
    pub timestamp: String,
    /// Action.
    pub action: String,
    /// Barcode or `None` (NULL).
    pub barcode: Option<String>,
    /// Card number or `None`.
    pub cardnumber: Option<String>,
    /// Amount text or `None`.
    pub amount: Option<String>,
}

/// Strict SQL refused an insert (over-long or non-numeric value): Koha dies with 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrictSqlError;

/// A direct transaction.
#[derive(Debug, Clone)]
pub struct Direct {
    /// Action.
    pub action: String,
    /// Stripped barcode.
    pub barcode: String,
    /// Stripped card number.
    pub cardnumber: String,
    /// Amount text.
    pub amount: String,
    /// `branchcode` parameter (the payment's library).
    pub branchcode: String,
    /// Server-local timestamp.
    pub timestamp: String,
    /// The session library.
    pub library: String,
}

/// Parses the longest numeric prefix (Perl's numification), in millionths.
fn leading_number(text: &str) -> (i128, bool) {
    let t = text.trim_start();
    let bytes = t.as_bytes();
    let mut i = 0;
    let negative = matches!(bytes.first(), Some(b'-'));
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        i = 1;
    }
    let start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let whole = &t[start..i];
    let mut fraction = "";
    if i < bytes.len() && bytes[i] == b'.' {
        let f0 = i + 1;
        let mut j = f0;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        fraction = &t[f0..j];
        i = j;
    }
    if whole.is_empty() && fraction.is_empty() {
        return (0, false);
    }
    let whole: i128 = whole.parse().unwrap_or(0);
    let mut frac = fraction.chars().take(6).collect::<String>();
    while frac.len() < 6 {
        frac.push('0');
    }
    let micros = whole * 1_000_000 + frac.parse::<i128>().unwrap_or(0);
    let complete = i == t.len() && t.len() == text.len();
    (if negative { -micros } else { micros }, complete)
}

/// `decimal(28,6)` text of millionths.
pub fn format_micros(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

impl State {
    /// Stores a queue row (docs/koha.md 7.1), truncating over-long values, or refuses under
    /// `STRICT_SQL`.
    pub fn insert_row(&mut self, row: NewRow) -> Result<(), StrictSqlError> {
        let strict = self.config.switches.strict_sql;
        let widths: [(&str, usize); 5] = [
            (&row.userid, 30),
            (&row.branchcode, 10),
            (&row.action, 10),
            (row.barcode.as_deref().unwrap_or(""), 20),
            (row.cardnumber.as_deref().unwrap_or(""), 32),
        ];
        if strict && widths.iter().any(|(v, max)| v.chars().count() > *max) {
            return Err(StrictSqlError);
        }
        let amount = match row.amount.as_deref() {
            None => None,
            Some("") => Some(0),
            Some(text) => {
                let (value, complete) = leading_number(text);
                if strict && !complete {
                    return Err(StrictSqlError);
                }
                Some(value)
            }
        };
        let operationid = self.model.next_operationid;
        self.model.next_operationid += 1;
        self.model.queue.push(QueueRow {
            operationid,
            userid: cut(&row.userid, 30),
            branchcode: cut(&row.branchcode, 10),
            timestamp: row.timestamp,
            action: cut(&row.action, 10),
            barcode: row.barcode.map(|b| cut(&b, 20)),
            cardnumber: row.cardnumber.map(|c| cut(&c, 32)),
            amount: amount.map(format_micros),
        });
        Ok(())
    }

    /// A direct transaction (docs/koha.md 7.2 to 7.4). `Some(message)` (empty for an unknown
    /// action), or `None` for a 500 (nothing changed).
    pub fn apply(&mut self, d: &Direct) -> Option<String> {
        // Koha's `items.timestamp` changes with every write to the item, a loan's too.
        let now = self.local_now();
        let model: &mut Model = &mut self.model;
        match d.action.as_str() {
            "return" => {
                let Some(item) = model.items.iter_mut().find(|i| i.barcode == d.barcode) else {
                    return Some("Item not found.".to_owned());
                };
                let Some(loan) = item.loan.take() else {
                    return Some("Item not issued.".to_owned());
                };
                item.lost = false;
                item.last_seen = Some(d.timestamp.clone());
                item.timestamp = Some(now);
                model.closed_loans.push(ClosedLoan {
                    barcode: d.barcode.clone(),
                    loan,
                    returned_at: d.timestamp.clone(),
                    return_library: d.library.clone(),
                });
                Some("Success.".to_owned())
            }
            "issue" => {
                let Some(patron) = model.find_patron(&d.cardnumber) else {
                    return Some("Borrower not found.".to_owned());
                };
                let card = model.accounts[patron].cardnumber.clone();
                let period = self.config.loan_period_days;
                let Some(item) = model.items.iter_mut().find(|i| i.barcode == d.barcode) else {
                    return Some("Barcode not found.".to_owned());
                };
                let due = NaiveDateTime::parse_from_str(&d.timestamp, dates::FORMAT)
                    .ok()
                    .map(|t| {
                        (t.date() + Duration::days(period))
                            .and_hms_opt(23, 59, 0)
                            .map(|d| d.format(dates::FORMAT).to_string())
                            .unwrap_or_default()
                    })
                    .unwrap_or_default();
                item.timestamp = Some(now);
                match item.loan.take() {
                    Some(mut loan) if loan.cardnumber == card => {
                        loan.renewals += 1;
                        loan.due_at = due;
                        item.loan = Some(loan);
                    }
                    other => {
                        if let Some(old) = other {
                            model.closed_loans.push(ClosedLoan {
                                barcode: d.barcode.clone(),
                                loan: old,
                                returned_at: d.timestamp.clone(),
                                return_library: d.library.clone(),
                            });
                        }
                        item.loan = Some(Loan {
                            cardnumber: card,
                            issued_at: d.timestamp.clone(),
                            due_at: due,
                            renewals: 0,
                            library: d.library.clone(),
                        });
                    }
                }
                Some("Success.".to_owned())
            }
            "payment" => {
                let patron = model.find_patron(&d.cardnumber)?;
                let (amount, _) = leading_number(&d.amount);
                if amount <= 0 {
                    return None;
                }
                let card = model.accounts[patron].cardnumber.clone();
                let date = self.local_now();
                self.model.credits.push(Credit {
                    cardnumber: card,
                    amount: format_micros(amount),
                    library: d.branchcode.clone(),
                    interface: "koc".to_owned(),
                    date,
                });
                Some("Success.".to_owned())
            }
            _ => Some(String::new()),
        }
    }

    /// The queue as a librarian of `library` sees it (docs/koha.md 9.1).
    pub fn queue_for(&self, library: &str) -> Vec<QueueRow> {
        let mut rows: Vec<QueueRow> = self
            .model
            .queue
            .iter()
            .filter(|r| r.branchcode == library)
            .cloned()
            .collect();
        // Stable: ties keep insertion order.
        rows.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        rows
    }

    /// Processes one queue row as a librarian of `library` (docs/koha.md 9.1). `Err(500)` leaves
    /// the row; `Err(404)` means no such row.
    pub fn process_row(&mut self, operationid: u64, library: &str) -> Result<String, u16> {
        let Some(pos) = self
            .model
            .queue
            .iter()
            .position(|r| r.operationid == operationid)
        else {
            return Err(404);
        };
        let row = self.model.queue[pos].clone();
        let direct = Direct {
            action: row.action.clone(),
            barcode: row.barcode.clone().unwrap_or_default(),
            cardnumber: row.cardnumber.clone().unwrap_or_default(),
            amount: row.amount.clone().unwrap_or_default(),
            branchcode: row.branchcode.clone(),
            timestamp: row.timestamp.clone(),
            library: library.to_owned(),
        };
        let answer = self.apply(&direct).ok_or(500u16)?;
        self.model.queue.retain(|r| r.operationid != operationid);
        Ok(answer)
    }

    /// Deletes a row; `Deleted.` (docs/koha.md 9.1).
    pub fn delete_row(&mut self, operationid: u64) -> Option<String> {
        let before = self.model.queue.len();
        self.model.queue.retain(|r| r.operationid != operationid);
        (self.model.queue.len() < before).then(|| "Deleted.".to_owned())
    }

    /// Imports a `.koc` body as user `userid` at `library` (docs/koha.md 9.2).
    pub fn import_koc(&mut self, userid: &str, library: &str, body: &str) -> KocImport {
        let mut lines: Vec<&str> = body.split('\n').collect();
        // Perl's split drops trailing empty fields.
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut report = KocImport::default();
        let Some((header, rest)) = lines.split_first() else {
            return report;
        };
        let header = header.replace('\r', "");
        let version = header
            .split('\t')
            .filter_map(|part| {
                let mut kv = part.split('=');
                Some((kv.next()?.to_owned(), kv.next().unwrap_or("").to_owned()))
            })
            .find(|(k, _)| k == "Version")
            .map(|(_, v)| v);
        if version.as_deref() != Some("1.0") {
            report
                .warnings
                .push("only version 1.0 of the file format is known".to_owned());
        }
        for line in rest {
            let line = line.replace('\r', "");
            let mut fields: Vec<&str> = line.split('\t').collect();
            while fields.last().is_some_and(|f| f.is_empty()) {
                fields.pop();
            }
            let field = |i: usize| fields.get(i).map(|f| (*f).to_owned());
            let command = field(1).unwrap_or_default();
            if fields.is_empty() || !["issue", "return", "payment"].contains(&command.as_str()) {
                report.status = 500;
                return report;
            }
            let stamp = field(0).unwrap_or_default();
            let mut parts = stamp.split([' ', '\t', '\r', '\n']);
            let date = parts.next().unwrap_or("");
            let time = parts.next().unwrap_or("");
            let time =
                if time.len() == 8 && time.as_bytes()[2] == b'-' && time.as_bytes()[5] == b'-' {
                    time.replace('-', ":")
                } else {
                    time.to_owned()
                };
            let (barcode, cardnumber, amount) = match command.as_str() {
                "issue" => (field(3), field(2), None),
                "return" => (field(2), None, None),
                _ => (None, field(2), field(3)),
            };
            let row = NewRow {
                userid: userid.to_owned(),
                branchcode: library.to_owned(),
                timestamp: format!("{date} {time}"),
                action: command,
                barcode,
                cardnumber,
                amount,
            };
            if self.insert_row(row).is_err() {
                report.status = 500;
                return report;
            }
            report.added += 1;
        }
        report
    }
}

/// What a `.koc` import did (docs/koha.md 9.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KocImport {
    /// Rows queued.
    pub added: usize,
    /// Warnings shown (a version other than 1.0).
    pub warnings: Vec<String>,
    /// 200, or 500 when an unknown command or blank line stopped it (earlier rows stay).
    pub status: u16,
}

impl Default for KocImport {
    fn default() -> Self {
        KocImport {
            added: 0,
            warnings: Vec::new(),
            status: 200,
        }
    }
}

/// For tests: whether a session exists.
pub fn has_session(model: &Model, id: &str) -> bool {
    model.sessions.iter().any(|s: &Session| s.id == id)
}
