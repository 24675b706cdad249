//! The offline checks at scale (issue 12), in a real Firefox against the stand-in with
//! `KOC_BENCH_PATRONS` generated patrons (200,000 unless set), `KOC_BENCH_ITEMS` items
//! (1,000,000) and `KOC_BENCH_CHECKOUTS` loans (100,000):
//!
//! - the options page's "Download checks from Koha" against a bare `fetch` loop of the same
//!   pages from the same page (read, `JSON.parse`, nothing kept), alternately, in one run; the
//!   loop one page at a time (the target's bare fetch) and with the next page under way, as
//!   ours fetches;
//! - the bytes the stored snapshot takes (`checks:meta` in `browser.storage.local`, the chunks
//!   in the add-on's IndexedDB database), per patron and per item;
//! - desk ready time, and Enter → confirmed row, without the snapshot and with it (the storage
//!   benchmark's measurements: [`ready_time`], [`measure_checkouts`]);
//! - a card looked up in the desk's snapshot (`paymentBalance`, what a payment's card number
//!   shows), in the page.

use super::storage::{
    extension_storage_bytes, measure_checkouts, open_desk_long, ready_time, scans, Timing,
    READY_RUNS,
};
use crate::desk::stored_snapshot_entries;
use crate::firefox::{with_firefox, Firefox, Options};
use crate::report::{self, percentile, Figure};
use crate::standin::{Config, StandIn, Synthetic};
use crate::wait::wait_until;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const AREA: &str = "Offline checks at scale (Firefox)";

fn env_count(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The generated records the stand-in serves (the issue's sizes unless the environment says).
pub fn sizes() -> Synthetic {
    Synthetic {
        patrons: env_count("KOC_BENCH_PATRONS", 200_000),
        items: env_count("KOC_BENCH_ITEMS", 1_000_000),
        checkouts: env_count("KOC_BENCH_CHECKOUTS", 100_000),
    }
}

/// Our download against the bare loop, each run alternately (`KOC_BENCH_DOWNLOAD_RUNS`, 2 unless
/// set); the best of each side is reported.
fn download_runs() -> usize {
    env_count("KOC_BENCH_DOWNLOAD_RUNS", 2).max(1) as usize
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct ChecksFigures {
    /// What the stand-in served.
    pub sizes: Synthetic,
    /// Pages read per download.
    pub pages: usize,
    /// Each of our downloads, click to "done", ms.
    pub ours_ms: Vec<f64>,
    /// Each bare fetch loop of the same pages, one at a time, ms.
    pub bare_ms: Vec<f64>,
    /// Each bare fetch loop with the next page under way while one is parsed, as ours, ms.
    pub bare_ahead_ms: Vec<f64>,
    /// Bytes (key + text) of the stored patron chunks, item chunks, and the rest of `checks:`.
    pub stored_bytes: (f64, f64, f64),
    /// Growth of the add-on's storage folder on disk.
    pub disk_bytes: f64,
    /// Patrons and items the options page says are stored.
    pub stored_counts: (u64, u64),
    /// Desk ready, median of [`READY_RUNS`], without and with the snapshot.
    pub ready_ms: (f64, f64),
    /// The snapshot read at the desk's start (after ready), median, without and with it.
    pub checks_loaded_ms: (f64, f64),
    /// Enter → confirmed row without and with the snapshot.
    pub enter_to_row: (Timing, Timing),
    /// Card lookups in the page: each one's time, ms.
    pub lookups_ms: Vec<f64>,
}

/// Opens the options page, fills in the stand-in's desk account and saves (which asks Firefox
/// for access to it).
async fn set_up(ff: &Firefox, koha: &StandIn) {
    ff.open("options.html").await;
    let values = json!({
        "server": koha.base_url(), "branchcode": "DE-627", "userid": "desk",
        "password": "secret123", "mode": "queue", "timezone": "Europe/Berlin",
    });
    ff.eval(&format!(
        "(Object.entries({values}).forEach(([id, v]) => document.getElementById(id).value = v),
          delete document.getElementById('options-message').dataset.kind, true)"
    ))
    .await;
    ff.click("save").await;
    ff.wait_until(
        "saved",
        "document.getElementById('options-message').dataset.kind === 'ok'",
    )
    .await;
}

/// Polls a JS expression (up to an hour: a slow download is measured, not failed) until it
/// gives something other than `null`.
async fn wait_for_value(ff: &Firefox, what: &str, expression: &str) -> Value {
    let script = format!("return {expression} ?? null;");
    wait_until(what, Duration::from_secs(3600), || async {
        match ff.client.execute(&script, vec![]).await {
            Ok(Value::Null) | Err(_) => None,
            Ok(value) => Some(value),
        }
    })
    .await
}

/// "Download checks from Koha" on the open options page, a full download, click to the end;
/// ms.
async fn our_download(ff: &Firefox) -> f64 {
    ff.eval(
        "(() => { const m = document.getElementById('snapshot-message');
           m.dataset.result = '';
           const run = window.__kocDownload = { start: performance.now(), end: null };
           new MutationObserver(() => {
             if (!['', 'running'].includes(m.dataset.result) && run.end === null) {
               run.end = performance.now(); run.result = m.dataset.result;
             }
           }).observe(m, { attributes: true, attributeFilter: ['data-result'] });
           // Every run reads everything: the figure is a whole snapshot's download.
           document.getElementById('snapshot-full').checked = true;
           document.getElementById('snapshot-download').click();
           return true; })()",
    )
    .await;
    let run = wait_for_value(
        ff,
        "our download's end",
        "(window.__kocDownload.end !== null ? window.__kocDownload : null)",
    )
    .await;
    assert_eq!(run["result"], "done", "the download succeeds: {run}");
    run["end"].as_f64().unwrap_or(f64::NAN) - run["start"].as_f64().unwrap_or(f64::NAN)
}

