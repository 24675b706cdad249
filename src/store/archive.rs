//! The archive: transactions Koha accepted, packed [`ARCHIVE_CHUNK`] to a key.
//!
//! Reading 50,000 keys from `browser.storage.local` takes over a second in Firefox, whatever
//! their size; a hundred larger ones take well under a tenth of that. A transaction Koha accepted
//! never changes again (it can only be cleared), so once enough of them are stored one key each,
//! they move into one `archive:` key per [`ARCHIVE_CHUNK`], stored as compact JSON text (a
//! string reads back much faster than the equivalent objects, and arrays of plain values parse
//! several times faster than the single keys' tagged objects).
//!
//! A chunk's key is derived from its content (`archive:<first id>.<hash of all ids>`), so two
//! pages packing the same transactions write the same entry, and different sets never overwrite
//! each other. The one-key-per-transaction entries are removed only after the chunk is stored; a
//! crash in between leaves both copies, which reading merges like any duplicate.

use super::change::Change;
use super::chunk_text::read_chunk;
use super::error::StoreError;
use super::keys::{transaction_key, ARCHIVE_PREFIX, ARCHIVE_VERSION};
use crate::ids::{Amount, Barcode, Branchcode, Cardnumber};
use crate::transaction::{Action, FailReason, Status, Transaction, TransactionId, UncertainReason};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// How many accepted transactions go into one chunk; also how many must be stored one key each
/// before they are packed. Bounds what any write of the archive costs.
pub const ARCHIVE_CHUNK: usize = 500;

/// A chunk: `{"sum": summary, "v": ARCHIVE_VERSION, "txs": [row, ...]}`. Written through
/// serde, read by [`read_chunk`]. Builds before the summary skip it as an unknown field.
#[derive(Serialize)]
struct Chunk {
    #[serde(skip_serializing_if = "Option::is_none")]
    sum: Option<SummaryRow>,
    v: u64,
    txs: Vec<Row>,
}

/// A chunk as serde read it before [`read_chunk`] (the summary is an unknown field to it, and
/// skipped): the reference the reader's tests compare with.
#[cfg(test)]
#[derive(serde::Deserialize)]
struct ChunkAsRead {
    v: u64,
    txs: Vec<Row>,
}

/// What a chunk holds, readable from the start of its text without reading its rows: a desk's
/// start shows the counts and the newest rows, and reads the older chunks after it is ready
/// (see [`super::deferral`]). Written first in the text, so a reader stops after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSummary {
    /// How many of its transactions Koha queued.
    pub queued: usize,
    /// How many Koha applied.
    pub applied: usize,
    /// Its smallest id.
    pub first: TransactionId,
    /// Its largest id.
    pub last: TransactionId,
    /// No transaction in it was recorded after this instant (the latest, rounded up to the
    /// millisecond).
    pub newest: DateTime<Utc>,
}

impl ChunkSummary {
    /// The summary of a chunk of `txs`; `None` when it is empty or holds a transaction Koha
    /// has not accepted (no packing makes one): such a chunk is read whole.
    pub fn of(txs: &[Transaction]) -> Option<ChunkSummary> {
        let some = txs.first()?;
        let (mut first, mut last) = (&some.id, &some.id);
        let mut queued = 0;
        let mut applied = 0;
        let mut newest = some.recorded_at;
        for tx in txs {
            match tx.status() {
                Status::Queued => queued += 1,
                Status::Applied => applied += 1,
                _ => return None,
            }
            newest = newest.max(tx.recorded_at);
            first = first.min(&tx.id);
            last = last.max(&tx.id);
        }
        let rounded_up =
            newest.timestamp_millis() + i64::from(newest.timestamp_subsec_nanos() % 1_000_000 != 0);
        Some(ChunkSummary {
            queued,
            applied,
            first: first.clone(),
            last: last.clone(),
            newest: DateTime::from_timestamp_millis(rounded_up)?,
        })
    }

    /// How many transactions it holds.
    pub fn rows(&self) -> usize {
        self.queued + self.applied
    }
}

/// A summary as a JSON array: `[queued, applied, first id, last id, newest (milliseconds)]`.
#[derive(Serialize)]
struct SummaryRow(usize, usize, TransactionId, TransactionId, Time);

/// One transaction in a chunk, as a JSON array:
/// `[id, recorded_at, branchcode, action, cardnumber, barcode, amount_cents, history, exported_at]`
/// with `history` as `[[at, status, detail], ...]`. No field names, no tagged enums, times as
/// milliseconds: reading 50,000 of these is several times faster than the single keys' form,
/// and a chunk is about half the size.
#[derive(Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
struct Row(
    TransactionId,
    Time,
    Branchcode,
    ActionName,
    Option<Cardnumber>,
    Option<Barcode>,
    Option<Amount>,
    Vec<Step>,
    Option<Time>,
);

#[derive(Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
struct Step(Time, StatusName, Option<String>);

