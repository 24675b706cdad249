//! The send run as a sans-IO state machine: every decision of a run, none of its I/O.
//!
//! The shell creates a run with [`SendRun::start`] and then performs each [`Command`] it is
//! given, feeding back what happened, in order:
//!
//! - [`Command::Mirror`]: write the copies to the synchronous mirror, then
//!   [`SendRun::mirrored`];
//! - [`Command::Perform`]: write `store` to the store of record and send `request` at the same
//!   time, wait for both, then [`SendRun::performed`];
//! - [`Command::Finish`]: the run is over.
//!
//! Its inputs are the answers, the storage results and the clock (`now` with every call); it
//! changes the page's [`Journal`] itself, so the table shows each status as soon as it is set.
//!
//! The rules it keeps:
//!
//! - Nothing goes out before detection (and the GET consent, the exported-rows question) has
//!   passed; if anything fails then, no transaction changes.
//! - A transaction is `sending` in a store before its request leaves: in the mirror (then the
//!   store of record is written while the request travels), or, if the mirror refuses, in the
//!   store of record first. Only then does the page's journal show it `sending`. If neither store
//!   takes it, it is not sent and stays as it was; the run stops.
//! - Koha's answer is always recorded, in memory and the mirror, even when the store of record
//!   refused the write that travelled with the request; the run then stops, and the shell keeps
//!   retrying that write.
//! - One request at a time, in planned order; a 403 under P1/P2 fetches one fresh token and
//!   sends the same transaction once more (Koha applied nothing).
//! - Cancel lets the request in flight finish. A run that logged in with a session ends it.

