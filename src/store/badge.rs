//! The toolbar badge's count: how many stored transactions Koha has not accepted, kept by the
//! background script from the store of record's entries and its `storage.onChanged` events,
//! without holding the transactions themselves.

use super::incoming::{decode_change, StoredChange};
use super::keys::{is_archive_key, is_pending_key, is_transaction_key};
use super::pending::PendingIndex;
use crate::transaction::TransactionId;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

/// Where the stored transactions Koha has not accepted are, by id.
#[derive(Debug, Default)]
pub struct NotAcceptedTally {
    /// Transactions stored under their own key, and whether that copy is accepted.
    own: FxHashMap<TransactionId, bool>,
    /// Which pending chunks hold which ids.
    pending: PendingIndex,
    /// Of the ids an own key or a pending chunk holds, those an archive chunk holds too.
    archived: FxHashSet<TransactionId>,
    /// How many ids [`NotAcceptedTally::counts`], kept as each changes.
    count: usize,
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
                self.changing([tx.id.clone()], |t| {
                    t.own.insert(tx.id, accepted);
                });
            }
            Ok(StoredChange::Removed(id)) => self.changing([id.clone()], |t| {
                t.own.remove(&id);
            }),
            Ok(StoredChange::Pending(txs)) => {
                let ids: Vec<TransactionId> = txs.into_iter().map(|tx| tx.id).collect();
                let touched = self.pending.held_by(key).iter().chain(&ids).cloned();
                self.changing(touched.collect::<Vec<_>>(), |t| {
                    t.pending.hold(key.to_owned(), ids);
                });
            }
            Ok(StoredChange::PendingRemoved) => {
                let touched = self.pending.held_by(key).to_vec();
                self.changing(touched, |t| {
                    t.pending.release(key);
                });
            }
            // A send run stores what Koha accepted as a chunk and leaves each one's own key, with
            // its copy from before, to be removed after the run: the chunk's copy counts.
            Ok(StoredChange::Archived(txs) | StoredChange::ArchiveTrimmed { kept: txs, .. }) => {
                for tx in txs {
                    if self.own.contains_key(&tx.id) || self.pending.holds(&tx.id) {
                        self.changing([tx.id.clone()], |t| {
                            t.archived.insert(tx.id);
                        });
                    }
                }
            }
            // Unreadable entries are quarantined by the next page that opens; not counted.
            Ok(_) | Err(_) => {}
        }
    }

    /// Makes `change`, which touches only `ids`, and keeps the count: a send run's answers
    /// change the tally many times a second, so it is not recounted.
    fn changing(
        &mut self,
        ids: impl IntoIterator<Item = TransactionId>,
        change: impl FnOnce(&mut Self),
    ) {
        let ids: FxHashSet<TransactionId> = ids.into_iter().collect();
        let before = ids.iter().filter(|id| self.counts(id)).count();
        change(self);
        let after = ids.iter().filter(|id| self.counts(id)).count();
        self.count = self.count + after - before;
    }

    /// Whether `id` counts: held by an own key Koha has not accepted or by a pending chunk, and
    /// by no accepted copy (accepted is final: any accepted copy is the newest).
    fn counts(&self, id: &TransactionId) -> bool {
        let own = self.own.get(id).copied();
        (own == Some(false) || self.pending.holds(id))
            && own != Some(true)
            && !self.archived.contains(id)
    }

    /// How many there are.
    pub fn count(&self) -> usize {
        self.count
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

    /// The count kept as ids change is the one a recount of every id gives.
    #[test]
    fn the_kept_count_is_a_recount() {
        let txs: Vec<Transaction> = (1..=12).map(checkin).collect();
        let mut tally = NotAcceptedTally::default();
        let mut seed: u64 = 7;
        let mut next = |below: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as usize % below
        };
        for _ in 0..3_000 {
            let tx = &txs[next(txs.len())];
            let copy = if next(3) == 0 {
                queued(tx.clone())
            } else {
                tx.clone()
            };
            let mut group = Vec::new();
            for tx in &txs {
                if next(3) == 0 {
                    group.push(if next(4) == 0 {
                        queued(tx.clone())
                    } else {
                        tx.clone()
                    });
                }
            }
            let pending_key = format!("pending:p{}", next(3));
            match next(6) {
                0 => {
                    let (key, value) = own(&copy);
                    tally.apply(&key, Some(&value));
                }
                1 => tally.apply(&transaction_key(&tx.id), None),
                2 if !group.is_empty() => match crate::store::pending_put(&group) {
                    Change::Put { value, .. } => tally.apply(&pending_key, Some(&value)),
                    Change::Remove { .. } => unreachable!("a chunk is a put"),
                },
                3 => tally.apply(&pending_key, None),
                4 => {
                    let accepted: Vec<Transaction> = group
                        .into_iter()
                        .map(|tx| {
                            if tx.status().is_accepted() {
                                tx
                            } else {
                                queued(tx)
                            }
                        })
                        .collect();
                    if !accepted.is_empty() {
                        let (key, value) = chunk(&accepted);
                        tally.apply(&key, Some(&value));
                    }
                }
                _ => {}
            }
            let recount = txs.iter().filter(|tx| tally.counts(&tx.id)).count();
            assert_eq!(tally.count(), recount);
        }
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
