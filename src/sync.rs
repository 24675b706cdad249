//! Sending to Koha: which transactions go, in what order, what each answer does to them.
//!
//! - [`mod@plan`]: what a run takes, what it leaves for the librarian (exported to a `.koc` file;
//!   held back behind an unsettled transaction of the same item in apply mode).
//! - [`run`]: the run itself as a sans-IO state machine ([`SendRun`]); the shell only performs
//!   the [`Command`]s it gives.
//! - Here: what a run needs first ([`credentials`], [`nothing_to_send`]), the summary, and the librarian's choices
//!   about `uncertain` transactions.

pub mod plan;
pub mod run;

pub use plan::{plan, ExportedChoice, ExportedQuestion, Plan, Resend};
pub use run::{
    Command, PerformId, RunEnd, RunOptions, SendRun, Setup, StopReason, StorageRefused, STORE_EVERY,
};

use crate::journal::Journal;
use crate::kinds::kinds;
use crate::koha::{self, Credentials};
use crate::settings::{self, Settings};
use crate::transaction::{Action, Status, Transaction, TransactionId};
use serde::{Deserialize, Serialize};

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
    /// Left out because they were exported to a `.koc` file (the librarian chose so).
    pub left_out_exported: usize,
    /// Apply mode: held back behind an unsettled transaction of the same item.
    pub held_back: usize,
    /// Planned, but changed or deleted by another page before their turn.
    pub skipped: usize,
    /// Why the run ended; `None` while it runs.
    pub stopped: Option<StopReason>,
}

/// How the page shows a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Everything planned reached Koha and was accepted.
    Ok,
    /// The run went through, but Koha refused some, or some wait for the librarian.
    Warning,
    /// The run stopped early, or something may or may not have reached Koha.
    Error,
}

impl Summary {
    /// Whether Koha answered the run to its end, so that what follows it may ask Koha too (the
    /// offline checks' download at the desk): some transaction got Koha's answer and the run
    /// stopped for a reason of the desk's own. Not after a refused login, where another login
    /// would count towards the account's lockout, nor after Koha stopped answering.
    pub fn koha_answered_to_the_end(&self) -> bool {
        let answered = self.queued + self.applied + self.rejected.len() > 0;
        let ours = matches!(
            self.stopped,
            Some(StopReason::Finished | StopReason::Cancelled | StopReason::Storage)
        );
        answered && ours
    }

    pub(crate) fn count(&mut self, id: &TransactionId, status: &Status) {
        match status {
            Status::Queued => self.queued += 1,
            Status::Applied => self.applied += 1,
            Status::Rejected { message } => self.rejected.push(Rejection {
                id: id.clone(),
                message: message.clone(),
            }),
            Status::Failed { .. } => self.failed += 1,
            Status::Uncertain { .. } => self.uncertain += 1,
            Status::Local | Status::Sending => {}
        }
    }

    /// The level to show: an error when the run stopped early or left anything uncertain or
    /// failed; a warning when Koha refused some, or some were left out or held back.
    pub fn level(&self) -> Level {
        let clean_end = matches!(self.stopped, None | Some(StopReason::Finished));
        if !clean_end || self.uncertain > 0 || self.failed > 0 {
            Level::Error
        } else if !self.rejected.is_empty() || self.left_out_exported > 0 || self.held_back > 0 {
            Level::Warning
        } else {
            Level::Ok
        }
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

kinds!(NotReady {
    Settings => "settings",
    Userid => "userid",
    Permission => "permission",
    Password => "password",
});

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

/// Whether Send would find nothing to do: no transaction waits to be sent (local or failed) and
/// none of `resend` (the uncertain ones the librarian chose to send again) may still be resent,
/// by the same rule a run takes them with ([`confirmed_resend`]).
/// The desk then says so instead of starting a run.
pub fn nothing_to_send(journal: &Journal, resend: &[TransactionId]) -> bool {
    journal.sendable_in_order().next().is_none()
        && !resend
            .iter()
            .filter_map(|id| journal.get(id))
            .any(|tx| confirmed_resend(tx).is_some())
}

/// The librarian confirmed the question of [`resend_question`]: the [`Resend`] for [`plan()`].
/// The confirmation covers a payment's double-charge risk only when the question named it.
pub fn confirmed_resend(tx: &Transaction) -> Option<Resend> {
    resend_question(tx).map(|q| Resend {
        id: tx.id.clone(),
        payment_confirmed: q == ResendQuestion::ResendPayment,
    })
}

/// The status an uncertain transaction gets when the librarian found it in Koha: `queued` when
/// the desk sends to the queue (it is in the pending list), `applied` when it applies directly.
/// With no settings (removed since it was sent) the mode is unknown: `queued`, which like
/// `applied` means Koha has it, and which a librarian reviewing the queue would look for.
pub fn found_in_koha(settings: Option<&Settings>) -> Status {
    match settings.map(|s| s.mode) {
        Some(settings::Mode::Queue) | None => Status::Queued,
        Some(settings::Mode::Apply) => Status::Applied,
    }
}
