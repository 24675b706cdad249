//! The stored form of a snapshot: a few versioned text entries, a few bytes per record.
//!
//! | key | value (JSON text) |
//! |---|---|
//! | `checks:meta` | `{"v":1,"generation":g,"taken_at":ms,"coverage":{…},"libraries":[…],"patron_chunks":p,"item_chunks":i}` |
//! | `checks:<g>:patrons:<n>` | `{"v":1,"count":c,"data":"<base64>"}`: up to [`CHUNK_RECORDS`] patrons |
//! | `checks:<g>:items:<n>` | the same for items |
//!
//! Inside `data`, records follow in key order, each a header byte of flags, then its key, then
//! only the fields its flags announce, as LEB128 varints (signed ones zigzag-encoded):
//!
//! - a key is either the numeric difference to the previous key, when both are the same text
//!   followed by a run of digits of the same length (sequential card numbers and barcodes cost
//!   one or two bytes), or the length of the prefix shared with the previous key, then the rest;
//! - dates are day numbers, an expiry date as the difference to the previous one; a patron id as
//!   the difference to the previous one; a home library as its place in the meta's list, only
//!   when it differs from the previous patron's.
//!
//! Every block of 64 records starts from an empty previous record, so it decodes alone:
//! the snapshot keeps this form in memory and a lookup decodes one block. A chunk holds whole
//! blocks, and only the last chunk of a list may end with a short one. A new snapshot is written
//! under the next generation and becomes the one read only when `checks:meta` names it: a
//! download that fails half way never replaces a good snapshot ([`write_plan`]).

use super::download::Unavailable;
use super::model::{
    key_order, Coverage, Holder, ItemRecord, PatronId, PatronRecord, PullRecord, Restriction,
    Snapshot,
};
use super::paging::List;
use crate::store::keys::{CHECKS_META_KEY, CHECKS_PREFIX, CHECKS_VERSION};
use crate::store::text::decode_text;
use crate::store::{Change, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Records per chunk (whole blocks of 64): a chunk holds well under 200 kB of text, small enough
/// to write in one go.
pub const CHUNK_RECORDS: usize = 16_384;

#[derive(Serialize, Deserialize)]
struct Meta {
    v: u64,
    generation: u64,
    taken_at: i64,
    coverage: Coverage,
    libraries: Vec<String>,
    patron_chunks: usize,
    item_chunks: usize,
    /// Lists left out and why; absent in snapshots written before it was kept.
    #[serde(default)]
    unavailable: Vec<(List, Unavailable)>,
    /// When the last full pull started (ms); absent when the snapshot was pulled whole, and in
    /// snapshots written before incremental pulls (all of them whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    full_at: Option<i64>,
    /// Koha's clock at the last pull's first answer (ms); absent: the next pull is a full one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    koha_at: Option<i64>,
    /// The server and login pulled from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Chunk {
    v: u64,
    count: usize,
    data: String,
}

/// The key of chunk `index` of the patrons (`kind` = `patrons`) or items of `generation`.
fn chunk_key(generation: u64, kind: &str, index: usize) -> String {
    format!("{CHECKS_PREFIX}{generation}:{kind}:{index}")
}

/// The writes that store `snapshot`: every chunk under a generation newer than the stored one
/// (`stored_meta`, the value of `checks:meta` if any), then `checks:meta` naming it, then the
/// removal of the old generation's chunks. Apply in order; if a write fails, stop: the old
/// snapshot stays the one read, and the new generation's chunks are left for the next attempt
/// to overwrite or for [`delete_plan`] to remove.
pub fn write_plan(snapshot: &Snapshot, stored_meta: Option<&Value>) -> Vec<Change> {
    let old = stored_meta.and_then(|value| read_meta(value).ok());
    let generation = old.as_ref().map_or(1, |meta| meta.generation + 1);
    let mut changes = Vec::new();
    let mut chunks = |table: &Table, kind: &str| -> usize {
        let pieces = table.chunks();
        let count = pieces.len();
        for (index, (records, bytes)) in pieces.into_iter().enumerate() {
            changes.push(put_chunk(
                chunk_key(generation, kind, index),
                records,
                bytes,
            ));
        }
        count
    };
    let patron_count = chunks(snapshot.patron_table(), "patrons");
    let item_count = chunks(snapshot.item_table(), "items");
    let meta = Meta {
        v: CHECKS_VERSION,
        generation,
        taken_at: snapshot.taken_at().timestamp_millis(),
        coverage: snapshot.coverage(),
        libraries: snapshot.libraries().to_vec(),
        patron_chunks: patron_count,
        item_chunks: item_count,
        unavailable: snapshot.unavailable().to_vec(),
        full_at: snapshot.pull().full_at.map(|t| t.timestamp_millis()),
        koha_at: snapshot.pull().koha_at.map(|t| t.timestamp_millis()),
        source: snapshot.pull().source.clone(),
    };
    changes.push(Change::Put {
        key: CHECKS_META_KEY.to_owned(),
        value: Value::String(to_text(&meta)),
    });
    if let Some(old) = old {
        changes.extend(chunk_keys(&old).map(|key| Change::Remove { key }));
    }
    changes
}

/// The writes that delete the stored snapshot: `checks:meta` first (so nothing half-deleted is
/// ever read), then every other `checks:` key among `keys` (all stored keys), including chunks
/// a failed download left behind.
pub fn delete_plan<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<Change> {
    let mut changes = vec![Change::Remove {
        key: CHECKS_META_KEY.to_owned(),
    }];
    changes.extend(
        keys.into_iter()
            .filter(|key| key.starts_with(CHECKS_PREFIX) && *key != CHECKS_META_KEY)
            .map(|key| Change::Remove {
                key: key.to_owned(),
            }),
    );
    changes
}

/// Where an entry of the snapshot is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `browser.storage.local`: `checks:meta` only. Its change events tell every page that
    /// another snapshot is in use, and the desk's start reads it with everything else there.
    Local,
    /// The add-on's own IndexedDB database: the chunks, megabytes for a large library. Kept out
    /// of `browser.storage.local`, whose every entry the desk's start reads at once.
    Chunks,
}

