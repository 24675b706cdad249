//! The toolbar badge's count: how many stored transactions Koha has not accepted, kept by the
//! background script from the store of record's entries and its `storage.onChanged` events,
//! without holding the transactions themselves.

use super::incoming::{decode_change, StoredChange};
use super::keys::{is_archive_key, is_pending_key, is_transaction_key};
use crate::transaction::TransactionId;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

/// Where the stored transactions Koha has not accepted are, by id.
#[derive(Debug, Default)]
pub struct NotAcceptedTally {
    /// Transactions stored under their own key, and whether that copy is accepted.
    own: FxHashMap<TransactionId, bool>,
    /// Every pending chunk, with the ids it holds.
    pending: FxHashMap<String, Vec<TransactionId>>,
    /// How many pending chunks hold each id.
    pended: FxHashMap<TransactionId, u32>,
    /// Of the ids an own key or a pending chunk holds, those an archive chunk holds too.
    archived: FxHashSet<TransactionId>,
}

impl NotAcceptedTally {
    /// The tally of the store of record's `entries` as read at start.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Self {
        let mut tally = NotAcceptedTally::default();
        let mut chunks = Vec::new();
        for (key, value) in entries {
            if is_transaction_key(key) || is_pending_key(key) {
                tally.apply(key, Some(value));
            } else if is_archive_key(key) {
                chunks.push((key, value));
            }
        }
        // Chunks only matter for a copy left beside one (an own key a send run left, removed
        // after the run or at the next start; a pending chunk's copy until the next packing):
        // decoded only if any counts.
        if tally.count() > 0 {
            for (key, value) in chunks {
                tally.apply(key, Some(value));
            }
        }
        tally
    }

    /// Takes one changed entry: its key and its new value (`None`: removed).
    pub fn apply(&mut self, key: &str, new_value: Option<&Value>) {
        // A removed archive chunk was cleared with its transactions, whose other copies go
        // with the same clear.
        let counted = is_transaction_key(key)
            || is_pending_key(key)
            || (is_archive_key(key) && new_value.is_some());
        if !counted {
            return;
        }
        match decode_change(key, new_value, None) {
            Ok(StoredChange::Transaction(tx)) => {
                let accepted = tx.status().is_accepted();
                self.own.insert(tx.id, accepted);
            }
            Ok(StoredChange::Removed(id)) => {
                self.own.remove(&id);
            }
            Ok(StoredChange::Pending(txs)) => {
                self.unpend(key);
                for tx in &txs {
                    *self.pended.entry(tx.id.clone()).or_insert(0) += 1;
                }
                self.pending
                    .insert(key.to_owned(), txs.into_iter().map(|tx| tx.id).collect());
            }
            Ok(StoredChange::PendingRemoved) => self.unpend(key),
            // A send run stores what Koha accepted as a chunk and leaves each one's own key, with
            // its copy from before, to be removed after the run: the chunk's copy counts.
            Ok(StoredChange::Archived(txs) | StoredChange::ArchiveTrimmed { kept: txs, .. }) => {
                for tx in txs {
                    if self.own.contains_key(&tx.id) || self.pended.contains_key(&tx.id) {
                        self.archived.insert(tx.id);
                    }
                }
            }
            // Unreadable entries are quarantined by the next page that opens; not counted.
            Ok(_) | Err(_) => {}
        }
    }

    fn unpend(&mut self, key: &str) {
        for id in self.pending.remove(key).unwrap_or_default() {
            if let Some(n) = self.pended.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    self.pended.remove(&id);
                }
            }
        }
    }

    /// How many there are: held by an own key Koha has not accepted or by a pending chunk, and
    /// by no accepted copy (accepted is final: any accepted copy is the newest).
    pub fn count(&self) -> usize {
        let held = self
            .own
            .iter()
            .filter(|(_, accepted)| !**accepted)
            .map(|(id, _)| id)
            .chain(self.pended.keys());
        let ids: FxHashSet<&TransactionId> = held
            .filter(|id| !self.archived.contains(*id) && self.own.get(*id) != Some(&true))
            .collect();
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Barcode;
    use crate::store::archive::chunk_put;
    use crate::store::{encode_transaction, transaction_key, Change};
    use crate::transaction::{Action, Status, Transaction};
    use chrono::{TimeZone, Utc};

    fn checkin(n: u64) -> Transaction {
        let at = Utc.timestamp_opt(1_700_000_000 + n as i64, 0).unwrap();
        Transaction::record(
            TransactionId::new(at, n),
            at,
            crate::desk::desk_branchcode(None),
            Action::Return {
                barcode: Barcode::parse(&format!("B{n}")).unwrap(),
            },
        )
    }

    fn queued(mut tx: Transaction) -> Transaction {
        let at = tx.recorded_at;
        tx.start_sending(at).unwrap();
        tx.finish_sending(at, Status::Queued).unwrap();
        tx
    }

    fn own(tx: &Transaction) -> (String, Value) {
        (transaction_key(&tx.id), encode_transaction(tx))
    }

    fn chunk(txs: &[Transaction]) -> (String, Value) {
        match chunk_put(txs) {
            Change::Put { key, value } => (key, value),
            Change::Remove { .. } => unreachable!("a chunk is a put"),
        }
    }

    fn tally_of(entries: &[(String, Value)]) -> NotAcceptedTally {
        NotAcceptedTally::from_entries(entries.iter().map(|(k, v)| (k.as_str(), v)))
    }

    #[test]
    fn counts_what_koha_has_not_accepted_and_a_chunk_beside_an_old_key_wins() {
        let (a, b, c) = (checkin(1), checkin(2), checkin(3));
        // `c` was queued by a run: its chunk is stored, its own key still holds `local`.
        let entries = [
            own(&a),
            own(&queued(b.clone())),
            own(&c),
            chunk(&[queued(c.clone())]),
        ];
        assert_eq!(tally_of(&entries).count(), 1, "only a");
        // Without the chunk, c's old key counts.
        assert_eq!(tally_of(&entries[..3]).count(), 2);
    }

    #[test]
    fn follows_changes_of_own_keys_and_chunks() {
        let (a, b) = (checkin(1), checkin(2));
        let mut tally = tally_of(&[own(&a)]);
        let (key, value) = own(&b);
        tally.apply(&key, Some(&value));
        assert_eq!(tally.count(), 2, "b recorded");
        let (key, value) = own(&queued(a.clone()));
        tally.apply(&key, Some(&value));
        assert_eq!(tally.count(), 1, "a queued");
        let (key, value) = chunk(&[queued(b.clone())]);
        tally.apply(&key, Some(&value));
        assert_eq!(
            tally.count(),
            0,
            "b queued by a run, its old key not yet removed"
        );
        tally.apply(&key, None);
        assert_eq!(tally.count(), 0, "a removed chunk adds nothing");
        let (key, value) = own(&checkin(3));
        tally.apply(&key, Some(&value));
        tally.apply(&key, None);
        assert_eq!(tally.count(), 0, "recorded, then deleted");
        tally.apply("settings", Some(&Value::Null));
        assert_eq!(tally.count(), 0);
    }
}
