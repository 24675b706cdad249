//! A Koha stand-in that behaves as `docs/koha.md` describes: `service.pl` and `svc/authentication`
//! per Koha era, an inspectable model, a request log, fault injection and a JSON control interface
//! under `/__control/`.
//!
//! ```no_run
//! use e2e::standin::{Config, Profile, StandIn};
//! let koha = StandIn::start(Config { profile: Profile::Newest, ..Config::default() }).unwrap();
//! println!("{}", koha.base_url());
//! // ... drive the add-on against it ...
//! assert!(koha.model().queue.is_empty());
//! ```

pub mod control;
pub mod dates;
pub mod http;
pub mod koha;
pub mod model;
pub mod rest;
pub mod synthetic;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use http::{read_request, write_response, write_short_response, Request, Response};
pub use koha::KocImport;
pub use model::{
    Account, ClosedLoan, Credit, Fixture, Item, Library, Loan, Model, Permission, QueueRow,
    Session, DEMO_PASSWORD, DEMO_USER,
};
pub use rest::RestApi;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};
pub use synthetic::Synthetic;

/// Which Koha era to behave like (docs/koha.md 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Profile {
    /// 16.05 to 23.11: `userid`/`password`, no CSRF, 200 `Authentication failed.`.
    #[serde(rename = "LEGACY")]
    Legacy,
    /// 24.05 to 24.11 under Plack: `login_*`, CSRF, 200 `Authentication failed.`.
    #[serde(rename = "KOHA_24_05")]
    Koha2405,
    /// main / 25.x: `login_*`, CSRF, 401, `nocookie` honoured.
    #[serde(rename = "NEWEST")]
    Newest,
}

impl Profile {
    /// Parses `LEGACY`, `KOHA_24_05`, `NEWEST` (case-insensitive).
    pub fn parse(text: &str) -> Option<Profile> {
        match text.to_ascii_uppercase().as_str() {
            "LEGACY" => Some(Profile::Legacy),
            "KOHA_24_05" => Some(Profile::Koha2405),
            "NEWEST" => Some(Profile::Newest),
            _ => None,
        }
    }

    /// The credential parameter names (docs/koha.md 4.1).
    pub fn credential_names(self) -> (&'static str, &'static str) {
        match self {
            Profile::Legacy => ("userid", "password"),
            _ => ("login_userid", "login_password"),
        }
    }
}

/// What varies between Koha installations. JSON names are upper snake case (`STRICT_SQL`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", default)]
pub struct Switches {
    /// Over-long or non-numeric queue values give 500 instead of being truncated.
    pub strict_sql: bool,
    /// The CSRF middleware (never in `LEGACY`).
    pub csrf: bool,
    /// 401, 403 and 500 carry an HTML page.
    pub html_errors: bool,
    /// Koha's time zone, e.g. `Europe/Berlin`.
    pub server_tz: String,
    /// `LEGACY` only: the older time-stamp parser (docs/koha.md 6.1).
    pub old_date_parser: bool,
    /// `KOHA_24_05` only: `svc/authentication` sends `CSRF-TOKEN`.
    pub auth_token_header: bool,
    /// Idle seconds before a session expires.
    pub session_timeout_secs: i64,
    /// Failed checks that lock an account; 0 means never.
    pub failed_login_limit: u32,
    /// Whether `/api/v1` is there, missing or broken (docs/koha.md 12).
    pub rest_api: RestApi,
    /// Koha's `RESTBasicAuth` preference: HTTP Basic accepted on `/api/v1`.
    pub rest_basic_auth: bool,
    /// REST permissions the librarians (`edit_catalogue`) lack, e.g. `list_borrowers`, or
    /// `view_borrower_infos_from_any_libraries` (their patron list then holds only their own
    /// library's patrons).
    pub rest_missing_permissions: Vec<String>,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            strict_sql: false,
            csrf: true,
            html_errors: true,
            server_tz: "Europe/Berlin".to_owned(),
            old_date_parser: false,
            auth_token_header: true,
            session_timeout_secs: 86_400,
            failed_login_limit: 0,
            rest_api: RestApi::On,
            rest_basic_auth: true,
            rest_missing_permissions: Vec::new(),
        }
    }
}

