//! A whole download as a value: the patrons, then the items, then the checkouts, page by page.
//! The shell performs [`Download::request`] and feeds back each answer; once
//! [`Download::request`] gives nothing more, [`Download::finish`] makes the snapshot. Nothing is
//! stored before that, so a download that fails never replaces a good snapshot.
//!
//! [`Download::logging_in`] chooses how to log in (docs/koha.md 12.1): HTTP Basic first, which
//! creates no session in Koha; where Koha refuses it (401 on a list's first page: the
//! `RESTBasicAuth` preference is off, or the password is not one Koha keeps), the staff session
//! from `svc/authentication`, and the same page again. [`Download::next`] then gives the login's
//! requests ([`Next::Login`], answered through [`Download::feed_login`]) before the pages, and
//! [`Download::logout`] the request that ends the session this download opened.

use super::incremental::Pull;
use super::model::{Coverage, PatronRecord, PullRecord, Snapshot};
use super::paging::{Access, List, Pager, Progress};
use super::rest::{
    join_loans, parse_checkouts, parse_items, parse_patrons, CheckoutRow, ItemRow, PageError,
};
use crate::kinds::kinds;
use crate::koha::{
    auth_probe_request, interpret_session_login, logout_request, session_login_request,
    ConnectionProblem, Credentials, HttpRequest, NoAnswer, Reply,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a list is left out of the snapshot: its checks are unavailable, the others go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Unavailable {
    /// 401 or 403: the staff user lacks the list's permission (docs/koha.md 12.2 to 12.4) or
    /// the REST API refuses this way of logging in.
    Forbidden {
        /// The HTTP status.
        http_status: u16,
    },
    /// 404: this Koha has no such list (older versions, or the REST API switched off).
    NotFound,
    /// Only from a probe ([`Download::probing`]): the first page was a server error (a REST
    /// API that is broken, as on some older Koha) or could not be read.
    Broken {
        /// The HTTP status (200 for a page that could not be read).
        http_status: u16,
    },
}

kinds!(Unavailable {
    Forbidden => "forbidden",
    NotFound => "not-found",
    Broken => "broken",
});

/// Whether one list can be read, as a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    /// The list.
    pub list: List,
    /// The permission Koha asks for to read it.
    pub permission: &'static str,
    /// Why it cannot be read; `None`: it can.
    pub unavailable: Option<Unavailable>,
}

/// Why the download stopped. It can go on: feeding the same page again resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DownloadError {
    /// A page could not be read.
    #[error("{list} page {page}: {error}")]
    Page {
        /// The list.
        list: List,
        /// The page, from 1.
        page: u32,
        /// What was wrong with it.
        error: PageError,
    },
    /// Koha answered with another status than 200 (a server error half way, a gateway, a
    /// session that ended), or than 401, 403 or 404 on a list's first page: maybe a passing
    /// fault, so the page is worth asking for again later.
    #[error("{list} page {page}: Koha answered HTTP {http_status}")]
    Status {
        /// The list.
        list: List,
        /// The page, from 1.
        page: u32,
        /// The HTTP status.
        http_status: u16,
    },
    /// Logging in to the staff session failed in a way worth trying again (no answer, a server
    /// error); the next start logs in again.
    #[error("logging in to Koha: {problem}")]
    Login {
        /// What went wrong.
        problem: ConnectionProblem,
    },
}

kinds!(DownloadError {
    Page => "page",
    Status => "status",
    Login => "login",
});

/// What a download wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Fetch this page and give the answer to [`Download::feed`].
    Page(HttpRequest),
    /// Send this step of the staff session login and give the reply to
    /// [`Download::feed_login`].
    Login(HttpRequest),
    /// Every list is read or left out: [`Download::finish`].
    Done,
}

/// The staff session of a download that may log in through `svc/authentication`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Session {
    /// Not used: HTTP Basic works so far, or the session is not this download's to open.
    Unused,
    /// Wanted: first `GET svc/authentication`, for the session cookie and its token.
    Due,
    /// The probe answered: log in with this token (none before Koha 24.05).
    Probed(Option<String>),
    /// Logged in by this download.
    LoggedIn,
    /// Koha refused the login too: the lists are left out as refused.
    Refused,
}

