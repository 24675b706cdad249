//! The send benchmark (issue 7): 2,000 transactions against the stand-in (NEWEST, 20 ms round
//! trip, 50 ms password check), our client (one login per batch) against one that logs in with
//! every transaction, in the same run. Ignored in `./build.sh test`; `./build.sh bench` runs it:
//!
//! `KOC_ADDON_DIR=$PWD/www-test cargo test --release -p e2e --test bench_send -- --ignored --nocapture`
//!
//! `KOC_BENCH_SEND_N` changes the number of transactions per side, `KOC_BENCH_IN_FLIGHT` our
//! requests at once (1 to 4; the add-on's default when unset).

use e2e::bench::send::run_send_benchmark;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run by ./build.sh bench"]
async fn send_2000_login_once_vs_login_per_transaction() {
    let n = std::env::var("KOC_BENCH_SEND_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let Some(bench) = run_send_benchmark(n).await else {
        return;
    };
    println!("{}", bench.report());
    // A benchmark reports; it does not assert. Both clients pay Firefox's own per-request cost
    // (the bare fetch in the report: 3-5 ms on top of the 20 ms round trip on two busy cores), so
    // one request at a time the ratio stays below (bare + 50) / bare, under 3.5 on any machine.
    println!(
        "target (ours >= 3x): {}",
        if bench.ratio() >= 3.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}
