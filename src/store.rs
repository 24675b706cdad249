//! How transactions and settings are laid out in extension storage, versioned and reconciled.
//!
//! Everything here is pure: the shell reads the entries of `browser.storage.local` (the store of
//! record) and of the `localStorage` mirror, hands them to [`open`], and applies the [`Change`]s it
//! gets back, in order. The same goes for each new or changed transaction ([`write_plan`]).
//!
//! # Layout of `browser.storage.local`
//!
//! | key | value |
//! |---|---|
//! | `meta` | `{"schema": 1}` ([`CURRENT_SCHEMA`]) |
//! | `settings` | the [`Settings`] JSON; the password only when remembered |
//! | `tx:<id>` | one transaction in an envelope: `{"v": 1, "tx": {…}}` |
//! | `quarantine:<key>` | an entry that could not be read, kept aside with the reason |
//!
//! One key per transaction means recording one writes a bounded amount of data however many are
//! stored, and two desk pages writing at once never overwrite each other's transactions. Keys of
//! other shapes belong to other parts of the add-on and are left alone.
//!
//! # The mirror (`localStorage`)
//!
//! `koha-offline-circ:tx:<id>` holds the same envelope for every transaction Koha has not yet
//! accepted. It is written synchronously before the desk confirms, so a failing
//! `storage.local` write loses nothing; at start the two are reconciled ([`reconcile`]).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use koha_offline_circ::store::{self, Change, MemoryStore, Store};
//! use koha_offline_circ::{Action, Barcode, Branchcode, Transaction, TransactionId};
//!
//! let now = Utc.with_ymd_and_hms(2026, 3, 29, 10, 0, 0).unwrap();
//! let tx = Transaction::record(
//!     TransactionId::new(now, 1),
//!     now,
//!     Branchcode::parse("DE-627").unwrap(),
//!     Action::Return { barcode: Barcode::parse("39001").unwrap() },
//! );
//! let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
//! let plan = store::write_plan(&tx);
//! mirror.apply(&[plan.mirror]).unwrap(); // synchronous, before anything else
//! primary.apply(&[plan.primary]).unwrap(); // the desk confirms once this resolved
//!
//! let opened = store::open(primary.entries(), mirror.entries(), Some(now)).unwrap();
//! assert_eq!(opened.transactions, vec![tx]);
//! assert_eq!(opened.primary_changes.len(), 1); // the first start writes `meta`
//! assert!(matches!(&opened.primary_changes[0], Change::Put { key, .. } if key == "meta"));
//! ```