/// Where each of a [`write_plan`]'s or [`delete_plan`]'s writes goes, in the plan's order.
/// `checks:meta` goes to [`Place::Local`], a chunk to [`Place::Chunks`]. A chunk's removal goes
/// to both: earlier builds kept the chunks in `browser.storage.local` too, and removing a key
/// that is not there does nothing.
pub fn placed(plan: Vec<Change>) -> Vec<(Place, Change)> {
    let mut writes = Vec::with_capacity(plan.len());
    for change in plan {
        let key = match &change {
            Change::Put { key, .. } | Change::Remove { key } => key,
        };
        if key == CHECKS_META_KEY {
            writes.push((Place::Local, change));
        } else if matches!(change, Change::Remove { .. }) {
            writes.push((Place::Chunks, change.clone()));
            writes.push((Place::Local, change));
        } else {
            writes.push((Place::Chunks, change));
        }
    }
    writes
}

/// The keys of the chunks the stored `checks:meta` names (what to read besides it), or none if
/// it is unreadable ([`read_snapshot`] then says why).
pub fn snapshot_keys(meta: &Value) -> Vec<String> {
    read_meta(meta)
        .map(|meta| chunk_keys(&meta).collect())
        .unwrap_or_default()
}

/// Reads the stored snapshot: `meta` is the value of `checks:meta`, `entry` gives the value of
/// any other key. `Ok(None)` when there is no snapshot.
pub fn read_snapshot<'a>(
    meta: Option<&Value>,
    entry: impl Fn(&str) -> Option<&'a Value>,
) -> Result<Option<Snapshot>, StoreError> {
    let Some(meta) = meta else {
        return Ok(None);
    };
    let meta = read_meta(meta)?;
    let taken_at = DateTime::<Utc>::from_timestamp_millis(meta.taken_at)
        .ok_or_else(|| corrupt(CHECKS_META_KEY, "time out of range"))?;
    let mut patrons = TableReader::default();
    for index in 0..meta.patron_chunks {
        let key = chunk_key(meta.generation, "patrons", index);
        let (bytes, count) = read_chunk(&key, &entry)?;
        patrons
            .add(&bytes, count, |block, n, out: &mut Vec<PatronRecord>| {
                decode_patrons(block, n, &meta.libraries, out)
            })
            .map_err(|reason| corrupt(&key, reason))?;
    }
    let mut items = TableReader::default();
    for index in 0..meta.item_chunks {
        let key = chunk_key(meta.generation, "items", index);
        let (bytes, count) = read_chunk(&key, &entry)?;
        items
            .add(&bytes, count, decode_items)
            .map_err(|reason| corrupt(&key, reason))?;
    }
    let patron_ids = patrons.ids;
    let instant = |ms: Option<i64>| {
        ms.map(|ms| {
            DateTime::<Utc>::from_timestamp_millis(ms)
                .ok_or_else(|| corrupt(CHECKS_META_KEY, "time out of range"))
        })
        .transpose()
    };
    let pull = PullRecord {
        full_at: instant(meta.full_at)?,
        koha_at: instant(meta.koha_at)?,
        source: meta.source.clone(),
    };
    Ok(Some(
        Snapshot::from_parts(
            taken_at,
            meta.coverage,
            meta.libraries,
            patrons.table,
            items.table,
            patron_ids,
        )
        .with_unavailable(meta.unavailable)
        .with_pull(pull),
    ))
}

