//! One circulation event recorded at the desk, and the life of its status.
//!
//! Status changes go only through the methods here, so an illegal change (for example a
//! transaction Koha accepted going back to `local`) is an error, never a silent overwrite.

use crate::ids::{Amount, Barcode, Branchcode, Cardnumber};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// A stable unique id, assigned when the transaction is recorded. Never derived from the time
/// alone: older tools keyed rows by timestamp and overwrote rows from the same second.
///
/// Shared text: the journal keeps each id in several indexes, and a desk holds tens of
/// thousands, so a copy is a reference count, not a new string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(Arc<str>);

impl Serialize for TransactionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TransactionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|text| TransactionId(text.into()))
    }
}

impl TransactionId {
    /// Builds an id from the recording instant and 64 random bits supplied by the caller. Ids sort
    /// by recording time.
    pub fn new(recorded_at: DateTime<Utc>, random: u64) -> Self {
        let millis = recorded_at.timestamp_millis().max(0);
        TransactionId(format!("{millis:013x}-{random:016x}").into())
    }

    /// Wraps an id read back from storage.
    pub fn from_stored(text: &str) -> Self {
        TransactionId(text.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened at the desk, with exactly the data each action needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Checkout: Koha's `issue`.
    Issue {
        /// The patron.
        cardnumber: Cardnumber,
        /// The item.
        barcode: Barcode,
    },
    /// Checkin: Koha's `return`.
    Return {
        /// The item.
        barcode: Barcode,
    },
    /// Fine payment: Koha's `payment`.
    Payment {
        /// The patron.
        cardnumber: Cardnumber,
        /// How much was paid.
        amount: Amount,
    },
}

impl Action {
    /// Koha's name for the action: `issue`, `return` or `payment`.
    pub fn koha_name(&self) -> &'static str {
        match self {
            Action::Issue { .. } => "issue",
            Action::Return { .. } => "return",
            Action::Payment { .. } => "payment",
        }
    }

    /// The item barcode, for checkouts and checkins.
    pub fn barcode(&self) -> Option<&Barcode> {
        match self {
            Action::Issue { barcode, .. } | Action::Return { barcode } => Some(barcode),
            Action::Payment { .. } => None,
        }
    }

    /// The patron card number, for checkouts and payments.
    pub fn cardnumber(&self) -> Option<&Cardnumber> {
        match self {
            Action::Issue { cardnumber, .. } | Action::Payment { cardnumber, .. } => {
                Some(cardnumber)
            }
            Action::Return { .. } => None,
        }
    }

    /// The amount, for payments.
    pub fn amount(&self) -> Option<Amount> {
        match self {
            Action::Payment { amount, .. } => Some(*amount),
            _ => None,
        }
    }
}

/// Where a transaction stands with Koha.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Status {
    /// Recorded here, never sent.
    Local,
    /// A request for it is (or was, if the page died) on its way to Koha.
    Sending,
    /// Koha stored it as a pending offline operation (`Added.`).
    Queued,
    /// Koha applied it (`Success.`).
    Applied,
    /// Koha refused it and changed nothing (`Borrower not found.` and the like).
    Rejected {
        /// Koha's answer, verbatim.
        message: String,
    },
    /// Nothing reached Koha; it may be sent again.
    Failed {
        /// Why, as a stable kind (for example `network`, `authentication`).
        reason: String,
    },
    /// It may have reached Koha. Only the librarian decides what happens next.
    Uncertain {
        /// Why, as a stable kind (for example `server-error`, `connection-lost`).
        reason: String,
    },
}

impl Status {
    /// The status name used in the UI contract (`data-status`).
    pub fn name(&self) -> &'static str {
        match self {
            Status::Local => "local",
            Status::Sending => "sending",
            Status::Queued => "queued",
            Status::Applied => "applied",
            Status::Rejected { .. } => "rejected",
            Status::Failed { .. } => "failed",
            Status::Uncertain { .. } => "uncertain",
        }
    }

    /// The text a status carries: Koha's message (`rejected`) or the reason (`failed`,
    /// `uncertain`).
    pub fn detail(&self) -> Option<&str> {
        match self {
            Status::Rejected { message } => Some(message),
            Status::Failed { reason } | Status::Uncertain { reason } => Some(reason),
            _ => None,
        }
    }

    /// Koha has accepted it (queued or applied); it is never sent again.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Status::Queued | Status::Applied)
    }

    /// A send run may pick it up without asking anybody.
    pub fn is_sendable(&self) -> bool {
        matches!(self, Status::Local | Status::Failed { .. })
    }
}

