//! The browser benchmarks, run by `bench-report` (`./build.sh bench`). Timings are taken inside
//! Firefox with `performance.now()`, medians over repeated runs.

pub mod checks;
pub mod koc;
pub mod send;
pub mod storage;

use crate::report::Figure;
use std::path::Path;

/// Runs every browser benchmark against the unpacked test build of the add-on in `addon`
/// (`www-test/`, as `./build.sh bench` arranges).
pub async fn run_all(addon: &Path) -> Vec<Figure> {
    std::env::set_var("KOC_ADDON_DIR", addon);
    let mut figures = Vec::new();
    figures.extend(koc::figures(50_000, 3).await);
    figures.extend(storage::figures().await);
    figures.extend(send::figures(2_000, 500).await);
    figures.extend(checks::figures().await);
    figures
}
