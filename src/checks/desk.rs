//! What the desk asks about before recording an action, and what the options page says about
//! the stored snapshot. The browser shell only passes these on.

use super::download::Unavailable;
use super::model::{Coverage, Snapshot};
use super::paging::List;
use super::warnings::{
    balance_age, check_card, check_item, moved_here, CardLimits, CardProblem, ItemProblem,
    ItemScan, SnapshotAge,
};
use crate::ids::{Amount, Cardnumber, InputError};
use crate::journal::Journal;
use crate::store::keys::{CHECKS_LIMIT_KEY, CHECKS_VERSION};
use crate::store::Change;
use crate::transaction::Action;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;

/// A card or an item problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Problem {
    /// About the card scanned.
    Card(CardProblem),
    /// About the item scanned.
    Item(ItemProblem),
}

impl Problem {
    /// The problem's stable kind (`expired`, `unknown-barcode`, …): the pages build the
    /// message key from it.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Card(p) => p.kind(),
            Problem::Item(p) => p.kind(),
        }
    }

    /// The name the desk's `#confirm` dialog carries in `data-check` (the pages' stable
    /// interface for browser tests).
    pub fn check(&self) -> &'static str {
        match self {
            Problem::Card(CardProblem::UnknownCard) => "unknown-card",
            Problem::Card(CardProblem::Expired { .. }) => "expired",
            Problem::Card(CardProblem::Restricted { .. }) => "restricted",
            Problem::Card(CardProblem::CardLost) => "card-lost",
            Problem::Card(CardProblem::AddressInDoubt) => "address",
            Problem::Card(CardProblem::BalanceAboveLimit { .. }) => "balance",
            Problem::Item(ItemProblem::UnknownBarcode) => "unknown-item",
            Problem::Item(ItemProblem::Lost) => "lost",
            Problem::Item(ItemProblem::Withdrawn) => "withdrawn",
            Problem::Item(ItemProblem::NotForLoan) => "not-for-loan",
            Problem::Item(ItemProblem::Damaged) => "damaged",
            Problem::Item(ItemProblem::OnLoanToAnother { .. }) => "on-loan-elsewhere",
        }
    }
}

/// One check that fired for an action at the desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeskCheck {
    /// The `data-check` name ([`Problem::check`]).
    pub check: &'static str,
    /// What is wrong (serialised with its `kind` and details).
    #[serde(flatten)]
    pub problem: Problem,
    /// How old the snapshot behind it is.
    pub age: AgeText,
}

/// What the desk asks about before recording `action`, from the snapshot and this desk's own
/// journal:
///
/// - a checkout: the card's checks (unless the librarian already chose to record anyway for
///   `card_accepted`, the card at the desk: they are not asked again for each item), then the
///   item's;
/// - a checkin: an unknown, lost or withdrawn item (on loan is what a checkin expects; "not for
///   loan" or "damaged" says nothing about taking it back);
/// - a payment: an unknown card only (a payment for a card Koha does not know fails there).
#[allow(clippy::too_many_arguments)]
pub fn desk_checks(
    snapshot: &Snapshot,
    action: &Action,
    journal: &Journal,
    limits: CardLimits,
    card_accepted: Option<&Cardnumber>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Vec<DeskCheck> {
    let mut problems: Vec<(Problem, SnapshotAge)> = Vec::new();
    let mut card = |cardnumber: &Cardnumber, only_unknown: bool| {
        for w in check_card(snapshot, cardnumber.as_str(), limits, today, now) {
            if !only_unknown || w.problem == CardProblem::UnknownCard {
                problems.push((Problem::Card(w.problem), w.age));
            }
        }
    };
    match action {
        Action::Issue { cardnumber, .. } => {
            if card_accepted != Some(cardnumber) {
                card(cardnumber, false);
            }
        }
        Action::Payment { cardnumber, .. } => card(cardnumber, true),
        Action::Return { .. } => {}
    }
    let item = match action {
        Action::Issue {
            cardnumber,
            barcode,
        } => Some((barcode, Some(cardnumber.as_str()))),
        Action::Return { barcode } => Some((barcode, None)),
        Action::Payment { .. } => None,
    };
    if let Some((barcode, borrower)) = item {
        let scan = ItemScan {
            barcode: barcode.as_str(),
            borrower,
            moved_here: moved_here(journal, barcode, snapshot, now),
        };
        let checkin = borrower.is_none();
        for w in check_item(snapshot, scan, now) {
            let asked = !checkin
                || matches!(
                    w.problem,
                    ItemProblem::UnknownBarcode | ItemProblem::Lost | ItemProblem::Withdrawn
                );
            if asked {
                problems.push((Problem::Item(w.problem), w.age));
            }
        }
    }
    problems
        .into_iter()
        .map(|(problem, age)| DeskCheck {
            check: problem.check(),
            problem,
            age: AgeText::of(age),
        })
        .collect()
}

/// The balance limit typed on the options page: empty for none, else an amount (`12.50` or
/// `12,50`) above which the desk asks about a patron's balance.
pub fn parse_balance_limit(text: &str) -> Result<Option<Amount>, InputError> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        Amount::parse(text).map(Some)
    }
}

#[derive(Serialize, Deserialize)]
struct StoredLimit {
    v: u64,
    balance_cents: u64,
}

