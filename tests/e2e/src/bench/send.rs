//! The send benchmark (issues 7 and 15): our client against one that logs in with every
//! transaction, and against a bare `fetch` loop of exactly the requests ours sent, all against
//! the stand-in in the same Firefox.

use crate::desk::{async_number, record_batch};
use crate::firefox::{with_firefox, Firefox, Options};
use crate::report::{self, Figure};
use crate::sending::{configure, send, DeskSettings};
use crate::standin::{Config, LoggedRequest, Profile, StandIn};
use serde_json::{json, Value};
use std::time::Duration;

/// One side of the benchmark.
#[derive(Debug, Clone, Copy)]
pub struct BenchSide {
    /// Transactions sent.
    pub transactions: usize,
    /// Time from the Send click to the run's end shown, measured in the page.
    pub elapsed: Duration,
    /// Password checks the stand-in did.
    pub password_checks: u64,
    /// Requests at once.
    pub in_flight: u8,
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

/// Our run against a bare `fetch` loop of the same requests.
#[derive(Debug, Clone, Copy)]
pub struct AgainstBare {
    /// Our run.
    pub ours: BenchSide,
    /// The bare loop: every request our run sent (detection, login, transactions, logout), in
    /// the same order, from the same page, with as many transaction requests at once as ours
    /// had; nothing stored, nothing shown. Milliseconds in all.
    pub bare_ms: f64,
    /// Rounds of ours then the bare loop; `ours` and `bare_ms` are the medians of each side.
    pub rounds: usize,
    /// The lowest and highest ratio of one round's ours to its bare loop.
    pub spread: (f64, f64),
    /// The median of the rounds' ratios: each round's two sides ran back to back, so a slow
    /// spell of the machine that spans a round cancels out of its ratio.
    pub median_round_ratio: f64,
}

impl AgainstBare {
    /// Our time over the bare loop's.
    pub fn ratio(&self) -> f64 {
        self.ours.elapsed.as_secs_f64() * 1000.0 / self.bare_ms
    }

    /// The bare loop's milliseconds per transaction.
    pub fn bare_ms_each(&self) -> f64 {
        self.bare_ms / self.ours.transactions as f64
    }
}

/// The benchmark's result.
#[derive(Debug, Clone)]
pub struct SendBench {
    /// Our client: one password check per batch (session reuse), the add-on's default requests
    /// at once.
    pub ours: AgainstBare,
    /// A client that logs in with every transaction and sends one at a time (credentials in
    /// each request, as KOCT ≤0.4.20 and ByWater's GET mode do).
    pub theirs: BenchSide,
}

impl SendBench {
    /// Our throughput over theirs.
    pub fn ratio(&self) -> f64 {
        self.ours.ours.throughput() / self.theirs.throughput()
    }

