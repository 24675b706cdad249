//! The browser shell: the #[wasm_bindgen] API the extension pages call.
