//! What the desk asks about on a card scan and on an item scan, from the snapshot. The desk
//! shows each warning with the snapshot's age and records anyway when the librarian says so.

use super::model::{Holder, PatronId, Restriction, Snapshot};
use crate::ids::Barcode;
use crate::journal::Journal;
use crate::kinds::kinds;
use crate::transaction::Status;
use crate::zone::{to_local, ZoneRules};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// Something about a scanned card the librarian should know before recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CardProblem {
    /// No patron in the snapshot has this card number. With a library-limited patron list
    /// (docs/koha.md 12.2) it may be a patron of another library.
    UnknownCard,
    /// The card expired: its last valid day was `on`.
    Expired {
        /// The last valid day.
        on: NaiveDate,
    },
    /// The patron is restricted (debarred), up to and including `until` when known.
    Restricted {
        /// The restriction's last day, if Koha gave it.
        until: Option<NaiveDate>,
    },
    /// The card is reported lost.
    CardLost,
    /// Koha marks the patron's address as in doubt.
    AddressInDoubt,
    /// The patron owes more than the desk's limit.
    BalanceAboveLimit {
        /// What the patron owes, in cents.
        balance_cents: i64,
        /// The limit from the options, in cents.
        limit_cents: i64,
    },
}

kinds!(CardProblem {
    UnknownCard => "unknown-card",
    Expired => "expired",
    Restricted => "restricted",
    CardLost => "card-lost",
    AddressInDoubt => "address-in-doubt",
    BalanceAboveLimit => "balance-above-limit",
});

/// Something about a scanned item the librarian should know before recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ItemProblem {
    /// No item in the snapshot has this barcode (a mistyped barcode, or an item added since).
    UnknownBarcode,
    /// The item has a lost status.
    Lost,
    /// The item is withdrawn.
    Withdrawn,
    /// The item, or its item type, is not for loan.
    NotForLoan,
    /// The item is marked damaged.
    Damaged,
    /// The item is on loan to a patron other than the one at the desk.
    OnLoanToAnother {
        /// The holder's card number, when the snapshot knows the holder and their card.
        cardnumber: Option<String>,
    },
}

kinds!(ItemProblem {
    UnknownBarcode => "unknown-barcode",
    Lost => "lost",
    Withdrawn => "withdrawn",
    NotForLoan => "not-for-loan",
    Damaged => "damaged",
    OnLoanToAnother => "on-loan-to-another",
});

/// How old the snapshot a warning comes from is: the desk shows it with every warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotAge {
    /// When Koha was read.
    pub taken_at: DateTime<Utc>,
    /// Whole minutes since then (0 if the desk's clock is behind that time).
    pub minutes: i64,
}

impl SnapshotAge {
    /// The age of a snapshot taken at `taken_at`, seen at `now`.
    pub fn at(taken_at: DateTime<Utc>, now: DateTime<Utc>) -> SnapshotAge {
        SnapshotAge {
            taken_at,
            minutes: (now - taken_at).num_minutes().max(0),
        }
    }
}

/// One warning: the problem and how old the knowledge behind it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning<P> {
    /// What is wrong.
    pub problem: P,
    /// The age of the snapshot it comes from.
    pub age: SnapshotAge,
}

impl Warning<CardProblem> {
    /// The problem's stable kind.
    pub fn kind(&self) -> &'static str {
        self.problem.kind()
    }
}

impl Warning<ItemProblem> {
    /// The problem's stable kind.
    pub fn kind(&self) -> &'static str {
        self.problem.kind()
    }
}

/// A warning about a card.
pub type CardWarning = Warning<CardProblem>;
/// A warning about an item.
pub type ItemWarning = Warning<ItemProblem>;

/// The desk's limits for the card checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardLimits {
    /// Warn when the patron owes more than this, in cents; `None` never warns.
    pub balance_cents: Option<i64>,
}

/// The calendar day it is for Koha at `now`: a patron's expiry and restriction dates are days of
/// Koha's calendar, in Koha's time zone (`zone`), so a desk in another zone would otherwise warn a
/// day early or late around midnight.
pub fn koha_today(now: DateTime<Utc>, zone: &dyn ZoneRules) -> NaiveDate {
    to_local(now, zone).date()
}