/// A download in progress. See the module documentation.
#[derive(Debug, Clone)]
pub struct Download {
    started_at: DateTime<Utc>,
    access: Access,
    pager: Pager,
    base: String,
    per_page: u32,
    patrons: Vec<PatronRecord>,
    items: Vec<ItemRow>,
    checkouts: Vec<CheckoutRow>,
    coverage: Coverage,
    unavailable: Vec<(List, Unavailable)>,
    finished: bool,
    /// The login to fall back to where Koha refuses HTTP Basic.
    fallback: Option<Credentials>,
    session: Session,
    /// A login was sent that may have logged in (Koha said `ok`, or no answer came).
    logout_owed: bool,
    /// Only the first page of each list, to learn which lists can be read.
    probe: bool,
    /// For an incremental pull: the `q` value and the stored snapshot the changes go into.
    incremental: Option<(String, Snapshot)>,
    /// Koha's clock at the earliest answer so far (its `Date` header).
    koha_at: Option<DateTime<Utc>>,
    /// The server and login pulled from (`checks::pull_source`).
    source: Option<String>,
}

impl Download {
    /// Starts reading the Koha at `base`, `per_page` records a page, with the staff session.
    /// `started_at` becomes the snapshot's time: nothing in it is older than that.
    pub fn new(base: &str, per_page: u32, started_at: DateTime<Utc>) -> Download {
        Download::with_access(base, per_page, started_at, Access::Session)
    }

    /// As [`Download::new`], authenticated by `access`.
    pub fn with_access(
        base: &str,
        per_page: u32,
        started_at: DateTime<Utc>,
        access: Access,
    ) -> Download {
        Download {
            started_at,
            access,
            pager: Pager::new(base, List::Patrons, per_page),
            base: base.to_owned(),
            per_page,
            patrons: Vec::new(),
            items: Vec::new(),
            checkouts: Vec::new(),
            coverage: Coverage::default(),
            unavailable: Vec::new(),
            finished: false,
            fallback: None,
            session: Session::Unused,
            logout_owed: false,
            probe: false,
            incremental: None,
            koha_at: None,
            source: None,
        }
    }

    /// The same download, noting `source` (`checks::pull_source`) in the snapshot it makes, and
    /// pulling as `pull` says (`checks::plan_pull`): for [`Pull::Incremental`], only the patrons
    /// and items changed since then, merged into `stored` by [`Download::finish`].
    pub fn pulling(mut self, source: &str, pull: &Pull, stored: Option<Snapshot>) -> Download {
        self.source = Some(source.to_owned());
        if let (Pull::Incremental { since }, Some(stored)) = (pull, stored) {
            self.pager = Pager::new(&self.base, List::Patrons, self.per_page).changed_since(since);
            self.incremental = Some((since.clone(), stored));
        }
        self
    }

    /// Whether it reads only the changes since the stored snapshot.
    pub fn is_incremental(&self) -> bool {
        self.incremental.is_some()
    }

    /// Takes in the `Date` header of an answer to one of its pages: the earliest is the time
    /// the next incremental pull asks for changes since. One that cannot be read is left out.
    pub fn note_koha_time(&mut self, date_header: Option<&str>) {
        if let Some(koha) = date_header.and_then(|d| crate::clock::parse_http_date(d).ok()) {
            self.koha_at = Some(self.koha_at.map_or(koha, |known| known.min(koha)));
        }
    }

    /// A probe for the connection test: one record of each list's first page, logged in as
    /// [`Download::logging_in`] does, to learn which checks are available
    /// ([`Download::availability`]). A list that answers a server error or a page that cannot be
    /// read is "broken", not a failure to retry: the probe goes on with the next list.
    pub fn probing(base: &str, started_at: DateTime<Utc>, credentials: Credentials) -> Download {
        let mut download = Download::logging_in(base, 1, started_at, credentials);
        download.probe = true;
        download
    }

    /// Once every list is probed (or read), each list with whether it can be read; `None`
    /// before.
    pub fn availability(&self) -> Option<Vec<Availability>> {
        if !self.finished {
            return None;
        }
        let lists = [List::Patrons, List::Items, List::Checkouts];
        Some(
            lists
                .into_iter()
                .map(|list| Availability {
                    list,
                    permission: list.permission(),
                    unavailable: self
                        .unavailable
                        .iter()
                        .find(|(left_out, _)| *left_out == list)
                        .map(|(_, why)| *why),
                })
                .collect(),
        )
    }

    /// As [`Download::new`], logging in with `credentials`: HTTP Basic, and the staff session
    /// where Koha refuses Basic (see the module documentation).
    pub fn logging_in(
        base: &str,
        per_page: u32,
        started_at: DateTime<Utc>,
        credentials: Credentials,
    ) -> Download {
        let mut download = Download::with_access(
            base,
            per_page,
            started_at,
            Access::Basic(credentials.clone()),
        );
        download.fallback = Some(credentials);
        download
    }

    /// What to do next.
    pub fn next(&self) -> Next {
        if self.finished {
            return Next::Done;
        }
        match (&self.session, &self.fallback) {
            (Session::Due, _) => Next::Login(auth_probe_request(&self.base)),
            (Session::Probed(token), Some(credentials)) => Next::Login(session_login_request(
                &self.base,
                credentials,
                token.as_deref(),
                None,
            )),
            _ => match self.pager.request() {
                Some(request) => Next::Page(self.access.apply(request)),
                None => Next::Done,
            },
        }
    }