use crate::settings::Settings;
use crate::transaction::{Transaction, TransactionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// The storage schema this build writes and reads. Stored under [`META_KEY`].
pub const CURRENT_SCHEMA: u32 = 1;
/// The version of the transaction envelope this build writes.
pub const ENVELOPE_VERSION: u64 = 1;
/// Key of `{"schema": N}`.
pub const META_KEY: &str = "meta";
/// Key of the settings JSON.
pub const SETTINGS_KEY: &str = "settings";
/// Prefix of one transaction's key in `browser.storage.local`.
pub const TX_PREFIX: &str = "tx:";
/// Prefix of an entry kept aside because it could not be read.
pub const QUARANTINE_PREFIX: &str = "quarantine:";
/// Prefix of one transaction's key in the `localStorage` mirror.
pub const MIRROR_PREFIX: &str = "koha-offline-circ:tx:";

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

/// Why stored data could not be read or written. Each variant has a stable [`StoreError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// A newer add-on wrote this storage; this build must not touch it.
    #[error("storage has schema {found}, newer than the {supported} this version reads; update the add-on")]
    FutureSchema {
        /// The stored schema.
        found: u32,
        /// [`CURRENT_SCHEMA`].
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

// ---------------------------------------------------------------------------------------------
// Keys and envelopes

/// `tx:<id>`.
pub fn transaction_key(id: &TransactionId) -> String {
    format!("{TX_PREFIX}{id}")
}

/// Whether `key` is a transaction's key in `browser.storage.local`.
pub fn is_transaction_key(key: &str) -> bool {
    key.strip_prefix(TX_PREFIX).is_some_and(|id| !id.is_empty())
}

/// `koha-offline-circ:tx:<id>`.
pub fn mirror_key(id: &TransactionId) -> String {
    format!("{MIRROR_PREFIX}{id}")
}

/// Whether `key` is a transaction's key in the `localStorage` mirror.
pub fn is_mirror_key(key: &str) -> bool {
    key.strip_prefix(MIRROR_PREFIX)
        .is_some_and(|id| !id.is_empty())
}

/// Whether `key` holds an entry kept aside by [`load_snapshot`].
pub fn is_quarantine_key(key: &str) -> bool {
    key.starts_with(QUARANTINE_PREFIX)
}

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
/// [`decode_transaction`].
pub fn decode_mirror(key: &str, value: &Value) -> Result<Transaction, StoreError> {
    let id = key
        .strip_prefix(MIRROR_PREFIX)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| StoreError::NotATransactionKey {
            key: key.to_owned(),
        })?;
    decode_envelope(key, id, value)
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
fn check_transaction(key: &str, value: &Value) -> Result<Transaction, StoreError> {
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

// ---------------------------------------------------------------------------------------------
// Writing

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

// ---------------------------------------------------------------------------------------------
// Reading

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
    /// Every readable transaction, sorted by id.
    pub transactions: Vec<Transaction>,
    /// The settings, if stored and valid.
    pub settings: Option<Settings>,
    /// Entries that could not be read.
    pub problems: Vec<Problem>,
    /// Keys of entries kept aside at an earlier start.
    pub quarantined: Vec<String>,
    /// Writes that keep bad entries aside (a put under `quarantine:…`, then the removal of the
    /// original) and rewrite settings that were stored with a password not meant to be kept.
    pub changes: Vec<Change>,
}

/// Reads every entry of `browser.storage.local`. A bad transaction or settings entry is reported
/// in [`Snapshot::problems`] and moved under a `quarantine:` key, never dropped. A bad `meta` is
/// reported too (the schema then reads as unknown). Keys of other shapes are ignored.
pub fn load_snapshot(entries: impl IntoIterator<Item = (String, Value)>) -> Snapshot {
    let entries: Vec<(String, Value)> = entries.into_iter().collect();
    let mut taken: BTreeSet<String> = entries
        .iter()
        .filter(|(k, _)| is_quarantine_key(k))
        .map(|(k, _)| k.clone())
        .collect();
    let mut snapshot = Snapshot {
        schema: None,
        transactions: Vec::new(),
        settings: None,
        problems: Vec::new(),
        quarantined: taken.iter().cloned().collect(),
        changes: Vec::new(),
    };
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
                    snapshot.transactions.push(tx);
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
    snapshot.transactions.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot
}

/// Moves a bad entry under a free `quarantine:<key>` name (with `#2`, `#3`… when taken): the put
/// first, then the removal, so a crash in between keeps both.
fn quarantine(
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

// ---------------------------------------------------------------------------------------------
// Migrations

/// One step: reads the entries at schema N and returns the writes that bring them to N + 1.
type Migration = fn(&BTreeMap<String, Value>) -> Vec<Change>;

/// `MIGRATIONS[n]` takes schema `n` to `n + 1`. Schema 0 is pre-release data without `meta`.
const MIGRATIONS: [Migration; CURRENT_SCHEMA as usize] = [migrate_0_to_1];

/// 0 → 1: pre-release builds stored a bare transaction under `tx:<id>`; wrap it in the
/// envelope. Values that do not read as a transaction are left for [`load_snapshot`] to
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

// ---------------------------------------------------------------------------------------------
// Reconciliation

/// The outcome of reconciling the store of record with the mirror.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reconciled {
    /// Every transaction, one per id, sorted by id.
    pub merged: Vec<Transaction>,
    /// To write to `browser.storage.local` (missing there, or older there).
    pub write_primary: Vec<Transaction>,
    /// To write to the mirror (not accepted by Koha, and missing or older there).
    pub write_mirror: Vec<Transaction>,
    /// To remove from the mirror: Koha accepted them.
    pub remove_mirror: Vec<TransactionId>,
}

/// Which of two copies of one transaction is newer: the one whose current status was set later,
/// then the one with the longer history; on a full tie `a` (pass the store of record first).
/// The winner keeps the later `exported_at` of the two.
pub fn newer(a: Transaction, b: Transaction) -> Transaction {
    let b_wins = (b.status_since(), b.history().len()) > (a.status_since(), a.history().len());
    let exported_at = a.exported_at.max(b.exported_at);
    let mut winner = if b_wins { b } else { a };
    winner.exported_at = exported_at;
    winner
}

/// Union by id of the store of record and the mirror; where both hold one, [`newer`] decides.
/// Each side is repaired from the other, and accepted transactions leave the mirror.
pub fn reconcile(primary: Vec<Transaction>, mirror: Vec<Transaction>) -> Reconciled {
    let mut primary = by_id(primary).into_iter().peekable();
    let mut mirror = by_id(mirror).into_iter().peekable();
    let mut out = Reconciled::default();
    // A merge of two id-sorted lists that clones only what must be written, so a start with
    // tens of thousands stored stays cheap.
    loop {
        let order = match (primary.peek(), mirror.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(p), Some(m)) => p.id.cmp(&m.id),
        };
        let (p, m) = match order {
            Ordering::Less => (primary.next(), None),
            Ordering::Greater => (None, mirror.next()),
            Ordering::Equal => (primary.next(), mirror.next()),
        };
        let (merged, primary_stale, mirror_stale, in_mirror) = match (p, m) {
            (Some(p), None) => (p, false, true, false),
            (None, Some(m)) => (m, true, false, true),
            (Some(p), Some(m)) if p == m => (p, false, false, true),
            (Some(p), Some(m)) => {
                let merged = newer(p.clone(), m.clone());
                let (p_stale, m_stale) = (p != merged, m != merged);
                (merged, p_stale, m_stale, true)
            }
            (None, None) => break,
        };
        if primary_stale {
            out.write_primary.push(merged.clone());
        }
        if merged.status().is_accepted() {
            if in_mirror {
                out.remove_mirror.push(merged.id.clone());
            }
        } else if mirror_stale {
            out.write_mirror.push(merged.clone());
        }
        out.merged.push(merged);
    }
    out
}

/// Sorts by id and folds duplicates with [`newer`].
fn by_id(mut list: Vec<Transaction>) -> Vec<Transaction> {
    list.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out: Vec<Transaction> = Vec::with_capacity(list.len());
    for tx in list {
        match out.pop() {
            Some(last) if last.id == tx.id => out.push(newer(last, tx)),
            Some(last) => {
                out.push(last);
                out.push(tx);
            }
            None => out.push(tx),
        }
    }
    out
}

impl Reconciled {
    /// Transactions still `sending` belong to a page that died mid-request: they become
    /// `uncertain` and are written to both stores. Returns their ids.
    pub fn recover_interrupted(&mut self, now: DateTime<Utc>) -> Vec<TransactionId> {
        let mut recovered = Vec::new();
        for tx in &mut self.merged {
            if tx.recover_interrupted(now) {
                recovered.push(tx.id.clone());
                replace_or_push(&mut self.write_primary, tx);
                replace_or_push(&mut self.write_mirror, tx);
            }
        }
        recovered
    }

    /// The writes for `browser.storage.local`.
    pub fn primary_changes(&self) -> Vec<Change> {
        self.write_primary
            .iter()
            .map(|tx| write_plan(tx).primary)
            .collect()
    }

    /// The writes for the mirror: puts, then removals of accepted transactions.
    pub fn mirror_changes(&self) -> Vec<Change> {
        let puts = self.write_mirror.iter().map(mirror_change);
        let removals = self.remove_mirror.iter().map(|id| Change::Remove {
            key: mirror_key(id),
        });
        puts.chain(removals).collect()
    }
}

fn replace_or_push(list: &mut Vec<Transaction>, tx: &Transaction) {
    match list.iter_mut().find(|t| t.id == tx.id) {
        Some(slot) => *slot = tx.clone(),
        None => list.push(tx.clone()),
    }
}

/// Reads every entry of the mirror. A bad entry is reported; [`open`] keeps it aside in the
/// store of record and removes it from the mirror. Keys of other shapes are ignored.
pub fn load_mirror(
    entries: impl IntoIterator<Item = (String, Value)>,
) -> (Vec<Transaction>, Vec<(String, Value, StoreError)>) {
    let mut transactions = Vec::new();
    let mut bad = Vec::new();
    for (key, value) in entries {
        if !key.starts_with(MIRROR_PREFIX) {
            continue;
        }
        match decode_mirror(&key, &value) {
            Ok(tx) => transactions.push(tx),
            Err(e) => bad.push((key, value, e)),
        }
    }
    (transactions, bad)
}

// ---------------------------------------------------------------------------------------------
// Start-up

/// What a desk (or the options page) starts with, and what to write so both stores agree.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The schema before this start (`None`: no `meta`).
    pub schema_found: Option<u32>,
    /// Every transaction, one per id, sorted by id; interrupted sends already `uncertain`.
    pub transactions: Vec<Transaction>,
    /// The stored settings, if any and valid.
    pub settings: Option<Settings>,
    /// Entries that could not be read (of either store), and where they were kept.
    pub problems: Vec<Problem>,
    /// Ids of transactions that were `sending` and are now `uncertain`.
    pub recovered: Vec<TransactionId>,
    /// Writes for `browser.storage.local`, in order: migrations, quarantine, repairs.
    pub primary_changes: Vec<Change>,
    /// Writes for the mirror. Apply them after `primary_changes` resolved: a removal of an
    /// accepted transaction must not precede the write that records the acceptance.
    pub mirror_changes: Vec<Change>,
}

