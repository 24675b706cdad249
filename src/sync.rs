//! The send run: which transactions go to Koha, in what order, and what each answer does to them.
//!
//! [`SendRun`] is pure. The shell runs detection first (`koha::Detector`), then loops:
//!
//! 1. [`SendRun::next`] gives the next id; [`begin`] moves that transaction to `sending`; persist.
//! 2. Send `koha::transaction_request`, classify the reply (`koha::classify`).
//! 3. [`SendRun::record`] says what to do: on [`Decision::Finish`] call
//!    `Transaction::finish_sending` with the given status and persist, then continue or stop; on
//!    [`Decision::RefreshTokenAndRetry`] leave the row `sending` (Koha applied nothing), fetch a
//!    fresh token and send the same row again.
//!
//! One request at a time (§3.3 rule 2): `next` refuses while a request is in flight.

use crate::koha::{self, Answer, Credentials, Flow, Transport};
use crate::settings::{self, Settings};
use crate::transaction::{Action, IllegalTransition, Status, Transaction, TransactionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The librarian's explicit choice to send an `uncertain` transaction again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resend {
    /// The transaction.
    pub id: TransactionId,
    /// For a payment: the librarian confirmed the risk of charging twice. Without it an uncertain
    /// payment is never sent.
    pub payment_confirmed: bool,
}

/// Which transactions a run sends, in recorded order (then by id): every `local` and `failed` one,
/// and the `uncertain` ones the librarian chose (payments only when confirmed).
pub fn plan(transactions: &[Transaction], resend: &[Resend]) -> Vec<TransactionId> {
    let chosen = |tx: &Transaction| {
        resend.iter().any(|r| {
            r.id == tx.id && (r.payment_confirmed || !matches!(tx.action, Action::Payment { .. }))
        })
    };
    let mut picked: Vec<&Transaction> = transactions
        .iter()
        .filter(|tx| match tx.status() {
            s if s.is_sendable() => true,
            Status::Uncertain { .. } => chosen(tx),
            _ => false,
        })
        .collect();
    picked.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
    picked.into_iter().map(|tx| tx.id.clone()).collect()
}

/// Moves a planned transaction to `sending`: `start_sending` for `local`/`failed`,
/// `resend_uncertain` for an uncertain one the librarian chose.
pub fn begin(tx: &mut Transaction, at: DateTime<Utc>) -> Result<(), IllegalTransition> {
    match tx.status() {
        Status::Uncertain { .. } => tx.resend_uncertain(at),
        _ => tx.start_sending(at),
    }
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
}

impl StopReason {
    /// Stable kind: `finished`, `cancelled`, `authentication`, `configuration`, `server-error`,
    /// `network`, `timeout`.
    pub fn kind(self) -> &'static str {
        match self {
            StopReason::Finished => "finished",
            StopReason::Cancelled => "cancelled",
            StopReason::Authentication => "authentication",
            StopReason::Configuration => "configuration",
            StopReason::ServerError => "server-error",
            StopReason::Network => "network",
            StopReason::Timeout => "timeout",
        }
    }

    fn from_answer(answer: &Answer) -> Option<StopReason> {
        Some(match answer {
            Answer::AuthProblem { .. } => StopReason::Authentication,
            Answer::Misdirected { .. } => StopReason::Configuration,
            Answer::ServerError { .. } => StopReason::ServerError,
            Answer::NetworkError => StopReason::Network,
            Answer::Timeout => StopReason::Timeout,
            _ => return None,
        })
    }
}

/// One rejection in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The transaction.
    pub id: TransactionId,
    /// Koha's message, verbatim (empty for C4).
    pub message: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// How many Koha queued (`Added.`).
    pub queued: usize,
    /// How many Koha applied (`Success.`).
    pub applied: usize,
    /// The rejected ones, with Koha's message.
    pub rejected: Vec<Rejection>,
    /// How many failed (nothing reached Koha).
    pub failed: usize,
    /// How many are uncertain (may have reached Koha).
    pub uncertain: usize,
    /// Planned but not sent because the run stopped.
    pub not_sent: usize,
    /// Why the run ended; `None` while it runs.
    pub stopped: Option<StopReason>,
}

/// What the shell does with the answer it just recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Store this status with `finish_sending`, then call [`SendRun::next`] (which says whether the
    /// run goes on).
    Finish(Status),
    /// A 403 under P1/P2: nothing was applied. Keep the row `sending`, fetch a fresh token
    /// (`koha::auth_probe_request`) and send the same row again. Then [`SendRun::record`] its
    /// answer, or [`SendRun::refresh_failed`] if no token came.
    RefreshTokenAndRetry(TransactionId),
}

