//! The send benchmark (issue 7): our client, one login per batch, against one that logs in with
//! every transaction, both against the stand-in in the same Firefox.

use crate::desk::{async_number, record_batch};
use crate::firefox::{with_firefox, Firefox, Options};
use crate::report::{self, Figure};
use crate::sending::{configure, send, DeskSettings};
use crate::standin::{Config, Profile, StandIn};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

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

/// `n` transactions of every kind, over the stand-in's demo patrons and items.
fn mixed_batch(n: usize) -> Value {
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
            // Queue mode's requests at once; 0 leaves the add-on's default.
            in_flight: env_ms("KOC_BENCH_IN_FLIGHT", 0) as u8,
        },
    )
    .await;
    assert_eq!(record_batch(ff, &mixed_batch(n)).await, n);
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
    async_number(ff, &script, "bare fetches").await
}

/// Runs the send benchmark with `n` transactions per side in one Firefox: first the client that
/// logs in with every transaction, then ours (so ours carries the larger journal), each followed
/// by [`BARE_FETCHES`] bare fetches for the floor Firefox sets. `None` when
/// Firefox tests are not set up.
pub async fn run_send_benchmark(n: usize) -> Option<SendBench> {
    let koha = StandIn::start(bench_config()).expect("stand-in");
    let result = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = result.clone();
    let options = Options::granting_permissions();
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

const SEND: &str = "Send to Koha (stand-in: 20 ms round trip, 50 ms password check)";

/// Our client (one login per batch) against one that logs in with every transaction.
pub async fn figures(count: usize) -> Vec<Figure> {
    let Some(bench) = run_send_benchmark(count).await else {
        return Vec::new();
    };
    let side = |s: &BenchSide| {
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