fn read_meta(value: &Value) -> Result<Meta, StoreError> {
    decode_versioned(CHECKS_META_KEY, value, "checks meta", |m: &Meta| m.v)
}

/// Only the version of an entry, to tell a newer format from a damaged one.
#[derive(Deserialize)]
struct Version {
    v: u64,
}

/// Reads a versioned text entry of this module. An entry this build cannot read whose version
/// is not [`CHECKS_VERSION`] is [`StoreError::UnknownEnvelope`] (a newer add-on changed the
/// format), not corrupt.
fn decode_versioned<T: serde::de::DeserializeOwned>(
    key: &str,
    value: &Value,
    what: &str,
    version_of: impl Fn(&T) -> u64,
) -> Result<T, StoreError> {
    decode_text(key, value, what, version_of, CHECKS_VERSION).map_err(|error| {
        match decode_text(key, value, what, |v: &Version| v.v, CHECKS_VERSION) {
            Err(newer @ StoreError::UnknownEnvelope { .. }) => newer,
            _ => error,
        }
    })
}

fn chunk_keys(meta: &Meta) -> impl Iterator<Item = String> + '_ {
    let patrons = (0..meta.patron_chunks).map(|i| chunk_key(meta.generation, "patrons", i));
    let items = (0..meta.item_chunks).map(|i| chunk_key(meta.generation, "items", i));
    patrons.chain(items)
}

fn read_chunk<'a>(
    key: &str,
    entry: &impl Fn(&str) -> Option<&'a Value>,
) -> Result<(Vec<u8>, usize), StoreError> {
    let value = entry(key).ok_or_else(|| corrupt(key, "missing"))?;
    let chunk: Chunk = decode_versioned(key, value, "checks chunk", |c: &Chunk| c.v)?;
    let bytes = base64_decode(&chunk.data).ok_or_else(|| corrupt(key, "data is not base64"))?;
    Ok((bytes, chunk.count))
}

fn put_chunk(key: String, count: usize, data: &[u8]) -> Change {
    let chunk = Chunk {
        v: CHECKS_VERSION,
        count,
        data: base64_encode(data),
    };
    Change::Put {
        key,
        value: Value::String(to_text(&chunk)),
    }
}

fn to_text<T: Serialize>(value: &T) -> String {
    // Plain data; serialising it cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Records per block: each block is encoded from a fresh start, so a lookup decodes one block
/// of at most this many records after a binary search over the blocks' first keys.
pub(crate) const BLOCK: usize = 64;

/// Records in the encoded form, as the snapshot holds them in memory: a few bytes each (what is
/// stored, before base64), and the first key and offset of each [`BLOCK`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    bytes: Vec<u8>,
    blocks: Vec<Block>,
    count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    first_key: Box<str>,
    offset: usize,
}

impl Table {
    /// Encodes `records` (sorted, keys unique) block by block.
    pub(crate) fn encode<R>(
        records: &[R],
        key: impl Fn(&R) -> &str,
        encode: impl Fn(&[R], &mut Vec<u8>),
    ) -> Table {
        let mut table = Table {
            count: records.len(),
            ..Table::default()
        };
        for block in records.chunks(BLOCK) {
            table.blocks.push(Block {
                first_key: block.first().map(&key).unwrap_or_default().into(),
                offset: table.bytes.len(),
            });
            encode(block, &mut table.bytes);
        }
        table
    }

