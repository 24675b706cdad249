//! Sending from the desk in Firefox: page helpers for the send tests, and the send benchmark
//! (our client, one login per batch, against one that logs in with every transaction).
//!
//! The helpers drive the page through its own core (`window.kocCore`, set by the test build's
//! `test/hooks.js`), never by writing the storage format by hand.

use crate::firefox::{with_firefox, Firefox, Options};
use crate::standin::{Config, Profile, StandIn};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The Firefox preference that grants optional permissions without a prompt (tests only).
pub fn grant_without_prompt() -> Vec<(String, Value)> {
    vec![(
        "extensions.webextOptionalPermissionPrompts".to_owned(),
        json!(false),
    )]
}

/// Calls the page's core: `expr` is a JS expression over `core` (awaited). Panics with the
/// error the core threw.
pub async fn core_call(ff: &Firefox, expr: &str) -> Value {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
const core = window.kocCore;
(async () => {{
  try {{ done({{ ok: (await ({expr})) ?? null }}); }}
  catch (e) {{ done({{ err: (e && e.kind) ? {{ kind: e.kind, detail: e.detail }} : String(e) }}); }}
}})();"#
    );
    let value = ff
        .client
        .execute_async(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("core call {expr}: {e}"));
    match value.get("ok") {
        Some(ok) => ok.clone(),
        None => panic!("core call {expr} failed: {value}"),
    }
}

/// What the settings page would store.
#[derive(Debug, Clone)]
pub struct DeskSettings {
    /// The stand-in's base URL.
    pub server: String,
    /// `queue` or `apply`.
    pub mode: &'static str,
    /// Remembered password, or none (then the desk asks).
    pub password: Option<&'static str>,
    /// Log in once per run (session reuse).
    pub login_once: bool,
}

/// Stores settings through the core's `saveOptions`, as the options page does.
pub async fn configure(ff: &Firefox, s: &DeskSettings) {
    let form = json!({
        "server": s.server,
        "branchcode": "DE-627",
        "userid": "desk",
        "password": s.password.unwrap_or(""),
        "rememberPassword": s.password.is_some(),
        "mode": s.mode,
        "timezone": "Europe/Berlin",
        "loginOnce": s.login_once,
    });
    core_call(ff, &format!("core.saveOptions({form})")).await;
}

/// Records transactions in one batch through the core (`recordBatch`).
pub async fn record_batch(ff: &Firefox, items: &Value) -> usize {
    let n = core_call(ff, &format!("core.recordBatch({items})")).await;
    n.as_u64().expect("a count") as usize
}

/// Every transaction as the core lists it (newest first).
pub async fn transactions(ff: &Firefox) -> Vec<Value> {
    match core_call(ff, "core.listPage(\"\", 0, 4294967295).rows").await {
        Value::Array(rows) => rows,
        other => panic!("rows: {other}"),
    }
}

