//! The browser shell: the `#[wasm_bindgen]` API the extension pages call. It does the I/O
//! (storage, clock, randomness, HTTP) around the pure core and converts at the boundary; it holds
//! no business rules.
#![allow(missing_docs)]

mod browser;
mod checks;
mod desk;
pub mod dto;
mod http;
mod idb;
mod options;
mod send;
mod state;
mod storage_api;
#[cfg(feature = "test-hooks")]
mod test_hooks;
mod zone;
