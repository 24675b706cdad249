//! The send run as a sans-IO state machine: every decision of a run, none of its I/O.
//!
//! The shell creates a run with [`SendRun::start`] and then performs each [`Command`] it is
//! given, feeding back what happened:
//!
//! - [`Command::Mirror`]: write the copies to the synchronous mirror at once, then
//!   [`SendRun::mirrored`] (before anything else);
//! - [`Command::Perform`]: start writing `store` to the store of record and sending `request`,
//!   then ask for the next command with [`SendRun::poll`] without waiting; when both are done,
//!   [`SendRun::performed`] with the command's [`PerformId`]. Several may be outstanding;
//! - [`Command::Wait`]: nothing to start now: wait for any outstanding `Perform` to be done;
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
//!   store of record is written in the background), or, if the mirror refuses, in the store of
//!   record first. Only then does the page's journal show it `sending`. If neither store takes
//!   it, it is not sent and stays as it was; the run stops.
//! - The store of record is written in the background, one write at a time, each with every
//!   change since the last (a group commit), and while requests travel at most every
//!   [`STORE_EVERY`]: a write there costs several times a request to a nearby Koha, so one write
//!   per change would set the pace of the run. The mirror holds each change until that write
//!   lands; a refused write stops the run, and the run ends only once the last write is done.
//! - Koha's answer is always recorded, in memory and the mirror, even when the store of record
//!   refused the write that travelled with the request; the run then stops, and the shell keeps
//!   retrying that write.
//! - Transactions start in planned order. Apply mode sends one at a time: Koha applies each as it
//!   arrives, so a later one could depend on an earlier one's result. Queue mode lets up to
//!   [`Settings::in_flight`] requests travel at once, because Koha applies queued operations per
//!   library ordered by their recorded time (`GetOfflineOperations` reads them `ORDER BY
//!   timestamp`): the order they arrive in changes nothing, except between operations of the same
//!   second on the same item or patron, which Koha then takes in insertion order. Hence:
//!   - never two in flight that share a barcode or a card number;
//!   - an operation waits while an earlier one of the same second on the same item or patron is
//!     unanswered (planned or in flight), so those reach Koha in recorded order.
//! - A 403 under P1/P2 fetches one fresh token and sends the same transaction once more (Koha
//!   applied nothing).
//! - Once the run is to stop (cancel, an answer that stops it, a refused store-of-record write)
//!   nothing more starts; every request in flight finishes and has its answer recorded. Each
//!   answer concerns its own transaction only: a dropped connection makes that one `uncertain`.
//! - A run that logged in with a session ends it.

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
use crate::settings::{Mode, Settings, MAX_IN_FLIGHT};
use crate::transaction::Action;
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
    /// accepted ones) and at the same time send `request` (if any); meanwhile go on with
    /// [`SendRun::poll`]. When both are done, call [`SendRun::performed`] with `id` and both
    /// results. Store writes land in the order they were given.
    Perform {
        /// Names this command in [`SendRun::performed`].
        id: PerformId,
        /// Copies for the store of record.
        store: Vec<Transaction>,
        /// The request to send.
        request: Option<HttpRequest>,
    },
    /// Nothing to start now: wait until an outstanding [`Command::Perform`] is done, then call
    /// [`SendRun::performed`].
    Wait,
    /// The run is over.
    Finish(RunEnd),
}

/// Names one [`Command::Perform`] of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PerformId(pub u64);

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
    /// The librarian cancelled; the requests in flight finished first.
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
    /// Detection: its requests are performed one by one.
    Detecting(Detector),
    /// The GET probe, after the librarian consented.
    GetProbe,
    /// Transactions are being sent ([`Flight`]s).
    Sending,
    /// The last writes (and the logout) are being performed.
    Closing,
    /// Finished.
    Over,
}

/// Where one transaction in flight stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Its `sending` is being written to the mirror.
    MirroringSending,
    /// The mirror refused `sending`: the store of record is written first.
    StoringSending,
    /// Its request is travelling.
    Requesting,
    /// A fresh CSRF token is being fetched after a 403.
    RefreshingToken,
}

