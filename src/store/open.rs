//! The start-up sequence over both stores' entries.

use super::archive::pack_plan;
use super::change::Change;
use super::deferral::PendingRead;
use super::error::StoreError;
use super::exports;
use super::keys::{is_quarantine_key, transaction_key, META_KEY};
use super::migrate::{apply_to_map, migrate};
use super::pending::{plan_pending, PENDING_MIN};
use super::reconcile::{load_mirror, reconcile};
use super::snapshot::{load_snapshot_read, quarantine, schema_of, Problem};
use crate::settings::Settings;
use crate::transaction::{Transaction, TransactionId};
use chrono::{DateTime, Utc};
use rustc_hash::FxHashSet;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

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
    pub archived: FxHashSet<TransactionId>,
    /// Every pending chunk read, with the ids it holds: as read, not once `primary_changes` are
    /// applied. A packing may be refused or cut short; its writes reach the page as events,
    /// like other pages' writes, in the order they were stored.
    pub pending: Vec<(String, Vec<TransactionId>)>,
    /// The transactions stored one key each, as read (the same reason as `pending`).
    pub own_keys: Vec<TransactionId>,
    /// Ids of accepted transactions still stored one key each once `primary_changes` are
    /// applied (fewer than [`ARCHIVE_CHUNK`](super::ARCHIVE_CHUNK) after packing).
    pub loose_accepted: FxHashSet<TransactionId>,
    /// Writes for `browser.storage.local`, in order: migrations, quarantine, repairs.
    pub primary_changes: Vec<Change>,
    /// Writes for the mirror. Apply them after `primary_changes` resolved: a removal of an
    /// accepted transaction must not precede the write that records the acceptance.
    pub mirror_changes: Vec<Change>,
}

/// The start-up sequence over both stores' entries: schema check and migrations, reading with
/// quarantine, reconciliation, recovery of interrupted sends, export records, packing
/// accepted transactions into the archive once there are [`ARCHIVE_CHUNK`](super::ARCHIVE_CHUNK),
/// and, holding the send lock, the others into pending chunks. Fails only on
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
    open_packing(primary, mirror, recover_at, PENDING_MIN)
}

/// [`open`], packing the transactions Koha has not accepted into pending chunks once
/// `pending_min` of them are stored one key each (see [`super::pending`]; the simulation packs
/// its short histories with a small one). Only a start holding the send lock packs.
pub fn open_packing(
    primary: Vec<(String, Value)>,
    mirror: Vec<(String, Value)>,
    recover_at: Option<DateTime<Utc>>,
    pending_min: usize,
) -> Result<Opened, StoreError> {
    open_read(
        primary,
        mirror,
        recover_at,
        pending_min,
        PendingRead::default(),
    )
}

/// [`open_packing`], taking the pending chunks in `pending_read` as read already (see
/// [`super::deferral::defer_chunks`]).
pub(super) fn open_read(
    primary: Vec<(String, Value)>,
    mirror: Vec<(String, Value)>,
    recover_at: Option<DateTime<Utc>>,
    pending_min: usize,
    pending_read: PendingRead,
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
    let snapshot = load_snapshot_read(state, pending_read);
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
    let rewritten: FxHashSet<TransactionId> = reconciled
        .write_primary
        .iter()
        .map(|tx| tx.id.clone())
        .collect();
    let own_keys = snapshot.loose.clone();
    let mut loose: FxHashSet<TransactionId> = snapshot.loose.into_iter().collect();
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
    loose.extend(rewritten.iter().cloned());
    let packing = pack_plan(reconciled.merged.iter().filter(|tx| loose.contains(&tx.id)));
    let mut archived: FxHashSet<TransactionId> = snapshot.archived.into_iter().collect();
    for id in &packing.packed {
        loose.remove(id);
        archived.insert(id.clone());
    }
    primary_changes.extend(packing.changes);
    let pending = plan_pending(
        &reconciled.merged,
        &snapshot.pending,
        &loose,
        recover_at.map(|_| pending_min),
    );
    for id in &pending.packed {
        loose.remove(id);
    }
    primary_changes.extend(pending.changes);
    if recover_at.is_some() {
        // Holding the send lock, no page writes an own key meanwhile: one a packing cut short
        // left beside its pending chunk's copy goes.
        for id in &snapshot.redundant_pending {
            if !rewritten.contains(id) && loose.remove(id) {
                primary_changes.push(Change::Remove {
                    key: transaction_key(id),
                });
            }
        }
    }
    if recover_at.is_some() {
        // Holding the send lock: no clear trims a chunk meanwhile.
        primary_changes.extend(snapshot.summaries_added);
    }
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
        pending: snapshot.pending,
        own_keys,
        loose_accepted,
        primary_changes,
        mirror_changes,
    })
}
