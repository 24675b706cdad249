//! The core of the Koha offline circulation add-on: what a desk records, how it is kept, how it
//! travels to Koha (`offline_circ/service.pl`) and into `.koc` files.
//!
//! Everything here is plain Rust and tested natively. The browser shell lives in `web` and is
//! compiled only for `wasm32`.

pub mod checks;
pub mod clock;
pub mod desk;
pub mod export;
pub mod ids;
pub mod journal;
mod kinds;
pub mod koc;
pub mod koha;
pub mod settings;
pub mod store;
pub mod sync;
pub mod transaction;
pub mod zone;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod web;

pub use ids::{Amount, Barcode, Branchcode, Cardnumber, Field, InputError, Userid};
pub use transaction::{
    Action, FailReason, IllegalTransition, Status, StatusChange, Transaction, TransactionId,
    UncertainReason,
};
