//! The snapshot: per patron and per item only what the desk checks need, sorted by card number
//! and barcode so a scan is found by binary search.
//!
//! Card numbers and barcodes are compared as Koha's database compares them, without regard to
//! ASCII case (docs/koha.md 12.2): a card scanned as `c0001` is Koha's `C0001`.

use super::compact::{decode_items, decode_patrons, encode_items, encode_patrons, Table, BLOCK};
use super::download::Unavailable;
use super::paging::List;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Koha's `borrowernumber` (`patron_id` in the REST API).
pub type PatronId = u32;

/// Whether a patron may borrow, as far as restrictions (Koha's debarments) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "until", rename_all = "kebab-case")]
pub enum Restriction {
    /// No restriction.
    Unrestricted,
    /// Restricted with no end date, or with one the source did not give (Koha's REST API says
    /// only whether a patron is restricted: docs/koha.md 12.2).
    Indefinite,
    /// Restricted up to and including this day.
    Until(NaiveDate),
}

/// One patron: no name, no address, no e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatronRecord {
    /// The card number, as Koha has it (the lookup key).
    pub cardnumber: String,
    /// Koha's `borrowernumber`: what checkouts name.
    pub patron_id: PatronId,
    /// The last day the card is valid, if Koha has one.
    pub expiry: Option<NaiveDate>,
    /// Restricted (debarred) or not.
    pub restriction: Restriction,
    /// Koha's "card lost" flag (`lost`).
    pub card_lost: bool,
    /// Koha's "address in doubt" flag (`gonenoaddress`).
    pub address_in_doubt: bool,
    /// What the patron owes in cents; a credit is negative.
    pub balance_cents: i64,
    /// The home library's code.
    pub library: String,
}

/// Who has an item on loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "patron", rename_all = "kebab-case")]
pub enum Holder {
    /// The patron the checkouts list names.
    Patron(PatronId),
    /// The item says it is on loan, but the checkouts list was not available or did not name it.
    Unknown,
}

/// One item: its barcode and the states the desk warns about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    /// The barcode, as Koha has it (the lookup key).
    pub barcode: String,
    /// Any lost status (lost, long overdue, missing, …).
    pub lost: bool,
    /// Withdrawn.
    pub withdrawn: bool,
    /// Not for loan, by the item or its item type.
    pub not_for_loan: bool,
    /// Any damaged status.
    pub damaged: bool,
    /// On loan, and to whom if known.
    pub on_loan: Option<Holder>,
}

/// Which of Koha's lists the snapshot holds. A missing list means its checks are unavailable:
/// nothing is "unknown" because of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Coverage {
    /// `/api/v1/patrons` was read in full.
    pub patrons: bool,
    /// `/api/v1/items` was read in full.
    pub items: bool,
    /// `/api/v1/checkouts` was read in full.
    pub checkouts: bool,
}

/// What Koha knew at `taken_at`, ready for lookups. Held in memory as stored, a few bytes per
/// record, with the first key of every block of 64 records: a scan is a binary search over the
/// blocks and the decoding of one block (`O(log n)`). The holder of a loan is found through a
/// sorted list of patron ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    taken_at: DateTime<Utc>,
    coverage: Coverage,
    libraries: Vec<String>,
    patrons: Table,
    items: Table,
    /// `(patron id, position by card number)`, sorted.
    by_patron_id: Vec<(PatronId, u32)>,
    /// The lists Koha refused or lacked when the snapshot was taken, and why.
    unavailable: Vec<(List, Unavailable)>,
    /// Where it came from and when: see [`PullRecord`].
    pull: PullRecord,
}

/// When and from where a snapshot's data was pulled: what decides whether the next download may
/// ask Koha only for the changes (`checks::plan_pull`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullRecord {
    /// When (by the desk's clock) the last full pull started; `None`: the snapshot was taken
    /// whole, so its own time is that of its full pull.
    pub full_at: Option<DateTime<Utc>>,
    /// Koha's own clock (its `Date` header) at the first answer of the last pull, full or
    /// incremental: the next incremental pull asks for what changed since then. `None` when
    /// Koha did not say: the next pull is a full one.
    pub koha_at: Option<DateTime<Utc>>,
    /// The server and login it was pulled with (`checks::pull_source`): a patron list depends
    /// on both, so another one means a full pull.
    pub source: Option<String>,
}

