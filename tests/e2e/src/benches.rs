//! The browser benchmarks, run by `bench-report` (`./build.sh bench`).

use crate::report::Figure;
use std::path::Path;

/// Runs every browser benchmark against the unpacked add-on in `addon`.
pub async fn run_all(addon: &Path) -> Vec<Figure> {
    let _ = addon;
    Vec::new()
}