/// How the stand-in starts (and what `reset` restores).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The Koha era.
    pub profile: Profile,
    /// Switches.
    pub switches: Switches,
    /// Sleep per password check, in ms (models bcrypt).
    pub password_check_ms: u64,
    /// Sleep before every Koha answer, in ms (a network round trip).
    pub round_trip_ms: u64,
    /// Keep connections alive after Koha answers (default). Off: every Koha answer carries
    /// `Connection: close`, so each request goes on a fresh connection, where Firefox never
    /// re-sends a POST whose connection dropped (docs/koha.md 8.1).
    pub keep_alive: bool,
    /// Loan period in days.
    pub loan_period_days: i64,
    /// Starting data.
    pub fixture: Fixture,
    /// Generated records after the fixture's in the REST lists (the scale benchmark).
    pub synthetic: Synthetic,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profile: Profile::Newest,
            switches: Switches::default(),
            password_check_ms: 0,
            round_trip_ms: 0,
            keep_alive: true,
            loan_period_days: 14,
            fixture: Fixture::default(),
            synthetic: Synthetic::default(),
        }
    }
}

/// A fault the tests inject (not Koha behaviour).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// F1: delay the answer by `ms`.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// F2: process, then close the connection without any answer.
    Drop,
    /// F3: process, then answer `status` (500 or 502) with an error page.
    ErrorAfterProcessing {
        /// The status.
        status: u16,
    },
    /// F4: close this connection unprocessed and stop listening (connections refused) for `ms`.
    Refuse {
        /// Milliseconds without a listener.
        ms: u64,
    },
    /// F5: answer `status` (502 or 503) without processing.
    Gateway {
        /// The status.
        status: u16,
    },
    /// F6: answer a 302 to the login page without processing.
    RedirectToLogin,
    /// F7: process, send the answer's status line and headers and its body, but
    /// announce one byte more in `Content-Length`; then send nothing until the client gives up
    /// (closes the connection), the stand-in stops, or `ms` pass, and close. Models a server or
    /// proxy that stalls in the middle of an answer: only a client time-out that covers reading
    /// the body ends the wait.
    Stall {
        /// The longest wait, in milliseconds.
        ms: u64,
    },
    /// F8: process, then answer with this body instead of Koha's (same status and headers):
    /// a cut-off or malformed page, or records lacking fields.
    ReplaceBody {
        /// The body sent.
        body: String,
    },
}

/// Which requests a fault hits. Every given condition must hold. Only Koha requests count
/// (not `/__control/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct When {
    /// The request's number among all Koha requests since the last reset (1-based).
    pub request: Option<u64>,
    /// The method, e.g. `POST`.
    pub method: Option<String>,
    /// The path ends with this, e.g. `service.pl`.
    pub path: Option<String>,
    /// Parameters that must have exactly these (first) values.
    pub params: Vec<(String, String)>,
    /// Only the n-th request matching the conditions above (1-based).
    pub nth: Option<u64>,
}

impl When {
    /// `service.pl` requests with this `action` (e.g. `issue`), whatever their method.
    pub fn action(action: &str) -> When {
        When {
            path: Some("service.pl".into()),
            params: vec![("action".into(), action.into())],
            ..When::default()
        }
    }
}

/// A fault and when it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Which requests.
    #[serde(default)]
    pub when: When,
    /// What happens.
    pub fault: Fault,
    /// How many times it may fire; 0 means every time.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl FaultRule {
    /// A fault for the n-th request matching `when`, firing once.
    pub fn nth(fault: Fault, when: When) -> Self {
        FaultRule {
            when,
            fault,
            times: 1,
        }
    }
}

#[derive(Debug, Clone)]
struct ArmedFault {
    rule: FaultRule,
    matched: u64,
    fired: u32,
}

