//! One circulation event recorded at the desk, and the life of its status.
//!
//! Status changes go only through the methods here, so an illegal change (for example a
//! transaction Koha accepted going back to `local`) is an error, never a silent overwrite.

use crate::ids::{Amount, Barcode, Branchcode, Cardnumber};
use crate::kinds::kinds;
use crate::zone::parse_rfc3339;
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
        crate::ids::deserialize_text(d, |text| Ok(TransactionId(text.into())))
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

kinds!(Action: koha_name, KOHA_NAMES {
    Issue => "issue",
    Return => "return",
    Payment => "payment",
});

impl Action {
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

/// Why nothing reached Koha (a `failed` transaction may be sent again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// Koha refused the login (`Authentication failed.`, 401, or 403 without a token).
    Authentication,
    /// Koha refused the CSRF token (403 on 24.05+), even after one fresh token.
    Csrf,
    /// Not Koha's answer: a redirect, 404 or another 4xx (a wrong address or a gateway).
    Configuration,
    /// No connection could be made (written by earlier builds; kept readable).
    Network,
}

/// Why a transaction may or may not have reached Koha (an `uncertain` one waits for the
/// librarian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UncertainReason {
    /// The page went away while its request was on the way.
    Interrupted,
    /// Koha answered 5xx: it may have applied part of it.
    ServerError,
    /// Koha answered 200 with a text it never sends for this request.
    UnexpectedAnswer,
    /// The connection closed without an answer.
    ConnectionLost,
    /// No answer within the time-out.
    Timeout,
}

macro_rules! reason_names {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every reason, for tests and translations.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// The stored and UI name (kebab case), e.g. `connection-lost`.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),*
                }
            }

            /// The reason with this stored name.
            pub fn from_name(name: &str) -> Option<$ty> {
                match name {
                    $($name => Some($ty::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl $crate::kinds::Kind for $ty {
            fn kind_name(&self) -> &'static str {
                self.name()
            }
        }
    };
}

reason_names!(FailReason {
    Authentication => "authentication",
    Csrf => "csrf",
    Configuration => "configuration",
    Network => "network",
});

reason_names!(UncertainReason {
    Interrupted => "interrupted",
    ServerError => "server-error",
    UnexpectedAnswer => "unexpected-answer",
    ConnectionLost => "connection-lost",
    Timeout => "timeout",
});

/// Where a transaction stands with Koha.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        /// Why.
        reason: FailReason,
    },
    /// It may have reached Koha. Only the librarian decides what happens next.
    Uncertain {
        /// Why.
        reason: UncertainReason,
    },
}

kinds!(Status: name, NAMES {
    Local => "local",
    Sending => "sending",
    Queued => "queued",
    Applied => "applied",
    Rejected => "rejected",
    Failed => "failed",
    Uncertain => "uncertain",
});

impl Status {
    /// The text a status carries: Koha's message (`rejected`) or the reason's name (`failed`,
    /// `uncertain`).
    pub fn detail(&self) -> Option<&str> {
        match self {
            Status::Rejected { message } => Some(message),
            Status::Failed { reason } => Some(reason.name()),
            Status::Uncertain { reason } => Some(reason.name()),
            _ => None,
        }
    }