/// How many Send attempts have finished on the page.
pub async fn runs(ff: &Firefox) -> u64 {
    ff.eval(r#"Number(document.getElementById("send-area").dataset.runs ?? 0)"#)
        .await
        .as_u64()
        .unwrap_or(0)
}

/// Waits until more than `before` Send attempts have finished; returns the outcome.
pub async fn wait_for_run(ff: &Firefox, before: u64, at_most: Duration) -> String {
    let deadline = Instant::now() + at_most;
    loop {
        if runs(ff).await > before {
            let outcome = ff
                .eval(r#"document.getElementById("send-area").dataset.outcome"#)
                .await;
            return outcome.as_str().unwrap_or_default().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the send run did not finish in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Clicks Send and waits for the attempt to end; grants the host permission first when the desk
/// asks for it (through its "Allow access" button). Returns the outcome (`ran`, `problem-…`, …).
pub async fn send(ff: &Firefox, at_most: Duration) -> String {
    let before = runs(ff).await;
    ff.click("send").await;
    let outcome = wait_for_run(ff, before, at_most).await;
    if outcome != "not-ready"
        || ff
            .eval(r#"document.getElementById("send-grant").hidden"#)
            .await
            == json!(true)
    {
        return outcome;
    }
    let before = runs(ff).await;
    ff.click("send-grant").await;
    wait_for_run(ff, before, at_most).await
}

/// One side of the benchmark.
#[derive(Debug, Clone, Copy)]
pub struct BenchSide {
    /// Transactions sent.
    pub transactions: usize,
    /// Wall time from the Send click to the summary.
    pub elapsed: Duration,
    /// Password checks the stand-in did.
    pub password_checks: u64,
}

impl BenchSide {
    /// Transactions per second.
    pub fn throughput(&self) -> f64 {
        self.transactions as f64 / self.elapsed.as_secs_f64()
    }

    /// Milliseconds per transaction.
    pub fn ms_each(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1000.0 / self.transactions as f64
    }
}

/// The benchmark's result.
#[derive(Debug, Clone, Copy)]
pub struct SendBench {
    /// Our client: one password check per batch (session reuse, `login_once` on).
    pub ours: BenchSide,
    /// A client that logs in with every transaction (`login_once` off: credentials in each
    /// request, as KOCT ≤0.4.20 and ByWater's GET mode do).
    pub theirs: BenchSide,
    /// One bare `fetch` of the stand-in from the same page, in milliseconds (mean of
    /// [`BARE_FETCHES`] in a row, measured after each side): what Firefox itself costs per
    /// request in this run, with no storage and no core.
    pub bare_fetch_ms: f64,
}

impl SendBench {
    /// Our throughput over theirs.
    pub fn ratio(&self) -> f64 {
        self.ours.throughput() / self.theirs.throughput()
    }

    /// Milliseconds per transaction our client adds to a bare `fetch`.
    pub fn our_overhead_ms(&self) -> f64 {
        self.ours.ms_each() - self.bare_fetch_ms
    }

    /// The best ratio any one-request-at-a-time client could reach in this run: one with no
    /// cost of its own, that is a bare `fetch` against a bare `fetch` plus the password check.
    pub fn sequential_ceiling(&self) -> f64 {
        let password = env_ms("KOC_BENCH_PASSWORD_MS", 50) as f64;
        (self.bare_fetch_ms + password) / self.bare_fetch_ms
    }

    /// A Markdown paragraph with the figures.
    pub fn report(&self) -> String {
        let side = |name: &str, s: &BenchSide| {
            format!(
                "| {name} | {} | {:.1} s | {:.1} tx/s | {:.1} ms | {} |\n",
                s.transactions,
                s.elapsed.as_secs_f64(),
                s.throughput(),
                s.ms_each(),
                s.password_checks
            )
        };
        format!(
            "Send benchmark: stand-in NEWEST, 20 ms round trip, 50 ms password check, queue mode, \
             Firefox ESR headless.\n\n\
             | client | transactions | time | throughput | per transaction | password checks |\n\
             |---|---|---|---|---|---|\n{}{}\nRatio (ours / per-transaction login): {:.2}\n\n\
             A bare `fetch` of the stand-in from the same page took {:.1} ms: ours adds {:.1} ms \
             per transaction to it. Sending one request at a time, no client could do better here \
             than {:.2}× ((bare + password check) / bare).\n",
            side("ours (login once per batch)", &self.ours),
            side("login with every transaction", &self.theirs),
            self.ratio(),
            self.bare_fetch_ms,
            self.our_overhead_ms(),
            self.sequential_ceiling()
        )
    }
}

fn seed(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| match i % 3 {
            0 => json!({"action": "issue", "cardnumber": format!("C{:04}", i % 10 + 1), "barcode": format!("B{:04}", i % 48 + 1)}),
            1 => json!({"action": "return", "barcode": format!("B{:04}", i % 48 + 1)}),
            _ => json!({"action": "payment", "cardnumber": format!("C{:04}", i % 10 + 1), "amount": "1.50"}),
        })
        .collect();
    Value::Array(items)
}

async fn one_side(ff: &Firefox, koha: &StandIn, n: usize, login_once: bool) -> BenchSide {
    koha.reset(bench_config());
    configure(
        ff,
        &DeskSettings {
            server: koha.base_url(),
            mode: "queue",
            password: Some("secret123"),
            login_once,
        },
    )
    .await;
    assert_eq!(record_batch(ff, &seed(n)).await, n);
    let started = Instant::now();
    let outcome = send(ff, Duration::from_secs(900)).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome, "ran");
    let queued = ff
        .eval(r#"document.querySelector('#send-summary [data-count="queued"]').dataset.n"#)
        .await;
    assert_eq!(queued, json!(n.to_string()), "every transaction queued");
    assert_eq!(koha.model().queue.len(), n);
    BenchSide {
        transactions: n,
        elapsed,
        password_checks: koha.password_checks(),
    }
}

fn env_ms(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// NEWEST with a 20 ms round trip and a 50 ms password check (`KOC_BENCH_RTT_MS`,
/// `KOC_BENCH_PASSWORD_MS` override them for experiments).
fn bench_config() -> Config {
    Config {
        profile: Profile::Newest,
        round_trip_ms: env_ms("KOC_BENCH_RTT_MS", 20),
        password_check_ms: env_ms("KOC_BENCH_PASSWORD_MS", 50),
        ..Config::default()
    }
}

/// How many bare fetches [`bare_fetch_ms`] times after each side.
pub const BARE_FETCHES: usize = 200;

/// The mean time of one bare `fetch` (GET `svc/authentication`, as the page's own code would
/// ask for it: no cache, manual redirects) from the desk page, one after the other. Needs the
/// host permission, so it runs after a send has granted it.
async fn bare_fetch_ms(ff: &Firefox, koha: &StandIn) -> f64 {
    koha.reset(bench_config());
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
(async () => {{
  const url = "{}/cgi-bin/koha/svc/authentication";
  const started = performance.now();
  for (let i = 0; i < {BARE_FETCHES}; i++) {{
    const reply = await fetch(url, {{ cache: "no-store", credentials: "omit", redirect: "manual" }});
    await reply.text();
  }}
  done((performance.now() - started) / {BARE_FETCHES});
}})().catch((e) => done(String(e)));"#,
        koha.base_url()
    );
    crate::bench::async_number(ff, &script, "bare fetches").await
}

/// Runs the send benchmark with `n` transactions per side in one Firefox: first the client that
/// logs in with every transaction, then ours (so ours carries the larger journal), each followed
/// by [`BARE_FETCHES`] bare fetches for the floor Firefox sets. `None` when
/// Firefox tests are not set up.
pub async fn run_send_benchmark(n: usize) -> Option<SendBench> {
    let koha = StandIn::start(bench_config()).expect("stand-in");
    let result = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = result.clone();
    let options = Options {
        prefs: grant_without_prompt(),
        ..Options::default()
    };
    let koha = std::sync::Arc::new(koha);
    let k = koha.clone();
    with_firefox(options, move |ff| async move {
        ff.open("desk.html").await;
        let theirs = one_side(&ff, &k, n, false).await;
        let bare_before = bare_fetch_ms(&ff, &k).await;
        let ours = one_side(&ff, &k, n, true).await;
        let bare_after = bare_fetch_ms(&ff, &k).await;
        *out.lock().expect("result") = Some(SendBench {
            ours,
            theirs,
            bare_fetch_ms: (bare_before + bare_after) / 2.0,
        });
    })
    .await;
    let bench = *result.lock().expect("result");
    bench
}