    /// How many records it holds.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The records of the block that would hold `key`, decoded (`O(log n)` to find it).
    pub(crate) fn block_for<R>(
        &self,
        key: &str,
        decode: impl Fn(&[u8], usize, &mut Vec<R>) -> Result<usize, String>,
    ) -> Vec<R> {
        let after = self
            .blocks
            .partition_point(|b| key_order(&b.first_key, key).is_le());
        after
            .checked_sub(1)
            .map(|block| self.block(block, decode))
            .unwrap_or_default()
    }

    /// The records of block `index`, decoded.
    pub(crate) fn block<R>(
        &self,
        index: usize,
        decode: impl Fn(&[u8], usize, &mut Vec<R>) -> Result<usize, String>,
    ) -> Vec<R> {
        let Some(start) = self.blocks.get(index).map(|b| b.offset) else {
            return Vec::new();
        };
        let end = self
            .blocks
            .get(index + 1)
            .map_or(self.bytes.len(), |b| b.offset);
        let count = (self.count - index * BLOCK).min(BLOCK);
        let mut out = Vec::with_capacity(count);
        // A table is checked whole when it is made or read: decoding it again cannot fail.
        match decode(&self.bytes[start..end], count, &mut out) {
            Ok(_) => out,
            Err(_) => Vec::new(),
        }
    }

    /// Every record, decoded.
    pub(crate) fn all<R>(
        &self,
        decode: impl Fn(&[u8], usize, &mut Vec<R>) -> Result<usize, String>,
    ) -> Vec<R> {
        (0..self.blocks.len())
            .flat_map(|index| self.block(index, &decode))
            .collect()
    }

    /// The stored chunks: each [`CHUNK_RECORDS`] records (whole blocks) and their bytes.
    fn chunks(&self) -> Vec<(usize, &[u8])> {
        let blocks_per_chunk = CHUNK_RECORDS / BLOCK;
        (0..self.blocks.len())
            .step_by(blocks_per_chunk)
            .map(|first| {
                let start = self.blocks[first].offset;
                let end = self
                    .blocks
                    .get(first + blocks_per_chunk)
                    .map_or(self.bytes.len(), |b| b.offset);
                let records = (self.count - first * BLOCK).min(CHUNK_RECORDS);
                (records, &self.bytes[start..end])
            })
            .collect()
    }
}

/// Builds a [`Table`] from stored chunks, checking every record on the way (each block decodes,
/// keys strictly in order across blocks and chunks). Keeps the last record seen and, for
/// patrons, every record's id (through `seen`, which the caller drains).
struct TableReader<R> {
    table: Table,
    /// The last record read, to check the next block's order against.
    last: Option<R>,
    /// For patrons, every record's id in order.
    ids: Vec<PatronId>,
}

impl<R> Default for TableReader<R> {
    fn default() -> Self {
        TableReader {
            table: Table::default(),
            last: None,
            ids: Vec::new(),
        }
    }
}

impl<R: Keyed> TableReader<R> {
    fn add(
        &mut self,
        bytes: &[u8],
        count: usize,
        decode: impl Fn(&[u8], usize, &mut Vec<R>) -> Result<usize, String>,
    ) -> Result<(), String> {
        if self.table.count % BLOCK != 0 {
            return Err("a chunk after a short one".into());
        }
        let mut at = 0;
        let mut left = count;
        while left > 0 {
            let n = left.min(BLOCK);
            let mut block = Vec::with_capacity(n);
            let used = decode(&bytes[at..], n, &mut block)?;
            let first = block.first().ok_or("an empty block")?;
            follows(self.last.as_ref().map(Keyed::key), first.key())?;
            self.table.blocks.push(Block {
                first_key: first.key().into(),
                offset: self.table.bytes.len() + at,
            });
            R::ids(&block, &mut self.ids);
            self.last = block.into_iter().last();
            at += used;
            left -= n;
        }
        if at != bytes.len() {
            return Err("bytes after the last record".into());
        }
        self.table.bytes.extend_from_slice(bytes);
        self.table.count += count;
        Ok(())
    }
}

/// A record with a key, and the ids a [`TableReader`] collects of each block.
trait Keyed: Sized {
    fn key(&self) -> &str;
    /// Adds the block's patron ids to `ids` (the snapshot indexes patrons by id).
    fn ids(_block: &[Self], _ids: &mut Vec<PatronId>) {}
}

impl Keyed for PatronRecord {
    fn key(&self) -> &str {
        &self.cardnumber
    }
    fn ids(block: &[Self], ids: &mut Vec<PatronId>) {
        ids.extend(block.iter().map(|p| p.patron_id));
    }
}