    /// Rebuilds a status from its stored name and detail (see [`Status::name`],
    /// [`Status::detail`]).
    pub fn from_parts(name: &str, detail: Option<String>) -> Result<Status, String> {
        let detail = |field: &str| detail.clone().ok_or_else(|| missing(field));
        Ok(match name {
            "local" => Status::Local,
            "sending" => Status::Sending,
            "queued" => Status::Queued,
            "applied" => Status::Applied,
            "rejected" => Status::Rejected {
                message: detail("message")?,
            },
            "failed" => {
                let text = detail("reason")?;
                Status::Failed {
                    reason: FailReason::from_name(&text)
                        .ok_or_else(|| format!("unknown failure reason `{text}`"))?,
                }
            }
            "uncertain" => {
                let text = detail("reason")?;
                Status::Uncertain {
                    reason: UncertainReason::from_name(&text)
                        .ok_or_else(|| format!("unknown uncertainty reason `{text}`"))?,
                }
            }
            other => {
                return Err(format!(
                    "unknown variant `{other}`, expected one of `local`, `sending`, `queued`, \
                     `applied`, `rejected`, `failed`, `uncertain`"
                ))
            }
        })
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
///
/// Stored as `{"at", "status", "message"?, "reason"?}`: the JSON an internally tagged, flattened
/// [`Status`] gives, read and written through flat structs because serde's
/// `flatten` buffers every entry and costs a lot of `.wasm`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "StatusChangeIn")]
pub struct StatusChange {
    /// When the status was set.
    pub at: DateTime<Utc>,
    /// The status set then.
    pub status: Status,
}

/// A [`StatusChange`] as stored, for writing (borrowed).
#[derive(Serialize)]
struct StatusChangeOut<'a> {
    at: DateTime<Utc>,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// A [`StatusChange`] as stored, for reading.
#[derive(Deserialize)]
struct StatusChangeIn {
    #[serde(deserialize_with = "instant")]
    at: DateTime<Utc>,
    status: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

impl Serialize for StatusChange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (message, reason) = match &self.status {
            Status::Rejected { message } => (Some(message.as_str()), None),
            Status::Failed { reason } => (None, Some(reason.name())),
            Status::Uncertain { reason } => (None, Some(reason.name())),
            _ => (None, None),
        };
        StatusChangeOut {
            at: self.at,
            status: self.status.name(),
            message,
            reason,
        }
        .serialize(serializer)
    }
}

/// An RFC 3339 instant, as chrono's serde writes and reads it (see [`parse_rfc3339`]).
pub(crate) fn instant<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    parse_rfc3339(&text).ok_or_else(|| {
        serde::de::Error::custom(format_args!("not an RFC 3339 date and time: {text:?}"))
    })
}

/// [`instant`], or `null`.
fn optional_instant<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    struct Instant(#[serde(deserialize_with = "instant")] DateTime<Utc>);
    Ok(Option::<Instant>::deserialize(d)?.map(|Instant(at)| at))
}

fn missing(field: &str) -> String {
    format!("missing field `{field}`")
}

impl TryFrom<StatusChangeIn> for StatusChange {
    type Error = String;

    fn try_from(r: StatusChangeIn) -> Result<Self, String> {
        let status = match r.status.as_str() {
            "rejected" => Status::from_parts("rejected", r.message)?,
            name => Status::from_parts(name, r.reason)?,
        };
        Ok(StatusChange { at: r.at, status })
    }
}

/// A [`Transaction`] as stored, for writing (borrowed): the action's tag and fields flat beside
/// the others.
#[derive(Serialize)]
struct TransactionOut<'a> {
    id: &'a TransactionId,
    recorded_at: DateTime<Utc>,
    branchcode: &'a Branchcode,
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cardnumber: Option<&'a Cardnumber>,
    #[serde(skip_serializing_if = "Option::is_none")]
    barcode: Option<&'a Barcode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<Amount>,
    history: &'a [StatusChange],
    #[serde(skip_serializing_if = "Option::is_none")]
    exported_at: Option<DateTime<Utc>>,
}

/// A [`Transaction`] as stored, for reading.
#[derive(Deserialize)]
struct TransactionIn {
    id: TransactionId,
    #[serde(deserialize_with = "instant")]
    recorded_at: DateTime<Utc>,
    branchcode: Branchcode,
    action: String,
    #[serde(default)]
    cardnumber: Option<Cardnumber>,
    #[serde(default)]
    barcode: Option<Barcode>,
    #[serde(default)]
    amount: Option<Amount>,
    history: Vec<StatusChange>,
    #[serde(default, deserialize_with = "optional_instant")]
    exported_at: Option<DateTime<Utc>>,
}