    /// The best ratio any one-request-at-a-time client could reach in this run: one with no
    /// cost of its own, that is a bare request against a bare request plus the password check.
    pub fn sequential_ceiling(&self) -> f64 {
        let password = env_ms("KOC_BENCH_PASSWORD_MS", 50) as f64;
        let bare = self.ours.bare_ms_each() * f64::from(self.ours.ours.in_flight);
        (bare + password) / bare
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

/// Sends `n` fresh transactions against `koha` (reset to `config`) and times the run.
async fn one_side(
    ff: &Firefox,
    koha: &StandIn,
    config: Config,
    n: usize,
    login_once: bool,
    in_flight: u8,
) -> BenchSide {
    koha.reset(config.clone());
    configure(
        ff,
        &DeskSettings {
            server: koha.base_url(),
            mode: "queue",
            password: Some("secret123"),
            login_once,
            in_flight,
        },
    )
    .await;
    assert_eq!(record_batch(ff, &mixed_batch(n)).await, n);
    let (outcome, ms) = send_quietly(ff).await;
    if outcome == "not-ready" {
        // The host permission: granted through the desk's button, then timed again.
        assert_eq!(send(ff, Duration::from_secs(900)).await, "ran");
        return Box::pin(one_side(ff, koha, config, n, login_once, in_flight)).await;
    }
    assert_eq!(outcome, "ran");
    let queued = ff
        .eval(r#"document.querySelector('#send-summary [data-count="queued"]').dataset.n"#)
        .await;
    assert_eq!(queued, json!(n.to_string()), "every transaction queued");
    assert_eq!(koha.model().queue.len(), n);
    BenchSide {
        transactions: n,
        elapsed: Duration::from_secs_f64(ms / 1000.0),
        password_checks: koha.password_checks(),
        in_flight,
    }
}

/// Clicks Send and waits for the run to end without polling the page: WebDriver calls run on
/// the page's thread and cost the run time of its own (a check every 20 ms slowed a fast run by
/// a third). The page answers when the run is over, or after 20 s to be asked again. Returns the
/// outcome and the milliseconds from the click to the run's end shown, timed in the page with
/// the clock the bare loop uses, so neither side carries WebDriver's own time.
async fn send_quietly(ff: &Firefox) -> (String, f64) {
    const SCRIPT: &str = r#"const done = arguments[arguments.length - 1];
if (arguments[0]) {
  const area = document.getElementById("send-area");
  const runs = () => Number(area.dataset.runs ?? 0);
  const before = runs();
  let ended;
  const bench = { finished: new Promise((resolve) => { ended = resolve; }) };
  window.kocSendBench = bench;
  const seen = new MutationObserver(() => {
    if (runs() > before) {
      seen.disconnect();
      ended([area.dataset.outcome, performance.now() - bench.started]);
    }
  });
  seen.observe(area, { attributes: true });
  bench.started = performance.now();
  document.getElementById("send").click();
}
Promise.race([
  window.kocSendBench.finished,
  new Promise((resolve) => setTimeout(() => resolve(null), 20000)),
]).then(done);"#;
    let mut click = true;
    loop {
        let answer = ff
            .client
            .execute_async(SCRIPT, vec![json!(click)])
            .await
            .expect("the send run's end");
        click = false;
        if let (Some(outcome), Some(ms)) = (answer[0].as_str(), answer[1].as_f64()) {
            return (outcome.to_owned(), ms);
        }
    }
}

fn env_ms(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The add-on's default requests at once, unless `KOC_BENCH_IN_FLIGHT` sets it.
fn default_in_flight() -> u8 {
    env_ms(
        "KOC_BENCH_IN_FLIGHT",
        u64::from(koha_offline_circ::settings::DEFAULT_IN_FLIGHT),
    ) as u8
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

/// A fast Koha next door: no added round trip, a 5 ms password check. Our own work shows here.
fn fast_config() -> Config {
    Config {
        profile: Profile::Newest,
        round_trip_ms: 0,
        password_check_ms: 5,
        ..Config::default()
    }
}

/// A request as the bare loop sends it.
fn bare_request(base: &str, r: &LoggedRequest) -> Value {
    let url = if r.query.is_empty() {
        format!("{base}{}", r.path)
    } else {
        format!("{base}{}?{}", r.path, r.query)
    };
    let token = r
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(koha_offline_circ::koha::CSRF_HEADER));
    json!({
        "method": r.method,
        "url": url,
        "body": (r.method == "POST").then_some(&r.body),
        "token": token,
        "transaction": r.param("action").is_some_and(|a| !a.is_empty()),
    })
}

/// Replays `requests` (what our run sent, as the stand-in logged them) with bare `fetch`es from
/// the desk page against `koha` reset to `config`: the same methods, URLs and bodies, each CSRF
/// token taken from the latest answer that carried one, as Koha requires; the transaction
/// requests `in_flight` at a time, the others one by one in their place. Returns milliseconds.
async fn bare_replay_ms(
    ff: &Firefox,
    koha: &StandIn,
    config: Config,
    requests: &[LoggedRequest],
    in_flight: u8,
) -> f64 {
    koha.reset(config);
    let base = koha.base_url();
    let list: Vec<Value> = requests.iter().map(|r| bare_request(&base, r)).collect();
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
const requests = {list};
let token = null;
async function one(r) {{
  const headers = {{}};
  if (r.method === "POST") headers["Content-Type"] = "{form}";
  if (r.token && token) headers["{csrf}"] = token;
  const reply = await fetch(r.url, {{ method: r.method, headers, body: r.body ?? undefined,
    cache: "no-store", credentials: "include", redirect: "manual",
    signal: AbortSignal.timeout(60000) }});
  token = reply.headers.get("{csrf}") ?? token;
  await reply.text();
}}
(async () => {{
  const started = performance.now();
  let at = 0;
  while (at < requests.length) {{
    if (!requests[at].transaction) {{ await one(requests[at]); at += 1; continue; }}
    let end = at;
    while (end < requests.length && requests[end].transaction) end += 1;
    let next = at;
    const worker = async () => {{ while (next < end) await one(requests[next++]); }};
    await Promise.all(Array.from({{ length: {in_flight} }}, worker));
    at = end;
  }}
  done(performance.now() - started);
}})().catch((e) => done(String(e)));"#,
        list = Value::Array(list),
        form = koha_offline_circ::koha::FORM_CONTENT_TYPE,
        csrf = koha_offline_circ::koha::CSRF_HEADER,
    );
    let ms = async_number(ff, &script, "bare replay").await;
    let answered = koha.transaction_requests();
    assert_eq!(
        answered.len(),
        requests
            .iter()
            .filter(|r| r.param("action").is_some_and(|a| !a.is_empty()))
            .count(),
        "the bare loop sent every transaction"
    );
    assert!(
        answered.iter().all(|r| r.answer == "Added."),
        "Koha queued every replayed transaction"
    );
    ms
}

/// `rounds` times our run of `n` with `in_flight` requests at once against `config`, each
/// followed by the bare loop of the same requests: alternating, so a slow spell of the machine
/// touches both sides, and each side's median, so one spell does not decide the figure.
async fn against_bare(
    ff: &Firefox,
    koha: &StandIn,
    config: fn() -> Config,
    n: usize,
    in_flight: u8,
    rounds: usize,
) -> AgainstBare {
    let mut ours = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..rounds.max(1) {
        ours.push(one_side(ff, koha, config(), n, true, in_flight).await);
        let sent = koha.log();
        bare.push(bare_replay_ms(ff, koha, config(), &sent, in_flight).await);
    }
    let mut ratios: Vec<f64> = ours
        .iter()
        .zip(&bare)
        .map(|(o, b)| o.elapsed.as_secs_f64() * 1000.0 / b)
        .collect();
    let spread = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    ours.sort_by_key(|side| side.elapsed);
    AgainstBare {
        ours: ours[ours.len() / 2],
        bare_ms: report::median(&mut bare),
        rounds: ratios.len(),
        spread,
        median_round_ratio: report::median(&mut ratios),
    }
}

/// Runs `body` in one Firefox on the desk page with a stand-in; `None` when Firefox tests are
/// not set up.
async fn in_firefox<T, F, Fut>(body: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(std::sync::Arc<Firefox>, std::sync::Arc<StandIn>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let koha = std::sync::Arc::new(StandIn::start(bench_config()).expect("stand-in"));
    let result = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = result.clone();
    with_firefox(Options::granting_permissions(), move |ff| async move {
        ff.open("desk.html").await;
        let value = body(ff, koha).await;
        *out.lock().expect("result") = Some(value);
    })
    .await;
    let value = result.lock().expect("result").take();
    value
}

/// Runs the send benchmark with `n` transactions per side: first the client that logs in with
/// every transaction, then ours (so ours carries the larger journal), then the bare loop of
/// ours' requests.
pub async fn run_send_benchmark(n: usize) -> Option<SendBench> {
    in_firefox(move |ff, koha| async move {
        let theirs = one_side(&ff, &koha, bench_config(), n, false, 1).await;
        let ours = against_bare(&ff, &koha, bench_config, n, default_in_flight(), 1).await;
        SendBench { ours, theirs }
    })
    .await
}

/// Ours against the bare loop on the fast stand-in, one at a time and at the default; and our
/// time per transaction with 1 to 4 at once on the 20 ms stand-in (what the default is chosen
/// by).
pub async fn run_overhead_benchmark(n: usize) -> Option<(Vec<AgainstBare>, Vec<BenchSide>)> {
    in_firefox(move |ff, koha| async move {
        let mut fast = Vec::new();
        for in_flight in [1, default_in_flight()] {
            // One round's ratio spans half a unit on a busy two-core machine (0.94–1.59× in
            // five-round runs): nine rounds keep one slow spell from deciding the medians.
            let rounds = env_ms("KOC_BENCH_ROUNDS", 9) as usize;
            fast.push(against_bare(&ff, &koha, fast_config, n, in_flight, rounds).await);
        }
        let mut sweep = Vec::new();
        for in_flight in 1..=4 {
            sweep.push(one_side(&ff, &koha, bench_config(), n, true, in_flight).await);
        }
        (fast, sweep)
    })
    .await
}

const SEND: &str = "Send to Koha (stand-in: 20 ms round trip, 50 ms password check)";
const FAST: &str = "Send to Koha (fast stand-in: no added round trip, 5 ms password check)";

fn side_text(s: &BenchSide) -> String {
    format!(
        "{:.1} tx/s ({}, {} password checks)",
        s.throughput(),
        report::ms(s.ms_each()) + " each",
        s.password_checks
    )
}

fn against_bare_figure(area: &'static str, what: &str, a: &AgainstBare) -> Figure {
    Figure::against(
        area,
        format!(
            "{what}, {} at once: ours / bare fetch loop of the same requests",
            a.ours.in_flight
        ),
        if a.rounds > 1 {
            format!(
                "{:.2}× ({} vs {} each; medians of {} alternating rounds, one round's ratio \
                 {:.2}–{:.2}×, median {:.2}×)",
                a.ratio(),
                report::ms(a.ours.ms_each()),
                report::ms(a.bare_ms_each()),
                a.rounds,
                a.spread.0,
                a.spread.1,
                a.median_round_ratio
            )
        } else {
            format!(
                "{:.2}× ({} vs {} each)",
                a.ratio(),
                report::ms(a.ours.ms_each()),
                report::ms(a.bare_ms_each())
            )
        },
        "≤ 1.2×",
        a.ratio() <= 1.2,
    )
}

/// Our client (one login per batch) against one that logs in with every transaction, and
/// against a bare loop of the same requests; `count` transactions each, `overhead_count` for the
/// fast stand-in and the requests-at-once sweep.
pub async fn figures(count: usize, overhead_count: usize) -> Vec<Figure> {
    let mut figures = Vec::new();
    if let Some(bench) = run_send_benchmark(count).await {
        figures.extend([
            Figure::plain(
                SEND,
                format!(
                    "ours, {count} transactions, one login per batch, {} at once",
                    bench.ours.ours.in_flight
                ),
                side_text(&bench.ours.ours),
            ),
            Figure::plain(
                SEND,
                format!(
                    "log in with every transaction, one at a time (KOCT ≤0.4.20, ByWater GET), \
                     {count}"
                ),
                side_text(&bench.theirs),
            ),
            Figure::against(
                SEND,
                "throughput ratio, ours / theirs",
                format!(
                    "{:.2}× (one at a time could reach at most {:.2}×)",
                    bench.ratio(),
                    bench.sequential_ceiling()
                ),
                "≥ 5×",
                bench.ratio() >= 5.0,
            ),
            against_bare_figure(SEND, &format!("{count} transactions"), &bench.ours),
        ]);
    }
    if let Some((fast, sweep)) = run_overhead_benchmark(overhead_count).await {
        for a in &fast {
            figures.push(against_bare_figure(
                FAST,
                &format!("{overhead_count} transactions"),
                a,
            ));
        }
        let per_setting: Vec<String> = sweep
            .iter()
            .map(|s| format!("{}: {}", s.in_flight, report::ms(s.ms_each())))
            .collect();
        figures.push(Figure::plain(
            SEND,
            format!("ours per transaction by requests at once, {overhead_count} transactions"),
            per_setting.join("; "),
        ));
    }
    figures
}
