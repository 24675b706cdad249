//! Reconciling the store of record with the `localStorage` mirror.

use super::change::Change;
use super::error::StoreError;
use super::keys::{mirror_key, MIRROR_PREFIX};
use super::layout::{decode_mirror, mirror_change, write_plan};
use crate::transaction::{Transaction, TransactionId};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::cmp::Ordering;

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

/// Union by id of the store of record and the mirror; where both hold one, the copies are merged
/// by [`Transaction::merge`] (never by their timestamps).
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
                let merged = p.clone().merge(m.clone());
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

/// Sorts by id and folds duplicates (an archive chunk and a single key left by a packing cut
/// short) with [`Transaction::merge`].
fn by_id(mut list: Vec<Transaction>) -> Vec<Transaction> {
    list.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out: Vec<Transaction> = Vec::with_capacity(list.len());
    for tx in list {
        match out.pop() {
            Some(last) if last.id == tx.id => out.push(last.merge(tx)),
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

/// Reads every entry of the mirror. A bad entry is reported; [`open`](super::open) keeps it aside in the
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