impl Snapshot {
    /// A snapshot of these records. They are sorted here; of two records with the same key the
    /// later one is kept (a record that moved between two pages while they were read).
    pub fn new(
        taken_at: DateTime<Utc>,
        coverage: Coverage,
        mut patrons: Vec<PatronRecord>,
        mut items: Vec<ItemRecord>,
    ) -> Snapshot {
        keep_last_by_key(&mut patrons, |p| &p.cardnumber);
        keep_last_by_key(&mut items, |i| &i.barcode);
        let mut libraries: Vec<String> = patrons.iter().map(|p| p.library.clone()).collect();
        libraries.sort();
        libraries.dedup();
        let patron_table = Table::encode(
            &patrons,
            |p| &p.cardnumber,
            |block, out| encode_patrons(block, &libraries, out),
        );
        let item_table = Table::encode(&items, |i| &i.barcode, encode_items);
        let ids = patrons.iter().map(|p| p.patron_id).collect();
        Snapshot::from_parts(taken_at, coverage, libraries, patron_table, item_table, ids)
    }

    /// From tables already checked; `patron_ids` in card number order.
    pub(crate) fn from_parts(
        taken_at: DateTime<Utc>,
        coverage: Coverage,
        libraries: Vec<String>,
        patrons: Table,
        items: Table,
        patron_ids: Vec<PatronId>,
    ) -> Snapshot {
        let mut by_patron_id: Vec<(PatronId, u32)> = patron_ids
            .into_iter()
            .enumerate()
            .map(|(index, id)| (id, index as u32))
            .collect();
        by_patron_id.sort_unstable();
        Snapshot {
            taken_at,
            coverage,
            libraries,
            patrons,
            items,
            by_patron_id,
            unavailable: Vec::new(),
            pull: PullRecord::default(),
        }
    }

    /// The same snapshot, with where and when it was pulled.
    pub fn with_pull(mut self, pull: PullRecord) -> Snapshot {
        self.pull = pull;
        self
    }

    /// Where and when it was pulled.
    pub fn pull(&self) -> &PullRecord {
        &self.pull
    }

    /// When its last full pull started: the time of [`PullRecord::full_at`], or the snapshot's
    /// own when it was pulled whole.
    pub fn full_at(&self) -> DateTime<Utc> {
        self.pull.full_at.unwrap_or(self.taken_at)
    }

    /// The same snapshot, noting which lists Koha refused or lacked and why (what the options
    /// page names as unavailable checks).
    pub fn with_unavailable(mut self, unavailable: Vec<(List, Unavailable)>) -> Snapshot {
        self.unavailable = unavailable;
        self
    }

    /// The lists left out, and why.
    pub fn unavailable(&self) -> &[(List, Unavailable)] {
        &self.unavailable
    }

    /// When Koha was read.
    pub fn taken_at(&self) -> DateTime<Utc> {
        self.taken_at
    }

    /// Which lists it holds.
    pub fn coverage(&self) -> Coverage {
        self.coverage
    }

    /// How many patrons it holds.
    pub fn patron_count(&self) -> usize {
        self.patrons.len()
    }

    /// How many items it holds.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// Every patron, sorted by card number (decodes them all).
    pub fn patrons(&self) -> Vec<PatronRecord> {
        self.patrons
            .all(|bytes, n, out| decode_patrons(bytes, n, &self.libraries, out))
    }

    /// Every item, sorted by barcode (decodes them all).
    pub fn items(&self) -> Vec<ItemRecord> {
        self.items.all(decode_items)
    }

    /// The patron with this card number (ASCII case aside).
    pub fn patron(&self, cardnumber: &str) -> Option<PatronRecord> {
        self.patrons
            .block_for(cardnumber, |bytes, n, out| {
                decode_patrons(bytes, n, &self.libraries, out)
            })
            .into_iter()
            .find(|p| key_order(&p.cardnumber, cardnumber).is_eq())
    }