impl Keyed for ItemRecord {
    fn key(&self) -> &str {
        &self.barcode
    }
}

// Header bits of a patron.
const KEY_DELTA: u8 = 1;
const RESTRICTED: u8 = 1 << 1;
const RESTRICTED_UNTIL: u8 = 1 << 2;
const CARD_LOST: u8 = 1 << 3;
const ADDRESS_IN_DOUBT: u8 = 1 << 4;
const BALANCE: u8 = 1 << 5;
const EXPIRY: u8 = 1 << 6;
const LIBRARY_CHANGED: u8 = 1 << 7;

// Header bits of an item (bit 0 is KEY_DELTA too).
const LOST: u8 = 1 << 1;
const WITHDRAWN: u8 = 1 << 2;
const NOT_FOR_LOAN: u8 = 1 << 3;
const DAMAGED: u8 = 1 << 4;
const ON_LOAN: u8 = 1 << 5;
const HOLDER_KNOWN: u8 = 1 << 6;

/// Encodes patrons, sorted by card number, from a fresh start; `libraries` holds every home
/// library, sorted.
pub(crate) fn encode_patrons(patrons: &[PatronRecord], libraries: &[String], out: &mut Vec<u8>) {
    let mut keys = KeyEncoder::default();
    let (mut last_id, mut last_expiry, mut last_library) = (0i64, 0i64, None);
    for patron in patrons {
        let mut body = Vec::with_capacity(12);
        let mut header = keys.encode(patron.cardnumber.as_bytes(), &mut body);
        let library = libraries.binary_search(&patron.library).unwrap_or(0);
        if last_library != Some(library) {
            header |= LIBRARY_CHANGED;
            put_varint(&mut body, library as u64);
            last_library = Some(library);
        }
        let id = i64::from(patron.patron_id);
        put_signed(&mut body, id - last_id);
        last_id = id;
        if let Some(expiry) = patron.expiry {
            header |= EXPIRY;
            let day = day_number(expiry);
            put_signed(&mut body, day - last_expiry);
            last_expiry = day;
        }
        match patron.restriction {
            Restriction::Unrestricted => {}
            Restriction::Indefinite => header |= RESTRICTED,
            Restriction::Until(until) => {
                header |= RESTRICTED | RESTRICTED_UNTIL;
                put_signed(&mut body, day_number(until));
            }
        }
        if patron.card_lost {
            header |= CARD_LOST;
        }
        if patron.address_in_doubt {
            header |= ADDRESS_IN_DOUBT;
        }
        if patron.balance_cents != 0 {
            header |= BALANCE;
            put_signed(&mut body, patron.balance_cents);
        }
        out.push(header);
        out.extend_from_slice(&body);
    }
}

/// Decodes `count` patrons that [`encode_patrons`] wrote at the start of `bytes`; returns how
/// many bytes they took.
pub(crate) fn decode_patrons(
    bytes: &[u8],
    count: usize,
    libraries: &[String],
    out: &mut Vec<PatronRecord>,
) -> Result<usize, String> {
    let mut input = Reader { bytes, at: 0 };
    let mut keys = KeyDecoder::default();
    let (mut last_id, mut last_expiry) = (0i64, 0i64);
    let mut library: Option<&String> = None;
    for _ in 0..count {
        let header = input.byte()?;
        let cardnumber = keys.decode(header & KEY_DELTA != 0, &mut input)?;
        if let Some(previous) = out.last() {
            follows(Some(&previous.cardnumber), &cardnumber)?;
        }
        if header & LIBRARY_CHANGED != 0 {
            let index = input.varint()?;
            library = Some(
                usize::try_from(index)
                    .ok()
                    .and_then(|i| libraries.get(i))
                    .ok_or("unknown library")?,
            );
        }
        last_id += input.signed()?;
        let patron_id = u32::try_from(last_id).map_err(|_| "patron id out of range")?;
        let expiry = if header & EXPIRY != 0 {
            last_expiry += input.signed()?;
            Some(date_of(last_expiry)?)
        } else {
            None
        };
        let restriction = match (header & RESTRICTED != 0, header & RESTRICTED_UNTIL != 0) {
            (false, false) => Restriction::Unrestricted,
            (true, false) => Restriction::Indefinite,
            (true, true) => Restriction::Until(date_of(input.signed()?)?),
            (false, true) => return Err("an end date without a restriction".into()),
        };
        let balance_cents = if header & BALANCE != 0 {
            input.signed()?
        } else {
            0
        };
        out.push(PatronRecord {
            cardnumber,
            patron_id,
            expiry,
            restriction,
            card_lost: header & CARD_LOST != 0,
            address_in_doubt: header & ADDRESS_IN_DOUBT != 0,
            balance_cents,
            library: library.ok_or("no library")?.clone(),
        });
    }
    Ok(input.at)
}

