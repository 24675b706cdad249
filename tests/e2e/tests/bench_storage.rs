//! The storage benchmarks (issue 4). They take minutes, so they run only with `KOC_BENCH=1`
//! (`./build.sh bench`); the figures go to stdout and `target/bench/storage.{json,md}`.

#[tokio::test(flavor = "multi_thread")]
async fn storage_benchmarks() {
    if std::env::var_os("KOC_BENCH").is_none() {
        eprintln!("SKIPPED: storage benchmarks run with KOC_BENCH=1 (./build.sh bench)");
        return;
    }
    let Some(figures) = e2e::bench::storage::storage_benchmarks().await else {
        return;
    };
    let markdown = figures.markdown();
    println!("{markdown}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).expect("bench folder");
    std::fs::write(dir.join("storage.md"), &markdown).expect("written");
    std::fs::write(
        dir.join("storage.json"),
        serde_json::to_string_pretty(&figures).expect("json"),
    )
    .expect("written");
}
