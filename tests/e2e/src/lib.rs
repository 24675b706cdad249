//! Test support for the add-on: the Koha stand-in server and the Firefox harness.

pub mod bench;
pub mod bench_send;
pub mod benches;
pub mod firefox;
pub mod report;
pub mod standin;