/// Encodes items, sorted by barcode, from a fresh start.
pub(crate) fn encode_items(items: &[ItemRecord], out: &mut Vec<u8>) {
    let mut keys = KeyEncoder::default();
    for item in items {
        let mut body = Vec::with_capacity(8);
        let mut header = keys.encode(item.barcode.as_bytes(), &mut body);
        for (set, bit) in [
            (item.lost, LOST),
            (item.withdrawn, WITHDRAWN),
            (item.not_for_loan, NOT_FOR_LOAN),
            (item.damaged, DAMAGED),
        ] {
            if set {
                header |= bit;
            }
        }
        match item.on_loan {
            None => {}
            Some(Holder::Unknown) => header |= ON_LOAN,
            Some(Holder::Patron(id)) => {
                header |= ON_LOAN | HOLDER_KNOWN;
                put_varint(&mut body, u64::from(id));
            }
        }
        out.push(header);
        out.extend_from_slice(&body);
    }
}

/// Decodes `count` items that [`encode_items`] wrote at the start of `bytes`; returns how many
/// bytes they took.
pub(crate) fn decode_items(
    bytes: &[u8],
    count: usize,
    out: &mut Vec<ItemRecord>,
) -> Result<usize, String> {
    let mut input = Reader { bytes, at: 0 };
    let mut keys = KeyDecoder::default();
    for _ in 0..count {
        let header = input.byte()?;
        let barcode = keys.decode(header & KEY_DELTA != 0, &mut input)?;
        if let Some(previous) = out.last() {
            follows(Some(&previous.barcode), &barcode)?;
        }
        let on_loan = match (header & ON_LOAN != 0, header & HOLDER_KNOWN != 0) {
            (false, false) => None,
            (true, false) => Some(Holder::Unknown),
            (true, true) => {
                let id = u32::try_from(input.varint()?).map_err(|_| "patron id out of range")?;
                Some(Holder::Patron(id))
            }
            (false, true) => return Err("a holder without a loan".into()),
        };
        out.push(ItemRecord {
            barcode,
            lost: header & LOST != 0,
            withdrawn: header & WITHDRAWN != 0,
            not_for_loan: header & NOT_FOR_LOAN != 0,
            damaged: header & DAMAGED != 0,
            on_loan,
        });
    }
    Ok(input.at)
}

/// Keys must come strictly in order (lookups are binary searches), across chunks too.
fn follows(previous: Option<&str>, key: &str) -> Result<(), String> {
    match previous {
        Some(previous) if key_order(previous, key).is_ge() => {
            Err(format!("{key:?} is out of order"))
        }
        _ => Ok(()),
    }
}

/// The longest digit string that fits a `u64` in any value.
const MAX_TAIL_DIGITS: usize = 19;

/// Where the trailing run of digits starts (limited to [`MAX_TAIL_DIGITS`]).
fn tail_start(key: &[u8]) -> usize {
    let digits = key.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    key.len() - digits.min(MAX_TAIL_DIGITS)
}

fn tail_value(tail: &[u8]) -> u64 {
    tail.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'))
}

#[derive(Default)]
struct KeyEncoder {
    previous: Vec<u8>,
}

impl KeyEncoder {
    /// Writes `key` after the previous one; returns [`KEY_DELTA`] when written as a difference.
    fn encode(&mut self, key: &[u8], out: &mut Vec<u8>) -> u8 {
        let (start, previous_start) = (tail_start(key), tail_start(&self.previous));
        let same_shape = !self.previous.is_empty()
            && start < key.len()
            && key.len() == self.previous.len()
            && start == previous_start
            && key[..start] == self.previous[..start];
        let delta = same_shape
            .then(|| tail_value(&key[start..]).checked_sub(tail_value(&self.previous[start..])))
            .flatten()
            .filter(|&d| d > 0);
        let header = if let Some(delta) = delta {
            put_varint(out, delta);
            KEY_DELTA
        } else {
            let shared = key
                .iter()
                .zip(&self.previous)
                .take_while(|(a, b)| a == b)
                .count();
            put_varint(out, shared as u64);
            put_varint(out, (key.len() - shared) as u64);
            out.extend_from_slice(&key[shared..]);
            0
        };
        self.previous.clear();
        self.previous.extend_from_slice(key);
        header
    }
}

