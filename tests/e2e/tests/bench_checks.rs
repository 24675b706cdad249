//! The offline checks' scale benchmark (issue 12): download against a bare fetch of the same
//! pages, bytes stored per record, desk ready time and Enter → row with and without the
//! snapshot, a lookup in the page. Ignored in `./build.sh test`; `./build.sh bench` runs it
//! through `bench-report`. Alone, with small sizes:
//!
//! `KOC_BENCH_PATRONS=2000 KOC_BENCH_ITEMS=10000 KOC_BENCH_CHECKOUTS=1000 KOC_BENCH_SCANS=20
//! KOC_ADDON_DIR=$PWD/www-test cargo test --profile bench-e2e -p e2e --test bench_checks -- --ignored --nocapture`

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run by ./build.sh bench"]
async fn offline_checks_at_scale() {
    let figures = e2e::bench::checks::figures().await;
    for figure in &figures {
        println!("{}", figure.line());
    }
}