/// The REST pages our last download read, as the stand-in saw them: URL and the headers that
/// shape the answer (HTTP Basic, the balance embed).
fn pages_read(koha: &StandIn) -> Vec<Value> {
    koha.log()
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/") && r.status == Some(200))
        .map(|r| {
            let headers: serde_json::Map<String, Value> = r
                .headers
                .iter()
                .filter(|(n, _)| ["authorization", "x-koha-embed"].contains(&&*n.to_lowercase()))
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect();
            json!({ "url": format!("{}{}?{}", koha.base_url(), r.path, r.query), "headers": headers })
        })
        .collect()
}

/// The same pages fetched from the open page, each read and parsed, nothing kept; ms. One
/// after the other, or (`ahead`) with the next page under way while one is parsed, as ours
/// does ([`koha_offline_circ::checks::Download::page_after`]).
async fn bare_download(ff: &Firefox, pages: &[Value], ahead: bool) -> f64 {
    ff.eval(&format!(
        "(() => {{ window.__kocBare = null;
           (async () => {{
             const pages = {pages};
             const get = (p) => fetch(p.url, {{ headers: p.headers, cache: 'no-store',
                 credentials: 'omit', redirect: 'manual' }}).then((r) => r.text());
             const start = performance.now();
             let records = 0;
             let pending = get(pages[0]);
             for (let i = 0; i < pages.length; i++) {{
               const next = {ahead} && i + 1 < pages.length ? get(pages[i + 1]) : null;
               records += JSON.parse(await pending).length;
               pending = next ?? (i + 1 < pages.length ? get(pages[i + 1]) : null);
             }}
             window.__kocBare = {{ ms: performance.now() - start, records }};
           }})().catch((e) => {{ window.__kocBare = {{ error: String(e) }}; }});
           return true; }})()",
        pages = Value::Array(pages.to_vec())
    ))
    .await;
    let run = wait_for_value(ff, "the bare fetch loop's end", "window.__kocBare").await;
    assert!(run.get("error").is_none(), "the bare loop ran: {run}");
    run["ms"].as_f64().unwrap_or(f64::NAN)
}

/// Bytes of the stored snapshot's entries (key + text), wherever kept: patron chunks, item
/// chunks, the rest.
async fn stored_bytes(ff: &Firefox) -> (f64, f64, f64) {
    let entries = stored_snapshot_entries(ff).await;
    let (mut patrons, mut items, mut rest) = (0.0, 0.0, 0.0);
    for (key, value) in entries.as_object().into_iter().flatten() {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        let n = (key.len() + text.len()) as f64;
        if key.contains(":patrons:") {
            patrons += n;
        } else if key.contains(":items:") {
            items += n;
        } else {
            rest += n;
        }
    }
    (patrons, items, rest)
}

/// Desk ready ([`ready_time`]) and the snapshot read after it (the test build's mark
/// `koc:checks-loaded`), medians of [`READY_RUNS`] reloads, ms.
async fn ready_median(ff: &Firefox) -> (f64, f64) {
    let (mut readies, mut loaded) = (Vec::new(), Vec::new());
    for _ in 0..READY_RUNS {
        readies.push(ready_time(ff).await);
        let mark = wait_for_value(
            ff,
            "the snapshot read",
            r#"performance.getEntriesByName("koc:checks-loaded")[0]?.startTime"#,
        )
        .await;
        loaded.push(mark.as_f64().unwrap_or(f64::NAN));
    }
    (
        percentile(&mut readies, 50.0),
        percentile(&mut loaded, 50.0),
    )
}