/// One logged Koha request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Number among Koha requests (1-based).
    pub n: u64,
    /// Which TCP connection carried it (1-based, in accept order).
    pub connection: u64,
    /// How many requests this connection carried before this one.
    pub on_connection: u64,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// The parameters Koha reads (query for GET/HEAD, body otherwise), decoded, in order.
    pub params: Vec<(String, String)>,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Cookies sent.
    pub cookies: Vec<(String, String)>,
    /// The raw body.
    pub body: String,
    /// Faults that fired, by kind.
    pub faults: Vec<String>,
    /// Whether Koha's logic ran and changed or looked at data past authentication.
    pub processed: bool,
    /// The answer's status; `None` when no answer was sent (F2, F4).
    pub status: Option<u16>,
    /// The answer's body.
    pub answer: String,
}

impl LoggedRequest {
    /// The first value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The shared state.
#[derive(Debug)]
pub struct State {
    /// The configuration in force.
    pub config: Config,
    /// The model.
    pub model: Model,
    /// The request log.
    pub log: Vec<LoggedRequest>,
    faults: Vec<ArmedFault>,
    /// The stand-in's "now" when set; else the real clock.
    pub now_override: Option<DateTime<Utc>>,
    /// Password checks done since the last reset (each one paid `password_check_ms`).
    pub password_checks: u64,
    ids: u64,
    random: RandomState,
}

impl State {
    fn new(config: Config) -> Self {
        State {
            model: Model::from_fixture(&config.fixture),
            config,
            log: Vec::new(),
            faults: Vec::new(),
            now_override: None,
            password_checks: 0,
            ids: 0,
            random: RandomState::new(),
        }
    }

    /// Now, in UTC.
    pub fn now(&self) -> DateTime<Utc> {
        self.now_override.unwrap_or_else(Utc::now)
    }

    /// The server zone (UTC if the name is unknown).
    pub fn tz(&self) -> Tz {
        self.config.switches.server_tz.parse().unwrap_or(Tz::UTC)
    }

    /// Now in the server zone, `YYYY-MM-DD HH:MM:SS`.
    pub fn local_now(&self) -> String {
        self.now()
            .with_timezone(&self.tz())
            .format(dates::FORMAT)
            .to_string()
    }

    /// Whether the CSRF middleware runs.
    pub fn csrf_active(&self) -> bool {
        self.config.profile != Profile::Legacy && self.config.switches.csrf
    }

    /// Whether `svc/authentication` hands out tokens and anonymous sessions (docs/koha.md 5).
    pub fn token_mode(&self) -> bool {
        match self.config.profile {
            Profile::Legacy => false,
            Profile::Koha2405 => self.config.switches.auth_token_header,
            Profile::Newest => true,
        }
    }

    fn random_hex(&mut self) -> String {
        self.ids += 1;
        let a = self.random.hash_one(self.ids);
        let b = self.random.hash_one((self.ids, a));
        format!("{a:016x}{b:016x}")
    }

    /// Creates a counted session; returns its id.
    pub fn new_session(
        &mut self,
        userid: Option<String>,
        library: Option<String>,
        created_by: &str,
    ) -> String {
        let id = self.random_hex();
        let last_use = self.now();
        self.model.sessions.push(Session {
            id: id.clone(),
            userid,
            library,
            last_use,
            tokens: Vec::new(),
            created_by: created_by.to_owned(),
        });
        id
    }

    /// Whether the session with this `CGISESSID` is live (not timed out) and logged in.
    pub fn session_logged_in(&self, id: &str) -> bool {
        let timeout = chrono::Duration::seconds(self.config.switches.session_timeout_secs);
        self.model
            .sessions
            .iter()
            .any(|s| s.id == id && s.userid.is_some() && self.now() - s.last_use <= timeout)
    }

    /// Live logged-in sessions of `userid` whose cookie Koha handed out (`svc/authentication`
    /// logins). The sessions a `service.pl` credential check leaves behind are not counted:
    /// Koha never tells anyone their id (docs/koha.md 4.2, orphan sessions).
    pub fn cookie_logins(&self, userid: &str) -> Vec<Session> {
        self.model
            .sessions
            .iter()
            .filter(|s| {
                s.userid.as_deref() == Some(userid)
                    && s.created_by == "svc/authentication"
                    && self.session_logged_in(&s.id)
            })
            .cloned()
            .collect()
    }

