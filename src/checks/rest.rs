//! Reading one page of Koha's REST lists (`/api/v1/patrons`, `/api/v1/items`,
//! `/api/v1/checkouts`) into the few fields the checks keep (docs/koha.md 12).
//!
//! Koha sends whole objects; everything not named here (names, addresses, e-mails, notes) is
//! skipped by the decoder without being kept. Field names and value types that changed between
//! Koha versions are read in each form.

use super::model::{Holder, ItemRecord, PatronId, PatronRecord, Restriction};
use crate::kinds::kinds;
use chrono::NaiveDate;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use thiserror::Error;

/// Why a page could not be read. Each variant has a stable [`PageError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PageError {
    /// Not JSON at all (an HTML error page, a cut-off answer).
    #[error("the page is not JSON: {reason}")]
    MalformedJson {
        /// What the JSON decoder said.
        reason: String,
    },
    /// JSON, but not a list of objects with the expected types.
    #[error("the page is not a list of {what}: {reason}")]
    Unexpected {
        /// `patrons`, `items` or `checkouts`.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A record lacks a field the checks need.
    #[error("{what} record {index} has no {field}")]
    MissingField {
        /// `patrons`, `items` or `checkouts`.
        what: &'static str,
        /// The record's position on the page, from 0.
        index: usize,
        /// The field's REST name.
        field: &'static str,
    },
    /// A field has a value the checks cannot read (a date that is not a date).
    #[error("{what} record {index}: {field} is not readable: {value}")]
    BadValue {
        /// `patrons`, `items` or `checkouts`.
        what: &'static str,
        /// The record's position on the page, from 0.
        index: usize,
        /// The field's REST name.
        field: &'static str,
        /// The value as sent.
        value: String,
    },
}

kinds!(PageError {
    MalformedJson => "malformed-json",
    Unexpected => "unexpected",
    MissingField => "missing-field",
    BadValue => "bad-value",
});

/// One patron as read from a page: a record for the snapshot, or none when Koha has no card
/// number for the patron (nothing can be scanned for them, though their loans still count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatronRow {
    /// Koha's `patron_id`.
    pub patron_id: PatronId,
    /// The record, when the patron has a card number.
    pub record: Option<PatronRecord>,
}

/// One item as read from a page, with Koha's `item_id` (what checkouts name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRow {
    /// Koha's `itemnumber`.
    pub item_id: u64,
    /// The record, when the item has a barcode.
    pub record: Option<ItemRecord>,
}

/// One current checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutRow {
    /// The item on loan.
    pub item_id: u64,
    /// The patron who has it.
    pub patron_id: PatronId,
}

#[derive(Deserialize)]
struct RawPatron {
    patron_id: Option<PatronId>,
    cardnumber: Option<String>,
    expiry_date: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    restricted: bool,
    #[serde(default, deserialize_with = "flag")]
    patron_card_lost: bool,
    #[serde(default, deserialize_with = "flag")]
    incorrect_address: bool,
    #[serde(default, deserialize_with = "amount")]
    account_balance: Option<f64>,
    library_id: Option<String>,
}

#[derive(Deserialize)]
struct RawItem {
    item_id: Option<u64>,
    external_id: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    lost_status: bool,
    #[serde(default, deserialize_with = "flag")]
    withdrawn: bool,
    #[serde(default, deserialize_with = "flag")]
    not_for_loan_status: bool,
    #[serde(default, deserialize_with = "optional_flag")]
    effective_not_for_loan_status: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    damaged_status: bool,
    checked_out_date: Option<String>,
}

#[derive(Deserialize)]
struct RawCheckout {
    item_id: Option<u64>,
    patron_id: Option<PatronId>,
}

/// Reads one page of `GET /api/v1/patrons` sent with `x-koha-embed: account_balance`. A missing
/// balance (a Koha without that embed) counts as none.
pub fn parse_patrons(page: &str) -> Result<Vec<PatronRow>, PageError> {
    const WHAT: &str = "patrons";
    let raw: Vec<RawPatron> = parse_list(page, WHAT)?;
    raw.into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let patron_id = raw.patron_id.ok_or(PageError::MissingField {
                what: WHAT,
                index,
                field: "patron_id",
            })?;
            let Some(cardnumber) = raw.cardnumber.filter(|c| !c.trim().is_empty()) else {
                return Ok(PatronRow {
                    patron_id,
                    record: None,
                });
            };
            let expiry = raw
                .expiry_date
                .map(|text| day(&text).ok_or_else(|| bad(WHAT, index, "expiry_date", &text)))
                .transpose()?;
            let library = raw.library_id.ok_or(PageError::MissingField {
                what: WHAT,
                index,
                field: "library_id",
            })?;
            Ok(PatronRow {
                patron_id,
                record: Some(PatronRecord {
                    cardnumber: cardnumber.trim().to_owned(),
                    patron_id,
                    expiry,
                    restriction: if raw.restricted {
                        Restriction::Indefinite
                    } else {
                        Restriction::Unrestricted
                    },
                    card_lost: raw.patron_card_lost,
                    address_in_doubt: raw.incorrect_address,
                    balance_cents: raw.account_balance.map_or(0, cents),
                    library,
                }),
            })
        })
        .collect()
}