/// A status's name as a unit variant.
#[derive(Serialize, Clone, Copy)]
#[cfg_attr(test, derive(serde::Deserialize))]
#[serde(rename_all = "lowercase")]
pub(super) enum StatusName {
    Local,
    Sending,
    Queued,
    Applied,
    Rejected,
    Failed,
    Uncertain,
}

impl StatusName {
    fn of(status: &Status) -> StatusName {
        match status {
            Status::Local => StatusName::Local,
            Status::Sending => StatusName::Sending,
            Status::Queued => StatusName::Queued,
            Status::Applied => StatusName::Applied,
            Status::Rejected { .. } => StatusName::Rejected,
            Status::Failed { .. } => StatusName::Failed,
            Status::Uncertain { .. } => StatusName::Uncertain,
        }
    }

    /// The name as serde writes it.
    pub(super) fn from_name(name: &str) -> Option<StatusName> {
        Some(match name {
            "local" => StatusName::Local,
            "sending" => StatusName::Sending,
            "queued" => StatusName::Queued,
            "applied" => StatusName::Applied,
            "rejected" => StatusName::Rejected,
            "failed" => StatusName::Failed,
            "uncertain" => StatusName::Uncertain,
            _ => return None,
        })
    }

    /// The status with this detail; `None` when the detail is missing, unexpected or not a
    /// known reason.
    pub(super) fn with(self, detail: Option<&str>) -> Option<Status> {
        match (self, detail) {
            (StatusName::Local, None) => Some(Status::Local),
            (StatusName::Sending, None) => Some(Status::Sending),
            (StatusName::Queued, None) => Some(Status::Queued),
            (StatusName::Applied, None) => Some(Status::Applied),
            (StatusName::Rejected, Some(message)) => Some(Status::Rejected {
                message: message.to_owned(),
            }),
            (StatusName::Failed, Some(reason)) => Some(Status::Failed {
                reason: FailReason::from_name(reason)?,
            }),
            (StatusName::Uncertain, Some(reason)) => Some(Status::Uncertain {
                reason: UncertainReason::from_name(reason)?,
            }),
            _ => None,
        }
    }
}

#[derive(Serialize, Clone, Copy)]
#[cfg_attr(test, derive(serde::Deserialize))]
#[serde(rename_all = "lowercase")]
pub(super) enum ActionName {
    Issue,
    Return,
    Payment,
}

impl ActionName {
    /// The name as serde writes it.
    pub(super) fn from_name(name: &str) -> Option<ActionName> {
        Some(match name {
            "issue" => ActionName::Issue,
            "return" => ActionName::Return,
            "payment" => ActionName::Payment,
            _ => return None,
        })
    }

    /// The action with these fields; `None` when they do not fit it.
    pub(super) fn with(
        self,
        cardnumber: Option<Cardnumber>,
        barcode: Option<Barcode>,
        amount: Option<Amount>,
    ) -> Option<Action> {
        match (self, cardnumber, barcode, amount) {
            (ActionName::Issue, Some(cardnumber), Some(barcode), None) => Some(Action::Issue {
                cardnumber,
                barcode,
            }),
            (ActionName::Return, None, Some(barcode), None) => Some(Action::Return { barcode }),
            (ActionName::Payment, Some(cardnumber), None, Some(amount)) => {
                Some(Action::Payment { cardnumber, amount })
            }
            _ => None,
        }
    }
}

impl Row {
    fn of(tx: &Transaction) -> Row {
        let name = match tx.action {
            Action::Issue { .. } => ActionName::Issue,
            Action::Return { .. } => ActionName::Return,
            Action::Payment { .. } => ActionName::Payment,
        };
        let history = tx
            .history()
            .iter()
            .map(|change| {
                Step(
                    Time(change.at),
                    StatusName::of(&change.status),
                    change.status.detail().map(str::to_owned),
                )
            })
            .collect();
        Row(
            tx.id.clone(),
            Time(tx.recorded_at),
            tx.branchcode.clone(),
            name,
            tx.action.cardnumber().cloned(),
            tx.action.barcode().cloned(),
            tx.action.amount(),
            history,
            tx.exported_at.map(Time),
        )
    }