/// The warnings for a scanned card, in the order of [`CardProblem`]. `today` is Koha's date
/// ([`koha_today`]; a card is valid through its expiry day), `now` the current instant for the age.
/// No patron list in the snapshot means no card checks: nothing is "unknown" then.
pub fn check_card(
    snapshot: &Snapshot,
    cardnumber: &str,
    limits: CardLimits,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Vec<CardWarning> {
    if !snapshot.coverage().patrons {
        return Vec::new();
    }
    let Some(patron) = snapshot.patron(cardnumber.trim()) else {
        return with_age(vec![CardProblem::UnknownCard], snapshot, now);
    };
    let mut problems = Vec::new();
    if let Some(expiry) = patron.expiry.filter(|&day| day < today) {
        problems.push(CardProblem::Expired { on: expiry });
    }
    match patron.restriction {
        Restriction::Unrestricted => {}
        Restriction::Indefinite => problems.push(CardProblem::Restricted { until: None }),
        Restriction::Until(until) if until >= today => {
            problems.push(CardProblem::Restricted { until: Some(until) });
        }
        Restriction::Until(_) => {}
    }
    if patron.card_lost {
        problems.push(CardProblem::CardLost);
    }
    if patron.address_in_doubt {
        problems.push(CardProblem::AddressInDoubt);
    }
    if let Some(limit) = limits.balance_cents {
        if patron.balance_cents > limit {
            problems.push(CardProblem::BalanceAboveLimit {
                balance_cents: patron.balance_cents,
                limit_cents: limit,
            });
        }
    }
    let taken = SnapshotAge::at(snapshot.taken_at(), now);
    problems
        .into_iter()
        .map(|problem| {
            let age = match problem {
                CardProblem::BalanceAboveLimit { .. } => balance_age(snapshot, now),
                _ => taken,
            };
            Warning { problem, age }
        })
        .collect()
}

/// How old a balance in `snapshot` may be: payments and fines do not change a patron's
/// `updated_on` in Koha, so a download of changes refreshes a balance only by chance; only the
/// last full download surely did.
pub(crate) fn balance_age(snapshot: &Snapshot, now: DateTime<Utc>) -> SnapshotAge {
    SnapshotAge::at(snapshot.full_at(), now)
}

/// An item scanned at the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemScan<'a> {
    /// The barcode scanned.
    pub barcode: &'a str,
    /// The card at the desk for a checkout; `None` for a checkin (an item on loan is then
    /// expected).
    pub borrower: Option<&'a str>,
    /// This desk's journal knows the item's loan better than the snapshot ([`moved_here`]): the
    /// journal's own check speaks for the loan then, and the snapshot's is left out.
    pub moved_here: bool,
}

/// Whether this desk recorded a checkout or checkin of the item that the snapshot may not show:
/// its latest one Koha did not reject was recorded after the snapshot was taken, or Koha has
/// not applied it yet (unsent, or waiting in Koha's pending queue).
pub fn moved_here(
    journal: &Journal,
    barcode: &Barcode,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
) -> bool {
    journal
        .latest_move(barcode, now)
        .is_some_and(|tx| tx.recorded_at >= snapshot.taken_at() || *tx.status() != Status::Applied)
}

/// The warnings for a scanned item, in the order of [`ItemProblem`]. No item list in the
/// snapshot means no item checks.
pub fn check_item(snapshot: &Snapshot, scan: ItemScan, now: DateTime<Utc>) -> Vec<ItemWarning> {
    if !snapshot.coverage().items {
        return Vec::new();
    }
    let Some(item) = snapshot.item(scan.barcode.trim()) else {
        return with_age(vec![ItemProblem::UnknownBarcode], snapshot, now);
    };
    let borrower = scan.borrower.filter(|_| !scan.moved_here);
    let mut problems: Vec<ItemProblem> = [
        (item.lost, ItemProblem::Lost),
        (item.withdrawn, ItemProblem::Withdrawn),
        (item.not_for_loan, ItemProblem::NotForLoan),
        (item.damaged, ItemProblem::Damaged),
    ]
    .into_iter()
    .filter_map(|(set, problem)| set.then_some(problem))
    .collect();
    if let (Some(holder), Some(borrower)) = (item.on_loan, borrower) {
        let borrower_id: Option<PatronId> = snapshot.patron(borrower.trim()).map(|p| p.patron_id);
        let held_by_borrower = matches!(holder, Holder::Patron(id) if Some(id) == borrower_id);
        if !held_by_borrower {
            let cardnumber = match holder {
                Holder::Patron(id) => snapshot.patron_by_id(id).map(|p| p.cardnumber),
                Holder::Unknown => None,
            };
            problems.push(ItemProblem::OnLoanToAnother { cardnumber });
        }
    }
    with_age(problems, snapshot, now)
}

fn with_age<P>(problems: Vec<P>, snapshot: &Snapshot, now: DateTime<Utc>) -> Vec<Warning<P>> {
    let age = SnapshotAge::at(snapshot.taken_at(), now);
    problems
        .into_iter()
        .map(|problem| Warning { problem, age })
        .collect()
}