/// Reads one page of `GET /api/v1/items`. Whether an item is on loan comes from its
/// `checked_out_date` here; [`join_loans`] adds who has it from the checkouts.
pub fn parse_items(page: &str) -> Result<Vec<ItemRow>, PageError> {
    const WHAT: &str = "items";
    let raw: Vec<RawItem> = parse_list(page, WHAT)?;
    raw.into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let item_id = raw.item_id.ok_or(PageError::MissingField {
                what: WHAT,
                index,
                field: "item_id",
            })?;
            let record = raw
                .external_id
                .filter(|b| !b.trim().is_empty())
                .map(|barcode| ItemRecord {
                    barcode: barcode.trim().to_owned(),
                    lost: raw.lost_status,
                    withdrawn: raw.withdrawn,
                    // The effective status adds the item type's "not for loan"; older Koha
                    // has only the item's own.
                    not_for_loan: raw
                        .effective_not_for_loan_status
                        .unwrap_or(raw.not_for_loan_status),
                    damaged: raw.damaged_status,
                    on_loan: raw.checked_out_date.map(|_| Holder::Unknown),
                });
            Ok(ItemRow { item_id, record })
        })
        .collect()
}

/// Reads one page of `GET /api/v1/checkouts` (current loans).
pub fn parse_checkouts(page: &str) -> Result<Vec<CheckoutRow>, PageError> {
    const WHAT: &str = "checkouts";
    let raw: Vec<RawCheckout> = parse_list(page, WHAT)?;
    raw.into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let missing = |field| PageError::MissingField {
                what: WHAT,
                index,
                field,
            };
            Ok(CheckoutRow {
                item_id: raw.item_id.ok_or_else(|| missing("item_id"))?,
                patron_id: raw.patron_id.ok_or_else(|| missing("patron_id"))?,
            })
        })
        .collect()
}

/// Sets who has each item on loan from the checkouts. An item with a checkout is on loan even
/// if its own record did not say so yet (the two lists are read at different moments).
pub fn join_loans(items: Vec<ItemRow>, checkouts: &[CheckoutRow]) -> Vec<ItemRecord> {
    let holders: FxHashMap<u64, PatronId> =
        checkouts.iter().map(|c| (c.item_id, c.patron_id)).collect();
    items
        .into_iter()
        .filter_map(|row| {
            let mut record = row.record?;
            if let Some(&patron) = holders.get(&row.item_id) {
                record.on_loan = Some(Holder::Patron(patron));
            }
            Some(record)
        })
        .collect()
}

fn parse_list<T: serde::de::DeserializeOwned>(
    page: &str,
    what: &'static str,
) -> Result<Vec<T>, PageError> {
    serde_json::from_str(page).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => PageError::Unexpected {
            what,
            reason: e.to_string(),
        },
        _ => PageError::MalformedJson {
            reason: e.to_string(),
        },
    })
}

fn bad(what: &'static str, index: usize, field: &'static str, value: &str) -> PageError {
    PageError::BadValue {
        what,
        index,
        field,
        value: value.to_owned(),
    }
}

/// A date (`2027-05-31`), or the date part of a date and time.
fn day(text: &str) -> Option<NaiveDate> {
    let date = text.get(..10)?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

fn cents(amount: f64) -> i64 {
    // Koha keeps amounts with at most six decimals; a saturating cast is enough at any size.
    (amount * 100.0).round() as i64
}

/// A yes/no that Koha sends as a boolean, as a number (0 is no; a status code such as a lost
/// status of 2 is yes), as such a number in a string, or as null (no).
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    optional_flag(d).map(|flag| flag.unwrap_or(false))
}

fn optional_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::Number(n) => Ok(Some(n.as_f64().is_some_and(|v| v != 0.0))),
        Value::String(s) => match s.trim() {
            "" => Ok(Some(false)),
            text => text
                .parse::<f64>()
                .map(|v| Some(v != 0.0))
                .map_err(|_| D::Error::custom(format!("{s:?} is not a status"))),
        },
        other => Err(D::Error::custom(format!("{other} is not a status"))),
    }
}

/// An amount Koha sends as a number, or as decimal text.
fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("{s:?} is not an amount"))),
        other => Err(D::Error::custom(format!("{other} is not an amount"))),
    }
}
