//! What the desk page calls: record, list, and keep in step with other pages.

use super::dto::{js_error, to_js, ErrorDto, RowDto};
use super::{browser, state};
use crate::journal::Filter;
use crate::{Action, Barcode, Branchcode, Cardnumber, Transaction, TransactionId};
use wasm_bindgen::prelude::*;

fn storage_error(e: state::StorageFailure) -> JsValue {
    js_error(ErrorDto::new("storage", None, e.0))
}

/// Loads both stores (reconciling them) and returns the first page of rows.
#[wasm_bindgen(js_name = openDesk)]
pub async fn open_desk() -> Result<JsValue, JsValue> {
    state::open(true).await.map_err(storage_error)?;
    list_transactions()
}

/// Records a checkout; resolves only after `browser.storage.local` has stored it.
#[wasm_bindgen(js_name = recordCheckout)]
pub async fn record_checkout(cardnumber: String, barcode: String) -> Result<JsValue, JsValue> {
    let action = Action::Issue {
        cardnumber: Cardnumber::parse(&cardnumber).map_err(js_error)?,
        barcode: Barcode::parse(&barcode).map_err(js_error)?,
    };
    let at = browser::now();
    let branch = state::settings()
        .map(|s| s.branchcode)
        .map_or_else(|| Branchcode::parse("UNSET"), Ok)
        .map_err(js_error)?;
    let tx = Transaction::record(
        TransactionId::new(at, browser::random_u64()?),
        at,
        branch,
        action,
    );
    state::with_journal(|j| j.record(tx.clone()).map(drop))
        .map_err(|e| js_error(ErrorDto::new(e.kind(), None, &e)))?;
    state::persist(&tx).await.map_err(storage_error)?;
    to_js(&RowDto::from(&tx))
}

/// Every transaction, newest first.
#[wasm_bindgen(js_name = listTransactions)]
pub fn list_transactions() -> Result<JsValue, JsValue> {
    state::with_journal(|j| {
        let page = j.page(&Filter::default(), 0, usize::MAX);
        let rows: Vec<RowDto> = page.rows.into_iter().map(RowDto::from).collect();
        to_js(&rows)
    })
}
