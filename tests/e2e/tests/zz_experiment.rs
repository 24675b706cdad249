use e2e::bench::seed;
use e2e::firefox::{with_firefox, Options};

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn experiment() {
    with_firefox(Options::default(), |ff| async move {
        ff.open("options.html").await;
        seed(&ff, 1_000_000, 50_000, 1_000).await;
        ff.open("desk.html").await;
        for _ in 0..4 {
            ff.open("desk.html").await;
            let t = ff.eval("window.__kocT").await;
            let ready = ff
                .eval(r##"performance.getEntriesByName("koc:ready")[0]?.startTime"##)
                .await;
            eprintln!("RESULT {t} ready {ready}");
        }
    })
    .await;
}