    /// The patron with this Koha id.
    pub fn patron_by_id(&self, id: PatronId) -> Option<PatronRecord> {
        let at = self
            .by_patron_id
            .binary_search_by_key(&id, |&(id, _)| id)
            .ok()?;
        let index = self.by_patron_id[at].1 as usize;
        let block = self.patrons.block(index / BLOCK, |bytes, n, out| {
            decode_patrons(bytes, n, &self.libraries, out)
        });
        block.into_iter().nth(index % BLOCK)
    }

    /// The item with this barcode (ASCII case aside).
    pub fn item(&self, barcode: &str) -> Option<ItemRecord> {
        self.items
            .block_for(barcode, decode_items)
            .into_iter()
            .find(|i| key_order(&i.barcode, barcode).is_eq())
    }

    pub(crate) fn patron_table(&self) -> &Table {
        &self.patrons
    }

    pub(crate) fn item_table(&self) -> &Table {
        &self.items
    }

    pub(crate) fn libraries(&self) -> &[String] {
        &self.libraries
    }
}

/// The order of card numbers and barcodes: byte order with ASCII letters folded to upper case.
pub(crate) fn key_order(a: &str, b: &str) -> Ordering {
    // Sorting a million barcodes compares them some twenty million times: identical bytes are
    // skipped in one pass, and only where they differ is the case folded.
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let shared = a.len().min(b.len());
    let mut at = 0;
    while let Some(skip) = a[at..shared]
        .iter()
        .zip(&b[at..shared])
        .position(|(x, y)| x != y)
    {
        at += skip;
        let (x, y) = (a[at].to_ascii_uppercase(), b[at].to_ascii_uppercase());
        if x != y {
            return x.cmp(&y);
        }
        at += 1;
    }
    a.len().cmp(&b.len())
}

/// Sorts by key and keeps, of equal keys, the one that came last.
fn keep_last_by_key<T>(records: &mut Vec<T>, key: impl Fn(&T) -> &String) {
    // A stable sort keeps equal keys in arrival order; reversing first makes the last one lead.
    records.reverse();
    records.sort_by(|a, b| key_order(key(a), key(b)));
    records.dedup_by(|later, earlier| key_order(key(later), key(earlier)).is_eq());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(barcode: &str, lost: bool) -> ItemRecord {
        ItemRecord {
            barcode: barcode.into(),
            lost,
            withdrawn: false,
            not_for_loan: false,
            damaged: false,
            on_loan: None,
        }
    }

    #[test]
    fn the_later_of_two_records_with_one_key_wins() {
        let taken = DateTime::<Utc>::UNIX_EPOCH;
        let items = vec![item("B2", false), item("B1", false), item("B2", true)];
        let snapshot = Snapshot::new(taken, Coverage::default(), Vec::new(), items);
        assert_eq!(snapshot.items().len(), 2);
        assert_eq!(snapshot.items()[0].barcode, "B1");
        assert!(snapshot.item("B2").unwrap().lost);
        assert!(snapshot.item("B3").is_none());
    }

    #[test]
    fn keys_order_as_bytes_with_ascii_letters_folded() {
        let fold = |a: &str, b: &str| {
            a.bytes()
                .map(|c| c.to_ascii_uppercase())
                .cmp(b.bytes().map(|c| c.to_ascii_uppercase()))
        };
        let keys = [
            "", "a", "A", "b", "B1", "b10", "B2", "ab", "aB", "Ab", "a_", "A[", "39001", "3900",
            "39001x", "39001X", "é", "É",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(key_order(a, b), fold(a, b), "{a:?} against {b:?}");
            }
        }
    }

    #[test]
    fn keys_match_whatever_their_ascii_case() {
        let taken = DateTime::<Utc>::UNIX_EPOCH;
        let items = vec![item("b10", false), item("B2", false), item("B10", true)];
        let snapshot = Snapshot::new(taken, Coverage::default(), Vec::new(), items);
        let items = snapshot.items();
        let barcodes: Vec<&str> = items.iter().map(|i| &*i.barcode).collect();
        assert_eq!(barcodes, ["B10", "B2"], "one item per key, the later kept");
        assert!(snapshot.item("b10").unwrap().lost);
        assert!(snapshot.item("b2").is_some());
        assert!(
            snapshot.item("B2 ").is_none(),
            "the desk trims, not the lookup"
        );
    }
}
