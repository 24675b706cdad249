//! The send benchmark (issue 7): 2,000 transactions against the stand-in (NEWEST, 20 ms round
//! trip, 50 ms password check), our client (one login per batch) against one that logs in with
//! every transaction, in the same run. Ignored in `./build.sh test`; `./build.sh bench` runs it:
//!
//! `KOC_ADDON_DIR=$PWD/www cargo test --release -p e2e --test bench_send -- --ignored --nocapture`
//!
//! `KOC_BENCH_SEND_N` changes the number of transactions per side.

use e2e::bench_send::run_send_benchmark;

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
    // A benchmark reports; on a loaded machine Firefox's own per-request cost (measured at
    // 7-10 ms on top of a 20 ms round trip with a load average of 6-9 on two cores) eats into
    // the ratio, so the target is stated, not asserted.
    println!(
        "target (ours >= 3x): {}",
        if bench.ratio() >= 3.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}
