//! The browser benchmarks, run by `bench-report` (`./build.sh bench`). Timings are taken inside
//! Firefox with `performance.now()`, medians over repeated runs.

use crate::firefox::{with_firefox, Firefox, Options};
use crate::report::{self, Figure};
use std::path::Path;
use std::sync::{Arc, Mutex};

const KOC: &str = ".koc files in Firefox";

/// Runs every browser benchmark against the unpacked test build of the add-on in `addon`
/// (`www-test/`, as `./build.sh bench` arranges).
pub async fn run_all(addon: &Path) -> Vec<Figure> {
    std::env::set_var("KOC_ADDON_DIR", addon);
    let mut figures = Vec::new();
    figures.extend(koc_files(50_000, 3).await);
    figures.extend(storage_figures().await);
    figures.extend(send_figures(2_000).await);
    figures
}

const SEND: &str = "Send to Koha (stand-in: 20 ms round trip, 50 ms password check)";

/// Our client (one login per batch) against one that logs in with every transaction.
pub async fn send_figures(count: usize) -> Vec<Figure> {
    let Some(bench) = crate::bench_send::run_send_benchmark(count).await else {
        return Vec::new();
    };
    let side = |s: &crate::bench_send::BenchSide| {
        format!(
            "{:.1} tx/s ({}, {} password checks)",
            s.throughput(),
            report::ms(s.elapsed.as_secs_f64() * 1000.0 / s.transactions as f64) + " each",
            s.password_checks
        )
    };
    vec![
        Figure::plain(
            SEND,
            format!("ours, {count} transactions, one login per batch"),
            side(&bench.ours),
        ),
        Figure::plain(
            SEND,
            format!("log in with every transaction (KOCT ≤0.4.20, ByWater GET), {count}"),
            side(&bench.theirs),
        ),
        Figure::against(
            SEND,
            "throughput ratio, ours / theirs",
            format!("{:.2}×", bench.ratio()),
            "≥ 3×",
            bench.ratio() >= 3.0,
        ),
        Figure::plain(
            SEND,
            "bare fetch of the stand-in from the page; ours adds; best ratio one at a time",
            format!(
                "{}; +{}; {:.2}×",
                report::ms(bench.bare_fetch_ms),
                report::ms(bench.our_overhead_ms()),
                bench.sequential_ceiling()
            ),
        ),
    ]
}

/// Stores `count` transactions not yet sent, one key each, as a long outage would leave them,
/// then reloads the desk.
pub async fn seed_unsent(ff: &Firefox, count: usize) {
    let count = u32::try_from(count).expect("a count that fits");
    crate::bench::seed(ff, 1, count, count, false).await;
    ff.client.refresh().await.expect("reload");
    ff.wait_ready().await;
}

/// Times a core call in the page: `expr` over `core`, awaited; returns milliseconds.
async fn time_in_page(ff: &Firefox, setup: &str, expr: &str) -> f64 {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        const core = window.kocCore;
        (async () => {{
            {setup}
            const t0 = performance.now();
            await ({expr});
            done(performance.now() - t0);
        }})().catch((e) => done("error: " + (e && e.kind ? e.kind + " " + e.detail : e)));"#
    );
    crate::bench::async_number(ff, &script, &format!("timed call {expr}")).await
}

/// An export of everything not accepted, each question answered "export them" (as a
/// librarian clicking OK, without the dialogs).
const EXPORT_ALL: &str = "(async () => { const answers = { confirmed: [], declined: [] }; let r; \
    while ((r = await core.exportKoc(answers)).questions) answers.confirmed.push(...r.questions); \
    return r; })()";