/// Generated items the desk checks out without a question (not lost, withdrawn, not for loan,
/// damaged or on loan), from the stand-in's own generator.
fn available_barcodes(sizes: &Synthetic, n: usize) -> Vec<String> {
    (0..sizes.items)
        .map(|j| sizes.item(j, 0, true))
        .filter(|item| {
            [
                "lost_status",
                "withdrawn",
                "not_for_loan_status",
                "damaged_status",
            ]
            .iter()
            .all(|field| item[field] == 0)
                && item["checked_out_date"].is_null()
        })
        .filter_map(|item| item["external_id"].as_str().map(str::to_owned))
        .take(n)
        .collect()
}

/// Each of `n` card lookups in the desk's snapshot, timed in the page, ms.
async fn lookups(ff: &Firefox, sizes: &Synthetic, n: u32) -> Vec<f64> {
    let step = (sizes.patrons / n.max(1)).max(1);
    let cards: Vec<String> = (0..n)
        .map(|i| Synthetic::cardnumber((i * step + i % 7) % sizes.patrons.max(1)))
        .collect();
    let times = ff
        .eval(&format!(
            "(() => {{ const times = [];
               for (const card of {cards}) {{
                 const t = performance.now();
                 window.kocCore.paymentBalance(card);
                 times.push(performance.now() - t);
               }}
               return times; }})()",
            cards = json!(cards)
        ))
        .await;
    serde_json::from_value(times).unwrap_or_default()
}

/// Runs the benchmark. Returns `None` when Firefox tests are not set up.
pub async fn checks_benchmarks() -> Option<ChecksFigures> {
    crate::firefox::addon_dir()?;
    let sizes = sizes();
    let koha = StandIn::start(Config {
        synthetic: sizes,
        ..Config::default()
    })
    .expect("stand-in");
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-checks-profile");
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).expect("profile folder");
    let mut options = Options {
        profile: Some(profile.clone()),
        ..Options::granting_permissions()
    };
    // performance.now() to the microsecond, not the millisecond: a lookup takes less.
    options
        .prefs
        .push(("privacy.reduceTimerPrecision".into(), json!(false)));
    let barcodes = available_barcodes(&sizes, 2 * scans());
    assert_eq!(barcodes.len(), 2 * scans(), "enough items to check out");
    let (sender, receiver) = std::sync::mpsc::channel();
    with_firefox(options, move |ff| async move {
        set_up(&ff, &koha).await;
        open_desk_long(&ff).await;
        // Checkouts first: ready time depends on the journal too, and it is compared at the
        // same journal size with and without the snapshot.
        let row_without = measure_checkouts(&ff, 0, "C0001", |i| barcodes[i].clone()).await;
        let (ready_without, loaded_without) = ready_median(&ff).await;
        eprintln!(
            "bench checks: without the snapshot: ready {ready_without:.0} ms, {row_without:?}"
        );
        ff.open("options.html").await;
        let disk_before = extension_storage_bytes(&profile);
        let (mut ours_ms, mut bare_ms, mut pages) = (Vec::new(), Vec::new(), Vec::new());
        let mut bare_ahead_ms = Vec::new();
        for run in 0..download_runs() {
            koha.state().log.clear();
            ours_ms.push(our_download(&ff).await);
            pages = pages_read(&koha);
            bare_ms.push(bare_download(&ff, &pages, false).await);
            bare_ahead_ms.push(bare_download(&ff, &pages, true).await);
            eprintln!(
                "bench checks: run {run}: ours {:.0} ms, bare {:.0} ms, bare with a page ahead \
                 {:.0} ms, {} pages",
                ours_ms[run],
                bare_ms[run],
                bare_ahead_ms[run],
                pages.len()
            );
        }
        let disk_after = extension_storage_bytes(&profile);
        let (p, i, rest) = stored_bytes(&ff).await;
        let status = ff
            .eval("({ ...document.getElementById('snapshot-status').dataset })")
            .await;
        let count = |k: &str| status[k].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        let stored_counts = (count("patrons"), count("items"));
        open_desk_long(&ff).await;
        let (ready_with, loaded_with) = ready_median(&ff).await;
        let n = scans();
        let row_with = measure_checkouts(&ff, 0, "C0001", |i| barcodes[n + i].clone()).await;
        eprintln!("bench checks: with the snapshot: ready {ready_with:.0} ms, {row_with:?}");
        let lookups_ms = lookups(&ff, &sizes, 1000).await;
        sender
            .send(ChecksFigures {
                sizes,
                pages: pages.len(),
                ours_ms,
                bare_ms,
                bare_ahead_ms,
                stored_bytes: (p, i, rest),
                disk_bytes: disk_after.saturating_sub(disk_before) as f64,
                stored_counts,
                ready_ms: (ready_without, ready_with),
                checks_loaded_ms: (loaded_without, loaded_with),
                enter_to_row: (row_without, row_with),
                lookups_ms,
            })
            .expect("figures sent");
    })
    .await;
    receiver.recv().ok()
}

