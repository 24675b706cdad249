//! Which transactions a send run takes, in what order, and which it leaves for the librarian.

use crate::journal::Journal;
use crate::settings;
use crate::transaction::{Action, Status, Transaction, TransactionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The librarian's explicit choice to send an `uncertain` transaction again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resend {
    /// The transaction.
    pub id: TransactionId,
    /// For a payment: the librarian confirmed the risk of charging twice. Without it an uncertain
    /// payment is never sent.
    pub payment_confirmed: bool,
}

/// What the librarian said about transactions already written to a `.koc` file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportedChoice {
    /// Not asked yet: a run that would send any stops before the network and asks.
    #[default]
    Ask,
    /// Send them too (the file was not uploaded).
    Send,
    /// Send the others only.
    LeaveOut,
}

/// A send run's choice of transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What to send, in this order.
    pub send: Vec<TransactionId>,
    /// Sendable, but written to a `.koc` file since: Koha has them twice if that file was
    /// uploaded. Sent only when the librarian says so ([`ExportedChoice::Send`]).
    pub exported: Vec<TransactionId>,
    /// Apply mode: held back because an earlier transaction of the same item is not settled
    /// (see [`plan`]).
    pub held_back: Vec<TransactionId>,
}

/// Whether Koha's answer for a transaction is final: accepted, or rejected (Koha changed
/// nothing). Anything else may still change what Koha holds for its item.
fn settled(status: &Status) -> bool {
    status.is_accepted() || matches!(status, Status::Rejected { .. })
}

/// Chooses what a run sends: every `local` and `failed` transaction, and the `uncertain` ones the
/// librarian chose to send again (payments only with the double-charge risk confirmed), in
/// recorded order (then by id).
///
/// - Transactions exported to a `.koc` file (and not accepted since) go to [`Plan::exported`]
///   unless `exported` is [`ExportedChoice::Send`]: uploaded and sent, Koha would record them
///   twice, since it has no duplicate check.
/// - In apply mode Koha applies each request as it arrives, so order matters per item: a checkin
///   sent while its checkout is `uncertain` (or otherwise unsent) gets `Item not issued.` and the
///   loan stays open once the checkout arrives. Such a transaction is held back until every
///   earlier one of its item is settled or goes in the same run before it. In queue mode Koha
///   orders the pending operations by their time, so nothing is held back.
pub fn plan(
    journal: &Journal,
    resend: &[Resend],
    exported: ExportedChoice,
    mode: settings::Mode,
) -> Plan {
    let chosen = |tx: &Transaction| {
        resend.iter().any(|r| {
            r.id == tx.id && (r.payment_confirmed || !matches!(tx.action, Action::Payment { .. }))
        })
    };
    let candidate = |tx: &Transaction| match tx.status() {
        s if s.is_sendable() => true,
        Status::Uncertain { .. } => chosen(tx),
        _ => false,
    };
    let mut out = Plan::default();
    // Items with an earlier transaction that is neither settled nor going out in this run.
    let mut blocked = HashSet::new();
    for tx in journal.in_order() {
        let item = tx.action.barcode();
        let is_blocked = mode == settings::Mode::Apply && item.is_some_and(|b| blocked.contains(b));
        let goes = if !candidate(tx) {
            false
        } else if tx.exported_at.is_some() && exported != ExportedChoice::Send {
            out.exported.push(tx.id.clone());
            false
        } else if is_blocked {
            out.held_back.push(tx.id.clone());
            false
        } else {
            out.send.push(tx.id.clone());
            true
        };
        if let (false, Some(item)) = (goes || settled(tx.status()), item) {
            blocked.insert(item.clone());
        }
    }
    out
}

/// What to tell the librarian about the exported transactions a run would send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedQuestion {
    /// How many.
    pub count: usize,
    /// How many of them are payments (credited twice if sent after an upload).
    pub payments: usize,
    /// The latest export among them.
    pub exported_at: DateTime<Utc>,
}

/// The question about `ids` (from [`Plan::exported`]); `None` when there are none.
pub fn exported_question(journal: &Journal, ids: &[TransactionId]) -> Option<ExportedQuestion> {
    let txs: Vec<&Transaction> = ids.iter().filter_map(|id| journal.get(id)).collect();
    let exported_at = txs.iter().filter_map(|tx| tx.exported_at).max()?;
    Some(ExportedQuestion {
        count: txs.len(),
        payments: txs
            .iter()
            .filter(|tx| matches!(tx.action, Action::Payment { .. }))
            .count(),
        exported_at,
    })
}

/// Whether `tx` may still go out as planned: another page may have changed or deleted it since.
pub(crate) fn still_sendable(tx: &Transaction, resend: &[Resend]) -> bool {
    match tx.status() {
        s if s.is_sendable() => true,
        Status::Uncertain { .. } => resend.iter().any(|r| r.id == tx.id),
        _ => false,
    }
}
