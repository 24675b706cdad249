//! Generated patrons, items and loans after the fixture's, for the offline checks' scale
//! benchmark (issue 12: 200,000 patrons, 1,000,000 items). Nothing is kept per record: each one
//! is computed from its index when a REST page asks for it, so a million items cost no memory
//! and a page of a thousand costs what a page of the fixture does.
//!
//! The records look like a library's: 14-digit card numbers and barcodes rising with small
//! irregular gaps, expiry dates spread over five years (some past), a few patrons restricted,
//! with a lost card, an address in doubt or a balance, a few items lost, withdrawn, not for loan
//! or damaged, and every `items / checkouts`-th item on loan to some patron. Only the REST lists
//! know them: `service.pl` still sees the fixture alone.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How many generated records follow the fixture's in the REST lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", default)]
pub struct Synthetic {
    /// Patrons.
    pub patrons: u32,
    /// Items.
    pub items: u32,
    /// Current loans of generated items to generated patrons (at most one per item).
    pub checkouts: u32,
}

/// A well-mixed 64-bit hash of `n` (SplitMix64's finaliser): the same record every time.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Different streams of [`mix`] for different properties of the same record.
fn draw(index: u32, stream: u64) -> u64 {
    mix(u64::from(index) ^ (stream << 40))
}

/// Whether a draw falls within `per_mille` of a thousand.
fn chance(index: u32, stream: u64, per_mille: u64) -> bool {
    draw(index, stream) % 1000 < per_mille
}

/// Day 0 of the generated expiry dates and the span they cover (2024-01-01 plus five years).
const EXPIRY_FROM: (i32, u32, u32) = (2024, 1, 1);
const EXPIRY_DAYS: u64 = 5 * 365;

impl Synthetic {
    /// Whether there is anything to generate.
    pub fn is_empty(&self) -> bool {
        self.patrons == 0 && self.items == 0
    }

    /// The card number of generated patron `j` (from 0): rising, gaps of 1 to 4.
    pub fn cardnumber(j: u32) -> String {
        let n = 21_000_000_000_000u64 + u64::from(j) * 4 + draw(j, 1) % 4;
        n.to_string()
    }

    /// The barcode of generated item `j` (from 0): rising, gaps of 1 to 8.
    pub fn barcode(j: u32) -> String {
        let n = 39_000_000_000_000u64 + u64::from(j) * 8 + draw(j, 2) % 8;
        n.to_string()
    }

    /// Generated patron `j`'s home library, one of `libraries`.
    pub fn patron_library(j: u32, libraries: &[String]) -> &str {
        let pick = draw(j, 3) as usize % libraries.len().max(1);
        libraries.get(pick).map_or("", String::as_str)
    }

    /// Generated patron `j` as `/api/v1/patrons` gives it, with Koha's `patron_id`; the balance
    /// only when embedded.
    pub fn patron(j: u32, patron_id: usize, libraries: &[String], embed: bool) -> Value {
        let (y, m, d) = EXPIRY_FROM;
        let expiry = chrono::NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|from| from.checked_add_days(chrono::Days::new(draw(j, 4) % EXPIRY_DAYS)))
            .map(|day| day.format("%Y-%m-%d").to_string());
        let userid = format!("gen{j}");
        let mut patron = json!({
            "patron_id": patron_id,
            "cardnumber": Self::cardnumber(j),
            "userid": userid,
            // Koha sends names and addresses too; the add-on must not keep them.
            "surname": format!("Surname of {userid}"),
            "firstname": "Firstname",
            "address": "1 Library Street",
            "email": format!("{userid}@example.org"),
            "expiry_date": expiry,
            "restricted": chance(j, 5, 10),
            "patron_card_lost": chance(j, 6, 5),
            "incorrect_address": chance(j, 7, 10),
            "library_id": Self::patron_library(j, libraries),
            "updated_on": "2026-01-01T00:00:00+00:00",
        });
        if embed {
            let owes = chance(j, 8, 150);
            let cents = if owes { draw(j, 9) % 5_000 + 10 } else { 0 };
            patron["account_balance"] = json!(cents as f64 / 100.0);
        }
        patron
    }

    /// Every how many generated items one is on loan (0: none).
    fn loan_stride(&self) -> u32 {
        match (self.checkouts, self.patrons) {
            (0, _) | (_, 0) => 0,
            (c, _) => (self.items / c).max(1),
        }
    }

    /// The loan of generated item `j`, as its number among the generated loans, if it has one.
    pub fn loan_of_item(&self, j: u32) -> Option<u32> {
        let stride = self.loan_stride();
        (stride > 0 && j.is_multiple_of(stride))
            .then(|| j / stride)
            .filter(|&n| n < self.loans())
    }

    /// How many generated loans there are.
    pub fn loans(&self) -> u32 {
        match self.loan_stride() {
            0 => 0,
            stride => self.checkouts.min(self.items.div_ceil(stride)),
        }
    }

    /// Generated loan `n`: (generated item, generated patron).
    pub fn loan(&self, n: u32) -> (u32, u32) {
        let patron = (draw(n, 10) % u64::from(self.patrons.max(1))) as u32;
        (n * self.loan_stride(), patron)
    }

    /// Generated item `j` as `/api/v1/items` gives it, with Koha's `item_id`, in the field names
    /// of the newest Koha (`newest`) or of the older ones.
    pub fn item(&self, j: u32, item_id: usize, newest: bool) -> Value {
        let not_for_loan = u8::from(chance(j, 13, 20));
        let mut item = json!({
            "item_id": item_id,
            "biblio_id": item_id,
            "external_id": Self::barcode(j),
            "lost_status": u8::from(chance(j, 11, 10)),
            "withdrawn": u8::from(chance(j, 12, 10)),
            "not_for_loan_status": not_for_loan,
            "damaged_status": u8::from(chance(j, 14, 5)),
            "restricted_status": null,
            "checked_out_date": self.loan_of_item(j).map(|_| "2026-01-19"),
            "timestamp": "2026-01-01T00:00:00+00:00",
        });
        if newest {
            item["item_type_id"] = json!("BK");
            item["effective_not_for_loan_status"] = json!(not_for_loan);
        } else {
            item["item_type"] = json!("BK");
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_rise_and_keep_their_width() {
        let cards: Vec<String> = (0..1000).map(Synthetic::cardnumber).collect();
        let items: Vec<String> = (0..1000).map(Synthetic::barcode).collect();
        for keys in [cards, items] {
            assert!(keys.windows(2).all(|w| w[0] < w[1]));
            assert!(keys.iter().all(|k| k.len() == 14));
        }
    }

    #[test]
    fn loans_spread_over_the_items_as_asked() {
        let s = Synthetic {
            patrons: 50,
            items: 1000,
            checkouts: 100,
        };
        assert_eq!(s.loans(), 100);
        let on_loan: Vec<u32> = (0..1000).filter_map(|j| s.loan_of_item(j)).collect();
        assert_eq!(on_loan, (0..100).collect::<Vec<_>>());
        for n in 0..100 {
            let (item, patron) = s.loan(n);
            assert_eq!(s.loan_of_item(item), Some(n));
            assert!(patron < 50);
        }
        let none = Synthetic { checkouts: 0, ..s };
        assert_eq!(none.loans(), 0);
        assert_eq!(none.loan_of_item(0), None);
    }
}
