//! Storage benchmarks (issue 4), run in a real Firefox by `./build.sh bench`, and the page
//! helpers the storage tests share with them.
//!
//! Figures: time from Enter in `#checkout-barcode` to the confirmed row in the DOM (median and
//! 99th percentile over [`SCANS`] scans) with 0, 10,000 and 50,000 transactions stored; desk
//! ready time (navigation start to `#app[data-ready=true]`) with 50,000 stored; bytes of storage
//! per transaction.

use crate::firefox::{with_firefox, Firefox, Options, ADDON_UUID};
use crate::report::percentile;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Scans per measured journal size (`KOC_BENCH_SCANS` overrides).
pub const SCANS: usize = 200;

fn scans() -> usize {
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

/// Ids of every row the desk's table can show (all its pages), newest first, as the page's
/// core lists them.
pub async fn row_ids(ff: &Firefox) -> Vec<String> {
    let value = ff
        .eval(r##"window.kocCore.listPage("", 0, 4294967295).rows.map(r => r.id)"##)
        .await;
    serde_json::from_value(value).expect("row ids")
}

/// Runs `script` (a JS async function body; `core` is the page's WASM core) and returns what it
/// returns. Waits up to two minutes.
pub async fn eval_async(ff: &Firefox, body: &str) -> Value {
    let script = format!(
        r##"const done = arguments[arguments.length - 1];
        import("moz-extension://{ADDON_UUID}/lib/wasm.js")
          .then(async ({{ core }}) => {{ {body} }})
          .then((value) => done({{ ok: value ?? null }}), (e) => done({{ error: String(e?.message ?? JSON.stringify(e)).slice(0, 500) }}));"##
    );
    ff.client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(120)),
            Some(Duration::from_secs(120)),
            Some(Duration::ZERO),
        ))
        .await
        .expect("timeouts");
    let answer = ff
        .client
        .execute_async(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("async script failed: {e}\n{body}"));
    match answer.get("error") {
        Some(error) => panic!("async script threw {error}\n{body}"),
        None => answer.get("ok").cloned().unwrap_or(Value::Null),
    }
}

/// Runs an async page script that ends with `done(number)` and returns the number; anything
/// else (an error text) fails with `what`.
pub async fn async_number(ff: &Firefox, script: &str, what: &str) -> f64 {
    let value = ff
        .client
        .execute_async(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    value.as_f64().unwrap_or_else(|| panic!("{what}: {value}"))
}

/// Writes `count` synthetic transactions (numbered from `first`) straight into
/// `browser.storage.local`, in the core's layout, 5,000 per write; with `packed`, the applied
/// ones in archive chunks (a desk in use for a while), else one key each (right after a send).
pub async fn seed(ff: &Firefox, first: u32, count: u32, unsent: u32, packed: bool) {
    let mut done = 0;
    while done < count {
        let batch = (count - done).min(5_000);
        let unsent_here = unsent.saturating_sub(done).min(batch);
        eval_async(
            ff,
            &format!(
                "await browser.storage.local.set(core.syntheticEntries({}, {batch}, {unsent_here}, {packed}));",
                first + done
            ),
        )
        .await;
        done += batch;
    }
}

/// Records one checkout through the desk's form and waits for its row; returns its id.
pub async fn record_checkout(ff: &Firefox, cardnumber: &str, barcode: &str) -> String {
    let card = ff
        .eval(r##"document.getElementById("checkout-cardnumber").value"##)
        .await;
    if card != cardnumber {
        ff.eval(r##"document.getElementById("checkout-cardnumber").value = """##)
            .await;
        ff.type_into("checkout-cardnumber", &format!("{cardnumber}\n"))
            .await;
    }
    ff.type_into("checkout-barcode", &format!("{barcode}\n"))
        .await;
    // The desk shows the newest page first, so the new row appears at the top.
    ff.wait_until(
        "the new row",
        &format!(
            r##"[...document.querySelectorAll("#transactions tbody tr")].some(r => r.cells[3]?.textContent === "{barcode}")"##
        ),
    )
    .await;
    let id = ff
        .eval(&format!(
            r##"[...document.querySelectorAll("#transactions tbody tr")].find(r => r.cells[3]?.textContent === "{barcode}")?.dataset.id"##
        ))
        .await;
    id.as_str().expect("the row of the new checkout").to_owned()
}

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
    install_timer(ff).await;
    ff.eval(r##"document.getElementById("checkout-cardnumber").value = """##)
        .await;
    ff.type_into("checkout-cardnumber", "C0001\n").await;
    for i in 0..scans() {
        ff.type_into("checkout-barcode", &format!("M{stored}X{i:04}\n"))
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
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while ff
        .client
        .execute(
            r#"return document.getElementById("app")?.dataset.ready === "true";"#,
            vec![],
        )
        .await
        .ok()
        != Some(Value::Bool(true))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the desk never got ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens the desk and waits (long) until it is ready.
async fn open_desk_long(ff: &Firefox) {
    ff.client
        .goto(&Firefox::page_url("desk.html"))
        .await
        .expect("navigation");
    wait_ready_long(ff).await;
}

/// Navigation start to `#app[data-ready=true]`, from the mark "koc:ready" that the test build's
/// `test/hooks.js` sets.
async fn ready_time(ff: &Firefox) -> f64 {
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

fn extension_storage_bytes(profile: &Path) -> u64 {
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
               // Single keys and archive chunks, over the transactions they hold.
               let bytes = 0, count = 0;
               for (const [k, v] of Object.entries(all)) {
                 if (k.startsWith("tx:")) { bytes += k.length + JSON.stringify(v).length; count++; }
                 if (k.startsWith("archive:")) { bytes += k.length + v.length; count += JSON.parse(v).txs.length; }
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