    /// The page after [`Download::next`]'s in the same list, when it is a page and Koha's total
    /// says another follows ([`Pager::request_after`]): the shell may fetch it ahead and give
    /// its answer to [`Download::feed`] once `next` asks for the same request. Never for a
    /// probe.
    pub fn page_after(&self) -> Option<HttpRequest> {
        match self.next() {
            Next::Page(_) if !self.probe => self
                .pager
                .request_after()
                .map(|request| self.access.apply(request)),
            _ => None,
        }
    }

    /// The next page to fetch, or `None` when every list is read (or left out) or a login step
    /// comes first ([`Download::next`]).
    pub fn request(&self) -> Option<HttpRequest> {
        match self.next() {
            Next::Page(request) => Some(request),
            _ => None,
        }
    }

    /// Takes in the reply to a [`Next::Login`] request. An error (no answer, a server error)
    /// changes nothing but what [`Download::logout`] owes: the login starts again next time.
    /// A refusal leaves the list being read out, as refused (401).
    pub fn feed_login(&mut self, reply: &Reply) -> Result<(), DownloadError> {
        let retry = |problem| Err(DownloadError::Login { problem });
        let no_answer = |why: &NoAnswer| match why {
            NoAnswer::Timeout => ConnectionProblem::Timeout,
            _ => ConnectionProblem::Unreachable,
        };
        match (&self.session, reply) {
            (Session::Due, Reply::NoAnswer { why }) => retry(no_answer(why)),
            (Session::Due, Reply::Http { status, .. }) if *status >= 500 => {
                retry(ConnectionProblem::ServerError {
                    http_status: *status,
                })
            }
            (
                Session::Due,
                Reply::Http {
                    status: 200,
                    csrf_token,
                    ..
                },
            ) => {
                let token = csrf_token.clone().filter(|t| !t.is_empty());
                self.session = Session::Probed(token);
                Ok(())
            }
            (Session::Due, Reply::Http { .. }) => {
                self.refuse_session();
                Ok(())
            }
            (Session::Probed(_), _) => match interpret_session_login(reply) {
                Ok(_) => {
                    self.session = Session::LoggedIn;
                    self.logout_owed = true;
                    Ok(())
                }
                Err(
                    problem @ (ConnectionProblem::ServerError { .. }
                    | ConnectionProblem::Unreachable),
                ) => {
                    // No answer: Koha may have logged in and set its cookie all the same.
                    self.logout_owed |= matches!(reply, Reply::NoAnswer { .. });
                    self.session = Session::Due;
                    match reply {
                        Reply::NoAnswer { why } => retry(no_answer(why)),
                        _ => retry(problem),
                    }
                }
                Err(_) => {
                    self.refuse_session();
                    Ok(())
                }
            },
            // Not asked for: nothing to take in.
            _ => Ok(()),
        }
    }

    /// The request that ends the staff session this download logged in to, once it stops
    /// (finished, failed or cancelled), so that nobody opening Koha in this browser is logged in
    /// as the desk's account; `None` when it opened none. A download that goes on later logs in
    /// again.
    pub fn logout(&mut self) -> Option<HttpRequest> {
        if !std::mem::take(&mut self.logout_owed) {
            return None;
        }
        if self.session == Session::LoggedIn {
            self.session = Session::Due;
        }
        Some(logout_request(&self.base))
    }

    /// Whether the pages go with the staff session this download logged in to.
    pub fn uses_session(&self) -> bool {
        self.session == Session::LoggedIn
    }

    fn refuse_session(&mut self) {
        self.session = Session::Refused;
        if let Some(credentials) = &self.fallback {
            self.access = Access::Basic(credentials.clone());
        }
        self.leave_out(Unavailable::Forbidden { http_status: 401 });
    }

    /// Where the list being read stands, and which list it is.
    pub fn progress(&self) -> (List, Progress) {
        (self.pager.list(), self.pager.progress())
    }

    /// The lists left out so far, and why.
    pub fn unavailable(&self) -> &[(List, Unavailable)] {
        &self.unavailable
    }

