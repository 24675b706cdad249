//! The `.koc` benchmark on its own, printing its figures. Ignored in `./build.sh test`;
//! `./build.sh bench` runs it through the report:
//!
//! `KOC_ADDON_DIR=$PWD/www-test cargo test --profile bench-e2e -p e2e --test bench_koc -- --ignored --nocapture`
//!
//! `KOC_BENCH_KOC_N` changes the number of transactions (50,000), `KOC_BENCH_KOC_RUNS` the runs (3).

use e2e::bench::koc::figures;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run by ./build.sh bench"]
async fn koc_export_and_import() {
    let n = env_count("KOC_BENCH_KOC_N", 50_000);
    let runs = env_count("KOC_BENCH_KOC_RUNS", 3);
    // A benchmark reports; it does not assert timings.
    for figure in figures(n, runs).await {
        println!("{}", figure.line());
    }
}
