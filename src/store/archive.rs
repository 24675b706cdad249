//! The archive: transactions Koha accepted, packed [`ARCHIVE_CHUNK`] to a key.
//!
//! Reading 50,000 keys from `browser.storage.local` takes over a second in Firefox, whatever
//! their size; a hundred larger ones take well under a tenth of that. A transaction Koha accepted
//! never changes again (it can only be cleared), so once enough of them are stored one key each,
//! they move into one `archive:` key per [`ARCHIVE_CHUNK`], stored as JSON text (a string reads
//! back much faster than the equivalent objects).
//!
//! A chunk's key is derived from its content (`archive:<first id>.<hash of all ids>`), so two
//! pages packing the same transactions write the same entry, and different sets never overwrite
//! each other. The one-key-per-transaction entries are removed only after the chunk is stored; a
//! crash in between leaves both copies, which reading merges like any duplicate.

use super::layout::{check_transaction, transaction_key};
use super::{Change, StoreError};
use crate::transaction::{Transaction, TransactionId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Prefix of an archive chunk's key.
pub const ARCHIVE_PREFIX: &str = "archive:";
/// How many accepted transactions go into one chunk; also how many must be stored one key each
/// before they are packed. Bounds what any write of the archive costs.
pub const ARCHIVE_CHUNK: usize = 500;
/// The version of the chunk format this build writes.
pub const ARCHIVE_VERSION: u64 = 1;

/// Whether `key` holds an archive chunk.
pub fn is_archive_key(key: &str) -> bool {
    key.strip_prefix(ARCHIVE_PREFIX)
        .is_some_and(|rest| !rest.is_empty())
}

#[derive(Serialize)]
struct ChunkOut<'a> {
    v: u64,
    txs: &'a [Transaction],
}

#[derive(Deserialize)]
struct ChunkIn {
    v: u64,
    txs: Vec<Value>,
}

/// The chunk's JSON text: `{"v": 1, "txs": [...]}`.
pub fn encode_chunk(txs: &[Transaction]) -> String {
    let chunk = ChunkOut {
        v: ARCHIVE_VERSION,
        txs,
    };
    // Transactions are plain data; serialising them cannot fail.
    serde_json::to_string(&chunk).unwrap_or_default()
}

/// The key for a chunk of these transactions (sorted by id, not empty).
pub fn chunk_key(txs: &[Transaction]) -> String {
    // FNV-1a over every id: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for tx in txs {
        for byte in tx.id.as_str().bytes().chain(std::iter::once(b'\n')) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let first = txs.first().map_or("", |tx| tx.id.as_str());
    format!("{ARCHIVE_PREFIX}{first}.{hash:016x}")
}

/// Reads a chunk: the value must be the JSON text [`encode_chunk`] writes, every transaction in
/// it readable. One bad transaction makes the whole chunk unreadable, so it is kept aside whole
/// and nothing in it is half-read.
pub fn decode_chunk(key: &str, value: &Value) -> Result<Vec<Transaction>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    let text = value
        .as_str()
        .ok_or_else(|| corrupt("archive chunk is not text".to_owned()))?;
    let chunk: ChunkIn = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    if chunk.v != ARCHIVE_VERSION {
        return Err(StoreError::UnknownEnvelope {
            key: key.to_owned(),
            version: chunk.v,
        });
    }
    chunk
        .txs
        .iter()
        .map(|tx| check_transaction(key, tx))
        .collect()
}

/// The writes that pack accepted transactions stored one key each into chunks: for each full
/// chunk of [`ARCHIVE_CHUNK`], the chunk first, then (after all chunks) the removal of the
/// single keys. Fewer than a chunk's worth stay where they are. Transactions not accepted are
/// ignored.
pub fn pack_plan<'a>(loose: impl IntoIterator<Item = &'a Transaction>) -> Packing {
    let mut accepted: Vec<&Transaction> = loose
        .into_iter()
        .filter(|tx| tx.status().is_accepted())
        .collect();
    accepted.sort_by(|a, b| a.id.cmp(&b.id));
    accepted.dedup_by(|a, b| a.id == b.id);
    let mut puts = Vec::new();
    let mut removals = Vec::new();
    let mut packed = Vec::new();
    for group in accepted.chunks_exact(ARCHIVE_CHUNK) {
        let txs: Vec<Transaction> = group.iter().map(|tx| (*tx).clone()).collect();
        puts.push(Change::Put {
            key: chunk_key(&txs),
            value: Value::String(encode_chunk(&txs)),
        });
        for tx in group {
            removals.push(Change::Remove {
                key: transaction_key(&tx.id),
            });
            packed.push(tx.id.clone());
        }
    }
    let mut changes = puts;
    changes.extend(removals);
    Packing { changes, packed }
}

/// What [`pack_plan`] decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Packing {
    /// Chunk puts, then removals of the single keys. Apply in order.
    pub changes: Vec<Change>,
    /// The transactions that move into the archive.
    pub packed: Vec<TransactionId>,
}
