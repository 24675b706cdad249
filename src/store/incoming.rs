//! What another page's write means for an open page: one entry of a `storage.onChanged` event,
//! decoded.

use super::archive::decode_chunk;
use super::error::StoreError;
use super::exports::{decode_export, ExportRecord};
use super::keys::{
    id_of_transaction_key, is_archive_key, is_export_key, is_pending_key, is_transaction_key,
    SETTINGS_KEY,
};
use super::layout::{decode_settings, decode_transaction};
use crate::settings::Settings;
use crate::transaction::{Transaction, TransactionId};
use serde_json::Value;

/// What one `storage.onChanged` entry means for an open page.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredChange {
    /// A transaction was written (by this or another page).
    Transaction(Transaction),
    /// A transaction's single key was removed: deleted, unless a pending chunk or the archive
    /// holds it (it was packed).
    Removed(TransactionId),
    /// An archive chunk was written: these transactions are in the archive now.
    Archived(Vec<Transaction>),
    /// An archive chunk was removed (a clear): these transactions are gone.
    ArchiveRemoved(Vec<TransactionId>),
    /// An archive chunk was written over an older copy without some of its transactions (a
    /// clear took them out): `kept` are in the archive, `dropped` are gone.
    ArchiveTrimmed {
        /// The chunk's transactions now.
        kept: Vec<Transaction>,
        /// Those the older copy held and this one does not.
        dropped: Vec<TransactionId>,
    },
    /// A pending chunk was written (see [`super::pending`]): it holds these transactions now.
    Pending(Vec<Transaction>),
    /// A pending chunk was removed.
    PendingRemoved,
    /// An export record was written: these transactions went into a `.koc` file.
    Exported(ExportRecord),
    /// The settings were written (`None`: deleted).
    Settings(Option<Settings>),
    /// Something this module does not interpret (meta, quarantine, removed export records,
    /// other keys).
    Other,
}

/// Whether [`decode_change`] reads the old value of `key`: only an archive chunk's (which rows a
/// trim or a clear took out). The shell may drop the others before handing a batch over.
pub fn reads_old_value(key: &str) -> bool {
    is_archive_key(key)
}

/// Interprets one key of a `storage.onChanged` event, given its `newValue` (absent when the key
/// was removed) and its `oldValue` (needed for removed archive chunks).
pub fn decode_change(
    key: &str,
    new_value: Option<&Value>,
    old_value: Option<&Value>,
) -> Result<StoredChange, StoreError> {
    match new_value {
        _ if key == SETTINGS_KEY => new_value
            .map(decode_settings)
            .transpose()
            .map(StoredChange::Settings),
        Some(value) if is_transaction_key(key) => {
            decode_transaction(key, value).map(StoredChange::Transaction)
        }
        Some(value) if is_archive_key(key) => {
            let kept = decode_chunk(key, value)?;
            let before = old_value.and_then(|old| decode_chunk(key, old).ok());
            let dropped: Vec<TransactionId> = before
                .unwrap_or_default()
                .into_iter()
                .map(|tx| tx.id)
                .filter(|id| !kept.iter().any(|tx| tx.id == *id))
                .collect();
            Ok(if dropped.is_empty() {
                StoredChange::Archived(kept)
            } else {
                StoredChange::ArchiveTrimmed { kept, dropped }
            })
        }
        Some(value) if is_pending_key(key) => decode_chunk(key, value).map(StoredChange::Pending),
        Some(value) if is_export_key(key) => decode_export(key, value).map(StoredChange::Exported),
        None => match id_of_transaction_key(key) {
            Some(id) => Ok(StoredChange::Removed(id)),
            None if is_pending_key(key) => Ok(StoredChange::PendingRemoved),
            None if is_archive_key(key) => match old_value {
                Some(old) => decode_chunk(key, old).map(|txs| {
                    StoredChange::ArchiveRemoved(txs.into_iter().map(|tx| tx.id).collect())
                }),
                None => Ok(StoredChange::Other),
            },
            None => Ok(StoredChange::Other),
        },
        Some(_) => Ok(StoredChange::Other),
    }
}
