//! The browser shell: the `#[wasm_bindgen]` API the extension pages call. It does the I/O
//! (storage, clock, randomness) around the pure core and converts at the boundary.
#![allow(missing_docs)]

mod browser;
pub mod dto;

use crate::{Action, Barcode, Branchcode, Cardnumber, Transaction, TransactionId};
use chrono::{DateTime, Utc};
use dto::{js_error, to_js, ErrorDto, RowDto};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    static JOURNAL: RefCell<Vec<Transaction>> = const { RefCell::new(Vec::new()) };
}

const TX_PREFIX: &str = "tx:";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(browser::now_millis() as i64).unwrap_or_default()
}

fn storage_error(e: JsValue) -> JsValue {
    js_error(ErrorDto::new("storage", None, format!("{e:?}")))
}

/// Loads every stored transaction into memory; call once when a page opens.
#[wasm_bindgen(js_name = openDesk)]
pub async fn open_desk() -> Result<JsValue, JsValue> {
    let all = browser::local_get(&JsValue::NULL)
        .await
        .map_err(storage_error)?;
    let mut loaded = Vec::new();
    for entry in js_sys::Object::entries(&all).iter() {
        let pair: js_sys::Array = entry.into();
        let key = pair.get(0).as_string().unwrap_or_default();
        if key.starts_with(TX_PREFIX) {
            if let Ok(tx) = serde_wasm_bindgen::from_value::<Transaction>(pair.get(1)) {
                loaded.push(tx);
            }
        }
    }
    loaded.sort_by(|a, b| a.id.cmp(&b.id));
    JOURNAL.with(|j| *j.borrow_mut() = loaded);
    list_transactions()
}

/// Records a checkout; resolves only after `browser.storage.local` has stored it.
#[wasm_bindgen(js_name = recordCheckout)]
pub async fn record_checkout(cardnumber: String, barcode: String) -> Result<JsValue, JsValue> {
    let action = Action::Issue {
        cardnumber: Cardnumber::parse(&cardnumber).map_err(js_error)?,
        barcode: Barcode::parse(&barcode).map_err(js_error)?,
    };
    let at = now();
    let id = TransactionId::new(at, browser::random_u64()?);
    let branch = Branchcode::parse("LOCAL").map_err(js_error)?;
    let tx = Transaction::record(id, at, branch, action);
    let value = to_js(&tx)?;
    let key = format!("{TX_PREFIX}{}", tx.id);
    browser::local_set(&browser::single_item(&key, &value)?)
        .await
        .map_err(storage_error)?;
    let row = to_js(&RowDto::from(&tx));
    JOURNAL.with(|j| j.borrow_mut().push(tx));
    row
}

/// Every transaction, newest first.
#[wasm_bindgen(js_name = listTransactions)]
pub fn list_transactions() -> Result<JsValue, JsValue> {
    JOURNAL.with(|j| {
        let rows: Vec<RowDto> = j.borrow().iter().rev().map(RowDto::from).collect();
        to_js(&rows)
    })
}