use super::plan::{self, ExportedChoice, ExportedQuestion, Plan, Resend};
use super::{credentials, detector, NotReady, Summary};
use crate::clock;
use crate::desk;
use crate::journal::Journal;
use crate::kinds::kinds;
use crate::koha::{
    self, Answer, ConnectionProblem, Credentials, DetectStep, Detection, Detector, HttpRequest,
    Reply, Transport,
};
use crate::settings::Settings;
use crate::transaction::{FailReason, Status, Transaction, TransactionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What the librarian decided before (or while re-starting) a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunOptions {
    /// Uncertain transactions the librarian confirmed to send again.
    pub resend: Vec<TransactionId>,
    /// The librarian consented to GET (password in URLs) for this run.
    pub allow_get: bool,
    /// What to do with transactions already exported to a `.koc` file.
    pub exported: ExportedChoice,
    /// The librarian saw that the desk's clock differs from Koha's and sends anyway.
    pub clock_confirmed: bool,
}

/// What a run starts from: the page's settings and what the browser said about them.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The stored settings.
    pub settings: Option<Settings>,
    /// Whether Firefox lets the add-on reach the server.
    pub host_permission: bool,
    /// The password typed for this browser session, if any.
    pub session_password: Option<String>,
    /// The librarian's choices.
    pub options: RunOptions,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Write these copies to the synchronous mirror now (keep them there, whatever their status,
    /// until the store of record has them), then call [`SendRun::mirrored`]. The page may show
    /// them: each is a status change.
    Mirror(Vec<Transaction>),
    /// Write `store` to the store of record (if not empty; afterwards the mirror lets go of the
    /// accepted ones) and at the same time send `request` (if any). Then call
    /// [`SendRun::performed`] with both results.
    Perform {
        /// Copies for the store of record.
        store: Vec<Transaction>,
        /// The request to send.
        request: Option<HttpRequest>,
    },
    /// The run is over.
    Finish(RunEnd),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Something is missing; nothing was sent or changed.
    NotReady(NotReady),
    /// Some transactions were exported to a `.koc` file: ask, then start again with
    /// [`RunOptions::exported`] set. Nothing was sent.
    AskExported(ExportedQuestion),
    /// The desk's clock differs from Koha's (its `Date`) by more than [`clock::THRESHOLD`]:
    /// every recorded time would be that far off in Koha (due dates, queue order). Ask, then
    /// start again with [`RunOptions::clock_confirmed`]. Nothing was sent.
    AskClock {
        /// The desk's time when Koha's answer arrived.
        desk: DateTime<Utc>,
        /// Koha's time then.
        koha: DateTime<Utc>,
    },
    /// Only GET would work: ask, then start again with [`RunOptions::allow_get`]. Nothing was
    /// sent.
    AskGet {
        /// Payments in the run, which a silently repeated GET could charge twice.
        payments: usize,
    },
    /// Detection found no way to send; nothing was sent.
    Problem {
        /// What is wrong.
        problem: ConnectionProblem,
        /// Koha refused the password typed for this session: drop it and ask again.
        forget_session_password: bool,
    },
    /// The run happened, perhaps stopping early.
    Ran(Summary),
}

/// Misuse of the run's protocol by the shell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the send run got {got} while {expected}")]
pub struct ProtocolError {
    /// What the shell called.
    pub got: &'static str,
    /// What the run waited for.
    pub expected: &'static str,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// Everything planned was sent.
    Finished,
    /// The librarian cancelled; the request in flight finished first.
    Cancelled,
    /// C5: authentication or CSRF refused (lockout risk).
    Authentication,
    /// C6: wrong URL or a gateway in between.
    Configuration,
    /// C7: a server error or an unexpected answer.
    ServerError,
    /// C8: no answer.
    Network,
    /// C9: timed out.
    Timeout,
    /// The desk could not store a status change: nothing more is sent until it can.
    Storage,
}

kinds!(StopReason {
    Finished => "finished",
    Cancelled => "cancelled",
    Authentication => "authentication",
    Configuration => "configuration",
    ServerError => "server-error",
    Network => "network",
    Timeout => "timeout",
    Storage => "storage",
});

impl StopReason {
    fn from_answer(answer: &Answer) -> Option<StopReason> {
        Some(match answer {
            Answer::AuthProblem { .. } => StopReason::Authentication,
            Answer::Misdirected { .. } => StopReason::Configuration,
            Answer::ServerError { .. } => StopReason::ServerError,
            Answer::NetworkError => StopReason::Network,
            Answer::Timeout => StopReason::Timeout,
            Answer::Queued | Answer::Applied | Answer::Rejected { .. } | Answer::Empty => {
                return None
            }
        })
    }
}

/// Where the run stands.
#[derive(Debug, Clone)]
enum Phase {
    /// Detection: its requests are in flight one by one.
    Detecting(Detector),
    /// The GET probe, after the librarian consented.
    GetProbe,
    /// `sending` of the current transaction is being written to the mirror.
    MirroringSending,
    /// The mirror refused `sending`: the store of record is written first.
    StoringSending,
    /// The request of the current transaction is in flight.
    InFlight,
    /// A fresh CSRF token is being fetched after a 403.
    RefreshingToken,
    /// The outcome of the current transaction is being written to the mirror.
    MirroringOutcome(Option<StopReason>),
    /// The last writes (and the logout) are being performed.
    Closing,
    /// Finished.
    Over,
}

/// The transaction being sent.
#[derive(Debug, Clone)]
struct Current {
    id: TransactionId,
    request: HttpRequest,
    retried: bool,
    /// The `sending` copy, until a store holds it and the journal takes it ([`SendRun::commit`]).
    /// A `sending` that no store took never happened: nothing left, the row stays as it was.
    uncommitted: Option<Transaction>,
}

/// One send run. See the module docs.
#[derive(Debug, Clone)]
pub struct SendRun {
    settings: Settings,
    creds: Credentials,
    options: RunOptions,
    resend: Vec<Resend>,
    phase: Phase,
    transport: Transport,
    token: Option<String>,
    session_login: bool,
    pending: VecDeque<TransactionId>,
    total: usize,
    done: usize,
    current: Option<Current>,
    /// Transactions whose status changed in memory and the mirror, not yet in the store of
    /// record. Written as the journal has them then (never an older snapshot).
    unstored: Vec<TransactionId>,
    cancelled: bool,
    /// When the first request left (for the clock check on its answer), until it is done.
    first_sent: Option<DateTime<Utc>>,
    summary: Summary,
}

impl SendRun {
    /// Checks what a run needs, plans it against `journal` and gives the first command (a
    /// [`Command::Finish`] when the run cannot or need not go to Koha).
    pub fn start(
        setup: Setup,
        journal: &Journal,
        now: DateTime<Utc>,
    ) -> (Option<SendRun>, Command) {
        let creds = match credentials(
            setup.settings.as_ref(),
            setup.host_permission,
            setup.session_password.as_deref(),
        ) {
            Ok(creds) => creds,
            Err(missing) => return (None, Command::Finish(RunEnd::NotReady(missing))),
        };
        let Some(settings) = setup.settings else {
            return (None, Command::Finish(RunEnd::NotReady(NotReady::Settings)));
        };
        let resend: Vec<Resend> = setup
            .options
            .resend
            .iter()
            .filter_map(|id| journal.get(id))
            .filter_map(super::confirmed_resend)
            .collect();
        let Plan {
            send,
            exported,
            held_back,
        } = plan::plan(journal, &resend, setup.options.exported, settings.mode);
        if setup.options.exported == ExportedChoice::Ask {
            if let Some(question) = plan::exported_question(journal, &exported) {
                return (None, Command::Finish(RunEnd::AskExported(question)));
            }
        }
        let summary = Summary {
            left_out_exported: exported.len(),
            held_back: held_back.len(),
            ..Summary::default()
        };
        let detector = detector(&settings, creds.clone());
        let mut run = SendRun {
            total: send.len(),
            pending: send.into(),
            settings,
            creds,
            options: setup.options,
            resend,
            phase: Phase::Over,
            transport: Transport::P3,
            token: None,
            session_login: false,
            done: 0,
            current: None,
            unstored: Vec::new(),
            cancelled: false,
            first_sent: Some(now),
            summary,
        };
        if run.pending.is_empty() {
            run.summary.stopped = Some(StopReason::Finished);
            let end = RunEnd::Ran(run.summary.clone());
            return (Some(run), Command::Finish(end));
        }
        let mut detector = detector;
        let request = detector.start();
        run.phase = Phase::Detecting(detector);
        (Some(run), perform(Vec::new(), Some(request)))
    }

    /// The librarian cancelled: the request in flight finishes, then the run stops.
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// `(done, total)`: transactions with an answer, and planned in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.done, self.total)
    }

    /// The transport detection chose (P3 until it has).
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The counts so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Whether the run is over.
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Over)
    }

    /// The mirror write of the last [`Command::Mirror`] took (`true`) or was refused.
    pub fn mirrored(
        &mut self,
        took: bool,
        journal: &mut Journal,
        now: DateTime<Utc>,
    ) -> Result<Command, ProtocolError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::MirroringSending if took => {
                if !self.commit(journal, now) {
                    return Ok(self.drop_current(journal, now));
                }
                let store = self.take_unstored(journal);
                self.phase = Phase::InFlight;
                Ok(perform(store, self.current_request()))
            }
            Phase::MirroringSending => {
                // `sending` must be stored somewhere before the request leaves: the store of
                // record first.
                let mut store = self.take_unstored(journal);
                store.extend(self.current.as_ref().and_then(|c| c.uncommitted.clone()));
                self.phase = Phase::StoringSending;
                Ok(perform(store, None))
            }
            Phase::MirroringOutcome(stop) => Ok(match stop {
                Some(reason) => self.close(reason, journal),
                None => self.next(journal, now),
            }),
            other => Err(self.misuse(other, "mirrored")),
        }
    }

    /// The store-of-record write and the request of the last [`Command::Perform`] are done.
    /// `stored` is `Ok` when there was nothing to store; `reply` is `None` when there was no
    /// request.
    pub fn performed(
        &mut self,
        stored: Result<(), StorageRefused>,
        reply: Option<Reply>,
        journal: &mut Journal,
        now: DateTime<Utc>,
    ) -> Result<Command, ProtocolError> {
        let storage_failed = stored.is_err();
        match (std::mem::replace(&mut self.phase, Phase::Over), reply) {
            (Phase::Detecting(detector), Some(reply)) if self.first_sent.is_some() => {
                // The first answer (a credential-less `GET svc/authentication`) dates the clocks.
                let sent = self.first_sent.take().unwrap_or(now);
                let date = match &reply {
                    Reply::Http { date, .. } => date.as_deref(),
                    Reply::NoAnswer { .. } => None,
                };
                let check = clock::check_round_trip(sent, now, date);
                match check.times() {
                    Some((desk, koha)) if !self.options.clock_confirmed => {
                        Ok(Command::Finish(RunEnd::AskClock { desk, koha }))
                    }
                    _ => {
                        self.phase = Phase::Detecting(detector);
                        self.performed(Ok(()), Some(reply), journal, now)
                    }
                }
            }
            (Phase::Detecting(mut detector), Some(reply)) => match detector.feed(reply) {
                DetectStep::Send(request) => {
                    self.phase = Phase::Detecting(detector);
                    Ok(perform(Vec::new(), Some(request)))
                }
                DetectStep::Done(detection) => Ok(self.detected(detection, journal, now)),
            },
            (Phase::GetProbe, Some(reply)) => Ok(match koha::interpret_get_probe(&reply) {
                Ok(()) => {
                    self.transport = Transport::G;
                    self.next(journal, now)
                }
                Err(problem) => self.problem(problem),
            }),
            (Phase::StoringSending, None) if !storage_failed => {
                if !self.commit(journal, now) {
                    return Ok(self.drop_current(journal, now));
                }
                self.phase = Phase::InFlight;
                Ok(perform(Vec::new(), self.current_request()))
            }
            (Phase::StoringSending, None) => {
                // Neither store holds `sending`: the request must not leave, and the row stays as
                // it was (not sent), so no copy claims an attempt that never happened.
                if let Some(current) = self.current.take() {
                    journal.release_in_flight(&current.id);
                    self.pending.push_front(current.id);
                }
                Ok(self.close(StopReason::Storage, journal))
            }
            (Phase::InFlight, Some(reply)) => {
                let answer = koha::classify_reply(&reply);
                let retried = self.current.as_ref().is_some_and(|c| c.retried);
                if answer.is_forbidden()
                    && self.transport.uses_token()
                    && !retried
                    && !self.cancelled
                {
                    // A 403 under P1/P2: nothing was applied. One fresh token, one more try.
                    self.phase = Phase::RefreshingToken;
                    let request = koha::auth_probe_request(self.settings.server.as_str());
                    return Ok(perform(Vec::new(), Some(request)));
                }
                let stop = StopReason::from_answer(&answer)
                    .or(storage_failed.then_some(StopReason::Storage));
                Ok(self.finish_current(answer.outcome(), stop, journal, now))
            }
            (Phase::RefreshingToken, Some(reply)) => match koha::refreshed_token(&reply) {
                Some(token) => {
                    self.token = Some(token);
                    match self.request_for_current(journal) {
                        Some(request) => {
                            if let Some(current) = self.current.as_mut() {
                                current.request = request.clone();
                                current.retried = true;
                            }
                            self.phase = Phase::InFlight;
                            Ok(perform(Vec::new(), Some(request)))
                        }
                        None => Ok(self.refresh_failed(journal, now)),
                    }
                }
                None => Ok(self.refresh_failed(journal, now)),
            },
            (Phase::Closing, _) => {
                self.phase = Phase::Over;
                if storage_failed && self.summary.stopped == Some(StopReason::Finished) {
                    self.summary.stopped = Some(StopReason::Storage);
                }
                Ok(Command::Finish(RunEnd::Ran(self.summary.clone())))
            }
            (other, _) => Err(self.misuse(other, "performed")),
        }
    }

    fn misuse(&mut self, phase: Phase, got: &'static str) -> ProtocolError {
        let expected = match phase {
            Phase::MirroringSending | Phase::MirroringOutcome(_) => "a mirror write was due",
            Phase::Over => "the run is over",
            _ => "a request or store write was due",
        };
        self.phase = phase;
        ProtocolError { got, expected }
    }

    fn detected(
        &mut self,
        detection: Detection,
        journal: &mut Journal,
        now: DateTime<Utc>,
    ) -> Command {
        match detection {
            Detection::Works { transport, token } => {
                self.transport = transport;
                self.token = token;
                // A P2 session login leaves a logged-in session in the browser: ended at close.
                self.session_login = transport == Transport::P2;
                self.next(journal, now)
            }
            Detection::Problem(ConnectionProblem::NeedsGetConsent) if self.options.allow_get => {
                match koha::service_probe_request(
                    self.settings.server.as_str(),
                    Transport::G,
                    &self.creds,
                    None,
                ) {
                    Ok(request) => {
                        self.phase = Phase::GetProbe;
                        perform(Vec::new(), Some(request))
                    }
                    Err(_) => self.problem(ConnectionProblem::CsrfRefused),
                }
            }
            Detection::Problem(ConnectionProblem::NeedsGetConsent) => {
                let payments = self
                    .pending
                    .iter()
                    .filter_map(|id| journal.get(id))
                    .filter(|tx| tx.action.amount().is_some())
                    .count();
                self.phase = Phase::Over;
                Command::Finish(RunEnd::AskGet { payments })
            }
            Detection::Problem(problem) => self.problem(problem),
        }
    }

    fn problem(&mut self, problem: ConnectionProblem) -> Command {
        self.phase = Phase::Over;
        let forget_session_password =
            problem == ConnectionProblem::WrongCredentials && self.settings.password().is_none();
        Command::Finish(RunEnd::Problem {
            problem,
            forget_session_password,
        })
    }

    /// Starts the next planned transaction, or closes the run.
    fn next(&mut self, journal: &mut Journal, now: DateTime<Utc>) -> Command {
        loop {
            if self.cancelled {
                return self.close(StopReason::Cancelled, journal);
            }
            let Some(id) = self.pending.pop_front() else {
                return self.close(StopReason::Finished, journal);
            };
            // Another page may have changed or deleted it since the plan.
            let Some(tx) = journal.get(&id) else {
                self.summary.skipped += 1;
                continue;
            };
            if !plan::still_sendable(tx, &self.resend) {
                self.summary.skipped += 1;
                continue;
            }
            self.current = Some(Current {
                id: id.clone(),
                request: HttpRequest {
                    method: self.transport.method(),
                    url: String::new(),
                    params: Vec::new(),
                    headers: Vec::new(),
                    include_cookies: false,
                },
                retried: false,
                uncommitted: None,
            });
            let Some(request) = self.request_for_current(journal) else {
                // P1 without a token: detection never gives that; refuse to send.
                self.current = None;
                self.pending.push_front(id);
                return self.close(StopReason::Authentication, journal);
            };
            if let Some(current) = self.current.as_mut() {
                current.request = request;
            }
            let Some(mut sending) = journal.get(&id).cloned() else {
                continue;
            };
            if begin(&mut sending, now).is_err() {
                self.current = None;
                self.summary.skipped += 1;
                continue;
            }
            if let Some(current) = self.current.as_mut() {
                current.uncommitted = Some(sending.clone());
            }
            // From now until the answer no other write of this page takes the row (a retried
            // write would put back the copy before `sending`).
            journal.hold_in_flight(&id);
            self.phase = Phase::MirroringSending;
            return Command::Mirror(vec![sending]);
        }
    }

    /// A store holds the current transaction's `sending`: the journal takes it (from the copy
    /// it has now) and keeps it while the request travels. `false` when the journal's copy can no
    /// longer be sent (another page's copy showed Koha accepted it meanwhile): the store is then
    /// written again with that copy, and the row is left.
    fn commit(&mut self, journal: &mut Journal, now: DateTime<Utc>) -> bool {
        let Some(current) = self.current.as_mut() else {
            return false;
        };
        current.uncommitted = None;
        let id = current.id.clone();
        if !self.unstored.contains(&id) {
            self.unstored.push(id.clone());
        }
        let committed = journal.update(&id, |tx| begin(tx, now));
        if matches!(committed, Ok(Ok(()))) {
            true
        } else {
            journal.release_in_flight(&id);
            false
        }
    }

    /// The request for the current transaction, with the library it is sent for: its own, or,
    /// for one recorded before any library was set up, the desk's library now.
    fn request_for_current(&self, journal: &Journal) -> Option<HttpRequest> {
        let current = self.current.as_ref()?;
        let tx = journal.get(&current.id)?;
        let mut for_library = tx.clone();
        for_library.branchcode = desk::effective_branchcode(tx, Some(&self.settings))?;
        koha::transaction_request(
            self.settings.server.as_str(),
            self.transport,
            &self.creds,
            self.token.as_deref(),
            None,
            self.settings.mode,
            &for_library,
        )
        .ok()
    }

    fn current_request(&self) -> Option<HttpRequest> {
        self.current.as_ref().map(|c| c.request.clone())
    }

    fn refresh_failed(&mut self, journal: &mut Journal, now: DateTime<Utc>) -> Command {
        let status = Status::Failed {
            reason: FailReason::Csrf,
        };
        self.finish_current(status, Some(StopReason::Authentication), journal, now)
    }

    /// Records the outcome of the current transaction in memory and asks for the mirror write;
    /// the store-of-record write goes with the next request (or the close).
    fn finish_current(
        &mut self,
        status: Status,
        stop: Option<StopReason>,
        journal: &mut Journal,
        now: DateTime<Utc>,
    ) -> Command {
        let Some(current) = self.current.take() else {
            return self.close(stop.unwrap_or(StopReason::Finished), journal);
        };
        journal.release_in_flight(&current.id);
        self.done += 1;
        self.summary.count(&current.id, &status);
        // Not `sending` any more only if another page's copy showed Koha had accepted it while
        // this request travelled: that status stays, and this answer is only counted.
        let _ = journal.update(&current.id, |tx| tx.finish_sending(now, status.clone()));
        let Some(tx) = journal.get(&current.id).cloned() else {
            return self.close(stop.unwrap_or(StopReason::Finished), journal);
        };
        if !self.unstored.contains(&tx.id) {
            self.unstored.push(tx.id.clone());
        }
        self.phase = Phase::MirroringOutcome(stop);
        Command::Mirror(vec![tx])
    }

    /// Leaves the current transaction unsent (Koha has it already) and goes on.
    fn drop_current(&mut self, journal: &mut Journal, now: DateTime<Utc>) -> Command {
        if let Some(current) = self.current.take() {
            journal.release_in_flight(&current.id);
            self.summary.skipped += 1;
        }
        self.next(journal, now)
    }

    /// Stores what is left and ends a login session, then finishes.
    fn close(&mut self, reason: StopReason, journal: &mut Journal) -> Command {
        self.summary.not_sent = self.pending.len();
        self.pending.clear();
        self.summary.stopped = Some(reason);
        self.phase = Phase::Closing;
        // A session login (P2) leaves a logged-in Koha session in the browser's cookies: anyone
        // opening Koha here would be the desk account. Koha ends it on `mainpage.pl?logout.x=1`.
        let logout = self
            .session_login
            .then(|| koha::logout_request(self.settings.server.as_str()));
        let store = self.take_unstored(journal);
        perform(store, logout)
    }

    /// The copies to write to the store of record now, as the journal has them.
    fn take_unstored(&mut self, journal: &Journal) -> Vec<Transaction> {
        std::mem::take(&mut self.unstored)
            .into_iter()
            .filter_map(|id| journal.get(&id).cloned())
            .collect()
    }
}

/// Moves a planned transaction to `sending`: `resend_uncertain` for an uncertain one the
/// librarian chose, `start_sending` otherwise.
fn begin(tx: &mut Transaction, at: DateTime<Utc>) -> Result<(), crate::IllegalTransition> {
    match tx.status() {
        Status::Uncertain { .. } => tx.resend_uncertain(at),
        _ => tx.start_sending(at),
    }
}

/// The store of record refused a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRefused;

fn perform(store: Vec<Transaction>, request: Option<HttpRequest>) -> Command {
    Command::Perform { store, request }
}
