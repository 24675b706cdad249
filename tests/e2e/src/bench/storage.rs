//! Storage benchmarks (issue 4), run in a real Firefox by `./build.sh bench`.
//!
//! Figures: time from Enter in `#checkout-barcode` to the confirmed row in the DOM (median and
//! 99th percentile over [`SCANS`] scans) with 0, 10,000 and 50,000 transactions stored; desk
//! ready time (navigation start to `#app[data-ready=true]`) with 50,000 stored; bytes of storage
//! per transaction.

use crate::desk::{eval_async, seed};
use crate::firefox::{with_firefox, Firefox, Options};
use crate::report::{self, percentile, Figure};
use crate::wait::wait_until;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Scans per measured journal size (`KOC_BENCH_SCANS` overrides).
pub const SCANS: usize = 200;

pub(crate) fn scans() -> usize {
    std::env::var("KOC_BENCH_SCANS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SCANS)
}
/// Journal sizes the Enter-to-row time is measured at.
pub const SIZES: [u32; 3] = [0, 10_000, 50_000];
/// Of the seeded transactions, how many are not accepted by Koha (kept in the mirror too).
pub const SEEDED_UNSENT: u32 = 1_000;
/// How many reloads the target-bearing desk ready time is the median of.
pub const READY_RUNS: usize = 5;

/// Median and 99th percentile of a set of timings, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Journal size when measured.
    pub stored: u32,
    /// Scans measured.
    pub scans: usize,
    /// Median, ms.
    pub median_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

impl Timing {
    fn of(stored: u32, mut samples: Vec<f64>) -> Timing {
        Timing {
            stored,
            scans: samples.len(),
            median_ms: percentile(&mut samples, 50.0),
            p99_ms: percentile(&mut samples, 99.0),
            max_ms: percentile(&mut samples, 100.0),
        }
    }
}

/// Everything the storage benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct StorageFigures {
    /// Enter to confirmed row, per journal size.
    pub enter_to_row: Vec<Timing>,
    /// One transaction written to both stores from a page that renders nothing, per journal
    /// size.
    pub store_write: Vec<Timing>,
    /// Navigation start to `#app[data-ready=true]` with the largest journal, ms (median of
    /// [`READY_RUNS`]).
    pub ready_ms: f64,
    /// Of that: `browser.storage.local.get(null)` alone, ms.
    pub read_all_ms: f64,
    /// Of that: the core's `openStorage()` (read, reconcile, fill the journal), ms.
    pub open_desk_ms: f64,
    /// Desk ready time (median of 3, ms) per journal size.
    pub ready_by_size: Vec<(u32, f64)>,
    /// Journal size for `ready_ms`.
    pub ready_stored: u32,
    /// Bytes of one transaction's entry in `browser.storage.local` (key + JSON value).
    pub bytes_per_transaction: f64,
    /// Bytes of one mirror entry in `localStorage` (key + JSON text; UTF-16 in Firefox).
    pub mirror_bytes_per_transaction: f64,
    /// Growth of the add-on's IndexedDB folder on disk per stored transaction.
    pub disk_bytes_per_transaction: Option<f64>,
}

impl StorageFigures {
    /// A Markdown section for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "## Storage (issue 4)\n\n| stored | scans | Enter → confirmed row, median | p99 | max |\n|---:|---:|---:|---:|---:|\n",
        );
        for t in &self.enter_to_row {
            out.push_str(&format!(
                "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |\n",
                t.stored, t.scans, t.median_ms, t.p99_ms, t.max_ms
            ));
        }
        out.push_str(
            "\n| stored | writes | one transaction to both stores (no rendering), median | p99 | max |\n|---:|---:|---:|---:|---:|\n",
        );
        for t in &self.store_write {
            out.push_str(&format!(
                "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |\n",
                t.stored, t.scans, t.median_ms, t.p99_ms, t.max_ms
            ));
        }
        out.push_str(&format!(
            "\nDesk ready with {} stored: {:.0} ms (storage.local.get(null): {:.0} ms; core openStorage incl. the read: {:.0} ms).\n\
             Bytes per transaction: {:.0} in storage.local (key + JSON), {:.0} in the localStorage mirror{}.\n",
            self.ready_stored,
            self.ready_ms,
            self.read_all_ms,
            self.open_desk_ms,
            self.bytes_per_transaction,
            self.mirror_bytes_per_transaction,
            self.disk_bytes_per_transaction
                .map(|b| format!(", {b:.0} on disk (IndexedDB)"))
                .unwrap_or_default()
        ));
        out
    }
}