/// `.koc` export and import of `count` transactions in the browser, `runs` times each.
pub async fn koc_files(count: usize, runs: usize) -> Vec<Figure> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    with_firefox(Options::default(), move |ff| async move {
        // A slow figure is reported, not failed: allow page scripts five minutes.
        let timeouts = fantoccini::wd::TimeoutConfiguration::new(
            Some(std::time::Duration::from_secs(300)),
            None,
            None,
        );
        ff.client
            .update_timeouts(timeouts)
            .await
            .expect("time-outs");
        ff.open("desk.html").await;
        seed_unsent(&ff, count).await;
        let mut export_ms = Vec::new();
        let mut import_ms = Vec::new();
        for _ in 0..runs {
            // Writing the file text only (every not-yet-accepted transaction; from the second
            // run on they were exported before, so the question is answered "export them").
            export_ms.push(time_in_page(&ff, "", EXPORT_ALL).await);
            // Reading the same file back: parse, validate, flag duplicates (all of them here).
            import_ms.push(
                time_in_page(
                    &ff,
                    &format!(
                        "const {{ files }} = await {EXPORT_ALL}; \
                         const bytes = new TextEncoder().encode(files[0].text);"
                    ),
                    "core.readImport(bytes, null)",
                )
                .await,
            );
            ff.eval("window.kocCore.cancelImport()").await;
        }
        let export = report::median(&mut export_ms);
        let import = report::median(&mut import_ms);
        let mut figures = sink.lock().expect("figures");
        figures.push(Figure::against(
            KOC,
            format!(".koc export of {count} (write, mark exported, store), median of {runs}"),
            report::ms(export),
            "< 1 s",
            export < 1000.0,
        ));
        figures.push(Figure::plain(
            KOC,
            format!(
                ".koc import report of {count} (read, validate, flag duplicates), median of {runs}"
            ),
            report::ms(import),
        ));
    })
    .await;
    let figures = out.lock().expect("figures").clone();
    figures
}

const DESK: &str = "Desk and storage in Firefox";

/// Enter-to-row and ready time at several journal sizes, and bytes per transaction.
pub async fn storage_figures() -> Vec<Figure> {
    let Some(f) = crate::bench::storage_benchmarks().await else {
        return Vec::new();
    };
    let mut figures = Vec::new();
    let at_zero = f.enter_to_row.first().map(|t| t.median_ms);
    for t in &f.enter_to_row {
        figures.push(Figure::plain(
            DESK,
            format!(
                "Enter → confirmed row, {} stored, median ({} scans)",
                t.stored, t.scans
            ),
            report::ms(t.median_ms),
        ));
        if t.stored >= 50_000 {
            figures.push(Figure::against(
                DESK,
                format!("Enter → confirmed row, {} stored, p99", t.stored),
                report::ms(t.p99_ms),
                "< 30 ms",
                t.p99_ms < 30.0,
            ));
            if let Some(zero) = at_zero {
                let ratio = t.median_ms / zero;
                figures.push(Figure::against(
                    DESK,
                    format!("Enter → row median, {} stored / 0 stored", t.stored),
                    format!("{ratio:.2}×"),
                    "≤ 1.5×",
                    ratio <= 1.5,
                ));
            }
        } else {
            figures.push(Figure::plain(
                DESK,
                format!("Enter → confirmed row, {} stored, p99", t.stored),
                report::ms(t.p99_ms),
            ));
        }
    }
    for t in &f.store_write {
        figures.push(Figure::plain(
            DESK,
            format!(
                "one transaction into both stores, {} stored, median / p99",
                t.stored
            ),
            format!("{} / {}", report::ms(t.median_ms), report::ms(t.p99_ms)),
        ));
    }
    for (stored, ms) in &f.ready_by_size {
        figures.push(Figure::plain(
            DESK,
            format!("desk ready, {stored} stored (median of 3)"),
            report::ms(*ms),
        ));
    }
    figures.push(Figure::against(
        DESK,
        format!(
            "desk ready, {} stored (median of {})",
            f.ready_stored,
            crate::bench::READY_RUNS
        ),
        report::ms(f.ready_ms),
        "< 500 ms",
        f.ready_ms < 500.0,
    ));
    figures.push(Figure::plain(
        DESK,
        format!(
            "of which storage.local.get(null), {} stored",
            f.ready_stored
        ),
        report::ms(f.read_all_ms),
    ));
    figures.push(Figure::plain(
        DESK,
        "bytes per transaction (storage.local / mirror)",
        format!(
            "{:.0} / {:.0}",
            f.bytes_per_transaction, f.mirror_bytes_per_transaction
        ),
    ));
    figures
}