#[derive(Default)]
struct KeyDecoder {
    previous: Vec<u8>,
}

impl KeyDecoder {
    fn decode(&mut self, delta: bool, input: &mut Reader) -> Result<String, String> {
        if delta {
            let start = tail_start(&self.previous);
            let width = self.previous.len() - start;
            if width == 0 {
                return Err("a difference to a key without digits".into());
            }
            let mut value = tail_value(&self.previous[start..])
                .checked_add(input.varint()?)
                .ok_or("key out of range")?;
            // The digits in place, zero-padded to the same width (every stored key goes through
            // here when the desk starts: no formatting machinery).
            for digit in self.previous[start..].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
            if value != 0 {
                return Err("key out of range".into());
            }
        } else {
            let shared = usize::try_from(input.varint()?).map_err(|_| "bad prefix")?;
            let rest = usize::try_from(input.varint()?).map_err(|_| "bad length")?;
            if shared > self.previous.len() {
                return Err("shared prefix longer than the previous key".into());
            }
            let suffix = input.take(rest)?;
            self.previous.truncate(shared);
            self.previous.extend_from_slice(suffix);
        }
        String::from_utf8(self.previous.clone()).map_err(|_| "key is not UTF-8".into())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self.bytes.get(self.at).ok_or("cut short")?;
        self.at += 1;
        Ok(byte)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).ok_or("cut short")?;
        let slice = self.bytes.get(self.at..end).ok_or("cut short")?;
        self.at = end;
        Ok(slice)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("number too long".into())
    }

    fn signed(&mut self) -> Result<i64, String> {
        let n = self.varint()?;
        Ok((n >> 1) as i64 ^ -((n & 1) as i64))
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_signed(out: &mut Vec<u8>, n: i64) {
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn day_number(date: NaiveDate) -> i64 {
    date.signed_duration_since(NaiveDate::default()).num_days()
}

fn date_of(day: i64) -> Result<NaiveDate, String> {
    NaiveDate::default()
        .checked_add_signed(chrono::TimeDelta::try_days(day).ok_or("date out of range")?)
        .ok_or_else(|| "date out of range".into())
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 without padding: JSON text needs no escapes for it.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=group.len() {
            out.push(char::from(BASE64[(n >> (18 - 6 * i) & 0x3f) as usize]));
        }
    }
    out
}

/// Each byte's value in [`BASE64`], or [`NOT_BASE64`]: a stored snapshot of a million items
/// is several megabytes of base64, decoded whole when the desk starts.
const BASE64_VALUES: [u8; 256] = {
    let mut values = [NOT_BASE64; 256];
    let mut i = 0;
    while i < 64 {
        values[BASE64[i] as usize] = i as u8;
        i += 1;
    }
    values
};
const NOT_BASE64: u8 = 0xff;

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for group in text.as_bytes().chunks(4) {
        if group.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in group.iter().enumerate() {
            let value = BASE64_VALUES[usize::from(c)];
            if value == NOT_BASE64 {
                return None;
            }
            n |= u32::from(value) << (18 - 6 * i);
        }
        for i in 0..group.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 200) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE");
        assert_eq!(base64_decode("TWE!"), None);
    }

    #[test]
    fn sequential_keys_cost_one_byte_each() {
        let mut keys = KeyEncoder::default();
        let mut out = Vec::new();
        assert_eq!(keys.encode(b"39001000000123", &mut out), 0);
        out.clear();
        assert_eq!(keys.encode(b"39001000000125", &mut out), KEY_DELTA);
        assert_eq!(out, [2]);
    }

    #[test]
    fn varints_reject_what_does_not_fit_64_bits() {
        let mut out = Vec::new();
        put_varint(&mut out, u64::MAX);
        assert_eq!(Reader { bytes: &out, at: 0 }.varint(), Ok(u64::MAX));
        let too_long = [0xff; 10];
        assert!(Reader {
            bytes: &too_long,
            at: 0
        }
        .varint()
        .is_err());
    }
}
