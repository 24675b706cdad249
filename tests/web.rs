//! The binding layer in a real browser (wasm-bindgen-test): what crosses into the pages.
#![cfg(target_arch = "wasm32")]

use chrono::{TimeZone, Utc};
use js_sys::Reflect;
use koha_offline_circ::web::dto::{js_error, to_js, RowDto};
use koha_offline_circ::{Action, Barcode, Branchcode, Cardnumber, Transaction, TransactionId};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).expect("a property")
}

#[wasm_bindgen_test]
fn input_errors_reach_the_page_as_kind_and_field() {
    let error = Barcode::parse("12\t3").expect_err("a tab is refused");
    let value = js_error(error);
    assert_eq!(
        get(&value, "kind").as_string().as_deref(),
        Some("control-character")
    );
    assert_eq!(get(&value, "field").as_string().as_deref(), Some("barcode"));
}

#[wasm_bindgen_test]
fn rows_are_plain_objects_with_the_contract_names() {
    let at = Utc
        .with_ymd_and_hms(2026, 3, 29, 1, 30, 0)
        .single()
        .expect("a time");
    let tx = Transaction::record(
        TransactionId::new(at, 1),
        at,
        Branchcode::parse("DE-627").expect("code"),
        Action::Issue {
            cardnumber: Cardnumber::parse("A1").expect("card"),
            barcode: Barcode::parse("B1").expect("barcode"),
        },
    );
    let row = to_js(&RowDto::from(&tx)).expect("serialisable");
    assert!(
        !row.is_instance_of::<js_sys::Map>(),
        "a plain object, not a Map"
    );
    assert_eq!(get(&row, "action").as_string().as_deref(), Some("issue"));
    assert_eq!(get(&row, "status").as_string().as_deref(), Some("local"));
    assert_eq!(get(&row, "cardnumber").as_string().as_deref(), Some("A1"));
    assert_eq!(
        get(&row, "recordedAt").as_f64(),
        Some(at.timestamp_millis() as f64)
    );
    assert!(get(&row, "amount").is_null());
}