/// Misuse of the run's protocol by the shell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// `next` while a request is in flight.
    #[error("a request is already in flight")]
    InFlight,
    /// `record` with no request in flight.
    #[error("no request is in flight")]
    NothingInFlight,
}

impl RunError {
    /// Stable kind: `in-flight`, `nothing-in-flight`.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::InFlight => "in-flight",
            RunError::NothingInFlight => "nothing-in-flight",
        }
    }
}

/// The send run as a state machine over planned ids.
#[derive(Debug, Clone)]
pub struct SendRun {
    transport: Transport,
    pending: std::collections::VecDeque<TransactionId>,
    in_flight: Option<TransactionId>,
    retried: bool,
    cancelled: bool,
    summary: Summary,
}

impl SendRun {
    /// A run over `planned` (usually from [`plan`]) with the detected transport.
    pub fn new(transport: Transport, planned: Vec<TransactionId>) -> Self {
        SendRun {
            transport,
            pending: planned.into(),
            in_flight: None,
            retried: false,
            cancelled: false,
            summary: Summary::default(),
        }
    }

    /// The next transaction to send, or `None` when the run is over (see [`SendRun::summary`]).
    #[allow(clippy::should_implement_trait)] // fallible, and not an iterator: it refuses while in flight
    pub fn next(&mut self) -> Result<Option<TransactionId>, RunError> {
        if self.in_flight.is_some() {
            return Err(RunError::InFlight);
        }
        if self.summary.stopped.is_some() {
            return Ok(None);
        }
        if self.cancelled {
            self.stop(StopReason::Cancelled);
            return Ok(None);
        }
        match self.pending.pop_front() {
            Some(id) => {
                self.in_flight = Some(id.clone());
                self.retried = false;
                Ok(Some(id))
            }
            None => {
                self.stop(StopReason::Finished);
                Ok(None)
            }
        }
    }

    /// The transaction whose request is in flight.
    pub fn in_flight(&self) -> Option<&TransactionId> {
        self.in_flight.as_ref()
    }

    /// Records the answer to the request in flight.
    pub fn record(&mut self, answer: &Answer) -> Result<Decision, RunError> {
        let id = self.in_flight.clone().ok_or(RunError::NothingInFlight)?;
        if answer.is_forbidden() && self.transport.uses_token() && !self.retried && !self.cancelled
        {
            self.retried = true;
            return Ok(Decision::RefreshTokenAndRetry(id));
        }
        self.in_flight = None;
        let status = answer.outcome();
        self.count(&id, &status);
        if answer.flow() == Flow::Stop {
            if let Some(reason) = StopReason::from_answer(answer) {
                self.stop(reason);
            }
        }
        Ok(Decision::Finish(status))
    }

    /// The token refresh after [`Decision::RefreshTokenAndRetry`] failed: the row becomes `failed`
    /// (`csrf`; nothing was applied) and the run stops. Returns the status to store.
    pub fn refresh_failed(&mut self) -> Result<Status, RunError> {
        let id = self.in_flight.take().ok_or(RunError::NothingInFlight)?;
        let status = Status::Failed {
            reason: "csrf".to_owned(),
        };
        self.count(&id, &status);
        self.stop(StopReason::Authentication);
        Ok(status)
    }

    /// The librarian cancelled: the request in flight finishes, then the run stops.
    pub fn cancel(&mut self) {
        self.cancelled = true;
        if self.in_flight.is_none() && self.summary.stopped.is_none() {
            self.stop(StopReason::Cancelled);
        }
    }

    /// Whether the run is over.
    pub fn is_over(&self) -> bool {
        self.summary.stopped.is_some()
    }

    /// Counts so far; complete once [`SendRun::is_over`].
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    fn count(&mut self, id: &TransactionId, status: &Status) {
        match status {
            Status::Queued => self.summary.queued += 1,
            Status::Applied => self.summary.applied += 1,
            Status::Rejected { message } => self.summary.rejected.push(Rejection {
                id: id.clone(),
                message: message.clone(),
            }),
            Status::Failed { .. } => self.summary.failed += 1,
            Status::Uncertain { .. } => self.summary.uncertain += 1,
            Status::Local | Status::Sending => {}
        }
    }

    fn stop(&mut self, reason: StopReason) {
        self.summary.not_sent = self.pending.len();
        self.pending.clear();
        self.summary.stopped = Some(reason);
    }
}