    /// Issues a token bound to a session.
    pub fn new_token(&mut self, session: &str) -> String {
        let token = self.random_hex();
        if let Some(s) = self.model.sessions.iter_mut().find(|s| s.id == session) {
            s.tokens.push(token.clone());
        }
        token
    }

    /// Back to a configuration's fixture: empty log, no faults, real clock.
    pub fn reset(&mut self, config: Config) {
        *self = State::new(config);
    }

    /// Replaces the faults.
    pub fn set_faults(&mut self, rules: Vec<FaultRule>) {
        self.faults = rules
            .into_iter()
            .map(|rule| ArmedFault {
                rule,
                matched: 0,
                fired: 0,
            })
            .collect();
    }

    /// The faults and how often each fired.
    pub fn faults(&self) -> Vec<(FaultRule, u32)> {
        self.faults
            .iter()
            .map(|f| (f.rule.clone(), f.fired))
            .collect()
    }

    fn matching_faults(
        &mut self,
        n: u64,
        req: &Request,
        params: &[(String, String)],
    ) -> Vec<Fault> {
        let mut fired = Vec::new();
        for armed in &mut self.faults {
            let w = &armed.rule.when;
            let ok = w.request.is_none_or(|r| r == n)
                && w.method
                    .as_ref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(&req.method))
                && w.path
                    .as_ref()
                    .is_none_or(|p| req.path.ends_with(p.as_str()))
                && w.params.iter().all(|(name, value)| {
                    params.iter().find(|(pn, _)| pn == name).map(|(_, v)| v) == Some(value)
                });
            if !ok {
                continue;
            }
            armed.matched += 1;
            let nth_ok = w.nth.is_none_or(|nth| nth == armed.matched);
            let left = armed.rule.times == 0 || armed.fired < armed.rule.times;
            if nth_ok && left {
                armed.fired += 1;
                fired.push(armed.rule.fault.clone());
            }
        }
        fired
    }
}

/// The listening socket. F4 closes it at once, so that once a client has seen its connection
/// end, new connections are refused; the accept loop opens it again when the refusal is over.
#[derive(Debug)]
struct Listener {
    port: u16,
    socket: Option<TcpListener>,
    refuse_until: Option<Instant>,
}

impl Listener {
    fn refuse_for(&mut self, ms: u64) {
        self.socket = None;
        self.refuse_until = Some(Instant::now() + Duration::from_millis(ms));
    }

    /// The socket to accept on: `None` while refusing, or while the port cannot be bound again.
    fn socket(&mut self) -> Option<&TcpListener> {
        if self
            .refuse_until
            .is_some_and(|until| Instant::now() < until)
        {
            return None;
        }
        self.refuse_until = None;
        if self.socket.is_none() {
            let socket = TcpListener::bind(("127.0.0.1", self.port)).ok()?;
            socket.set_nonblocking(true).ok()?;
            self.socket = Some(socket);
        }
        self.socket.as_ref()
    }
}

/// The state and the listening socket, shared by the accept loop and connection threads.
#[derive(Debug, Clone)]
pub struct Shared {
    state: Arc<Mutex<State>>,
    listener: Arc<Mutex<Listener>>,
}

impl Shared {
    /// Locks the state (recovering from a poisoned lock: a panicking test thread must not wedge
    /// the server).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn listener(&self) -> MutexGuard<'_, Listener> {
        self.listener.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// F4: closes the listening socket now and refuses connections for `ms`.
    pub fn refuse_for(&self, ms: u64) {
        self.listener().refuse_for(ms);
    }

    /// Back to a configuration's fixture (see [`State::reset`]), listening again if refusing.
    pub fn reset(&self, config: Config) {
        self.lock().reset(config);
        self.listener().refuse_until = None;
    }
}

/// A running stand-in. Dropping it stops the server.
#[derive(Debug)]
pub struct StandIn {
    shared: Shared,
    port: u16,
    stop: Arc<AtomicBool>,
    connections: Connections,
    accept: Option<thread::JoinHandle<()>>,
}

impl StandIn {
    /// Starts on `127.0.0.1` with a free port.
    pub fn start(config: Config) -> io::Result<StandIn> {
        Self::start_on(config, 0)
    }

