//! The send benchmark (issues 7 and 15) on its own, printing its figures. Ignored in
//! `./build.sh test`; `./build.sh bench` runs it through the report:
//!
//! `KOC_ADDON_DIR=$PWD/www-test cargo test --profile bench-e2e -p e2e --test bench_send -- --ignored --nocapture`
//!
//! `KOC_BENCH_SEND_N` changes the number of transactions against the 20 ms stand-in (2,000),
//! `KOC_BENCH_OVERHEAD_N` those against the fast one and per requests-at-once setting (500),
//! `KOC_BENCH_IN_FLIGHT` our requests at once (the add-on's default when unset),
//! `KOC_BENCH_ROUNDS` the alternating rounds of ours and the bare loop on the fast one (9).

use e2e::bench::send::figures;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run by ./build.sh bench"]
async fn send_against_per_transaction_login_and_a_bare_fetch_loop() {
    let n = env_count("KOC_BENCH_SEND_N", 2000);
    let overhead_n = env_count("KOC_BENCH_OVERHEAD_N", 500);
    // A benchmark reports; it does not assert timings (figures with a target say whether it is
    // met).
    for figure in figures(n, overhead_n).await {
        println!("{}", figure.line());
    }
}