impl Serialize for Transaction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        TransactionOut {
            id: &self.id,
            recorded_at: self.recorded_at,
            branchcode: &self.branchcode,
            action: self.action.koha_name(),
            cardnumber: self.action.cardnumber(),
            barcode: self.action.barcode(),
            amount: self.action.amount(),
            history: &self.history,
            exported_at: self.exported_at,
        }
        .serialize(serializer)
    }
}

impl TryFrom<TransactionIn> for Transaction {
    type Error = String;

    fn try_from(r: TransactionIn) -> Result<Self, String> {
        let action = match r.action.as_str() {
            "issue" => Action::Issue {
                cardnumber: r.cardnumber.ok_or_else(|| missing("cardnumber"))?,
                barcode: r.barcode.ok_or_else(|| missing("barcode"))?,
            },
            "return" => Action::Return {
                barcode: r.barcode.ok_or_else(|| missing("barcode"))?,
            },
            "payment" => Action::Payment {
                cardnumber: r.cardnumber.ok_or_else(|| missing("cardnumber"))?,
                amount: r.amount.ok_or_else(|| missing("amount"))?,
            },
            other => {
                return Err(format!(
                    "unknown variant `{other}`, expected one of `issue`, `return`, `payment`"
                ))
            }
        };
        Ok(Transaction {
            id: r.id,
            recorded_at: r.recorded_at,
            branchcode: r.branchcode,
            action,
            history: r.history,
            exported_at: r.exported_at,
        })
    }
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
    /// The stable kind of every illegal transition.
    pub const KIND: &'static str = "illegal-transition";

    /// Stable kind for the UI: [`IllegalTransition::KIND`].
    pub fn kind(&self) -> &'static str {
        Self::KIND
    }
}

/// A recorded circulation event.
///
/// Stored as `{"id", "recorded_at", "branchcode", "action", "cardnumber"?, "barcode"?,
/// "amount"?, "history", "exported_at"?}`: the JSON of a flattened, internally tagged
/// [`Action`], read and written through flat structs (see
/// [`StatusChange`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TransactionIn")]
pub struct Transaction {
    /// Stable unique id.
    pub id: TransactionId,
    /// When the desk recorded it (UTC, milliseconds).
    pub recorded_at: DateTime<Utc>,
    /// The library it was recorded for.
    pub branchcode: Branchcode,
    /// What happened.
    pub action: Action,
    /// Every status it has had, oldest first; never empty, the last is the current one.
    history: Vec<StatusChange>,
    /// When it was last written to a `.koc` file, if ever.
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
                reason: UncertainReason::Interrupted,
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

/// Merging copies of one transaction (the same id, held by two stores or two pages). Never by a
/// clock: a desk clock stepped back after an outage, or a `.koc` row dated in the future, must
/// not let a stale copy win.
impl Transaction {
    /// Whether this copy wins over `other` when the two are merged: the rule every merge follows
    /// (reconciling the two stores at start, an id stored twice, another page's write).
    ///
    /// A history only grows (every status change pushes one entry; nothing removes one), so a
    /// stale copy is a prefix of the newer one; copies may also have gone different ways from a
    /// common past (two pages, a store that refused a write). The rule compares, in order:
    ///
    /// 1. whether Koha accepted it (`queued`, `applied`: final);
    /// 2. how many times it was `uncertain`: a copy that knows an attempt may have reached Koha
    ///    beats one that does not, so no page sends it again by itself;
    /// 3. how many times Koha rejected it (never sent again by itself either);
    /// 4. how many attempts it records (`sending` entries): a later attempt, known only to one
    ///    copy, wins;
    /// 5. its current status, `failed` over `sending` over `local`;
    /// 6. then a fixed order of the stored text (without the export mark).
    ///
    /// Every status change raises this key, so the newer copy always beats its prefix; it is a
    /// total order, so merging is commutative and associative and every page reaches the same
    /// copy. Copies that differ only in `exported_at` do not supersede each other.
    pub fn supersedes(&self, other: &Transaction) -> bool {
        let key = |tx: &Transaction| {
            let count = |wanted: fn(&Status) -> bool| {
                tx.history.iter().filter(|c| wanted(&c.status)).count()
            };
            (
                tx.status().is_accepted(),
                count(|s| matches!(s, Status::Uncertain { .. })),
                count(|s| matches!(s, Status::Rejected { .. })),
                count(|s| matches!(s, Status::Sending)),
                evidence_rank(tx.status()),
                tx.history.len(),
            )
        };
        key(self)
            .cmp(&key(other))
            .then_with(|| self.stored_order(other))
            .is_gt()
    }