fn best(samples: &[f64]) -> f64 {
    samples.iter().copied().fold(f64::INFINITY, f64::min)
}

fn per_record(bytes: f64, count: u32) -> f64 {
    bytes / f64::from(count.max(1))
}

/// The figures for `BENCHMARKS.md`.
pub async fn figures() -> Vec<Figure> {
    let Some(f) = checks_benchmarks().await else {
        return Vec::new();
    };
    let s = f.sizes;
    let scale = format!(
        "{} patrons, {} items, {} loans",
        s.patrons,
        s.items,
        s.loans()
    );
    let (ours, bare) = (best(&f.ours_ms), best(&f.bare_ms));
    let ratio = ours / bare;
    let mut lookups = f.lookups_ms.clone();
    let (p_bytes, i_bytes, rest) = f.stored_bytes;
    let p99 = |t: &Timing| t.p99_ms;
    let (without, with) = &f.enter_to_row;
    let ready_ratio = f.ready_ms.1 / f.ready_ms.0;
    vec![
        Figure::plain(
            AREA,
            format!("snapshot served by the stand-in ({scale})"),
            format!(
                "{} pages of 1000; stored: {} patrons, {} items",
                f.pages, f.stored_counts.0, f.stored_counts.1
            ),
        ),
        Figure::plain(
            AREA,
            format!(
                "download, ours (options page, click to stored), best of {}",
                f.ours_ms.len()
            ),
            report::ms(ours),
        ),
        Figure::plain(
            AREA,
            format!(
                "download, bare fetch + JSON.parse of the same pages, best of {}",
                f.bare_ms.len()
            ),
            report::ms(bare),
        ),
        Figure::plain(
            AREA,
            format!(
                "download, bare with the next page under way (as ours), best of {}; ours / it",
                f.bare_ahead_ms.len()
            ),
            format!(
                "{}; {:.2}×",
                report::ms(best(&f.bare_ahead_ms)),
                ours / best(&f.bare_ahead_ms)
            ),
        ),
        Figure::against(
            AREA,
            "download, ours / bare",
            format!("{ratio:.2}×"),
            "≤ 1.2×",
            ratio <= 1.2,
        ),
        Figure::against(
            AREA,
            "bytes stored per patron (patron chunks, key + text)",
            format!("{:.1}", per_record(p_bytes, s.patrons)),
            "≤ 12",
            per_record(p_bytes, s.patrons) <= 12.0,
        ),
        Figure::against(
            AREA,
            "bytes stored per item (item chunks with loans, key + text)",
            format!("{:.1}", per_record(i_bytes, s.items)),
            "≤ 12",
            per_record(i_bytes, s.items) <= 12.0,
        ),
        Figure::plain(
            AREA,
            "rest of the snapshot (meta, settings), bytes",
            format!("{rest:.0}"),
        ),
        Figure::plain(
            AREA,
            "growth on disk (IndexedDB folder) per record",
            format!(
                "{:.1} bytes",
                f.disk_bytes / f64::from((s.patrons + s.items).max(1))
            ),
        ),
        Figure::plain(
            AREA,
            format!("desk ready without / with the snapshot (median of {READY_RUNS})"),
            format!(
                "{} / {}",
                report::ms(f.ready_ms.0),
                report::ms(f.ready_ms.1)
            ),
        ),
        Figure::plain(
            AREA,
            "snapshot read at the desk's start (after ready; scans wait for it) without / with",
            format!(
                "{} / {}",
                report::ms(f.checks_loaded_ms.0),
                report::ms(f.checks_loaded_ms.1)
            ),
        ),
        Figure::against(
            AREA,
            "desk ready, with the snapshot / without",
            format!("{ready_ratio:.2}×"),
            "≤ 1.1×",
            ready_ratio <= 1.1,
        ),
        Figure::plain(
            AREA,
            format!(
                "Enter → confirmed row p99 without / with the snapshot ({} scans each)",
                without.scans
            ),
            format!("{} / {}", report::ms(p99(without)), report::ms(p99(with))),
        ),
        Figure::plain(
            AREA,
            "Enter → confirmed row median without / with the snapshot",
            format!(
                "{} / {}",
                report::ms(without.median_ms),
                report::ms(with.median_ms)
            ),
        ),
        Figure::against(
            AREA,
            format!(
                "card lookup in the desk's snapshot p99 ({} lookups)",
                lookups.len()
            ),
            report::ms(percentile(&mut lookups, 99.0)),
            "< 1 ms",
            percentile(&mut lookups, 99.0) < 1.0,
        ),
    ]
}