    /// The transaction of a row serde read (the reader before [`read_chunk`], kept as the
    /// reference its tests compare with).
    #[cfg(test)]
    fn into_transaction(self) -> Result<Transaction, String> {
        use crate::transaction::StatusChange;
        let Row(id, recorded_at, branchcode, name, cardnumber, barcode, amount, steps, exported) =
            self;
        let action = name
            .with(cardnumber, barcode, amount)
            .ok_or_else(|| format!("{id}: fields do not fit the action"))?;
        let history = steps
            .into_iter()
            .map(|Step(at, name, detail)| {
                name.with(detail.as_deref())
                    .map(|status| StatusChange { at: at.0, status })
                    .ok_or_else(|| format!("{id}: a status without its detail, or the reverse"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Transaction::from_parts(
            id.clone(),
            recorded_at.0,
            branchcode,
            action,
            history,
            exported.map(|t| t.0),
        )
        .ok_or_else(|| format!("{id}: empty status history"))
    }
}

/// An instant as whole milliseconds since 1970 (what the desk records), or as RFC 3339 text
/// when it has a finer part, so nothing is ever rounded.
#[derive(Clone, Copy)]
struct Time(DateTime<Utc>);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.timestamp_subsec_nanos() % 1_000_000 == 0 {
            s.serialize_i64(self.0.timestamp_millis())
        } else {
            self.0.serialize(s)
        }
    }
}

#[cfg(test)]
impl<'de> serde::Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Time;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("milliseconds or an RFC 3339 time")
            }
            fn visit_i64<E: serde::de::Error>(self, ms: i64) -> Result<Time, E> {
                DateTime::from_timestamp_millis(ms)
                    .map(Time)
                    .ok_or_else(|| E::custom("time out of range"))
            }
            fn visit_u64<E: serde::de::Error>(self, ms: u64) -> Result<Time, E> {
                let ms = i64::try_from(ms).map_err(|_| E::custom("time out of range"))?;
                self.visit_i64(ms)
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Time, E> {
                crate::zone::parse_rfc3339(text)
                    .map(Time)
                    .ok_or_else(|| E::custom("not an RFC 3339 date and time"))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The chunk's JSON text: `{"sum": [...], "v": 1, "txs": [row, ...]}` (see `Chunk` in the
/// source).
pub fn encode_chunk(txs: &[Transaction]) -> String {
    let chunk = Chunk {
        sum: ChunkSummary::of(txs)
            .map(|s| SummaryRow(s.queued, s.applied, s.first, s.last, Time(s.newest))),
        v: ARCHIVE_VERSION,
        txs: txs.iter().map(Row::of).collect(),
    };
    // Plain data; serialising it cannot fail.
    serde_json::to_string(&chunk).unwrap_or_default()
}

/// The key for a chunk of these transactions (sorted by id, not empty).
pub fn chunk_key(txs: &[Transaction]) -> String {
    key_with_prefix(ARCHIVE_PREFIX, txs)
}

/// `<prefix><first id>.<hash of all ids>`: two pages packing the same transactions write the
/// same entry, and different sets never overwrite each other.
pub(super) fn key_with_prefix(prefix: &str, txs: &[Transaction]) -> String {
    // FNV-1a over every id: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for tx in txs {
        for byte in tx.id.as_str().bytes().chain(std::iter::once(b'\n')) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let first = txs.first().map_or("", |tx| tx.id.as_str());
    format!("{prefix}{first}.{hash:016x}")
}

/// Reads a chunk: the value must be the JSON text [`encode_chunk`] writes, every transaction in
/// it readable. One bad transaction makes the whole chunk unreadable, so it is kept aside whole
/// and nothing in it is half-read. A version other than [`ARCHIVE_VERSION`] is
/// [`StoreError::UnknownEnvelope`] when the rest is well formed (rows of the right shape and
/// types), any other flaw [`StoreError::Corrupt`].
pub fn decode_chunk(key: &str, value: &Value) -> Result<Vec<Transaction>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    let text = value
        .as_str()
        .ok_or_else(|| corrupt("archive chunk is not text".to_owned()))?;
    let chunk = read_chunk(text).map_err(corrupt)?;
    if chunk.version != ARCHIVE_VERSION {
        return Err(StoreError::UnknownEnvelope {
            key: key.to_owned(),
            version: chunk.version,
        });
    }
    chunk.transactions.map_err(corrupt)
}

/// [`decode_chunk`] through serde, as it was before `read_chunk`: the reference the reader's
/// tests compare with.
#[cfg(test)]
pub(super) fn decode_chunk_serde(key: &str, value: &Value) -> Result<Vec<Transaction>, StoreError> {
    let chunk: ChunkAsRead = super::text::decode_text(
        key,
        value,
        "archive chunk",
        |c: &ChunkAsRead| c.v,
        ARCHIVE_VERSION,
    )?;
    chunk
        .txs
        .into_iter()
        .map(|row| {
            row.into_transaction()
                .map_err(|reason| StoreError::Corrupt {
                    key: key.to_owned(),
                    reason,
                })
        })
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
        puts.push(chunk_put(&txs));
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

/// The write of one chunk holding `txs` (accepted transactions, any number up to
/// [`ARCHIVE_CHUNK`]).
pub fn chunk_put(txs: &[Transaction]) -> Change {
    Change::Put {
        key: chunk_key(txs),
        value: Value::String(encode_chunk(txs)),
    }
}

/// What [`pack_plan`] decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Packing {
    /// Chunk puts, then removals of the single keys. Apply in order.
    pub changes: Vec<Change>,
    /// The transactions that move into the archive.
    pub packed: Vec<TransactionId>,
}
