//! The codec of entries stored as versioned JSON text (archive chunks, export records): read
//! as a string, parsed once, its version checked.

use super::error::StoreError;
use serde_json::Value;

/// Reads an entry stored as versioned JSON text (archive chunks, export records): `what` names
/// it in the error when the value is not text; a version other than `expected` is
/// [`StoreError::UnknownEnvelope`].
pub fn decode_text<T: serde::de::DeserializeOwned>(
    key: &str,
    value: &Value,
    what: &str,
    version_of: impl Fn(&T) -> u64,
    expected: u64,
) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    let text = value
        .as_str()
        .ok_or_else(|| corrupt(format!("{what} is not text")))?;
    let read: T = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    match version_of(&read) {
        v if v == expected => Ok(read),
        version => Err(StoreError::UnknownEnvelope {
            key: key.to_owned(),
            version,
        }),
    }
}
