//! The few `browser.*` and page APIs the shell needs, in one place, and waiting for two at once.

use js_sys::{Object, Promise, Reflect};
use std::future::Future;
use std::task::Poll;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["browser", "storage", "local"], js_name = get, catch)]
    fn storage_local_get(keys: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["browser", "storage", "local"], js_name = set, catch)]
    fn storage_local_set(items: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["browser", "storage", "local"], js_name = remove, catch)]
    fn storage_local_remove(keys: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["browser", "storage", "session"], js_name = get, catch)]
    fn storage_session_get(keys: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["browser", "storage", "session"], js_name = set, catch)]
    fn storage_session_set(items: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["browser", "storage", "session"], js_name = remove, catch)]
    fn storage_session_remove(keys: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["browser", "storage", "managed"], js_name = get, catch)]
    fn storage_managed_get(keys: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["browser", "permissions"], js_name = contains, catch)]
    fn permissions_contains(permissions: &JsValue) -> Result<Promise, JsValue>;
}

/// A string kept in `browser.storage.session` (memory only, gone when Firefox closes).
pub async fn session_get_string(key: &str) -> Result<Option<String>, JsValue> {
    let items = JsFuture::from(storage_session_get(&JsValue::from_str(key))?).await?;
    Ok(Reflect::get(&items, &JsValue::from_str(key))?.as_string())
}

/// Keeps a string in `browser.storage.session`.
pub async fn session_set_string(key: &str, value: &str) -> Result<(), JsValue> {
    let items = single_item(key, &JsValue::from_str(value))?;
    JsFuture::from(storage_session_set(&items)?).await.map(drop)
}

/// Removes a key from `browser.storage.session`.
pub async fn session_remove(key: &str) -> Result<(), JsValue> {
    JsFuture::from(storage_session_remove(&JsValue::from_str(key))?)
        .await
        .map(drop)
}

/// Everything an administrator preset through enterprise policies (`storage.managed`); an
/// empty object when there is no policy (Firefox then rejects the call).
pub async fn managed_get() -> Object {
    let Ok(promise) = storage_managed_get(&JsValue::NULL) else {
        return Object::new();
    };
    match JsFuture::from(promise).await {
        Ok(value) => value.dyn_into::<Object>().unwrap_or_default(),
        Err(_) => Object::new(),
    }
}

/// Whether the add-on may talk to this origin pattern (e.g. `https://koha.example.org/*`).
pub async fn has_origin_permission(pattern: &str) -> Result<bool, JsValue> {
    let request = Object::new();
    let origins = js_sys::Array::of1(&JsValue::from_str(pattern));
    Reflect::set(&request, &JsValue::from_str("origins"), &origins)?;
    let granted = JsFuture::from(permissions_contains(&request)?).await?;
    Ok(granted.as_bool().unwrap_or(false))
}

/// Reads keys from `browser.storage.local` (`null` reads everything). Not checked with
/// `instanceof Object`: called from another compartment (a test's script), the object is a
/// wrapper that fails that check.
pub async fn local_get(keys: &JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(storage_local_get(keys)?).await
}

/// Writes items to `browser.storage.local`; resolves once Firefox has stored them.
pub async fn local_set(items: &Object) -> Result<(), JsValue> {
    JsFuture::from(storage_local_set(items)?).await.map(drop)
}

/// Removes keys from `browser.storage.local`.
pub async fn local_remove(keys: &JsValue) -> Result<(), JsValue> {
    JsFuture::from(storage_local_remove(keys)?).await.map(drop)
}

/// Builds `{ key: value }`.
pub fn single_item(key: &str, value: &JsValue) -> Result<Object, JsValue> {
    let items = Object::new();
    Reflect::set(&items, &JsValue::from_str(key), value)?;
    Ok(items)
}

/// Milliseconds since the epoch, from the page's clock.
pub fn now_millis() -> f64 {
    js_sys::Date::now()
}

/// 64 random bits from the platform's CSPRNG.
pub fn random_u64() -> Result<u64, JsValue> {
    let crypto = web_sys::window()
        .ok_or_else(|| JsValue::from_str("no window"))?
        .crypto()?;
    let mut bytes = [0u8; 8];
    crypto.get_random_values_with_u8_array(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// The page's clock as a UTC instant.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(now_millis() as i64).unwrap_or_default()
}

/// A promise that resolves to `value` after `ms` milliseconds (at once if no timer can be set).
fn after_ms(ms: i32, value: &JsValue) -> Promise {
    Promise::new(&mut |resolve, _| {
        let scheduled = web_sys::window().map(|window| {
            window.set_timeout_with_callback_and_timeout_and_arguments_1(&resolve, ms, value)
        });
        if !matches!(scheduled, Some(Ok(_))) {
            let _ = resolve.call1(&JsValue::NULL, value);
        }
    })
}

/// Whether `promise` resolves to `true` within `ms` milliseconds.
pub async fn true_within(promise: &Promise, ms: i32) -> bool {
    let race = Promise::race(&js_sys::Array::of2(promise, &after_ms(ms, &JsValue::FALSE)));
    JsFuture::from(race).await.ok().and_then(|v| v.as_bool()) == Some(true)
}

/// Resolves on a later task of the page (a timer of no delay), after everything already queued:
/// what follows yields to the page's pending continuations and rendering first.
pub async fn later_task() {
    let _ = JsFuture::from(after_ms(0, &JsValue::UNDEFINED)).await;
}

/// Runs two futures at once and waits for both.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                ra = x;
                rb = y;
                Poll::Pending
            }
        }
    })
    .await
}
