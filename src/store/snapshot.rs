//! Reading `browser.storage.local` without failing on a bad entry: bad ones are kept aside.

use super::archive::{decode_chunk, encode_chunk, ChunkSummary};
use super::change::Change;
use super::chunk_text::read_summary;
use super::deferral::PendingRead;
use super::error::StoreError;
use super::exports::{decode_export, ExportRecord};
use super::keys::{
    is_archive_key, is_export_key, is_pending_key, is_quarantine_key, CURRENT_SCHEMA, META_KEY,
    QUARANTINE_PREFIX, SETTINGS_KEY, TX_PREFIX,
};
use super::layout::{decode_settings, decode_transaction, encode_settings};
use crate::settings::Settings;
use crate::transaction::{Transaction, TransactionId};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// An entry that could not be read, and where it was kept aside.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The key it was stored under.
    pub key: String,
    /// Why it could not be read.
    pub error: StoreError,
    /// Where it is kept now (see [`Snapshot::changes`]); `None` when nothing was moved.
    pub quarantine_key: Option<String>,
}

/// What `browser.storage.local` holds, read without failing on a bad entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The stored schema (`None`: no `meta`, a fresh install or pre-release data).
    pub schema: Option<u32>,
    /// Every readable transaction, single keys, pending chunks and archive, sorted by id. An id stored twice
    /// (a crash between packing and removing) appears twice; reconciling merges them.
    pub transactions: Vec<Transaction>,
    /// Ids of the transactions stored one key each (`tx:<id>`).
    pub loose: Vec<TransactionId>,
    /// Ids of the transactions in the archive.
    pub archived: Vec<TransactionId>,
    /// The pending chunks read: each key with the ids it holds.
    pub pending: Vec<(String, Vec<TransactionId>)>,
    /// Ids whose single key adds nothing to an archive chunk's copy (the same history or a
    /// stale one, by [`Transaction::supersedes`], with an export mark no later): left over from a
    /// packing cut short between storing the chunk and removing the single keys, or a stale copy
    /// written back by another page.
    pub redundant: Vec<TransactionId>,
    /// Ids whose single key adds nothing, by the same rule, to a pending chunk's copy: left over
    /// from a packing of unsent transactions cut short. Only a start holding the send lock may
    /// remove them (until then another page may write a newer copy there).
    pub redundant_pending: Vec<TransactionId>,
    /// The export records read, with their keys.
    pub exports: Vec<(String, ExportRecord)>,
    /// The settings, if stored and valid.
    pub settings: Option<Settings>,
    /// Entries that could not be read.
    pub problems: Vec<Problem>,
    /// Keys of entries kept aside at an earlier start.
    pub quarantined: Vec<String>,
    /// Writes that keep bad entries aside (a put under `quarantine:…`, then the removal of the
    /// original) and rewrite settings that were stored with a password not meant to be kept.
    pub changes: Vec<Change>,
    /// Rewrites of archive chunks stored without a summary (by builds before it), under the
    /// same key with the same transactions: only while no other page may change a chunk.
    pub summaries_added: Vec<Change>,
}

/// Reads every entry of `browser.storage.local`. A bad transaction, chunk, export record
/// or settings entry is reported in [`Snapshot::problems`] and moved under a `quarantine:` key,
/// never dropped. A bad `meta` is reported too (the schema then reads as unknown). Keys of other
/// shapes are ignored.
pub fn load_snapshot(entries: impl IntoIterator<Item = (String, Value)>) -> Snapshot {
    load_snapshot_read(entries, PendingRead::default())
}