    /// Takes in the answer to [`Download::request`]: its HTTP status, its `X-Total-Count`
    /// header and its body. After an error nothing changed: the same page is asked for again.
    pub fn feed(
        &mut self,
        http_status: u16,
        total_count: Option<&str>,
        body: &str,
    ) -> Result<(), DownloadError> {
        if self.finished {
            return Ok(());
        }
        let list = self.pager.list();
        let page = self.pager.page();
        if http_status == 401
            && page == 1
            && self.fallback.is_some()
            && self.session == Session::Unused
        {
            // Koha refused HTTP Basic: the staff session, then the same page again.
            self.access = Access::Session;
            self.session = Session::Due;
            return Ok(());
        }
        if http_status == 400 && page == 1 && self.pager.is_filtered() {
            // Koha refused the `q` filter (a version that reads its value otherwise than we
            // know): everything, from the start.
            self.pull_everything();
            return Ok(());
        }
        // Only a list's first page tells whether the list is there for this user: a refusal
        // later (a session that ended) is an error to retry, not a missing permission.
        let unavailable = match http_status {
            200 => None,
            401 | 403 if page == 1 => Some(Unavailable::Forbidden { http_status }),
            404 if page == 1 => Some(Unavailable::NotFound),
            _ if self.probe => Some(Unavailable::Broken { http_status }),
            _ => {
                return Err(DownloadError::Status {
                    list,
                    page,
                    http_status,
                })
            }
        };
        if let Some(why) = unavailable {
            self.leave_out(why);
            return Ok(());
        }
        if self.probe {
            // One record is enough to know the list is there and readable.
            if parse_list(list, body).is_err() {
                self.leave_out(Unavailable::Broken { http_status });
            } else {
                self.next_list();
            }
            return Ok(());
        }
        let error = |error| DownloadError::Page { list, page, error };
        let records = match list {
            List::Patrons => {
                let rows = parse_patrons(body).map_err(error)?;
                let count = rows.len();
                self.patrons
                    .extend(rows.into_iter().filter_map(|r| r.record));
                count
            }
            List::Items => {
                let rows = parse_items(body).map_err(error)?;
                let count = rows.len();
                self.items.extend(rows);
                count
            }
            List::Checkouts => {
                let rows = parse_checkouts(body).map_err(error)?;
                let count = rows.len();
                self.checkouts.extend(rows);
                count
            }
        };
        if self.pager.feed(records, total_count).done {
            match list {
                List::Patrons => self.coverage.patrons = true,
                List::Items => self.coverage.items = true,
                List::Checkouts => self.coverage.checkouts = true,
            }
            self.next_list();
        }
        Ok(())
    }

    /// The snapshot, once [`Download::request`] gives nothing more; `None` before. After an
    /// incremental pull, the stored snapshot with the changes merged in: a changed record
    /// replaces the stored one with its key, a new one is added.
    pub fn finish(self) -> Option<Snapshot> {
        if !self.finished {
            return None;
        }
        let mut items = join_loans(self.items, &self.checkouts);
        let mut patrons = self.patrons;
        let mut full_at = None;
        if let Some((_, stored)) = self.incremental {
            // Stored first: of two records with one key the later is kept. An item's loan
            // changes its `timestamp` in Koha (issue, renewal and return write `onloan`), so an
            // item whose loan changed is among the changes, with its holder from the checkouts.
            if self.coverage.patrons {
                patrons = [stored.patrons(), patrons].concat();
            }
            if self.coverage.items {
                items = [stored.items(), items].concat();
            }
            full_at = Some(stored.full_at());
        }
        let pull = PullRecord {
            full_at,
            koha_at: self.koha_at,
            source: self.source,
        };
        Some(
            Snapshot::new(self.started_at, self.coverage, patrons, items)
                .with_unavailable(self.unavailable)
                .with_pull(pull),
        )
    }

    /// Turns an incremental pull into a full one, from the first page of the first list.
    fn pull_everything(&mut self) {
        self.incremental = None;
        self.patrons.clear();
        self.items.clear();
        self.checkouts.clear();
        self.coverage = Coverage::default();
        self.unavailable.clear();
        self.pager = Pager::new(&self.base, List::Patrons, self.per_page);
    }

    fn leave_out(&mut self, why: Unavailable) {
        self.unavailable.push((self.pager.list(), why));
        self.next_list();
    }

    fn next_list(&mut self) {
        let next = match self.pager.list() {
            List::Patrons => Some(List::Items),
            List::Items => Some(List::Checkouts),
            List::Checkouts => None,
        };
        match next {
            Some(list) => {
                let pager = Pager::new(&self.base, list, self.per_page);
                self.pager = match &self.incremental {
                    Some((since, _)) => pager.changed_since(since),
                    None => pager,
                };
            }
            None => self.finished = true,
        }
    }
}

/// Whether `body` reads as a page of `list`.
fn parse_list(list: List, body: &str) -> Result<(), PageError> {
    match list {
        List::Patrons => parse_patrons(body).map(drop),
        List::Items => parse_items(body).map(drop),
        List::Checkouts => parse_checkouts(body).map(drop),
    }
}