    /// Starts on `127.0.0.1:port` (0 picks a free one).
    pub fn start_on(config: Config, port: u16) -> io::Result<StandIn> {
        let socket = TcpListener::bind(("127.0.0.1", port))?;
        socket.set_nonblocking(true)?;
        let port = socket.local_addr()?.port();
        let shared = Shared {
            state: Arc::new(Mutex::new(State::new(config))),
            listener: Arc::new(Mutex::new(Listener {
                port,
                socket: Some(socket),
                refuse_until: None,
            })),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Connections::default();
        let accept = {
            let (shared, stop, conns) = (shared.clone(), stop.clone(), connections.clone());
            thread::Builder::new()
                .name("koha-standin".into())
                .spawn(move || accept_loop(port, shared, stop, conns))?
        };
        Ok(StandIn {
            shared,
            port,
            stop,
            connections,
            accept: Some(accept),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, the staff interface origin.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Direct access to the state.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// A snapshot of the model.
    pub fn model(&self) -> Model {
        self.state().model.clone()
    }

    /// A snapshot of the request log.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.state().log.clone()
    }

    /// Logged requests to `service.pl`.
    pub fn service_requests(&self) -> Vec<LoggedRequest> {
        self.log()
            .into_iter()
            .filter(|r| r.path.ends_with("/offline_circ/service.pl"))
            .collect()
    }

    /// Logged `service.pl` requests that carried a transaction (not a probe, whose `action` is
    /// empty).
    pub fn transaction_requests(&self) -> Vec<LoggedRequest> {
        self.service_requests()
            .into_iter()
            .filter(|r| r.param("action").is_some_and(|a| !a.is_empty()))
            .collect()
    }

    /// Resets model, log, faults and clock to a configuration, and ends a refusal (F4).
    pub fn reset(&self, config: Config) {
        self.shared.reset(config);
    }

    /// Changes the configuration in force (not the model).
    pub fn configure(&self, change: impl FnOnce(&mut Config)) {
        change(&mut self.state().config);
    }

    /// Sets or clears the stand-in's "now".
    pub fn set_now(&self, now: Option<DateTime<Utc>>) {
        self.state().now_override = now;
    }

    /// Replaces the faults.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.state().set_faults(rules);
    }

    /// The queue as a librarian of `library` sees it (docs/koha.md 9.1).
    pub fn queue_for(&self, library: &str) -> Vec<QueueRow> {
        self.state().queue_for(library)
    }

    /// Processes a row as a librarian of `library` (docs/koha.md 9.1).
    pub fn process_row(&self, operationid: u64, library: &str) -> Result<String, u16> {
        self.state().process_row(operationid, library)
    }

    /// Deletes a row (docs/koha.md 9.1).
    pub fn delete_row(&self, operationid: u64) -> Option<String> {
        self.state().delete_row(operationid)
    }

    /// Imports a `.koc` body (docs/koha.md 9.2).
    pub fn import_koc(&self, userid: &str, library: &str, body: &str) -> KocImport {
        self.state().import_koc(userid, library, body)
    }

    /// Password checks since the last reset.
    pub fn password_checks(&self) -> u64 {
        self.state().password_checks
    }

    /// Number of sessions.
    pub fn session_count(&self) -> usize {
        self.state().model.sessions.len()
    }

    /// Whether the session named by this `CGISESSID` is live and logged in.
    pub fn session_logged_in(&self, id: &str) -> bool {
        self.state().session_logged_in(id)
    }

    /// See [`State::cookie_logins`].
    pub fn cookie_logins(&self, userid: &str) -> Vec<Session> {
        self.state().cookie_logins(userid)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
        // Connection threads share the socket: close it here, not when the last one ends.
        self.shared.listener().socket = None;
        // Open keep-alive connections end too, so a stopped stand-in answers nothing.
        let mut list = self.connections.0.lock().unwrap_or_else(|e| e.into_inner());
        for (_, stream) in list.drain() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Clones of the accepted streams, to close them when the stand-in stops.
#[derive(Debug, Clone, Default)]
struct Connections(Arc<Mutex<std::collections::HashMap<u64, TcpStream>>>);

fn accept_loop(port: u16, shared: Shared, stop: Arc<AtomicBool>, connections: Connections) {
    let mut connection_ids: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let accepted = match shared.listener().socket() {
            // F4, or the port not free again yet: connections are refused meanwhile.
            None => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
            Some(socket) => socket.accept(),
        };
        match accepted {
            Ok((stream, peer)) => {
                // Only the listener polls; a connection's reads and writes block.
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                connection_ids += 1;
                if let Ok(clone) = stream.try_clone() {
                    let mut list = connections.0.lock().unwrap_or_else(|e| e.into_inner());
                    list.insert(connection_ids, clone);
                }
                let (shared, stop, id) = (shared.clone(), stop.clone(), connection_ids);
                let conns = connections.clone();
                let _ = thread::Builder::new()
                    .name(format!("koha-conn-{id}"))
                    .spawn(move || {
                        let _ = serve_connection(stream, peer, id, port, &shared, &stop);
                        // Dropping the last clone closes the socket.
                        conns
                            .0
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&id);
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Waits for the next request's first byte; `false` when the peer closed or the server stops.
fn wait_for_data(reader: &mut BufReader<TcpStream>, stop: &AtomicBool) -> io::Result<bool> {
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))?;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match reader.fill_buf() {
            Ok([]) => return Ok(false),
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(true)
}

/// The parameters Koha reads (docs/koha.md 2.1).
fn koha_params(req: &Request) -> Vec<(String, String)> {
    match req.method.as_str() {
        "GET" | "HEAD" => http::form_decode(&req.query),
        _ => req.body_params(),
    }
}

fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    connection: u64,
    port: u16,
    shared: &Shared,
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut on_connection = 0;
    while wait_for_data(&mut reader, stop)? {
        let Some(req) = read_request(&mut reader)? else {
            return Ok(());
        };
        let head = req.method == "HEAD";
        if req.path.starts_with("/__control/") || req.path == "/__control" {
            let response = control::handle(shared, &req);
            let date = shared.lock().now();
            write_response(&mut writer, &response, head, req.close, date)?;
        } else {
            let conn = Conn {
                connection,
                on_connection,
                port,
                stop,
            };
            let keep = serve_koha(shared, &req, &peer, &conn, &mut writer)?;
            if !keep {
                return Ok(());
            }
        }
        on_connection += 1;
        if req.close {
            return Ok(());
        }
    }
    Ok(())
}

/// Where a request came in.
struct Conn<'a> {
    connection: u64,
    on_connection: u64,
    port: u16,
    stop: &'a AtomicBool,
}

/// Serves one Koha request; `Ok(false)` when the connection must be closed.
fn serve_koha(
    shared: &Shared,
    req: &Request,
    peer: &SocketAddr,
    conn: &Conn<'_>,
    writer: &mut TcpStream,
) -> io::Result<bool> {
    let (connection, on_connection, port) = (conn.connection, conn.on_connection, conn.port);
    let params = koha_params(req);
    let (index, faults, round_trip, keep_alive) = {
        let mut state = shared.lock();
        let n = state.log.len() as u64 + 1;
        let faults = state.matching_faults(n, req, &params);
        state.log.push(LoggedRequest {
            n,
            connection,
            on_connection,
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            params: params.clone(),
            headers: req.headers.clone(),
            cookies: req.cookies(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
            faults: faults.iter().map(fault_name).collect(),
            processed: false,
            status: None,
            answer: String::new(),
        });
        (
            state.log.len() - 1,
            faults,
            state.config.round_trip_ms,
            state.config.keep_alive,
        )
    };
    let delay: u64 = faults
        .iter()
        .map(|f| match f {
            Fault::Delay { ms } => *ms,
            _ => 0,
        })
        .sum();
    let before = faults.iter().find(|f| {
        matches!(
            f,
            Fault::Refuse { .. } | Fault::Gateway { .. } | Fault::RedirectToLogin
        )
    });
    let after = faults.iter().find(|f| {
        matches!(
            f,
            Fault::Drop
                | Fault::ErrorAfterProcessing { .. }
                | Fault::Stall { .. }
                | Fault::ReplaceBody { .. }
        )
    });
    let (mut response, processed) = match before {
        Some(Fault::Refuse { ms }) => {
            shared.refuse_for(*ms);
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return Ok(false);
        }
        Some(Fault::Gateway { status }) => (gateway_page(*status), false),
        Some(_) => (
            Response::new(302, "text/html; charset=utf-8", "").with_header(
                "Location",
                &format!("http://127.0.0.1:{port}/cgi-bin/koha/mainpage.pl"),
            ),
            false,
        ),
        None => route(shared, req, &params, &peer.ip().to_string()),
    };
    if let Some(fault) = after {
        match fault {
            Fault::Drop => {
                thread::sleep(Duration::from_millis(delay));
                shared.lock().log[index].processed = processed;
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return Ok(false);
            }
            Fault::ReplaceBody { body } => response.body = body.clone().into_bytes(),
            Fault::ErrorAfterProcessing { status } => {
                response = if *status == 500 {
                    koha::error_response(&shared.lock(), 500, "Software error")
                } else {
                    gateway_page(*status)
                };
            }
            _ => {}
        }
    }
    thread::sleep(Duration::from_millis(delay + round_trip));
    let date = {
        let mut state = shared.lock();
        let entry = &mut state.log[index];
        entry.processed = processed;
        entry.status = Some(response.status);
        entry.answer = String::from_utf8_lossy(&response.body).into_owned();
        state.now()
    };
    if let Some(Fault::Stall { ms }) = after {
        write_short_response(writer, &response, date)?;
        stall(writer, Duration::from_millis(*ms), conn.stop);
        let _ = writer.shutdown(std::net::Shutdown::Both);
        return Ok(false);
    }
    let close = req.close || !keep_alive;
    write_response(writer, &response, req.method == "HEAD", close, date)?;
    Ok(!close)
}

/// F7's wait: until the client closes the connection, the stand-in stops, or `at_most` passed.
fn stall(stream: &TcpStream, at_most: Duration, stop: &AtomicBool) {
    let until = Instant::now() + at_most;
    let Ok(mut reader) = stream.try_clone() else {
        return;
    };
    if reader
        .set_read_timeout(Some(Duration::from_millis(50)))
        .is_err()
    {
        return;
    }
    let mut buf = [0u8; 512];
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        match io::Read::read(&mut reader, &mut buf) {
            // Closed by the client.
            Ok(0) => return,
            // Anything it sends (a next request) is not answered.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn gateway_page(status: u16) -> Response {
    Response::new(
        status,
        "text/html",
        format!("<html><body><h1>{status}</h1><p>Gateway error</p></body></html>"),
    )
}

fn fault_name(fault: &Fault) -> String {
    match fault {
        Fault::Delay { .. } => "F1",
        Fault::Drop => "F2",
        Fault::ErrorAfterProcessing { .. } => "F3",
        Fault::Refuse { .. } => "F4",
        Fault::Gateway { .. } => "F5",
        Fault::RedirectToLogin => "F6",
        Fault::Stall { .. } => "F7",
        Fault::ReplaceBody { .. } => "F8",
    }
    .to_owned()
}

/// The two Koha endpoints, plus `mainpage.pl` for logging out (docs/koha.md 1) and the REST
/// lists of the offline checks (docs/koha.md 12); anything else is 404.
fn route(
    shared: &Shared,
    req: &Request,
    params: &[(String, String)],
    peer: &str,
) -> (Response, bool) {
    match req.path.as_str() {
        "/cgi-bin/koha/offline_circ/service.pl" => koha::service(shared, req, params, peer),
        "/cgi-bin/koha/svc/authentication" => koha::authentication(shared, req, params, peer),
        "/cgi-bin/koha/mainpage.pl" => koha::mainpage(shared, req, params),
        path if path.starts_with("/api/v1/") => rest::api(shared, req),
        _ => (
            Response::new(
                404,
                "text/html",
                "<html><body><h1>Not Found</h1></body></html>",
            ),
            false,
        ),
    }
}
