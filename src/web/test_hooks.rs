//! Exports only the browser tests and benchmarks call, compiled with the `test-hooks` feature
//! into the test build (`www-test/`) and never into the add-on a library installs: seeding
//! storage (`syntheticEntries`), recording a batch in one write (`recordBatch`), and opening the
//! stores without a desk (`openStorage`).

use super::dto::{js_error, ErrorDto};
use super::{browser, state};
use crate::store;
use crate::{Action, Amount, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use std::collections::HashSet;
use wasm_bindgen::prelude::*;

fn storage_error(e: state::StorageFailure) -> JsValue {
    js_error(ErrorDto::new("storage", None, e.0))
}

fn error(kind: &str, detail: impl ToString) -> JsValue {
    js_error(ErrorDto::new(kind, None, detail))
}

/// Opens the stores the way a page that shows no desk would: reconciles them like the desk
/// does, without recovering interrupted sends (the storage benchmark times it). Resolves to the
/// number of transactions.
#[wasm_bindgen(js_name = openStorage)]
pub async fn open_storage() -> Result<u32, JsValue> {
    state::open(false, None).await.map_err(storage_error)?;
    Ok(state::with_journal(|j| j.len()) as u32)
}

/// How many of this page's refreshes before a send or an export read everything because their
/// barrier's event did not come.
#[wasm_bindgen(js_name = refreshesReadingEverything)]
pub fn refreshes_reading_everything() -> u32 {
    state::full_refreshes()
}

/// How many archive chunks this page's start left to read after the desk showed.
#[wasm_bindgen(js_name = archiveChunksLeftAtStart)]
pub fn archive_chunks_left_at_start() -> u32 {
    state::chunks_left_at_start() as u32
}

/// Whether archive chunks the start left are still unread.
#[wasm_bindgen(js_name = archiveUnread)]
pub fn archive_unread() -> bool {
    state::archive_unread()
}

/// `count` synthetic checkouts in the core's layout, as `{key: value}`, for seeding storage in
/// benchmarks and tests. Number `first + i` is recorded `first + i` seconds after 2026-01-01 UTC;
/// the first `unsent` of the batch stay `local`, the others are `applied`. Each gets a key of
/// its own (as recording and sending leave them); with `packed`, the applied ones are packed
/// into archive chunks as far as they fill them (as a desk in use for a while has them).
#[wasm_bindgen(js_name = syntheticEntries)]
pub fn synthetic_entries(
    first: u32,
    count: u32,
    unsent: u32,
    packed: Option<bool>,
) -> Result<JsValue, JsValue> {
    let start = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let branch = Branchcode::parse("DE-627").map_err(js_error)?;
    let mut txs = Vec::with_capacity(count as usize);
    for i in 0..count {
        let n = first + i;
        let at = start + Duration::seconds(i64::from(n));
        let action = Action::Issue {
            cardnumber: Cardnumber::parse(&format!("C{:04}", n % 1000)).map_err(js_error)?,
            barcode: Barcode::parse(&format!("S{n:08}")).map_err(js_error)?,
        };
        let mut tx = Transaction::record(
            TransactionId::new(at, u64::from(n)),
            at,
            branch.clone(),
            action,
        );
        if i >= unsent {
            let sent = tx
                .start_sending(at + Duration::hours(1))
                .and_then(|()| tx.finish_sending(at + Duration::hours(1), Status::Applied));
            sent.map_err(|e| js_error(ErrorDto::new("illegal-transition", None, e)))?;
        }
        txs.push(tx);
    }
    let packing = if packed == Some(true) {
        store::pack_plan(&txs)
    } else {
        store::Packing::default()
    };
    let in_chunks: HashSet<TransactionId> = packing.packed.iter().cloned().collect();
    let items = js_sys::Object::new();
    let chunks = packing.changes.into_iter().filter_map(|c| match c {
        store::Change::Put { key, value } => Some((key, value)),
        store::Change::Remove { .. } => None,
    });
    let single = txs
        .iter()
        .filter(|tx| !in_chunks.contains(&tx.id))
        .filter_map(|tx| match store::write_plan(tx).primary {
            store::Change::Put { key, value } => Some((key, value)),
            store::Change::Remove { .. } => None,
        });
    for (key, value) in chunks.chain(single) {
        js_sys::Reflect::set(
            &items,
            &JsValue::from_str(&key),
            &state::stored_value(&value)?,
        )?;
    }
    Ok(items.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecordDto {
    action: String,
    #[serde(default)]
    cardnumber: String,
    #[serde(default)]
    barcode: String,
    #[serde(default)]
    amount: String,
    /// Milliseconds since the epoch; now (plus its position in ms) when absent.
    at: Option<f64>,
}

fn parse_action(r: &RecordDto) -> Result<Action, crate::InputError> {
    Ok(match r.action.as_str() {
        "issue" => Action::Issue {
            cardnumber: Cardnumber::parse(&r.cardnumber)?,
            barcode: Barcode::parse(&r.barcode)?,
        },
        "return" => Action::Return {
            barcode: Barcode::parse(&r.barcode)?,
        },
        _ => Action::Payment {
            cardnumber: Cardnumber::parse(&r.cardnumber)?,
            amount: Amount::parse(&r.amount)?,
        },
    })
}

/// Records many transactions in one batch and one storage write (seeding a test or benchmark): `[{action, cardnumber, barcode, amount, at?}]`. All or nothing: the first invalid
/// entry refuses the whole batch. Resolves with how many were recorded.
#[wasm_bindgen(js_name = recordBatch)]
pub async fn record_batch(items: JsValue) -> Result<usize, JsValue> {
    let items: Vec<RecordDto> =
        serde_wasm_bindgen::from_value(items).map_err(|e| error("send-input", e))?;
    let branch = state::settings()
        .map(|s| s.branchcode)
        .ok_or_else(|| error("send-settings", "no settings"))?;
    let now = browser::now();
    let mut txs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let action = parse_action(item).map_err(js_error)?;
        let at = item
            .at
            .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
            .unwrap_or(now + chrono::TimeDelta::milliseconds(i as i64));
        let id = TransactionId::new(at, browser::random_u64()?);
        txs.push(Transaction::record(id, at, branch.clone(), action));
    }
    state::with_journal(|j| {
        for tx in &txs {
            j.record(tx.clone()).map_err(|e| error("send-state", &e))?;
        }
        Ok::<(), JsValue>(())
    })?;
    state::persist_many(&txs).await.map_err(storage_error)?;
    Ok(txs.len())
}
