//! Keys, envelopes and the writes for one transaction; reading `storage.onChanged` entries.

use super::change::Change;
use super::error::StoreError;
use super::keys::{
    is_mirror_key, mirror_key, transaction_key, ENVELOPE_VERSION, MIRROR_PREFIX, SETTINGS_KEY,
    TX_PREFIX,
};
use crate::settings::Settings;
use crate::transaction::{Transaction, TransactionId};
use serde::Deserialize;
use serde_json::{json, Value};

/// The transaction in its versioned envelope: `{"v": 1, "tx": {…}}`. Its size depends only on
/// this transaction.
pub fn encode_transaction(tx: &Transaction) -> Value {
    json!({ "v": ENVELOPE_VERSION, "tx": tx })
}

/// Reads a `tx:<id>` entry: checks the key, the envelope, the transaction and that the id inside
/// is the one in the key.
pub fn decode_transaction(key: &str, value: &Value) -> Result<Transaction, StoreError> {
    let id = key
        .strip_prefix(TX_PREFIX)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| StoreError::NotATransactionKey {
            key: key.to_owned(),
        })?;
    decode_envelope(key, id, value)
}

/// Reads a `koha-offline-circ:tx:<id>` entry of the mirror, with the same checks as
/// [`decode_transaction`]. `localStorage` holds text: a string value is read as the envelope's
/// JSON text ([`decode_mirror_text`]); any other value as the envelope itself.
pub fn decode_mirror(key: &str, value: &Value) -> Result<Transaction, StoreError> {
    match value {
        Value::String(text) => decode_mirror_text(key, text),
        envelope => decode_envelope(key, mirror_id(key)?, envelope),
    }
}

/// [`decode_mirror`] from the entry's text, read straight into the transaction: no JSON tree
/// in between, which was most of a start's time for the mirror with thousands unsent. Text the
/// typed read refuses is read again as a tree, so every error is the one [`decode_envelope`]
/// gives.
pub fn decode_mirror_text(key: &str, text: &str) -> Result<Transaction, StoreError> {
    #[derive(Deserialize)]
    struct Envelope {
        v: u64,
        tx: Transaction,
    }
    let id = mirror_id(key)?;
    if let Ok(Envelope {
        v: ENVELOPE_VERSION,
        tx,
    }) = serde_json::from_str(text)
    {
        if !tx.history().is_empty() && tx.id.as_str() == id {
            return Ok(tx);
        }
    }
    match serde_json::from_str::<Value>(text) {
        Ok(envelope) => decode_envelope(key, id, &envelope),
        Err(e) => Err(StoreError::Corrupt {
            key: key.to_owned(),
            reason: format!("not JSON: {e}"),
        }),
    }
}

/// What joins `localStorage`'s keys into one text, and its values into another, for
/// [`mirror_entries_joined`]: a character JSON text never holds unescaped.
pub const MIRROR_JOIN: char = '\u{1}';

/// The mirror's entries (key and text) out of `localStorage`'s `count` keys and values, each
/// joined by [`MIRROR_JOIN`]: two texts to copy out of the browser instead of two calls a key.
/// `None` when the pieces do not pair up, because some key or value holds the character: the
/// entries must then be read one by one. Keys of other shapes are left out.
pub fn mirror_entries_joined<'a>(
    keys: &'a str,
    values: &'a str,
    count: usize,
) -> Option<Vec<(&'a str, &'a str)>> {
    if count == 0 {
        return Some(Vec::new());
    }
    let keys: Vec<&str> = keys.split(MIRROR_JOIN).collect();
    let values: Vec<&str> = values.split(MIRROR_JOIN).collect();
    if keys.len() != count || values.len() != count {
        return None;
    }
    let pairs = keys.into_iter().zip(values);
    Some(pairs.filter(|(key, _)| is_mirror_key(key)).collect())
}

fn mirror_id(key: &str) -> Result<&str, StoreError> {
    key.strip_prefix(MIRROR_PREFIX)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| StoreError::NotATransactionKey {
            key: key.to_owned(),
        })
}

fn decode_envelope(key: &str, id: &str, value: &Value) -> Result<Transaction, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    let Some(object) = value.as_object() else {
        return Err(corrupt("not an object".to_owned()));
    };
    let version = match object.get("v") {
        None if object.contains_key("id") => {
            return Err(StoreError::NotEnveloped {
                key: key.to_owned(),
            })
        }
        None => return Err(corrupt("no envelope version".to_owned())),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| corrupt("envelope version is not a number".to_owned()))?,
    };
    if version != ENVELOPE_VERSION {
        return Err(StoreError::UnknownEnvelope {
            key: key.to_owned(),
            version,
        });
    }
    let inner = object
        .get("tx")
        .ok_or_else(|| corrupt("envelope without a transaction".to_owned()))?;
    let tx = check_transaction(key, inner)?;
    if tx.id.as_str() != id {
        return Err(StoreError::KeyMismatch {
            key: key.to_owned(),
            id: tx.id.to_string(),
        });
    }
    Ok(tx)
}

/// Deserialises a bare transaction and checks what serde cannot: a non-empty history.
pub(super) fn check_transaction(key: &str, value: &Value) -> Result<Transaction, StoreError> {
    let tx = Transaction::deserialize(value).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    if tx.history().is_empty() {
        return Err(StoreError::Corrupt {
            key: key.to_owned(),
            reason: "empty status history".to_owned(),
        });
    }
    Ok(tx)
}

/// The settings JSON for the `settings` key (no password unless remembered).
pub fn encode_settings(settings: &Settings) -> Value {
    settings.to_storage()
}

/// Reads the `settings` entry, validating it like a typed form.
pub fn decode_settings(value: &Value) -> Result<Settings, StoreError> {
    Settings::deserialize(value).map_err(|e| StoreError::Corrupt {
        key: SETTINGS_KEY.to_owned(),
        reason: e.to_string(),
    })
}

/// Bytes one entry takes as JSON text (key plus value), the measure used for quotas and for the
/// "bytes per transaction" benchmark.
pub fn entry_bytes(key: &str, value: &Value) -> usize {
    key.len() + value.to_string().len()
}

/// What to write for one new or changed transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct WritePlan {
    /// For the mirror, applied synchronously first: a put while Koha has not accepted the
    /// transaction, a removal once it has.
    pub mirror: Change,
    /// For `browser.storage.local`: always a put of `tx:<id>`. The desk says "recorded" only
    /// once this write has resolved; if it fails, the transaction stays in memory and in the
    /// mirror and the write is retried.
    pub primary: Change,
}

/// The writes for one new or changed transaction. Their size depends only on this transaction.
pub fn write_plan(tx: &Transaction) -> WritePlan {
    WritePlan {
        mirror: mirror_change(tx),
        primary: Change::Put {
            key: transaction_key(&tx.id),
            value: encode_transaction(tx),
        },
    }
}

/// The mirror write after a change: the envelope while Koha has not accepted it; a removal once
/// it is queued or applied in Koha.
pub fn mirror_change(tx: &Transaction) -> Change {
    let key = mirror_key(&tx.id);
    if tx.status().is_accepted() {
        Change::Remove { key }
    } else {
        Change::Put {
            key,
            value: encode_transaction(tx),
        }
    }
}

/// The writes that delete a transaction (clear sent, clear all): `(primary, mirror)`.
pub fn remove_plan(id: &TransactionId) -> (Change, Change) {
    (
        Change::Remove {
            key: transaction_key(id),
        },
        Change::Remove {
            key: mirror_key(id),
        },
    )
}
