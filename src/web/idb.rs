//! The add-on's own IndexedDB database, holding the offline checks' snapshot chunks
//! ([`crate::checks::Place::Chunks`]): one object store of text values under their keys. Only
//! performs what the core's plans say; a write resolves once its transaction has completed.

use crate::store::Change;
use js_sys::{Array, Function, Promise, Reflect};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbFactory, IdbRequest, IdbTransaction, IdbTransactionMode};

const DATABASE: &str = "koha-offline-circ-checks";
const VERSION: u32 = 1;
const CHUNKS: &str = "chunks";

thread_local! {
    static OPENED: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

/// Settles when `target` fires one of `events`: resolves on `success`/`complete`, rejects with
/// the event otherwise. The handlers are set at once, before anything awaits, so no event is
/// missed; one closure serves them all, so it is freed after its single call.
fn settled(target: &JsValue, events: &[&str]) -> Result<JsFuture, JsValue> {
    let mut handler: Option<JsValue> = None;
    let promise = Promise::new(&mut |resolve: Function, reject: Function| {
        handler = Some(Closure::once_into_js(move |event: web_sys::Event| {
            let _ = match event.type_().as_str() {
                "success" | "complete" => resolve.call0(&JsValue::NULL),
                _ => reject.call1(&JsValue::NULL, &event),
            };
        }));
    });
    if let Some(handler) = handler {
        for event in events {
            Reflect::set(target, &JsValue::from_str(&format!("on{event}")), &handler)?;
        }
    }
    Ok(JsFuture::from(promise))
}

async fn database() -> Result<IdbDatabase, JsValue> {
    if let Some(db) = OPENED.with(|o| o.borrow().clone()) {
        return Ok(db);
    }
    let factory: IdbFactory = Reflect::get(&js_sys::global(), &JsValue::from_str("indexedDB"))?
        .dyn_into()
        .map_err(|_| JsValue::from_str("IndexedDB is not available"))?;
    let request = factory.open_with_u32(DATABASE, VERSION)?;
    let upgrade = Closure::<dyn FnMut(web_sys::Event)>::new({
        let request = request.clone();
        move |_event: web_sys::Event| {
            if let Ok(db) = request.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
                if !db.object_store_names().contains(CHUNKS) {
                    let _ = db.create_object_store(CHUNKS);
                }
            }
        }
    });
    request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let opened = settled(&request, &["success", "error"])?.await;
    request.set_onupgradeneeded(None);
    drop(upgrade);
    opened?;
    let db: IdbDatabase = request.result()?.dyn_into()?;
    // A later build opening a newer version waits for this connection: let it go, and open
    // again (at the version this build knows) if asked for more.
    let on_version_change = Closure::once_into_js({
        let db = db.clone();
        move || {
            db.close();
            OPENED.with(|o| *o.borrow_mut() = None);
        }
    });
    db.set_onversionchange(Some(on_version_change.unchecked_ref()));
    OPENED.with(|o| *o.borrow_mut() = Some(db.clone()));
    Ok(db)
}

/// A transaction on the chunks. A connection Firefox has closed since (the database deleted
/// from outside, say) is dropped and the database opened again, once.
async fn transaction(mode: IdbTransactionMode) -> Result<IdbTransaction, JsValue> {
    let db = database().await?;
    match db.transaction_with_str_and_mode(CHUNKS, mode) {
        Ok(transaction) => Ok(transaction),
        Err(_) => {
            OPENED.with(|o| *o.borrow_mut() = None);
            database()
                .await?
                .transaction_with_str_and_mode(CHUNKS, mode)
        }
    }
}

/// The text stored under each of `keys` that is there.
pub async fn get_many(keys: &[String]) -> Result<HashMap<String, String>, String> {
    get_many_js(keys).await.map_err(|e| describe(&e))
}

async fn get_many_js(keys: &[String]) -> Result<HashMap<String, String>, JsValue> {
    let store = transaction(IdbTransactionMode::Readonly)
        .await?
        .object_store(CHUNKS)?;
    // Every request first, then their answers: the transaction stays open while any is pending.
    let requests: Vec<(String, IdbRequest, JsFuture)> = keys
        .iter()
        .map(|key| {
            let request = store.get(&JsValue::from_str(key))?;
            let done = settled(&request, &["success", "error"])?;
            Ok((key.clone(), request, done))
        })
        .collect::<Result<_, JsValue>>()?;
    let mut found = HashMap::new();
    for (key, request, done) in requests {
        done.await?;
        if let Some(text) = request.result()?.as_string() {
            found.insert(key, text);
        }
    }
    Ok(found)
}

/// Every stored key.
pub async fn keys() -> Result<Vec<String>, String> {
    keys_js().await.map_err(|e| describe(&e))
}

async fn keys_js() -> Result<Vec<String>, JsValue> {
    let request = transaction(IdbTransactionMode::Readonly)
        .await?
        .object_store(CHUNKS)?
        .get_all_keys()?;
    settled(&request, &["success", "error"])?.await?;
    Ok(Array::from(&request.result()?)
        .iter()
        .filter_map(|key| key.as_string())
        .collect())
}

/// Applies `changes` in one transaction; resolves once it has completed (all or nothing).
pub async fn apply(changes: &[Change]) -> Result<(), String> {
    apply_js(changes).await.map_err(|e| describe(&e))
}

async fn apply_js(changes: &[Change]) -> Result<(), JsValue> {
    if changes.is_empty() {
        return Ok(());
    }
    let transaction = transaction(IdbTransactionMode::Readwrite).await?;
    let committed = settled(&transaction, &["complete", "error", "abort"])?;
    let store = transaction.object_store(CHUNKS)?;
    for change in changes {
        match change {
            Change::Put { key, value } => {
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                store.put_with_key(&JsValue::from_str(&text), &JsValue::from_str(key))?;
            }
            Change::Remove { key } => {
                store.delete(&JsValue::from_str(key))?;
            }
        }
    }
    committed.await.map(drop)
}

/// What failed, in words: the error of the request or transaction an event came from, or the
/// exception thrown.
fn describe(failure: &JsValue) -> String {
    let from_event = Reflect::get(failure, &JsValue::from_str("target"))
        .and_then(|target| Reflect::get(&target, &JsValue::from_str("error")))
        .unwrap_or(JsValue::UNDEFINED);
    let error = if from_event.is_object() {
        from_event
    } else {
        failure.clone()
    };
    let text = |field: &str| {
        Reflect::get(&error, &JsValue::from_str(field))
            .ok()
            .and_then(|v| v.as_string())
            .filter(|t| !t.is_empty())
    };
    match (text("name"), text("message")) {
        (Some(name), Some(message)) => format!("IndexedDB: {name}: {message}"),
        (_, Some(message)) => format!("IndexedDB: {message}"),
        _ => error.as_string().map_or_else(
            || "IndexedDB failed".to_owned(),
            |t| format!("IndexedDB: {t}"),
        ),
    }
}
