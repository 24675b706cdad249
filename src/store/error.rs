//! Why stored data could not be read or written.

use thiserror::Error;

/// Why stored data could not be read or written. Each variant has a stable [`StoreError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// A newer add-on wrote this storage; this build must not touch it.
    #[error("storage has schema {found}, newer than the {supported} this version reads; update the add-on")]
    FutureSchema {
        /// The stored schema.
        found: u32,
        /// [`CURRENT_SCHEMA`](super::keys::CURRENT_SCHEMA).
        supported: u32,
    },
    /// The `meta` entry is not `{"schema": <number>}`.
    #[error("the meta entry is not a schema version")]
    BadMeta,
    /// The key is not `tx:<id>` (or `koha-offline-circ:tx:<id>` in the mirror).
    #[error("{key}: not a transaction key")]
    NotATransactionKey {
        /// The key.
        key: String,
    },
    /// A transaction without its envelope (pre-release data that was not migrated).
    #[error("{key}: transaction without an envelope")]
    NotEnveloped {
        /// The key.
        key: String,
    },
    /// An envelope version this build does not know.
    #[error("{key}: envelope version {version} is not readable by this version")]
    UnknownEnvelope {
        /// The key.
        key: String,
        /// The stored version.
        version: u64,
    },
    /// Not readable as a transaction (or as settings).
    #[error("{key}: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong, from the JSON decoder or the checks.
        reason: String,
    },
    /// The value is a transaction with another id than its key says.
    #[error("{key}: holds transaction {id}")]
    KeyMismatch {
        /// The key.
        key: String,
        /// The id inside.
        id: String,
    },
    /// The store refused a write (quota exceeded, a broken database).
    #[error("storage write failed: {reason}")]
    WriteFailed {
        /// What the store said.
        reason: String,
    },
}

impl StoreError {
    /// A stable, machine-readable name: `future-schema`, `bad-meta`, `not-a-transaction-key`,
    /// `not-enveloped`, `unknown-envelope`, `corrupt`, `key-mismatch`, `write-failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::FutureSchema { .. } => "future-schema",
            StoreError::BadMeta => "bad-meta",
            StoreError::NotATransactionKey { .. } => "not-a-transaction-key",
            StoreError::NotEnveloped { .. } => "not-enveloped",
            StoreError::UnknownEnvelope { .. } => "unknown-envelope",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::KeyMismatch { .. } => "key-mismatch",
            StoreError::WriteFailed { .. } => "write-failed",
        }
    }
}
