//! Core benchmarks (.koc write/read, journal operations).
fn main() {}