/// A transaction the run has begun and not yet answered.
#[derive(Debug, Clone)]
struct Flight {
    id: TransactionId,
    /// What it does, for the rules on shared items and patrons.
    action: Action,
    request: HttpRequest,
    retried: bool,
    stage: Stage,
    /// The outstanding [`Command::Perform`] of this transaction, if any.
    perform: Option<PerformId>,
    /// The `sending` copy, until a store holds it and the journal takes it ([`SendRun::commit`]).
    /// A `sending` that no store took never happened: nothing left, the row stays as it was.
    uncommitted: Option<Transaction>,
}

/// What the outstanding [`Command::Mirror`] writes.
#[derive(Debug, Clone)]
enum MirrorDue {
    /// A transaction's `sending`.
    Sending(TransactionId),
    /// A transaction's outcome.
    Outcome,
}

/// How often, at most, the background store-of-record write starts while requests travel. Each
/// write and its `storage.onChanged` copies to every page run on the thread that also sends
/// and renders; against a fast Koha one write per answer cost more than the requests. The
/// mirror holds every change meanwhile.
pub const STORE_EVERY: chrono::TimeDelta = chrono::TimeDelta::milliseconds(250);

/// How far ahead of the first planned transaction the run looks for one it may start.
const LOOKAHEAD: usize = 64;