/// The stored form of a balance limit (under [`CHECKS_LIMIT_KEY`]); `None` removes it.
pub fn balance_limit_change(limit: Option<Amount>) -> Change {
    let key = CHECKS_LIMIT_KEY.to_owned();
    match limit {
        None => Change::Remove { key },
        Some(amount) => {
            let stored = StoredLimit {
                v: CHECKS_VERSION,
                balance_cents: amount.cents(),
            };
            Change::Put {
                key,
                value: Value::String(serde_json::to_string(&stored).unwrap_or_default()),
            }
        }
    }
}

/// The stored balance limit; none when absent or unreadable (the desk then never asks about the
/// balance, and the options page shows the field empty).
pub fn read_balance_limit(value: Option<&Value>) -> Option<Amount> {
    let text = value?.as_str()?;
    let stored: StoredLimit = serde_json::from_str(text).ok()?;
    (stored.v == CHECKS_VERSION)
        .then(|| Amount::from_cents(stored.balance_cents).ok())
        .flatten()
}

/// The desk's card limits from the stored balance limit.
pub fn card_limits(limit: Option<Amount>) -> CardLimits {
    CardLimits {
        balance_cents: limit.map(|a| a.cents() as i64),
    }
}

/// The card whose checks the librarian answered "record anyway" for, after recording `action`
/// (`answered`: the checks of the question answered, `None` when none was asked). Their next
/// items are not asked about the card again; a checkout for another card ends that. Only a
/// question that named the card accepts it: one about the item or a repeated scan does not.
pub fn card_accepted_after(
    previous: Option<Cardnumber>,
    action: &Action,
    answered: Option<&[DeskCheck]>,
) -> Option<Cardnumber> {
    let confirmed = answered.is_some_and(|checks| {
        checks
            .iter()
            .any(|check| matches!(check.problem, Problem::Card(_)))
    });
    match action {
        Action::Issue { cardnumber, .. } if confirmed => Some(cardnumber.clone()),
        Action::Issue { cardnumber, .. } if previous.as_ref() != Some(cardnumber) => None,
        _ => previous,
    }
}

/// A snapshot's age as the pages say it: "just now" (under a minute), a whole number of
/// minutes (under two hours), hours (under two days) or days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgeText {
    /// `now`, `minutes`, `hours` or `days`: the pages' message key is `age_<unit>`.
    pub unit: &'static str,
    /// How many of them (rounded down).
    pub amount: i64,
    /// When Koha was read.
    pub taken_at: DateTime<Utc>,
}

impl AgeText {
    /// The age in the largest unit that still reads precisely enough.
    pub fn of(age: SnapshotAge) -> AgeText {
        let (unit, amount) = match age.minutes {
            m if m < 1 => ("now", 0),
            m if m < 120 => ("minutes", m),
            m if m < 48 * 60 => ("hours", m / 60),
            m => ("days", m / (24 * 60)),
        };
        AgeText {
            unit,
            amount,
            taken_at: age.taken_at,
        }
    }
}

/// Every [`AgeText::unit`] (the pages build `age_<unit>` keys from them).
pub const AGE_UNITS: &[&str] = &["now", "minutes", "hours", "days"];

/// A list the snapshot lacks, and the permission that reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnavailableList {
    /// `patrons`, `items` or `checkouts`.
    pub list: List,
    /// The Koha permission the list needs.
    pub permission: &'static str,
    /// Why it is missing.
    pub why: Unavailable,
}

/// What the options page says about the stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    /// Its age now.
    pub age: AgeText,
    /// Patrons kept (card number, expiry, flags, balance, home library; nothing else).
    pub patrons: usize,
    /// Items kept.
    pub items: usize,
    /// Which lists it holds.
    pub coverage: Coverage,
    /// The lists Koha refused or lacked.
    pub unavailable: Vec<UnavailableList>,
    /// No list at all: no checks at the desk.
    pub none_available: bool,
    /// When its last full pull started (Koha's deletions reach the snapshot only through one).
    pub full_at: DateTime<Utc>,
}

/// The status of `snapshot` seen at `now`.
pub fn snapshot_status(snapshot: &Snapshot, now: DateTime<Utc>) -> SnapshotStatus {
    let coverage = snapshot.coverage();
    SnapshotStatus {
        age: AgeText::of(SnapshotAge::at(snapshot.taken_at(), now)),
        patrons: snapshot.patron_count(),
        items: snapshot.item_count(),
        coverage,
        unavailable: snapshot
            .unavailable()
            .iter()
            .map(|&(list, why)| UnavailableList {
                list,
                permission: list.permission(),
                why,
            })
            .collect(),
        none_available: !coverage.patrons && !coverage.items,
        full_at: snapshot.full_at(),
    }
}

/// What a payment at the desk shows about the card typed: the patron's balance in the snapshot
/// (what they owe, credits subtracted; negative: in credit), and how old it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentBalance {
    /// In cents.
    pub balance_cents: i64,
    /// How old the snapshot is.
    pub age: AgeText,
}

/// The balance to show for a payment on `cardnumber`, or `None` when the snapshot has no
/// patrons or not this card (the payment's own check says "unknown card" on recording).
pub fn payment_balance(
    snapshot: &Snapshot,
    cardnumber: &str,
    now: DateTime<Utc>,
) -> Option<PaymentBalance> {
    if !snapshot.coverage().patrons {
        return None;
    }
    let patron = snapshot.patron(cardnumber.trim())?;
    Some(PaymentBalance {
        balance_cents: patron.balance_cents,
        age: AgeText::of(balance_age(snapshot, now)),
    })
}
