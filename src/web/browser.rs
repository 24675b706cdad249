//! The few `browser.*` and page APIs the shell needs, in one place.

use js_sys::{Object, Promise, Reflect};
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
}

/// Reads keys from `browser.storage.local` (`null` reads everything).
pub async fn local_get(keys: &JsValue) -> Result<Object, JsValue> {
    let value = JsFuture::from(storage_local_get(keys)?).await?;
    value.dyn_into::<Object>()
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