/// Whether two actions concern the same item or the same patron.
fn share_item_or_patron(a: &Action, b: &Action) -> bool {
    let same_item = a.barcode().is_some() && a.barcode() == b.barcode();
    let same_patron = a.cardnumber().is_some() && a.cardnumber() == b.cardnumber();
    same_item || same_patron
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
    /// Requests allowed in flight at once.
    limit: usize,
    flights: Vec<Flight>,
    /// The outstanding detection, probe or closing [`Command::Perform`].
    control: Option<PerformId>,
    /// The outstanding background store-of-record write ([`SendRun::write_unstored`]).
    writing: Option<PerformId>,
    /// When the last background store-of-record write began.
    last_write: Option<DateTime<Utc>>,
    mirror_due: Option<MirrorDue>,
    next_perform: u64,
    /// Transactions whose status changed in memory and the mirror, not yet in the store of
    /// record. Written as the journal has them then (never an older snapshot).
    unstored: Vec<TransactionId>,
    cancelled: bool,
    /// Why nothing more starts: the first answer or storage refusal that stops the run.
    stopping: Option<StopReason>,
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
        let limit = match settings.mode {
            Mode::Apply => 1,
            Mode::Queue => usize::from(settings.in_flight.clamp(1, MAX_IN_FLIGHT)),
        };
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
            limit,
            flights: Vec::new(),
            control: None,
            writing: None,
            last_write: None,
            mirror_due: None,
            next_perform: 0,
            unstored: Vec::new(),
            cancelled: false,
            stopping: None,
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
        let command = run.perform_control(Vec::new(), Some(request));
        (Some(run), command)
    }

    /// The librarian cancelled: nothing more starts, the requests in flight finish, then the run
    /// stops.
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// `(done, total)`: transactions with an answer, and planned in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.done, self.total)
    }

    /// How many transactions the run has begun and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
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

    /// The next command after a [`Command::Perform`] was started: another one, a mirror write,
    /// or [`Command::Wait`].
    pub fn poll(
        &mut self,
        journal: &mut Journal,
        now: DateTime<Utc>,
    ) -> Result<Command, ProtocolError> {
        if self.mirror_due.is_some() || self.is_over() {
            return Err(self.misuse("poll"));
        }
        Ok(match self.phase {
            Phase::Sending => self.advance(journal, now),
            _ => Command::Wait,
        })
    }

    /// The mirror write of the last [`Command::Mirror`] took (`true`) or was refused.
    pub fn mirrored(
        &mut self,
        took: bool,
        journal: &mut Journal,
        now: DateTime<Utc>,
    ) -> Result<Command, ProtocolError> {
        match self.mirror_due.take() {
            None => Err(self.misuse("mirrored")),
            Some(MirrorDue::Outcome) => Ok(self.advance(journal, now)),
            Some(MirrorDue::Sending(id)) => {
                let Some(at) = self.flight_index(&id) else {
                    return Ok(self.advance(journal, now));
                };
                if took {
                    if !self.commit(at, journal, now) {
                        return Ok(self.drop_flight(at, journal, now));
                    }
                    // The store of record takes this `sending` in the background.
                    let request = self.flights[at].request.clone();
                    Ok(self.perform_flight(at, Stage::Requesting, Vec::new(), Some(request)))
                } else {
                    // `sending` must be stored somewhere before the request leaves: the store of
                    // record first.
                    let mut store = self.take_unstored(journal);
                    store.extend(self.flights[at].uncommitted.clone());
                    Ok(self.perform_flight(at, Stage::StoringSending, store, None))
                }
            }
        }
    }

    /// The store-of-record write and the request of [`Command::Perform`] `id` are done.
    /// `stored` is `Ok` when there was nothing to store; `reply` is `None` when there was no
    /// request.
    pub fn performed(
        &mut self,
        id: PerformId,
        stored: Result<(), StorageRefused>,
        reply: Option<Reply>,
        journal: &mut Journal,
        now: DateTime<Utc>,
    ) -> Result<Command, ProtocolError> {
        if self.mirror_due.is_some() {
            return Err(self.misuse("performed"));
        }
        if self.control == Some(id) {
            self.control = None;
            return self.control_performed(stored, reply, journal, now);
        }
        if self.writing == Some(id) {
            self.writing = None;
            if stored.is_err() {
                self.stop(StopReason::Storage);
            }
            return Ok(self.advance(journal, now));
        }
        let Some(at) = self.flights.iter().position(|f| f.perform == Some(id)) else {
            return Err(ProtocolError {
                got: "performed",
                expected: "no such request or store write was outstanding",
            });
        };
        self.flights[at].perform = None;
        let storage_failed = stored.is_err();
        match (self.flights[at].stage, reply) {
            (Stage::StoringSending, None) if !storage_failed => {
                if !self.commit(at, journal, now) {
                    return Ok(self.drop_flight(at, journal, now));
                }
                let request = self.flights[at].request.clone();
                Ok(self.perform_flight(at, Stage::Requesting, Vec::new(), Some(request)))
            }
            (Stage::StoringSending, None) => {
                // Neither store holds `sending`: the request must not leave, and the row stays as
                // it was (not sent), so no copy claims an attempt that never happened.
                let flight = self.flights.remove(at);
                journal.release_in_flight(&flight.id);
                self.pending.push_front(flight.id);
                self.stop(StopReason::Storage);
                Ok(self.advance(journal, now))
            }
            (Stage::Requesting, Some(reply)) => {
                let answer = koha::classify_reply(&reply);
                if answer.is_forbidden()
                    && self.transport.uses_token()
                    && !self.flights[at].retried
                    && !self.cancelled
                {
                    // A 403 under P1/P2: nothing was applied. One fresh token, one more try.
                    let request = koha::auth_probe_request(self.settings.server.as_str());
                    return Ok(self.perform_flight(
                        at,
                        Stage::RefreshingToken,
                        Vec::new(),
                        Some(request),
                    ));
                }
                let stop = StopReason::from_answer(&answer)
                    .or(storage_failed.then_some(StopReason::Storage));
                Ok(self.finish_flight(at, answer.outcome(), stop, journal, now))
            }
            (Stage::RefreshingToken, Some(reply)) => {
                let refreshed = koha::refreshed_token(&reply);
                let request = refreshed.and_then(|token| {
                    self.token = Some(token);
                    self.request_for(&self.flights[at].id, journal)
                });
                match request {
                    Some(request) => {
                        self.flights[at].request = request.clone();
                        self.flights[at].retried = true;
                        Ok(self.perform_flight(at, Stage::Requesting, Vec::new(), Some(request)))
                    }
                    None => {
                        let status = Status::Failed {
                            reason: FailReason::Csrf,
                        };
                        Ok(self.finish_flight(
                            at,
                            status,
                            Some(StopReason::Authentication),
                            journal,
                            now,
                        ))
                    }
                }
            }
            _ => {
                self.flights[at].perform = Some(id);
                Err(self.misuse("performed"))
            }
        }
    }

    /// The detection, probe or closing request is done.
    fn control_performed(
        &mut self,
        stored: Result<(), StorageRefused>,
        reply: Option<Reply>,
        journal: &mut Journal,
        now: DateTime<Utc>,
    ) -> Result<Command, ProtocolError> {
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
                        self.control_performed(Ok(()), Some(reply), journal, now)
                    }
                }
            }
            (Phase::Detecting(mut detector), Some(reply)) => match detector.feed(reply) {
                DetectStep::Send(request) => {
                    self.phase = Phase::Detecting(detector);
                    Ok(self.perform_control(Vec::new(), Some(request)))
                }
                DetectStep::Done(detection) => Ok(self.detected(detection, journal, now)),
            },
            (Phase::GetProbe, Some(reply)) => Ok(match koha::interpret_get_probe(&reply) {
                Ok(()) => {
                    self.transport = Transport::G;
                    self.phase = Phase::Sending;
                    self.advance(journal, now)
                }
                Err(problem) => self.problem(problem),
            }),
            (Phase::Closing, _) => {
                if stored.is_err() && self.summary.stopped == Some(StopReason::Finished) {
                    self.summary.stopped = Some(StopReason::Storage);
                }
                Ok(Command::Finish(RunEnd::Ran(self.summary.clone())))
            }
            (other, _) => {
                self.phase = other;
                Err(self.misuse("performed"))
            }
        }
    }

    fn misuse(&self, got: &'static str) -> ProtocolError {
        let expected = if self.mirror_due.is_some() {
            "a mirror write was due"
        } else if self.is_over() {
            "the run is over"
        } else {
            "a request or store write was due"
        };
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
                self.phase = Phase::Sending;
                self.advance(journal, now)
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
                        self.perform_control(Vec::new(), Some(request))
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

    /// Nothing more starts; the first reason is the one reported.
    fn stop(&mut self, reason: StopReason) {
        self.stopping.get_or_insert(reason);
    }

    /// While sending: begins the next transaction that may start now, or writes what changed
    /// to the store of record, or waits for what is outstanding, or closes the run when nothing
    /// is left in flight. A request goes first: the write can travel alongside it.
    fn advance(&mut self, journal: &mut Journal, now: DateTime<Utc>) -> Command {
        let may_start =
            self.stopping.is_none() && !self.cancelled && self.flights.len() < self.limit;
        if may_start {
            if let Some(command) = self.begin_next(journal, now) {
                return command;
            }
        }
        if let Some(command) = self.write_unstored(journal, now) {
            return command;
        }
        if self.flights.is_empty() && self.control.is_none() && self.writing.is_none() {
            let reason = self.stopping.unwrap_or(if self.cancelled {
                StopReason::Cancelled
            } else {
                StopReason::Finished
            });
            return self.close(reason, journal);
        }
        Command::Wait
    }

    /// Whether the planned transaction `tx` must wait: it shares an item or patron with one in
    /// flight, or with an earlier planned one of the same second (`earlier`).
    fn must_wait(&self, tx: &Transaction, earlier: &[(Action, i64)]) -> bool {
        let second = tx.recorded_at.timestamp();
        self.flights
            .iter()
            .any(|f| share_item_or_patron(&f.action, &tx.action))
            || earlier
                .iter()
                .any(|(action, s)| *s == second && share_item_or_patron(action, &tx.action))
    }

    /// Begins the first planned transaction that may start now (its `sending` goes to the
    /// mirror), skipping those changed or deleted elsewhere; `None` when none may start.
    fn begin_next(&mut self, journal: &mut Journal, now: DateTime<Utc>) -> Option<Command> {
        let mut earlier: Vec<(Action, i64)> = Vec::new();
        let mut at = 0;
        while at < self.pending.len() && at < LOOKAHEAD {
            let id = self.pending[at].clone();
            // Another page may have changed or deleted it since the plan.
            let Some(tx) = journal
                .get(&id)
                .filter(|tx| plan::still_sendable(tx, &self.resend))
            else {
                self.pending.remove(at);
                self.summary.skipped += 1;
                continue;
            };
            if self.must_wait(tx, &earlier) {
                earlier.push((tx.action.clone(), tx.recorded_at.timestamp()));
                at += 1;
                continue;
            }
            let mut sending = tx.clone();
            let Some(request) = self.request_for(&id, journal) else {
                // P1 without a token: detection never gives that; refuse to send.
                self.stop(StopReason::Authentication);
                return None;
            };
            self.pending.remove(at);
            if begin(&mut sending, now).is_err() {
                self.summary.skipped += 1;
                continue;
            }
            // From now until the answer no other write of this page takes the row (a retried
            // write would put back the copy before `sending`).
            journal.hold_in_flight(&id);
            self.flights.push(Flight {
                id: id.clone(),
                action: sending.action.clone(),
                request,
                retried: false,
                stage: Stage::MirroringSending,
                perform: None,
                uncommitted: Some(sending.clone()),
            });
            self.mirror_due = Some(MirrorDue::Sending(id));
            return Some(Command::Mirror(vec![sending]));
        }
        None
    }

    fn flight_index(&self, id: &TransactionId) -> Option<usize> {
        self.flights.iter().position(|f| &f.id == id)
    }

    /// A store holds flight `at`'s `sending`: the journal takes it (from the copy it has now)
    /// and keeps it while the request travels. `false` when the journal's copy can no longer be
    /// sent (another page's copy showed Koha accepted it meanwhile): the store is then written
    /// again with that copy, and the row is left.
    fn commit(&mut self, at: usize, journal: &mut Journal, now: DateTime<Utc>) -> bool {
        let flight = &mut self.flights[at];
        flight.uncommitted = None;
        let id = flight.id.clone();
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

    /// The request for a transaction, with the library it is sent for: its own, or, for one
    /// recorded before any library was set up, the desk's library now.
    fn request_for(&self, id: &TransactionId, journal: &Journal) -> Option<HttpRequest> {
        let tx = journal.get(id)?;
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

    fn new_perform_id(&mut self) -> PerformId {
        self.next_perform += 1;
        PerformId(self.next_perform)
    }

    fn perform_control(
        &mut self,
        store: Vec<Transaction>,
        request: Option<HttpRequest>,
    ) -> Command {
        let id = self.new_perform_id();
        self.control = Some(id);
        Command::Perform { id, store, request }
    }

    fn perform_flight(
        &mut self,
        at: usize,
        stage: Stage,
        store: Vec<Transaction>,
        request: Option<HttpRequest>,
    ) -> Command {
        let id = self.new_perform_id();
        self.flights[at].stage = stage;
        self.flights[at].perform = Some(id);
        Command::Perform { id, store, request }
    }

    /// Records flight `at`'s outcome in memory and asks for the mirror write; the store of
    /// record takes it with the next background write (or the close).
    fn finish_flight(
        &mut self,
        at: usize,
        status: Status,
        stop: Option<StopReason>,
        journal: &mut Journal,
        now: DateTime<Utc>,
    ) -> Command {
        let flight = self.flights.remove(at);
        if let Some(reason) = stop {
            self.stop(reason);
        }
        journal.release_in_flight(&flight.id);
        self.done += 1;
        self.summary.count(&flight.id, &status);
        // Not `sending` any more only if another page's copy showed Koha had accepted it while
        // this request travelled: that status stays, and this answer is only counted.
        let _ = journal.update(&flight.id, |tx| tx.finish_sending(now, status.clone()));
        let Some(tx) = journal.get(&flight.id).cloned() else {
            return self.advance(journal, now);
        };
        if !self.unstored.contains(&tx.id) {
            self.unstored.push(tx.id.clone());
        }
        self.mirror_due = Some(MirrorDue::Outcome);
        Command::Mirror(vec![tx])
    }

    /// Leaves flight `at` unsent (Koha has it already) and goes on.
    fn drop_flight(&mut self, at: usize, journal: &mut Journal, now: DateTime<Utc>) -> Command {
        let flight = self.flights.remove(at);
        journal.release_in_flight(&flight.id);
        self.summary.skipped += 1;
        self.advance(journal, now)
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
        self.perform_control(store, logout)
    }

    /// The background store-of-record write of every change not yet written, unless one is
    /// outstanding (then these go with the next, once it is done).
    fn write_unstored(&mut self, journal: &Journal, now: DateTime<Utc>) -> Option<Command> {
        if self.writing.is_some() || self.unstored.is_empty() {
            return None;
        }
        // While requests travel, their answers call again: the write waits for more changes.
        // Once none travels (or the run is to stop) it goes at once, so the run never ends or
        // idles with changes unwritten.
        let answers_coming = self.flights.iter().any(|f| f.perform.is_some());
        let recent = self
            .last_write
            .is_some_and(|at| now.signed_duration_since(at) < STORE_EVERY && now >= at);
        if answers_coming && recent && self.stopping.is_none() && !self.cancelled {
            return None;
        }
        let store = self.take_unstored(journal);
        let id = self.new_perform_id();
        self.writing = Some(id);
        self.last_write = Some(now);
        Some(Command::Perform {
            id,
            store,
            request: None,
        })
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
