//! Opening without reading the whole archive first.
//!
//! With 50,000 stored, reading every archive chunk and indexing its transactions was most of a
//! desk's start. A chunk holds transactions Koha accepted, which nothing at a start changes
//! (recovery, reconciliation with the mirror, packing and export marks concern other
//! transactions). A chunk whose transactions no other entry can hold therefore adds only its
//! rows to what a start finds, and its summary (see [`ChunkSummary`]) says how many and how new
//! they are. Such a chunk is *deferred*: the start counts it from the summary, reads the chunks
//! whose rows the first page of the table shows, and reads the rest once the desk is ready,
//! before anything else looks at the journal. The result is the same as reading everything at
//! the start, only later.
//!
//! A chunk is deferred only when the stored schema is this build's (no migration runs), when
//! every chunk stored has a summary (one without has ids this module cannot know before reading
//! it), and when its range of ids, first to last, overlaps no other chunk's and holds no id of a
//! single key, a pending chunk, a mirror entry or an export record. Ids are compared as the stored text, as
//! everywhere in the store.

use super::archive::{decode_chunk, ChunkSummary};
use super::chunk_text::read_summary;
use super::error::StoreError;
use super::exports::decode_export;
use super::keys::{
    id_of_mirror_key, id_of_transaction_key, is_archive_key, is_export_key, is_pending_key,
    CURRENT_SCHEMA,
};
use super::snapshot::schema_of;
use crate::transaction::{Transaction, TransactionId};
use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde_json::Value;

/// A stored chunk's text the shell has not copied out of the browser's answer yet: its start,
/// enough for the summary, and how to copy all of it. Copying every chunk's text into the core
/// took a desk's start 25–40 ms at 50,000 stored (megabytes of text), for chunks most of which
/// it leaves unread until it is ready.
pub struct LazyText {
    head: String,
    whole: Box<dyn FnOnce() -> String>,
}

impl LazyText {
    /// `head` must be the start of what `whole` returns, as long as the shell likes: a chunk
    /// whose summary does not fit in it is copied whole at the start.
    pub fn new(head: String, whole: impl FnOnce() -> String + 'static) -> Self {
        LazyText {
            head,
            whole: Box::new(whole),
        }
    }

    /// The whole text, as the stored value.
    pub fn into_value(self) -> Value {
        Value::String((self.whole)())
    }

    /// `entries` with the texts copied: what a start that reads everything is given.
    pub fn copy_all(entries: &mut Vec<(String, Value)>, texts: Vec<(String, LazyText)>) {
        entries.extend(
            texts
                .into_iter()
                .map(|(key, text)| (key, text.into_value())),
        );
    }
}

/// Pending chunks already read at this start, by key (see [`defer_chunks`]).
pub(super) type PendingRead = FxHashMap<String, Result<Vec<Transaction>, StoreError>>;

/// The store of record's entries as the shell read them: values, and archive chunks whose
/// texts are still in the browser's answer.
#[derive(Debug, Default)]
pub struct ReadEntries {
    /// Entries given as values.
    pub values: Vec<(String, Value)>,
    /// Archive chunks, by key, their texts not copied yet.
    pub texts: Vec<(String, LazyText)>,
}

impl ReadEntries {
    /// Every entry as a value, the texts copied.
    pub fn into_values(self) -> Vec<(String, Value)> {
        let mut values = self.values;
        LazyText::copy_all(&mut values, self.texts);
        values
    }
}

impl std::fmt::Debug for LazyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyText")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// A deferred chunk's stored value: given whole, or still in the browser's answer.
#[derive(Debug)]
enum ChunkValue {
    Given(Value),
    Lazy(LazyText),
}

impl ChunkValue {
    fn into_value(self) -> Value {
        match self {
            ChunkValue::Given(value) => value,
            ChunkValue::Lazy(text) => text.into_value(),
        }
    }
}

/// A chunk left unread at the start.
#[derive(Debug)]
struct DeferredChunk {
    key: String,
    value: ChunkValue,
    summary: ChunkSummary,
}

/// The chunks a start left unread, and what their summaries say.
#[derive(Debug, Default)]
pub struct Deferred {
    /// Oldest newest row first: the chunks the first page needs are taken from the end.
    chunks: Vec<DeferredChunk>,
    /// Chunks read for the first page that could not be read: kept aside when the rest is read.
    unreadable: Vec<(String, Value, StoreError)>,
}

impl Deferred {
    /// Whether no chunk was deferred (and none failed to read).
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.unreadable.is_empty()
    }

    /// How many chunks are deferred.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// How many deferred transactions Koha queued and applied, by the summaries.
    pub fn counts(&self) -> (usize, usize) {
        self.chunks.iter().fold((0, 0), |(q, a), c| {
            (q + c.summary.queued, a + c.summary.applied)
        })
    }

    /// No deferred transaction was recorded after this instant.
    pub fn newest(&self) -> Option<DateTime<Utc>> {
        self.chunks.last().map(|c| c.summary.newest)
    }

    /// Reads the deferred chunk with the newest rows: its transactions, or `None` when nothing
    /// is deferred. A chunk that cannot be read is kept for [`Deferred::read_all`] to report
    /// and gives no transactions.
    pub fn read_newest(&mut self) -> Option<Vec<Transaction>> {
        let chunk = self.chunks.pop()?;
        let value = chunk.value.into_value();
        Some(match decode_chunk(&chunk.key, &value) {
            Ok(txs) => txs,
            Err(error) => {
                self.unreadable.push((chunk.key, value, error));
                Vec::new()
            }
        })
    }

    /// Reads every deferred chunk: the transactions, and the chunks that could not be read
    /// (with their values, to be kept aside as a start keeps any unreadable entry).
    pub fn read_all(mut self) -> (Vec<Transaction>, Vec<(String, Value, StoreError)>) {
        let mut transactions = Vec::new();
        while let Some(txs) = self.read_newest() {
            transactions.extend(txs);
        }
        (transactions, self.unreadable)
    }
}