/// What is missing before a send run can start. Nothing has been sent or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "missing", rename_all = "kebab-case")]
pub enum NotReady {
    /// No settings saved yet: the options page must be filled in first.
    #[error("no Koha server is set up")]
    Settings,
    /// The settings have no user name.
    #[error("no Koha user name is set up")]
    Userid,
    /// Firefox has not granted access to the server's origin.
    #[error("no permission to reach {origin}")]
    Permission {
        /// The match pattern to grant, e.g. `https://koha.example.org/*`.
        origin: String,
    },
    /// No password remembered and none given for this browser session: ask for it.
    #[error("no password for this browser session")]
    Password,
}

impl NotReady {
    /// Stable kind: `settings`, `userid`, `permission`, `password`.
    pub fn kind(&self) -> &'static str {
        match self {
            NotReady::Settings => "settings",
            NotReady::Userid => "userid",
            NotReady::Permission { .. } => "permission",
            NotReady::Password => "password",
        }
    }
}

/// The credentials for a send run, checked in the order the librarian can fix things: settings,
/// user name, host permission, then the password (the remembered one first, else the one given
/// for this browser session; an empty one counts as none).
pub fn credentials(
    settings: Option<&Settings>,
    host_permission: bool,
    session_password: Option<&str>,
) -> Result<Credentials, NotReady> {
    let settings = settings.ok_or(NotReady::Settings)?;
    let userid = settings.userid.clone().ok_or(NotReady::Userid)?;
    if !host_permission {
        return Err(NotReady::Permission {
            origin: settings.server.origin_pattern(),
        });
    }
    let password = settings
        .password()
        .or(session_password)
        .filter(|p| !p.is_empty())
        .ok_or(NotReady::Password)?;
    Ok(Credentials {
        userid,
        password: password.to_owned(),
    })
}

/// The detector a run starts with: session reuse (one password check per batch) when the
/// settings ask for it.
pub fn detector(settings: &Settings, creds: Credentials) -> koha::Detector {
    let detector = koha::Detector::new(settings.server.as_str(), creds);
    if settings.login_once {
        detector.with_session_reuse()
    } else {
        detector
    }
}

/// The wire mode for the settings' mode.
pub fn koha_mode(mode: settings::Mode) -> koha::Mode {
    match mode {
        settings::Mode::Queue => koha::Mode::Queue,
        settings::Mode::Apply => koha::Mode::Apply,
    }
}

/// What a librarian is asked before an uncertain transaction is sent again (the `#confirm`
/// dialog's `data-kind`). `None` when it is not uncertain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResendQuestion {
    /// A checkout or checkin: Koha may already have it; a second one may renew or close a newer
    /// loan.
    ResendUncertain,
    /// A payment: Koha may already have credited it; sending again may charge the patron twice.
    ResendPayment,
}

impl ResendQuestion {
    /// `resend-uncertain` or `resend-payment`.
    pub fn kind(self) -> &'static str {
        match self {
            ResendQuestion::ResendUncertain => "resend-uncertain",
            ResendQuestion::ResendPayment => "resend-payment",
        }
    }
}

/// The question to ask before resending `tx`, if it may be resent at all.
pub fn resend_question(tx: &Transaction) -> Option<ResendQuestion> {
    match (tx.status(), &tx.action) {
        (Status::Uncertain { .. }, Action::Payment { .. }) => Some(ResendQuestion::ResendPayment),
        (Status::Uncertain { .. }, _) => Some(ResendQuestion::ResendUncertain),
        _ => None,
    }
}

/// The librarian confirmed the question of [`resend_question`]: the [`Resend`] for [`plan`].
/// The confirmation covers a payment's double-charge risk only when the question named it.
pub fn confirmed_resend(tx: &Transaction) -> Option<Resend> {
    resend_question(tx).map(|q| Resend {
        id: tx.id.clone(),
        payment_confirmed: q == ResendQuestion::ResendPayment,
    })
}

/// The status an uncertain transaction gets when the librarian found it in Koha: `queued` when
/// the desk sends to the queue (it is in the pending list), `applied` otherwise.
pub fn found_in_koha(mode: settings::Mode) -> Status {
    match mode {
        settings::Mode::Queue => Status::Queued,
        settings::Mode::Apply => Status::Applied,
    }
}

/// Whether a run over `planned` with this transport needs the librarian's consent first: G puts
/// the password into URLs (server and proxy logs) and Firefox repeats a dropped GET silently, so
/// it is never used without consent, and the consent must name payments when any are planned.
pub fn get_consent_needed(transport: Transport, planned: &[&Transaction]) -> Option<GetConsent> {
    (transport == Transport::G).then(|| GetConsent {
        payments: planned
            .iter()
            .filter(|tx| matches!(tx.action, Action::Payment { .. }))
            .count(),
    })
}

/// What the G consent question must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetConsent {
    /// Payments in the run, which a silently repeated GET could charge twice.
    pub payments: usize,
}