/// One entry of a transaction's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// When the status was set.
    pub at: DateTime<Utc>,
    /// The status set then.
    #[serde(flatten)]
    pub status: Status,
}

/// A status change the rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a {from} transaction cannot become {to}")]
pub struct IllegalTransition {
    /// The current status name.
    pub from: &'static str,
    /// The requested status name.
    pub to: &'static str,
}

impl IllegalTransition {
    /// Stable kind for the UI.
    pub fn kind(&self) -> &'static str {
        "illegal-transition"
    }
}

/// A recorded circulation event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Stable unique id.
    pub id: TransactionId,
    /// When the desk recorded it (UTC, milliseconds).
    pub recorded_at: DateTime<Utc>,
    /// The library it was recorded for.
    pub branchcode: Branchcode,
    /// What happened.
    #[serde(flatten)]
    pub action: Action,
    /// Every status it has had, oldest first; never empty, the last is the current one.
    history: Vec<StatusChange>,
    /// When it was last written to a `.koc` file, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_at: Option<DateTime<Utc>>,
}

impl Transaction {
    /// A freshly recorded transaction, status `local`.
    pub fn record(
        id: TransactionId,
        recorded_at: DateTime<Utc>,
        branchcode: Branchcode,
        action: Action,
    ) -> Self {
        Transaction {
            id,
            recorded_at,
            branchcode,
            action,
            history: vec![StatusChange {
                at: recorded_at,
                status: Status::Local,
            }],
            exported_at: None,
        }
    }

    /// Rebuilds a stored transaction from its parts (the archive's compact form). `None` when
    /// the history is empty: every transaction has a status.
    pub fn from_parts(
        id: TransactionId,
        recorded_at: DateTime<Utc>,
        branchcode: Branchcode,
        action: Action,
        history: Vec<StatusChange>,
        exported_at: Option<DateTime<Utc>>,
    ) -> Option<Self> {
        (!history.is_empty()).then_some(Transaction {
            id,
            recorded_at,
            branchcode,
            action,
            history,
            exported_at,
        })
    }

    /// The current status.
    pub fn status(&self) -> &Status {
        // `history` is never empty: `record` starts it and nothing removes entries.
        match self.history.last() {
            Some(change) => &change.status,
            None => &Status::Local,
        }
    }

    /// Every status it has had, oldest first.
    pub fn history(&self) -> &[StatusChange] {
        &self.history
    }

    /// When the current status was set.
    pub fn status_since(&self) -> DateTime<Utc> {
        self.history.last().map_or(self.recorded_at, |c| c.at)
    }

    /// Moves to `sending`, before a request leaves. Allowed from `local` and `failed`; from
    /// `uncertain` only through [`Transaction::resend_uncertain`].
    pub fn start_sending(&mut self, at: DateTime<Utc>) -> Result<(), IllegalTransition> {
        if !self.status().is_sendable() {
            return Err(self.illegal("sending"));
        }
        self.push(at, Status::Sending);
        Ok(())
    }

    /// The librarian looked at Koha and decided to send an uncertain transaction again.
    pub fn resend_uncertain(&mut self, at: DateTime<Utc>) -> Result<(), IllegalTransition> {
        if !matches!(self.status(), Status::Uncertain { .. }) {
            return Err(self.illegal("sending"));
        }
        self.push(at, Status::Sending);
        Ok(())
    }