    /// Merges two copies of one transaction: the one that [supersedes](Self::supersedes) the
    /// other (on a tie, either: they are then equal but for the export mark), with the later
    /// `exported_at` of the two (export marks only move forward). Commutative and associative.
    pub fn merge(self, other: Transaction) -> Transaction {
        let exported_at = self.exported_at.max(other.exported_at);
        let mut winner = if other.supersedes(&self) { other } else { self };
        winner.exported_at = exported_at;
        winner
    }

    /// A total order of copies by their stored text without the export mark; `Equal` only when
    /// they are the same but for it.
    fn stored_order(&self, other: &Transaction) -> std::cmp::Ordering {
        let same = self.id == other.id
            && self.recorded_at == other.recorded_at
            && self.branchcode == other.branchcode
            && self.action == other.action
            && self.history == other.history;
        if same {
            return std::cmp::Ordering::Equal;
        }
        let text = |tx: &Transaction| {
            let mut unmarked = tx.clone();
            unmarked.exported_at = None;
            // Plain data; serialising it cannot fail.
            serde_json::to_string(&unmarked).unwrap_or_default()
        };
        text(self).cmp(&text(other))
    }
}

/// How much a status says about what Koha holds, for copies that went different ways: Koha's
/// own answers first, then what the desk concluded, then what it merely did.
/// The current status's weight once the counts of [`Transaction::supersedes`] are equal: a
/// `failed` ends the attempt a `sending` copy still shows in flight.
fn evidence_rank(status: &Status) -> u8 {
    match status {
        Status::Queued | Status::Applied => 5,
        Status::Uncertain { .. } => 4,
        Status::Rejected { .. } => 3,
        Status::Failed { .. } => 2,
        Status::Sending => 1,
        Status::Local => 0,
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
                reason: FailReason::Network,
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

    /// Every action and status, exactly as the derived (flattened, tagged) serde wrote them: the
    /// stores hold this text, so the hand-made flat form must not change a byte of it.
    fn every_shape() -> Vec<Transaction> {
        let mut rejected = checkout();
        rejected.start_sending(at(1)).unwrap();
        rejected
            .finish_sending(
                at(2),
                Status::Rejected {
                    message: "Item not found.".into(),
                },
            )
            .unwrap();
        let mut back = Transaction::record(
            TransactionId::new(at(3), 8),
            at(3),
            Branchcode::parse("DE-25").unwrap(),
            Action::Return {
                barcode: Barcode::parse("B2").unwrap(),
            },
        );
        back.start_sending(at(4)).unwrap();
        back.finish_sending(
            at(5),
            Status::Failed {
                reason: FailReason::Network,
            },
        )
        .unwrap();
        back.start_sending(at(6)).unwrap();
        assert!(back.recover_interrupted(at(7)));
        back.mark_exported(at(8) + chrono::TimeDelta::milliseconds(250));
        let mut paid = Transaction::record(
            TransactionId::new(at(9), 9),
            at(9),
            Branchcode::parse("DE-25").unwrap(),
            Action::Payment {
                cardnumber: Cardnumber::parse("C1").unwrap(),
                amount: Amount::parse("2,50").unwrap(),
            },
        );
        paid.start_sending(at(10)).unwrap();
        paid.finish_sending(at(11), Status::Applied).unwrap();
        let mut queued = checkout();
        queued.start_sending(at(12)).unwrap();
        queued.finish_sending(at(13), Status::Queued).unwrap();
        vec![rejected, back, paid, queued]
    }

    /// Written by the derived serde (flatten + internally tagged enums) before it was replaced.
    const GOLDEN: [&str; 4] = [
        r#"{"id":"0019d36e3ec00-0000000000000007","recorded_at":"2026-03-29T00:00:00Z","branchcode":"DE-627","action":"issue","cardnumber":"A1","barcode":"B1","history":[{"at":"2026-03-29T00:00:00Z","status":"local"},{"at":"2026-03-29T00:00:01Z","status":"sending"},{"at":"2026-03-29T00:00:02Z","status":"rejected","message":"Item not found."}]}"#,
        r#"{"id":"0019d36e3f7b8-0000000000000008","recorded_at":"2026-03-29T00:00:03Z","branchcode":"DE-25","action":"return","barcode":"B2","history":[{"at":"2026-03-29T00:00:03Z","status":"local"},{"at":"2026-03-29T00:00:04Z","status":"sending"},{"at":"2026-03-29T00:00:05Z","status":"failed","reason":"network"},{"at":"2026-03-29T00:00:06Z","status":"sending"},{"at":"2026-03-29T00:00:07Z","status":"uncertain","reason":"interrupted"}],"exported_at":"2026-03-29T00:00:08.250Z"}"#,
        r#"{"id":"0019d36e40f28-0000000000000009","recorded_at":"2026-03-29T00:00:09Z","branchcode":"DE-25","action":"payment","cardnumber":"C1","amount":250,"history":[{"at":"2026-03-29T00:00:09Z","status":"local"},{"at":"2026-03-29T00:00:10Z","status":"sending"},{"at":"2026-03-29T00:00:11Z","status":"applied"}]}"#,
        r#"{"id":"0019d36e3ec00-0000000000000007","recorded_at":"2026-03-29T00:00:00Z","branchcode":"DE-627","action":"issue","cardnumber":"A1","barcode":"B1","history":[{"at":"2026-03-29T00:00:00Z","status":"local"},{"at":"2026-03-29T00:00:12Z","status":"sending"},{"at":"2026-03-29T00:00:13Z","status":"queued"}]}"#,
    ];

    #[test]
    fn stored_json_is_unchanged_byte_for_byte() {
        let text: Vec<String> = every_shape()
            .iter()
            .map(|tx| serde_json::to_string(tx).unwrap())
            .collect();
        assert_eq!(text, GOLDEN);
        for (tx, t) in every_shape().iter().zip(&text) {
            assert_eq!(&serde_json::from_str::<Transaction>(t).unwrap(), tx);
            let value: serde_json::Value = serde_json::from_str(t).unwrap();
            assert_eq!(&Transaction::deserialize(&value).unwrap(), tx);
        }
    }

    #[test]
    fn stored_json_missing_a_field_or_with_an_unknown_name_is_refused() {
        let refused = |text: &str| {
            serde_json::from_str::<Transaction>(text)
                .unwrap_err()
                .to_string()
        };
        let return_without_barcode = GOLDEN[1].replace(r#""barcode":"B2","#, "");
        assert!(refused(&return_without_barcode).contains("missing field `barcode`"));
        let payment_without_amount = GOLDEN[2].replace(r#""amount":250,"#, "");
        assert!(refused(&payment_without_amount).contains("missing field `amount`"));
        let unknown_action = GOLDEN[0].replace(r#""action":"issue""#, r#""action":"renew""#);
        assert!(refused(&unknown_action).contains("unknown variant `renew`"));
        let rejected_without_message = GOLDEN[0].replace(r#","message":"Item not found.""#, "");
        assert!(refused(&rejected_without_message).contains("missing field `message`"));
        let unknown_status = GOLDEN[3].replace(r#""status":"queued""#, r#""status":"lost""#);
        assert!(refused(&unknown_status).contains("unknown variant `lost`"));
        let bad_barcode = GOLDEN[1].replace(r#""barcode":"B2""#, r#""barcode":"""#);
        assert!(serde_json::from_str::<Transaction>(&bad_barcode).is_err());
    }

    #[test]
    fn ids_sort_by_time() {
        let a = TransactionId::new(at(1), u64::MAX);
        let b = TransactionId::new(at(2), 0);
        assert!(a < b);
    }
}