/// The start-up sequence over both stores' entries: schema check and migrations, reading with
/// quarantine, reconciliation, and recovery of interrupted sends. Fails only on
/// [`StoreError::FutureSchema`], when nothing must be written.
///
/// `recover_at`: `Some(now)` turns every transaction still `sending` into `uncertain`. Pass
/// `None` when another open page may be sending right now (the shell knows from its send lock,
/// for example Web Locks with `ifAvailable`): that page's `sending` transaction is in flight,
/// not interrupted.
pub fn open(
    primary: Vec<(String, Value)>,
    mirror: Vec<(String, Value)>,
    recover_at: Option<DateTime<Utc>>,
) -> Result<Opened, StoreError> {
    let stored_schema = schema_of(&primary);
    let mut taken: BTreeSet<String> = primary
        .iter()
        .filter(|(k, _)| is_quarantine_key(k))
        .map(|(k, _)| k.clone())
        .collect();
    let mut primary_changes = Vec::new();
    let mut problems = Vec::new();
    // A bad `meta` is kept aside and reported; migrations then run as from schema 0, which only
    // wraps bare transactions and so cannot harm enveloped data, and write a new `meta`.
    let from = match &stored_schema {
        Ok(schema) => *schema,
        Err(error) => {
            let value = primary
                .iter()
                .find(|(k, _)| k == META_KEY)
                .map_or(Value::Null, |(_, v)| v.clone());
            let (kept_at, mut changes) = quarantine(META_KEY, &value, error, &mut taken);
            changes.truncate(1); // keep the copy; the migration overwrites `meta`
            primary_changes.extend(changes);
            problems.push(Problem {
                key: META_KEY.to_owned(),
                error: error.clone(),
                quarantine_key: Some(kept_at),
            });
            Some(0)
        }
    };
    primary_changes.extend(migrate(&primary, from)?);
    let mut state: BTreeMap<String, Value> = primary.into_iter().collect();
    apply_to_map(&mut state, &primary_changes);
    let snapshot = load_snapshot(state);
    problems.extend(snapshot.problems);
    primary_changes.extend(snapshot.changes);

    let (mirror_txs, bad_mirror) = load_mirror(mirror);
    let mut mirror_changes = Vec::new();
    taken.extend(primary_changes.iter().map(|c| c.key().to_owned()));
    for (key, value, error) in bad_mirror {
        let (kept_at, mut changes) = quarantine(&key, &value, &error, &mut taken);
        // The removal applies to the mirror, the kept copy to the store of record.
        if let Some(removal) = changes.pop() {
            mirror_changes.push(removal);
        }
        primary_changes.extend(changes);
        problems.push(Problem {
            key,
            error,
            quarantine_key: Some(kept_at),
        });
    }

    let mut reconciled = reconcile(snapshot.transactions, mirror_txs);
    let recovered = recover_at.map_or_else(Vec::new, |now| reconciled.recover_interrupted(now));
    primary_changes.extend(reconciled.primary_changes());
    mirror_changes.extend(reconciled.mirror_changes());
    Ok(Opened {
        schema_found: stored_schema.ok().flatten(),
        transactions: reconciled.merged,
        settings: snapshot.settings,
        problems,
        recovered,
        primary_changes,
        mirror_changes,
    })
}

