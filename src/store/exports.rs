//! Export records: which transactions went into a `.koc` file, and when, in one entry per export.
//!
//! Marking 50,000 transactions exported one key each rewrote 50,000 entries (about 19 s in
//! Firefox). One record per export is a single write whatever the count. Reading applies each
//! record to its transactions' `exported_at` (the later mark wins, as everywhere), and a record
//! none of whose transactions is left is removed.

use super::change::Change;
use super::error::StoreError;
use super::keys::{EXPORT_PREFIX, EXPORT_VERSION};
use super::text::decode_text;
use crate::transaction::{Transaction, TransactionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One export: the transactions written to `.koc` files at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// Format version ([`EXPORT_VERSION`]).
    pub v: u64,
    /// When the files were written.
    #[serde(deserialize_with = "crate::transaction::instant")]
    pub at: DateTime<Utc>,
    /// The transactions in them.
    pub ids: Vec<TransactionId>,
}

impl ExportRecord {
    /// A record of an export now.
    pub fn new(at: DateTime<Utc>, ids: Vec<TransactionId>) -> Self {
        ExportRecord {
            v: EXPORT_VERSION,
            at,
            ids,
        }
    }

    /// `exported:<milliseconds, hex>.<first id>`: exports at the same millisecond of different
    /// transactions get different keys, and writing the same record twice is harmless.
    pub fn key(&self) -> String {
        let millis = self.at.timestamp_millis().max(0);
        let first = self.ids.first().map_or("", TransactionId::as_str);
        format!("{EXPORT_PREFIX}{millis:013x}.{first}")
    }

    /// The write that stores it.
    pub fn change(&self) -> Change {
        Change::Put {
            key: self.key(),
            value: self.value(),
        }
    }

    /// Its stored value, as JSON text.
    pub fn value(&self) -> Value {
        // Plain data; serialising cannot fail.
        Value::String(serde_json::to_string(self).unwrap_or_default())
    }
}

/// Reads an export record.
pub fn decode_export(key: &str, value: &Value) -> Result<ExportRecord, StoreError> {
    decode_text(
        key,
        value,
        "export record",
        |r: &ExportRecord| r.v,
        EXPORT_VERSION,
    )
}

/// Applies export records to transactions sorted by id (the later mark wins). Returns the
/// removals of records none of whose transactions is present any more.
pub fn apply_exports(
    transactions: &mut [Transaction],
    records: &[(String, ExportRecord)],
) -> Vec<Change> {
    let mut removals = Vec::new();
    for (key, record) in records {
        let mut marked_any = false;
        for id in &record.ids {
            if let Ok(i) = transactions.binary_search_by(|tx| tx.id.cmp(id)) {
                marked_any = true;
                let tx = &mut transactions[i];
                if tx.exported_at.is_none_or(|earlier| earlier < record.at) {
                    tx.mark_exported(record.at);
                }
            }
        }
        if !marked_any {
            removals.push(Change::Remove { key: key.clone() });
        }
    }
    removals
}
