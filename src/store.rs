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
//! | `meta` | `{"schema": 2}` ([`CURRENT_SCHEMA`]) |
//! | `settings` | the [`Settings`] JSON; the password only when remembered |
//! | `tx:<id>` | one transaction in an envelope: `{"v": 1, "tx": {…}}` |
//! | `archive:<first id>.<hash>` | JSON text `{"v": 1, "txs": [...]}`: [`ARCHIVE_CHUNK`] transactions Koha accepted ([`archive`]) |
//! | `exported:<ms>.<first id>` | JSON text `{"v": 1, "at": …, "ids": [...]}`: one `.koc` export ([`exports`]) |
//! | `quarantine:<key>` | an entry that could not be read, kept aside with the reason |
//!
//! One key per transaction means recording one writes a bounded amount of data however many are
//! stored, and two desk pages writing at once never overwrite each other's transactions. Once
//! [`ARCHIVE_CHUNK`] transactions Koha accepted (which never change again) are stored that way,
//! they are packed into one archive chunk, so a desk with 50,000 stored reads about a hundred
//! keys at start instead of 50,000. Keys of other shapes belong to other parts of the add-on and
//! are left alone.
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

pub mod archive;
pub mod exports;
mod layout;
mod memory;
mod migrate;
mod reconcile;
mod snapshot;

pub use archive::{is_archive_key, pack_plan, Packing, ARCHIVE_CHUNK, ARCHIVE_PREFIX};
pub use exports::{is_export_key, ExportRecord, EXPORT_PREFIX};
pub use layout::{
    decode_change, decode_mirror, decode_settings, decode_transaction, encode_settings,
    encode_transaction, entry_bytes, is_mirror_key, is_quarantine_key, is_transaction_key,
    mirror_change, mirror_key, remove_plan, transaction_key, write_plan, StoredChange, WritePlan,
};
pub use memory::{MemoryStore, Store};
pub use migrate::{apply_to_map, migrate};
pub use reconcile::{load_mirror, reconcile, Reconciled};
use snapshot::quarantine;
pub use snapshot::{load_snapshot, meta_value, schema_of, Problem, Snapshot};

use crate::settings::Settings;
use crate::transaction::{Transaction, TransactionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use thiserror::Error;

/// The storage schema this build writes and reads. Stored under [`META_KEY`].
pub const CURRENT_SCHEMA: u32 = 2;
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

/// What a desk (or the options page) starts with, and what to write so both stores agree.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The schema before this start (`None`: no `meta`).
    pub schema_found: Option<u32>,
    /// Every transaction, one per id, sorted by id; interrupted sends already `uncertain`.
    pub transactions: Vec<Transaction>,
    /// The stored settings, if any and valid.
    pub settings: Option<Settings>,
    /// Entries that could not be read at this start (of either store), and where they were kept.
    pub problems: Vec<Problem>,
    /// Every `quarantine:` key once `primary_changes` are applied, sorted: the entries kept aside
    /// at this start and at earlier ones. Unchanged and unread until someone looks at them, so
    /// the desk keeps saying they exist.
    pub quarantined: Vec<String>,
    /// Ids of transactions that were `sending` and are now `uncertain`.
    pub recovered: Vec<TransactionId>,
    /// Ids of the transactions in the archive once `primary_changes` are applied (they are no
    /// longer stored one key each: removing such a key is not a deletion).
    pub archived: HashSet<TransactionId>,
    /// Ids of accepted transactions still stored one key each once `primary_changes` are
    /// applied (fewer than [`ARCHIVE_CHUNK`] after packing).
    pub loose_accepted: HashSet<TransactionId>,
    /// Writes for `browser.storage.local`, in order: migrations, quarantine, repairs.
    pub primary_changes: Vec<Change>,
    /// Writes for the mirror. Apply them after `primary_changes` resolved: a removal of an
    /// accepted transaction must not precede the write that records the acceptance.
    pub mirror_changes: Vec<Change>,
}

/// The start-up sequence over both stores' entries: schema check and migrations, reading with
/// quarantine, reconciliation, recovery of interrupted sends, export records, and packing
/// accepted transactions into the archive once there are [`ARCHIVE_CHUNK`]. Fails only on
/// [`StoreError::FutureSchema`], when nothing must be written.
///
/// `recover_at`: `Some(now)` turns every transaction still `sending` into `uncertain`; pass it
/// only while holding the send lock until the repairs are written. Pass `None` when another
/// open page may be sending right now (the shell knows from its send lock, for example Web
/// Locks with `ifAvailable`): that page's `sending` transaction is in flight, not interrupted,
/// and no repair of a transaction Koha has not accepted is written.
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
    let export_removals = exports::apply_exports(&mut reconciled.merged, &snapshot.exports);
    // A repair write must carry the export marks: a page that learns of the transaction only
    // from this write (it was in the mirror alone) has seen the export record already.
    for tx in reconciled
        .write_primary
        .iter_mut()
        .chain(reconciled.write_mirror.iter_mut())
    {
        if let Ok(i) = reconciled.merged.binary_search_by(|m| m.id.cmp(&tx.id)) {
            tx.exported_at = tx.exported_at.max(reconciled.merged[i].exported_at);
        }
    }
    let recovered = recover_at.map_or_else(Vec::new, |now| reconciled.recover_interrupted(now));
    if recover_at.is_none() {
        // Another page may be sending: its run is writing these rows, and a repair planned from
        // what was read before would land over its newer copy. Only accepted copies, which
        // nothing supersedes, are written; a start holding the send lock repairs the rest.
        reconciled
            .write_primary
            .retain(|tx| tx.status().is_accepted());
        reconciled.write_mirror.clear();
    }
    primary_changes.extend(reconciled.primary_changes());
    mirror_changes.extend(reconciled.mirror_changes());
    primary_changes.extend(export_removals);

    // Single keys after the repairs: those read plus those the repairs write, less those that
    // add nothing to a chunk's copy (a packing cut short, a stale copy written back): they are
    // removed, not packed again.
    let rewritten: HashSet<TransactionId> = reconciled
        .write_primary
        .iter()
        .map(|tx| tx.id.clone())
        .collect();
    let mut loose: HashSet<TransactionId> = snapshot.loose.into_iter().collect();
    for id in snapshot
        .redundant
        .iter()
        .filter(|id| !rewritten.contains(*id))
    {
        loose.remove(id);
        primary_changes.push(Change::Remove {
            key: transaction_key(id),
        });
    }
    loose.extend(rewritten);
    let packing = pack_plan(reconciled.merged.iter().filter(|tx| loose.contains(&tx.id)));
    let mut archived: HashSet<TransactionId> = snapshot.archived.into_iter().collect();
    for id in &packing.packed {
        loose.remove(id);
        archived.insert(id.clone());
    }
    primary_changes.extend(packing.changes);
    let loose_accepted = reconciled
        .merged
        .iter()
        .filter(|tx| tx.status().is_accepted() && loose.contains(&tx.id))
        .map(|tx| tx.id.clone())
        .collect();
    let quarantined: BTreeSet<String> = snapshot
        .quarantined
        .into_iter()
        .chain(problems.iter().filter_map(|p| p.quarantine_key.clone()))
        .collect();
    Ok(Opened {
        schema_found: stored_schema.ok().flatten(),
        transactions: reconciled.merged,
        settings: snapshot.settings,
        problems,
        quarantined: quarantined.into_iter().collect(),
        recovered,
        archived,
        loose_accepted,
        primary_changes,
        mirror_changes,
    })
}