// ---------------------------------------------------------------------------------------------
// storage.onChanged

/// What one `storage.onChanged` entry means for an open page.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredChange {
    /// A transaction was written (by this or another page).
    Transaction(Transaction),
    /// A transaction was deleted.
    Removed(TransactionId),
    /// The settings were written (`None`: deleted).
    Settings(Option<Settings>),
    /// Something this module does not interpret (meta, quarantine, other keys).
    Other,
}

/// Interprets one key of a `storage.onChanged` event, given its `newValue` (absent when the key
/// was removed).
pub fn decode_change(key: &str, new_value: Option<&Value>) -> Result<StoredChange, StoreError> {
    match new_value {
        _ if key == SETTINGS_KEY => new_value
            .map(decode_settings)
            .transpose()
            .map(StoredChange::Settings),
        Some(value) if is_transaction_key(key) => {
            decode_transaction(key, value).map(StoredChange::Transaction)
        }
        None if is_transaction_key(key) => Ok(StoredChange::Removed(TransactionId::from_stored(
            &key[TX_PREFIX.len()..],
        ))),
        _ => Ok(StoredChange::Other),
    }
}

// ---------------------------------------------------------------------------------------------
// The port, and an in-memory adapter for tests

/// A key-value store as the core sees it: `browser.storage.local` or the `localStorage` mirror.
/// The shell's adapters are asynchronous and call the pure functions above; this trait lets
/// native tests and tools drive the same sequences synchronously.
pub trait Store {
    /// Every entry.
    fn entries(&self) -> Vec<(String, Value)>;
    /// One entry.
    fn get(&self, key: &str) -> Option<Value>;
    /// Applies the changes in order, all or nothing (like one `storage.local.set` call).
    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError>;
}

