//! Pending chunks: the transactions Koha has not accepted, packed a few hundred to a key.
//!
//! A desk's start reads every entry of `browser.storage.local`, and Firefox pays per key: in
//! Firefox 153, 2,800 unsent transactions one key each took 105–135 ms of that read, the same
//! rows in 44 keys 27–40 ms. So a start that holds the send lock packs them into `pending:` keys
//! once [`PENDING_MIN`] are stored one key each: while it holds the lock no other page changes
//! a stored transaction (every change but recording a new one takes the lock), so what it read
//! stays true until its writes are stored.
//!
//! - The chunks are written first, then the transactions' own keys removed: a start cut short
//!   leaves two copies, which reading merges, never none.
//! - Later changes (a send's statuses, an export mark) go under the transaction's own key as
//!   before and win over the chunk's copy by the history merge; what Koha accepts goes into the
//!   archive. The next packing start rebuilds the chunks from what it merged, so stale copies go.
//! - A chunk is never the only copy a deletion leaves: a deletion writes the chunk again without
//!   the transaction, or removes it once it holds none.
//!
//! Other pages read these writes by one rule ([`super::Replica`], [`super::NotAcceptedTally`]): a
//! transaction whose own key is removed, or which a pending chunk no longer holds, is gone only
//! when no pending chunk holds it and its copy is not one Koha accepted (such a copy is held by
//! an own key or the archive, and a clear removes it there).

use super::archive::{encode_chunk, key_with_prefix};
use super::change::Change;
use super::keys::{transaction_key, PENDING_PREFIX};
use crate::transaction::{Transaction, TransactionId};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

/// How many transactions go into one pending chunk: a rebuild writes all of them again, so
/// chunks stay small enough that a few hundred unsent rows cost a few keys.
pub const PENDING_CHUNK: usize = 250;

/// How many transactions Koha has not accepted must be stored one key each before a start that
/// holds the send lock packs them (or when a pending chunk holds a copy Koha has accepted since).
pub const PENDING_MIN: usize = 50;

/// A start's writes that pack the transactions Koha has not accepted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PendingPlan {
    /// The chunks to write, then the chunks and own keys to remove. Apply in order.
    pub changes: Vec<Change>,
    /// The transactions whose own key the plan removes.
    pub packed: Vec<TransactionId>,
}

/// The write of one pending chunk holding `txs` (sorted by id, not empty).
pub fn pending_put(txs: &[Transaction]) -> Change {
    Change::Put {
        key: key_with_prefix(PENDING_PREFIX, txs),
        value: Value::String(encode_chunk(txs)),
    }
}

/// A start's pending chunks.
///
/// - `merged`: every transaction after reconciliation, sorted by id.
/// - `stored`: the pending chunks read, with their ids.
/// - `loose`: the transactions stored one key each once the start's repairs are written.
/// - `min`: `Some` only while holding the send lock; packs once this many of `loose` are not
///   accepted, or when a stored chunk holds a transaction Koha has accepted since.
pub fn plan_pending(
    merged: &[Transaction],
    stored: &[(String, Vec<TransactionId>)],
    loose: &FxHashSet<TransactionId>,
    min: Option<usize>,
) -> PendingPlan {
    let accepted = |id: &TransactionId| {
        merged
            .binary_search_by(|tx| tx.id.cmp(id))
            .is_ok_and(|i| merged[i].status().is_accepted())
    };
    let unpacked = merged
        .iter()
        .filter(|tx| !tx.status().is_accepted() && loose.contains(&tx.id))
        .count();
    let stale = stored.iter().any(|(_, ids)| ids.iter().any(accepted));
    let due = min.is_some_and(|min| unpacked >= min.max(1) || stale);
    if !due {
        return PendingPlan::default();
    }
    let unsent: Vec<Transaction> = merged
        .iter()
        .filter(|tx| !tx.status().is_accepted())
        .cloned()
        .collect();
    let puts: Vec<Change> = unsent.chunks(PENDING_CHUNK).map(pending_put).collect();
    let wanted: FxHashSet<String> = puts.iter().map(|put| put.key().to_owned()).collect();
    let mut changes = puts;
    changes.extend(
        stored
            .iter()
            .filter(|(key, _)| !wanted.contains(key))
            .map(|(key, _)| Change::Remove { key: key.clone() }),
    );
    let packed: Vec<TransactionId> = unsent
        .iter()
        .filter(|tx| loose.contains(&tx.id))
        .map(|tx| tx.id.clone())
        .collect();
    changes.extend(packed.iter().map(|id| Change::Remove {
        key: transaction_key(id),
    }));
    PendingPlan { changes, packed }
}

/// Which pending chunks hold which ids, as a page has heard of them: a transaction a chunk
/// holds is still stored when its own key goes (see the module docs).
#[derive(Debug, Default)]
pub struct PendingIndex {
    /// Every pending chunk, with the ids it holds.
    chunks: FxHashMap<String, Vec<TransactionId>>,
    /// How many chunks hold each id.
    holders: FxHashMap<TransactionId, u32>,
}

impl PendingIndex {
    /// The chunk `key` holds `ids` now, replacing what it held. Returns the ids it held before
    /// and no longer does.
    pub fn hold(&mut self, key: String, ids: Vec<TransactionId>) -> Vec<TransactionId> {
        let before = self.release(&key);
        for id in &ids {
            *self.holders.entry(id.clone()).or_insert(0) += 1;
        }
        let now: FxHashSet<&TransactionId> = ids.iter().collect();
        let dropped = before.into_iter().filter(|id| !now.contains(id)).collect();
        self.chunks.insert(key, ids);
        dropped
    }

    /// The chunk `key` is gone. Returns the ids it held.
    pub fn release(&mut self, key: &str) -> Vec<TransactionId> {
        let ids = self.chunks.remove(key).unwrap_or_default();
        for id in &ids {
            if let Some(n) = self.holders.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    self.holders.remove(id);
                }
            }
        }
        ids
    }

    /// The ids the chunk `key` holds.
    pub fn held_by(&self, key: &str) -> &[TransactionId] {
        self.chunks.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether any chunk holds `id`.
    pub fn holds(&self, id: &TransactionId) -> bool {
        self.holders.contains_key(id)
    }

    /// How many chunks there are.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// How many ids the chunks hold.
    pub fn ids(&self) -> usize {
        self.holders.len()
    }
}
