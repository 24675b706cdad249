//! Plain data crossing into the pages. Separate from the domain types on purpose: the pages
//! see strings and numbers, never the core's invariants.

use crate::{InputError, Transaction};
use serde::Serialize;
use wasm_bindgen::JsValue;

/// One row of the transactions table.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowDto {
    pub id: String,
    pub action: &'static str,
    pub cardnumber: Option<String>,
    pub barcode: Option<String>,
    pub amount: Option<String>,
    pub status: &'static str,
    pub answer: Option<String>,
    pub recorded_at: f64,
}

impl From<&Transaction> for RowDto {
    fn from(tx: &Transaction) -> Self {
        use crate::Status::*;
        let answer = match tx.status() {
            Rejected { message } => Some(message.clone()),
            Failed { reason } | Uncertain { reason } => Some(reason.clone()),
            _ => None,
        };
        RowDto {
            id: tx.id.to_string(),
            action: tx.action.koha_name(),
            cardnumber: tx.action.cardnumber().map(ToString::to_string),
            barcode: tx.action.barcode().map(ToString::to_string),
            amount: tx.action.amount().map(|a| a.to_string()),
            status: tx.status().name(),
            answer,
            recorded_at: tx.recorded_at.timestamp_millis() as f64,
        }
    }
}

/// An error the page maps to a translated message by `kind` (and `field`).
#[derive(Serialize)]
pub struct ErrorDto {
    pub kind: String,
    pub field: Option<String>,
    pub detail: String,
}

impl ErrorDto {
    pub fn new(kind: &str, field: Option<String>, detail: impl ToString) -> Self {
        ErrorDto {
            kind: kind.to_owned(),
            field,
            detail: detail.to_string(),
        }
    }
}

impl From<InputError> for ErrorDto {
    fn from(e: InputError) -> Self {
        ErrorDto::new(e.kind(), e.field().map(|f| f.to_string()), &e)
    }
}

/// Serialises plain data for the page (objects, not Maps).
pub fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(Into::into)
}

/// Turns any error into the `{kind, field, detail}` object the page expects.
pub fn js_error(e: impl Into<ErrorDto>) -> JsValue {
    let dto: ErrorDto = e.into();
    to_js(&dto).unwrap_or_else(|_| JsValue::from_str(&dto.detail))
}
