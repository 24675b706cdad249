//! One write to a key-value store: what the core plans and the shell applies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One write to a key-value store, applied by the shell in the order given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Change {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The JSON value.
        value: Value,
    },
    /// Delete `key`.
    Remove {
        /// The key.
        key: String,
    },
}

impl Change {
    /// The key written or removed.
    pub fn key(&self) -> &str {
        match self {
            Change::Put { key, .. } | Change::Remove { key } => key,
        }
    }
}
