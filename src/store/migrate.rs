//! Schema versions and the migrations between them.

use super::change::Change;
use super::error::StoreError;
use super::keys::{is_transaction_key, transaction_key, CURRENT_SCHEMA, META_KEY, SETTINGS_KEY};
use super::layout::{check_transaction, encode_transaction};
use super::snapshot::meta_value;
use serde_json::Value;
use std::collections::BTreeMap;

/// One step: reads the entries at schema N and returns the writes that bring them to N + 1.
type Migration = fn(&BTreeMap<String, Value>) -> Vec<Change>;

/// `MIGRATIONS[n]` takes schema `n` to `n + 1`. Schema 0 is pre-release data without `meta`.
const MIGRATIONS: [Migration; CURRENT_SCHEMA as usize] =
    [migrate_0_to_1, migrate_1_to_2, migrate_2_to_3];

/// 0 → 1: pre-release builds stored a bare transaction under `tx:<id>`; wrap it in the
/// envelope. Values that do not read as a transaction are left for [`load_snapshot`](super::load_snapshot) to
/// quarantine.
fn migrate_0_to_1(entries: &BTreeMap<String, Value>) -> Vec<Change> {
    entries
        .iter()
        .filter(|(key, value)| {
            is_transaction_key(key) && value.get("v").is_none() && value.get("id").is_some()
        })
        .filter_map(|(key, value)| {
            let tx = check_transaction(key, value).ok()?;
            (transaction_key(&tx.id) == *key).then(|| Change::Put {
                key: key.clone(),
                value: encode_transaction(&tx),
            })
        })
        .collect()
}

/// 1 → 2: schema 2 adds archive chunks and export records. Schema 1 data needs no change; the
/// new number is what matters: a schema-1 build would not see archived transactions, so it must
/// refuse this storage (as [`StoreError::FutureSchema`]) instead of showing a desk without them.
fn migrate_1_to_2(_entries: &BTreeMap<String, Value>) -> Vec<Change> {
    Vec::new()
}

/// 2 → 3: schema 3 adds pending chunks (transactions Koha has not accepted, packed). Schema 2
/// data needs no change; a schema-2 build would neither see nor send what is in them, so it must
/// refuse this storage.
fn migrate_2_to_3(_entries: &BTreeMap<String, Value>) -> Vec<Change> {
    Vec::new()
}

/// The writes that bring storage from schema `from` to [`CURRENT_SCHEMA`], ending with the new
/// `meta`. Apply them in order: each migration is idempotent, so a start interrupted half way
/// simply migrates again.
///
/// - `from` newer than [`CURRENT_SCHEMA`]: [`StoreError::FutureSchema`]; nothing may be written.
/// - `from` equal to it: nothing to do.
/// - `None` (no `meta`): a fresh install when nothing of ours is stored (only `meta` is
///   written), otherwise pre-release data, migrated from schema 0.
pub fn migrate(entries: &[(String, Value)], from: Option<u32>) -> Result<Vec<Change>, StoreError> {
    if let Some(found) = from.filter(|&n| n > CURRENT_SCHEMA) {
        return Err(StoreError::FutureSchema {
            found,
            supported: CURRENT_SCHEMA,
        });
    }
    if from == Some(CURRENT_SCHEMA) {
        return Ok(Vec::new());
    }
    let mut state: BTreeMap<String, Value> = entries.iter().cloned().collect();
    let mut changes = Vec::new();
    let ours = |k: &str| k == SETTINGS_KEY || is_transaction_key(k);
    if from.is_some() || state.keys().any(|k| ours(k)) {
        for step in &MIGRATIONS[from.unwrap_or(0) as usize..] {
            let step_changes = step(&state);
            apply_to_map(&mut state, &step_changes);
            changes.extend(step_changes);
        }
    }
    changes.push(Change::Put {
        key: META_KEY.to_owned(),
        value: meta_value(),
    });
    Ok(changes)
}

/// Applies changes to an in-memory map of entries.
pub fn apply_to_map(map: &mut BTreeMap<String, Value>, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Put { key, value } => {
                map.insert(key.clone(), value.clone());
            }
            Change::Remove { key } => {
                map.remove(key);
            }
        }
    }
}