/// Installs the Enter → row timer in the open desk: keydown Enter in `#checkout-barcode` starts
/// it, a new top row (newest first) in `#transactions` stops it.
async fn install_timer(ff: &Firefox) {
    ff.eval(
        r##"(() => {
          window.__kocTimes = [];
          const body = document.querySelector("#transactions tbody");
          let started = null;
          let top = body.firstElementChild?.dataset.id;
          document.getElementById("checkout-barcode").addEventListener("keydown", (e) => {
            if (e.key === "Enter") started = performance.now();
          }, true);
          new MutationObserver(() => {
            const now = body.firstElementChild?.dataset.id;
            if (started !== null && now && now !== top) {
              window.__kocTimes.push(performance.now() - started);
              started = null;
            }
            top = now;
          }).observe(body, { childList: true, subtree: true });
          return true;
        })()"##,
    )
    .await;
}

async fn measure_scans(ff: &Firefox, stored: u32) -> Timing {
    measure_checkouts(ff, stored, "C0001", |i| format!("M{stored}X{i:04}")).await
}

/// Enter → confirmed row over [`SCANS`] checkouts to `card` of the items `barcode(i)` names, in
/// the open desk. Each scan must record without a question (the timer waits for its row).
pub(crate) async fn measure_checkouts(
    ff: &Firefox,
    stored: u32,
    card: &str,
    barcode: impl Fn(usize) -> String,
) -> Timing {
    install_timer(ff).await;
    ff.eval(r##"document.getElementById("checkout-cardnumber").value = """##)
        .await;
    ff.type_into("checkout-cardnumber", &format!("{card}\n"))
        .await;
    for i in 0..scans() {
        ff.type_into("checkout-barcode", &format!("{}\n", barcode(i)))
            .await;
        ff.wait_until("the scan's row", &format!("window.__kocTimes.length > {i}"))
            .await;
    }
    let samples: Vec<f64> =
        serde_json::from_value(ff.eval("window.__kocTimes").await).expect("timings");
    Timing::of(stored, samples)
}

/// One transaction written to both stores (the mirror, then `storage.local`), from a page
/// that renders nothing: what recording costs in storage, without the desk's rendering.
async fn measure_store_write(ff: &Firefox, stored: u32) -> Timing {
    let scans = scans();
    let samples = eval_async(
        ff,
        &format!(
            r##"const times = [];
            const entries = Object.entries(core.syntheticEntries({first}, {scans}, {scans}));
            for (const [key, value] of entries) {{
              const t = performance.now();
              localStorage.setItem("koha-offline-circ:" + key, JSON.stringify(value));
              await browser.storage.local.set({{ [key]: value }});
              times.push(performance.now() - t);
            }}
            return times;"##,
            first = 5_000_000 + stored
        ),
    )
    .await;
    Timing::of(stored, serde_json::from_value(samples).expect("timings"))
}

/// Waits for `#app[data-ready=true]` up to five minutes (a slow desk is measured, not failed).
async fn wait_ready_long(ff: &Firefox) {
    wait_until(
        "the desk to get ready",
        Duration::from_secs(300),
        || async {
            ff.client
                .execute(
                    r#"return document.getElementById("app")?.dataset.ready === "true";"#,
                    vec![],
                )
                .await
                .is_ok_and(|ready| ready == true)
        },
    )
    .await;
}

/// Opens the desk and waits (long) until it is ready.
pub(crate) async fn open_desk_long(ff: &Firefox) {
    ff.client
        .goto(&Firefox::page_url("desk.html"))
        .await
        .expect("navigation");
    wait_ready_long(ff).await;
}

/// Navigation start to `#app[data-ready=true]`, from the mark "koc:ready" that the test build's
/// `test/hooks.js` sets. The desk open before is let finish its start first (the archive
/// chunks it reads after it is ready): a desk is not reloaded the instant it shows, and that
/// page's reading would compete with the next one's start.
pub(crate) async fn ready_time(ff: &Firefox) -> f64 {
    ff.wait_until(
        "the desk's start finished",
        "!window.kocCore || !window.kocCore.archiveUnread()",
    )
    .await;
    ff.client.refresh().await.expect("reload");
    wait_ready_long(ff).await;
    ff.wait_until(
        "the ready mark",
        r##"performance.getEntriesByName("koc:ready").length > 0"##,
    )
    .await;
    ff.eval(r##"performance.getEntriesByName("koc:ready")[0].startTime"##)
        .await
        .as_f64()
        .expect("a time")
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

pub(crate) fn extension_storage_bytes(profile: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(profile.join("storage/default")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("moz-extension"))
        .map(|e| dir_size(&e.path()))
        .sum()
}

/// Runs the storage benchmarks in one Firefox (a fixed profile under `target/`). Returns
/// `None` when Firefox tests are not set up (see [`crate::firefox::addon_dir`]).
pub async fn storage_benchmarks() -> Option<StorageFigures> {
    crate::firefox::addon_dir()?;
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-profile");
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).expect("profile folder");
    let options = Options {
        profile: Some(profile.clone()),
        ..Options::default()
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    with_firefox(options, move |ff| async move {
        ff.open("desk.html").await;
        let mut enter_to_row = Vec::new();
        let mut store_write = Vec::new();
        let mut stored = 0;
        let mut disk = None;
        let mut ready_by_size = Vec::new();
        for size in SIZES {
            if size > stored {
                // Seeded from the options page, so no open desk re-renders on every batch.
                ff.open("options.html").await;
                let before = extension_storage_bytes(&profile);
                seed(&ff, stored + 1_000_000, size - stored, SEEDED_UNSENT, true).await;
                let after = extension_storage_bytes(&profile);
                if size == *SIZES.last().unwrap_or(&0) && after > before {
                    disk = Some((after - before) as f64 / f64::from(size - stored));
                }
                stored = size;
                eprintln!("bench: seeded {size}");
                open_desk_long(&ff).await;
            }
            let mut readies_here: Vec<f64> = Vec::new();
            for _ in 0..3 {
                readies_here.push(ready_time(&ff).await);
            }
            readies_here.sort_by(f64::total_cmp);
            ready_by_size.push((size, readies_here[1]));
            let timing = measure_scans(&ff, stored).await;
            eprintln!("bench: Enter → row at {size}: {timing:?}");
            enter_to_row.push(Timing { stored: size, ..timing });
            ff.open("options.html").await;
            let timing = measure_store_write(&ff, stored).await;
            eprintln!("bench: store write at {size}: {timing:?}");
            store_write.push(Timing { stored: size, ..timing });
            open_desk_long(&ff).await;
            stored += 2 * scans() as u32;
        }
        let mut readies: Vec<f64> = Vec::new();
        for _ in 0..READY_RUNS {
            readies.push(ready_time(&ff).await);
        }
        eprintln!("bench: ready {readies:?}");
        ff.open("options.html").await;
        let read_all_ms = eval_async(
            &ff,
            "const t = performance.now(); await browser.storage.local.get(null); return performance.now() - t;",
        )
        .await
        .as_f64()
        .unwrap_or(f64::NAN);
        let open_desk_ms = eval_async(
            &ff,
            "const t = performance.now(); await core.openStorage(); return performance.now() - t;",
        )
        .await
        .as_f64()
        .unwrap_or(f64::NAN);
        let bytes = eval_async(
            &ff,
            r##"const all = await browser.storage.local.get(null);
               // Single keys, pending and archive chunks, over the transactions they hold.
               let bytes = 0, count = 0;
               for (const [k, v] of Object.entries(all)) {
                 if (k.startsWith("tx:")) { bytes += k.length + JSON.stringify(v).length; count++; }
                 if (k.startsWith("archive:") || k.startsWith("pending:")) {
                   bytes += k.length + v.length; count += JSON.parse(v).txs.length;
                 }
               }
               const primary = bytes / count;
               let mirror = 0, m = 0;
               for (let i = 0; i < localStorage.length; i++) {
                 const k = localStorage.key(i);
                 if (k.startsWith("koha-offline-circ:tx:")) { mirror += k.length + localStorage.getItem(k).length; m++; }
               }
               return [primary, m ? mirror / m : 0];"##,
        )
        .await;
        let figures = StorageFigures {
            ready_by_size,
            enter_to_row,
            store_write,
            ready_ms: percentile(&mut readies, 50.0),
            read_all_ms,
            open_desk_ms,
            ready_stored: stored,
            bytes_per_transaction: bytes[0].as_f64().unwrap_or(f64::NAN),
            mirror_bytes_per_transaction: bytes[1].as_f64().unwrap_or(f64::NAN),
            disk_bytes_per_transaction: disk,
        };
        sender.send(figures).expect("figures sent");
    })
    .await;
    receiver.recv().ok()
}

const DESK: &str = "Desk and storage in Firefox";

/// Enter-to-row and ready time at several journal sizes, and bytes per transaction.
pub async fn figures() -> Vec<Figure> {
    let Some(f) = storage_benchmarks().await else {
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
                "≤ 16 ms",
                t.p99_ms <= 16.0,
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
            f.ready_stored, READY_RUNS
        ),
        report::ms(f.ready_ms),
        "≤ 250 ms",
        f.ready_ms <= 250.0,
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
