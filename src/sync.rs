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

use crate::koha::{Answer, Flow, Transport};
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