/// An in-memory [`Store`] that can simulate a full disk or a broken database, and records the
/// bytes each write carried.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    entries: BTreeMap<String, Value>,
    quota_bytes: Option<usize>,
    failing: Option<String>,
    written: Vec<usize>,
}

impl MemoryStore {
    /// An empty store without a quota.
    pub fn new() -> Self {
        Self::default()
    }

    /// Limits the total size ([`entry_bytes`] summed over all entries); a write that would go
    /// beyond it fails with `quota exceeded` and changes nothing. `None` lifts the limit.
    pub fn set_quota(&mut self, bytes: Option<usize>) {
        self.quota_bytes = bytes;
    }

    /// Makes every write fail with this reason (`None`: writes work again).
    pub fn set_failing(&mut self, reason: Option<&str>) {
        self.failing = reason.map(str::to_owned);
    }

    /// Deletes everything (the user cleared site data).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Total size of the entries, as [`entry_bytes`] counts it.
    pub fn total_bytes(&self) -> usize {
        self.entries.iter().map(|(k, v)| entry_bytes(k, v)).sum()
    }

    /// Bytes carried by each successful [`Store::apply`] call, in order (puts count key and
    /// value, removals the key).
    pub fn written(&self) -> &[usize] {
        &self.written
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Store for MemoryStore {
    fn entries(&self) -> Vec<(String, Value)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn get(&self, key: &str) -> Option<Value> {
        self.entries.get(key).cloned()
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        if let Some(reason) = &self.failing {
            return Err(StoreError::WriteFailed {
                reason: reason.clone(),
            });
        }
        if let Some(quota) = self.quota_bytes {
            // The final state of each touched key, to size the result without copying the store.
            let mut touched: BTreeMap<&str, Option<&Value>> = BTreeMap::new();
            for change in changes {
                match change {
                    Change::Put { key, value } => touched.insert(key, Some(value)),
                    Change::Remove { key } => touched.insert(key, None),
                };
            }
            let mut size = self.total_bytes();
            for (key, new) in touched {
                if let Some(old) = self.entries.get(key) {
                    size -= entry_bytes(key, old);
                }
                if let Some(new) = new {
                    size += entry_bytes(key, new);
                }
            }
            if size > quota {
                return Err(StoreError::WriteFailed {
                    reason: "quota exceeded".to_owned(),
                });
            }
        }
        apply_to_map(&mut self.entries, changes);
        self.written.push(
            changes
                .iter()
                .map(|c| match c {
                    Change::Put { key, value } => entry_bytes(key, value),
                    Change::Remove { key } => key.len(),
                })
                .sum(),
        );
        Ok(())
    }
}