/// [`load_snapshot`], taking the pending chunks in `pending_read` as read already.
pub(super) fn load_snapshot_read(
    entries: impl IntoIterator<Item = (String, Value)>,
    mut pending_read: PendingRead,
) -> Snapshot {
    let entries: Vec<(String, Value)> = entries.into_iter().collect();
    let mut taken: BTreeSet<String> = entries
        .iter()
        .filter(|(k, _)| is_quarantine_key(k))
        .map(|(k, _)| k.clone())
        .collect();
    let mut snapshot = Snapshot {
        schema: None,
        transactions: Vec::new(),
        loose: Vec::new(),
        archived: Vec::new(),
        pending: Vec::new(),
        redundant: Vec::new(),
        redundant_pending: Vec::new(),
        exports: Vec::new(),
        settings: None,
        problems: Vec::new(),
        quarantined: taken.iter().cloned().collect(),
        changes: Vec::new(),
        summaries_added: Vec::new(),
    };
    // Ids stored one key each, to notice a chunk repeating one of them (a packing cut short).
    let single_ids: FxHashSet<&str> = entries
        .iter()
        .filter_map(|(k, _)| k.strip_prefix(TX_PREFIX))
        .collect();
    let mut singles: Vec<Transaction> = Vec::new();
    let mut chunk_copies: FxHashMap<TransactionId, Transaction> = FxHashMap::default();
    let mut pending_copies: FxHashMap<TransactionId, Transaction> = FxHashMap::default();
    for (key, value) in &entries {
        let outcome = if key == META_KEY {
            match read_schema(value) {
                Ok(schema) => {
                    snapshot.schema = Some(schema);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else if key == SETTINGS_KEY {
            match decode_settings(value) {
                Ok(settings) => {
                    let clean = encode_settings(&settings);
                    if &clean != value {
                        snapshot.changes.push(Change::Put {
                            key: SETTINGS_KEY.to_owned(),
                            value: clean,
                        });
                    }
                    snapshot.settings = Some(settings);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else if key.starts_with(TX_PREFIX) {
            match decode_transaction(key, value) {
                Ok(tx) => {
                    snapshot.loose.push(tx.id.clone());
                    singles.push(tx);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else if is_archive_key(key) {
            match decode_chunk(key, value) {
                Ok(txs) => {
                    let summarized = value.as_str().and_then(read_summary).is_some();
                    if !summarized && ChunkSummary::of(&txs).is_some() {
                        snapshot.summaries_added.push(Change::Put {
                            key: key.clone(),
                            value: Value::String(encode_chunk(&txs)),
                        });
                    }
                    snapshot.archived.extend(txs.iter().map(|tx| tx.id.clone()));
                    for tx in txs.iter().filter(|tx| single_ids.contains(tx.id.as_str())) {
                        chunk_copies.insert(tx.id.clone(), tx.clone());
                    }
                    snapshot.transactions.extend(txs);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else if is_pending_key(key) {
            let read = pending_read.remove(key);
            match read.unwrap_or_else(|| decode_chunk(key, value)) {
                Ok(txs) => {
                    let ids = txs.iter().map(|tx| tx.id.clone()).collect();
                    snapshot.pending.push((key.clone(), ids));
                    for tx in txs.iter().filter(|tx| single_ids.contains(tx.id.as_str())) {
                        pending_copies.insert(tx.id.clone(), tx.clone());
                    }
                    snapshot.transactions.extend(txs);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else if is_export_key(key) {
            match decode_export(key, value) {
                Ok(record) => {
                    snapshot.exports.push((key.clone(), record));
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        if let Err(error) = outcome {
            let (quarantine_key, changes) = quarantine(key, value, &error, &mut taken);
            snapshot.changes.extend(changes);
            snapshot.problems.push(Problem {
                key: key.clone(),
                error,
                quarantine_key: Some(quarantine_key),
            });
        }
    }
    // A single key is spare when merging it into a chunk's copy gives that copy back (the same
    // life or a stale one, with an export mark no later): removing it loses nothing.
    let adds_nothing_to = |copies: &FxHashMap<TransactionId, Transaction>| {
        singles
            .iter()
            .filter(|single| {
                copies.get(&single.id).is_some_and(|copy| {
                    !single.supersedes(copy) && copy.exported_at >= single.exported_at
                })
            })
            .map(|single| single.id.clone())
            .collect::<Vec<_>>()
    };
    snapshot.redundant = adds_nothing_to(&chunk_copies);
    snapshot.redundant_pending = adds_nothing_to(&pending_copies);
    snapshot.transactions.extend(singles);
    snapshot.transactions.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot
}

/// Moves a bad entry under a free `quarantine:<key>` name (with `#2`, `#3`… when taken): the put
/// first, then the removal, so a crash in between keeps both.
pub(super) fn quarantine(
    key: &str,
    value: &Value,
    error: &StoreError,
    taken: &mut BTreeSet<String>,
) -> (String, Vec<Change>) {
    let base = format!("{QUARANTINE_PREFIX}{key}");
    let mut name = base.clone();
    let mut n = 1;
    while taken.contains(&name) {
        n += 1;
        name = format!("{base}#{n}");
    }
    taken.insert(name.clone());
    let kept = json!({
        "key": key,
        "value": value,
        "error": error.kind(),
        "message": error.to_string(),
    });
    let changes = vec![
        Change::Put {
            key: name.clone(),
            value: kept,
        },
        Change::Remove {
            key: key.to_owned(),
        },
    ];
    (name, changes)
}

fn read_schema(value: &Value) -> Result<u32, StoreError> {
    value
        .get("schema")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(StoreError::BadMeta)
}

/// The schema recorded in `meta`: `Ok(None)` when there is no `meta`.
pub fn schema_of(entries: &[(String, Value)]) -> Result<Option<u32>, StoreError> {
    entries
        .iter()
        .find(|(k, _)| k == META_KEY)
        .map(|(_, v)| read_schema(v))
        .transpose()
}

/// The `meta` value for [`CURRENT_SCHEMA`].
pub fn meta_value() -> Value {
    json!({ "schema": CURRENT_SCHEMA })
}