/// Where a chunk that may be deferred is: in `primary` at an index, or in `texts` at one.
#[derive(Clone, Copy)]
enum Place {
    Primary(usize),
    Text(usize),
}

/// Takes out of `primary` the archive chunks a start may read later (see the module docs), and
/// of `texts` (chunks whose text is still in the browser's answer) those too: the others are
/// copied and added to `primary`. The entries left keep their order, the added ones after them.
///
/// The pending chunks it reads for their ids go to `pending_read`, so that the start does not
/// read them again; only at the current schema, where no migration rewrites them.
pub fn defer_chunks(
    primary: &mut Vec<(String, Value)>,
    texts: Vec<(String, LazyText)>,
    mirror: &[(String, Value)],
    pending_read: &mut PendingRead,
) -> Deferred {
    // Migrations may rewrite any entry.
    if schema_of(primary) != Ok(Some(CURRENT_SCHEMA)) {
        LazyText::copy_all(primary, texts);
        return Deferred::default();
    }
    let mut texts: Vec<Option<(String, LazyText)>> = texts.into_iter().map(Some).collect();
    let mut chunks: Vec<(Place, ChunkSummary)> = Vec::new();
    for (index, entry) in texts.iter_mut().enumerate() {
        let summary = entry
            .as_ref()
            .and_then(|(_, text)| read_summary(&text.head))
            .filter(|summary| summary.first <= summary.last);
        match summary {
            Some(summary) => chunks.push((Place::Text(index), summary)),
            // Read as the others are: copied, it is one of `primary`'s chunks.
            None => primary.extend(entry.take().map(|(key, text)| (key, text.into_value()))),
        }
    }
    let all_texts = |texts: Vec<Option<(String, LazyText)>>| texts.into_iter().flatten().collect();
    let mut other_ids: Vec<TransactionId> = mirror
        .iter()
        .filter_map(|(key, _)| id_of_mirror_key(key))
        .collect();
    for (index, (key, value)) in primary.iter().enumerate() {
        if is_archive_key(key) {
            match value.as_str().and_then(read_summary) {
                Some(summary) if summary.first <= summary.last => {
                    chunks.push((Place::Primary(index), summary))
                }
                _ => {
                    LazyText::copy_all(primary, all_texts(texts));
                    return Deferred::default();
                }
            }
        } else if let Some(id) = id_of_transaction_key(key) {
            other_ids.push(id);
        } else if is_pending_key(key) {
            let read = decode_chunk(key, value);
            // An unreadable chunk holds nothing, at any start.
            if let Ok(txs) = &read {
                other_ids.extend(txs.iter().map(|tx| tx.id.clone()));
            }
            pending_read.insert(key.clone(), read);
        } else if is_export_key(key) {
            // An unreadable record marks nothing, at any start.
            if let Ok(record) = decode_export(key, value) {
                other_ids.extend(record.ids);
            }
        }
    }
    if chunks.is_empty() {
        LazyText::copy_all(primary, all_texts(texts));
        return Deferred::default();
    }
    other_ids.sort_unstable();
    let holds_other_id = |summary: &ChunkSummary| {
        let from = other_ids.partition_point(|id| *id < summary.first);
        other_ids.get(from).is_some_and(|id| *id <= summary.last)
    };
    // Sorted by first id, a range overlaps an earlier one when the largest last id before it
    // reaches it, and a later one when the next first id does.
    chunks.sort_by(|a, b| a.1.first.cmp(&b.1.first));
    let mut defer_primary: Vec<Option<ChunkSummary>> = vec![None; primary.len()];
    let mut defer_text: Vec<Option<ChunkSummary>> = vec![None; texts.len()];
    let mut largest_last: Option<TransactionId> = None;
    for i in 0..chunks.len() {
        let (place, summary) = &chunks[i];
        let overlaps_earlier = largest_last
            .as_ref()
            .is_some_and(|last| *last >= summary.first);
        let overlaps_later = chunks
            .get(i + 1)
            .is_some_and(|(_, next)| next.first <= summary.last);
        if !overlaps_earlier && !overlaps_later && !holds_other_id(summary) {
            match *place {
                Place::Primary(index) => defer_primary[index] = Some(summary.clone()),
                Place::Text(index) => defer_text[index] = Some(summary.clone()),
            }
        }
        if largest_last
            .as_ref()
            .is_none_or(|last| *last < summary.last)
        {
            largest_last = Some(summary.last.clone());
        }
    }
    let mut deferred = Deferred::default();
    let mut kept = Vec::with_capacity(primary.len());
    for ((key, value), summary) in std::mem::take(primary).into_iter().zip(defer_primary) {
        match summary {
            Some(summary) => deferred.chunks.push(DeferredChunk {
                key,
                value: ChunkValue::Given(value),
                summary,
            }),
            None => kept.push((key, value)),
        }
    }
    for (entry, summary) in texts.into_iter().zip(defer_text) {
        // `None`: copied into `primary` above.
        let Some((key, text)) = entry else {
            continue;
        };
        match summary {
            Some(summary) => deferred.chunks.push(DeferredChunk {
                key,
                value: ChunkValue::Lazy(text),
                summary,
            }),
            None => kept.push((key, text.into_value())),
        }
    }
    *primary = kept;
    deferred.chunks.sort_by_key(|c| c.summary.newest);
    deferred
}
