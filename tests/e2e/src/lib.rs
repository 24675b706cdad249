//! Test support for the add-on: the Koha stand-in server and the Firefox harness.

pub mod bench;
pub mod firefox;
pub mod standin;
