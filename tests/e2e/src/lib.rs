//! Test support for the add-on: the Koha stand-in server, the Firefox harness, page helpers
//! and the benchmarks.

pub mod bench;
pub mod desk;
pub mod firefox;
pub mod report;
pub mod sending;
pub mod standin;
pub mod wait;
pub mod warm_profile;