    /// Stores Koha's answer for a transaction that was `sending`. The outcome must be one of
    /// `queued`, `applied`, `rejected`, `failed` or `uncertain`.
    pub fn finish_sending(
        &mut self,
        at: DateTime<Utc>,
        outcome: Status,
    ) -> Result<(), IllegalTransition> {
        let allowed = !matches!(outcome, Status::Local | Status::Sending);
        if !matches!(self.status(), Status::Sending) || !allowed {
            return Err(self.illegal(outcome.name()));
        }
        self.push(at, outcome);
        Ok(())
    }

    /// At start-up: a transaction still `sending` belongs to a page that died mid-request, so it
    /// may or may not have reached Koha. Returns whether anything changed.
    pub fn recover_interrupted(&mut self, at: DateTime<Utc>) -> bool {
        if !matches!(self.status(), Status::Sending) {
            return false;
        }
        self.push(
            at,
            Status::Uncertain {
                reason: "interrupted".to_owned(),
            },
        );
        true
    }

    /// The librarian checked Koha and found an uncertain transaction there: record it as
    /// `queued` or `applied` without sending.
    pub fn confirm_in_koha(
        &mut self,
        at: DateTime<Utc>,
        status: Status,
    ) -> Result<(), IllegalTransition> {
        if !matches!(self.status(), Status::Uncertain { .. }) || !status.is_accepted() {
            return Err(self.illegal(status.name()));
        }
        self.push(at, status);
        Ok(())
    }

    /// Marks it as written to a `.koc` file.
    pub fn mark_exported(&mut self, at: DateTime<Utc>) {
        self.exported_at = Some(at);
    }

    fn push(&mut self, at: DateTime<Utc>, status: Status) {
        self.history.push(StatusChange { at, status });
    }

    fn illegal(&self, to: &'static str) -> IllegalTransition {
        IllegalTransition {
            from: self.status().name(),
            to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(sec: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, sec).unwrap()
    }

    fn checkout() -> Transaction {
        Transaction::record(
            TransactionId::new(at(0), 7),
            at(0),
            Branchcode::parse("DE-627").unwrap(),
            Action::Issue {
                cardnumber: Cardnumber::parse("A1").unwrap(),
                barcode: Barcode::parse("B1").unwrap(),
            },
        )
    }

    #[test]
    fn accepted_transactions_are_never_sent_again() {
        let mut tx = checkout();
        tx.start_sending(at(1)).unwrap();
        tx.finish_sending(at(2), Status::Queued).unwrap();
        assert_eq!(
            tx.start_sending(at(3)).unwrap_err().to_string(),
            "a queued transaction cannot become sending"
        );
        assert_eq!(tx.history().len(), 3);
    }

    #[test]
    fn uncertain_needs_an_explicit_decision() {
        let mut tx = checkout();
        tx.start_sending(at(1)).unwrap();
        assert!(tx.recover_interrupted(at(2)));
        assert_eq!(tx.status().name(), "uncertain");
        assert!(tx.start_sending(at(3)).is_err());
        assert!(tx.confirm_in_koha(at(3), Status::Local).is_err());
        tx.resend_uncertain(at(4)).unwrap();
        assert_eq!(tx.status(), &Status::Sending);
    }

    #[test]
    fn outcome_must_be_final() {
        let mut tx = checkout();
        assert!(tx.finish_sending(at(1), Status::Applied).is_err());
        tx.start_sending(at(1)).unwrap();
        assert!(tx.finish_sending(at(2), Status::Local).is_err());
        tx.finish_sending(
            at(2),
            Status::Failed {
                reason: "network".into(),
            },
        )
        .unwrap();
        tx.start_sending(at(3)).unwrap();
    }

    #[test]
    fn serialises_flat_and_round_trips() {
        let tx = checkout();
        let json = serde_json::to_value(&tx).unwrap();
        assert_eq!(json["action"], "issue");
        assert_eq!(json["cardnumber"], "A1");
        assert_eq!(json["history"][0]["status"], "local");
        let back: Transaction = serde_json::from_value(json).unwrap();
        assert_eq!(back, tx);
    }

    #[test]
    fn ids_sort_by_time() {
        let a = TransactionId::new(at(1), u64::MAX);
        let b = TransactionId::new(at(2), 0);
        assert!(a < b);
    }
}
