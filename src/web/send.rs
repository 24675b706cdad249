//! What the desk's send area calls: readiness, the send run, cancel, and the librarian's choices
//! for uncertain transactions. The rules are the core's (`koha`, `sync`); this module does the
//! I/O around them: storage, permissions, fetch, and progress callbacks to the page.
//!
//! Every status change is stored before the next step: `sending` is in the synchronous mirror
//! before the request leaves (the store of record is written while it travels, and awaited
//! before the next one), the outcome as soon as it arrives (koha-protocol.md §3.3).
//!
//! Where it runs: the toolbar popup closes when it loses focus, so its Send button opens the desk
//! in a tab (`desk.html?send=1`) and the run happens there; the page holds the `koha-send` Web
//! Lock for the whole run, so another page opening meanwhile leaves the `sending` row alone. If
//! the tab is closed anyway, the row in flight is `sending` in storage and becomes `uncertain`
//! at the next start; nothing is resent by itself.
//!
//! Keep-alive: Firefox silently re-sends a request whose reused keep-alive connection closed
//! without an answer (koha-protocol.md §2.6, checked in `tests/e2e/tests/send.rs`): Koha then
//! stores a transaction twice while the desk sees one clean answer. `fetch` cannot force a fresh
//! connection (OQ-23), so this case cannot be detected from here; on a fresh connection (the
//! stand-in's `keep_alive: false`) a drop shows up as `uncertain`, as it should.

use super::dto::{js_error, to_js, ErrorDto};
use super::{browser, http, state};
use crate::koha::{self, DetectStep, Detection, Transport};
use crate::settings::Settings;
use crate::sync::{self, Decision, NotReady, Resend, SendRun, Summary};
use crate::transaction::{Status, Transaction, TransactionId};
use crate::{Action, Amount, Barcode, Cardnumber};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use wasm_bindgen::prelude::*;

/// Where a password typed at the send prompt is kept for this browser session (memory only).
pub const SESSION_PASSWORD_KEY: &str = "koha-offline-circ:password";

thread_local! {
    static CANCEL: Cell<bool> = const { Cell::new(false) };
    static RUNNING: Cell<bool> = const { Cell::new(false) };
}

fn error(kind: &str, detail: impl ToString) -> JsValue {
    js_error(ErrorDto::new(kind, None, detail))
}

fn storage_error(e: state::StorageFailure) -> JsValue {
    error("storage", e.0)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadinessDto {
    /// `null` when ready, else `settings`, `userid`, `permission`, `password`.
    missing: Option<&'static str>,
    /// The origin pattern to grant (also when ready, for the grant button).
    origin: Option<String>,
    /// What a run would send now (local and failed).
    sendable: usize,
    /// Uncertain transactions waiting for the librarian.
    uncertain: usize,
}

async fn session_password() -> Option<String> {
    browser::session_get_string(SESSION_PASSWORD_KEY)
        .await
        .ok()
        .flatten()
}

async fn host_permission(settings: Option<&Settings>) -> bool {
    match settings {
        Some(s) => browser::has_origin_permission(&s.server.origin_pattern())
            .await
            .unwrap_or(false),
        None => false,
    }
}

async fn credentials() -> Result<koha::Credentials, NotReady> {
    let settings = state::settings();
    let permitted = host_permission(settings.as_ref()).await;
    let password = session_password().await;
    sync::credentials(settings.as_ref(), permitted, password.as_deref())
}

/// What a send run would need first, and how much there is to send.
#[wasm_bindgen(js_name = sendReadiness)]
pub async fn send_readiness() -> Result<JsValue, JsValue> {
    let missing = credentials().await.err();
    let counts = state::with_journal(|j| {
        let uncertain = j
            .in_order()
            .filter(|t| matches!(t.status(), Status::Uncertain { .. }))
            .count();
        (j.sendable_in_order().count(), uncertain)
    });
    to_js(&ReadinessDto {
        missing: missing.as_ref().map(NotReady::kind),
        origin: state::settings().map(|s| s.server.origin_pattern()),
        sendable: counts.0,
        uncertain: counts.1,
    })
}

/// Keeps the password typed at the prompt for this browser session (never on disk).
#[wasm_bindgen(js_name = setSessionPassword)]
pub async fn set_session_password(password: String) -> Result<(), JsValue> {
    if password.is_empty() {
        return Err(error("send-input", "empty password"));
    }
    browser::session_set_string(SESSION_PASSWORD_KEY, &password).await
}

/// Asks the run in progress to stop after the request in flight.
#[wasm_bindgen(js_name = cancelSend)]
pub fn cancel_send() {
    CANCEL.with(|c| c.set(true));
}

/// Whether a run is going on in this page.
#[wasm_bindgen(js_name = isSending)]
pub fn is_sending() -> bool {
    RUNNING.with(Cell::get)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RunOptions {
    /// Uncertain transactions the librarian confirmed to send again.
    resend: Vec<String>,
    /// The librarian consented to GET (password in URLs) for this run.
    allow_get: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RejectionDto {
    id: String,
    /// What it was: action, card number, barcode, amount (as the desk shows them).
    action: Option<&'static str>,
    cardnumber: Option<String>,
    barcode: Option<String>,
    amount: Option<String>,
    /// Koha's text, verbatim.
    message: String,
    /// The i18n key of its translation, if known.
    key: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "outcome"
)]
enum RunDto {
    /// Something is missing; nothing was sent.
    NotReady {
        missing: &'static str,
        origin: Option<String>,
    },
    /// Detection found no way to send; nothing was sent. `askPassword`: Koha refused a password
    /// typed for this session (it was dropped), so the page asks again.
    Problem {
        problem: &'static str,
        ask_password: bool,
    },
    /// Only GET would work: ask, then call again with `allowGet`.
    NeedsGetConsent { payments: usize },
    /// The run happened (perhaps stopping early).
    Ran {
        transport: &'static str,
        queued: usize,
        applied: usize,
        rejected: Vec<RejectionDto>,
        failed: usize,
        uncertain: usize,
        not_sent: usize,
        stopped: &'static str,
    },
}

impl RunDto {
    fn ran(transport: Transport, s: &Summary) -> RunDto {
        RunDto::Ran {
            transport: transport.name(),
            queued: s.queued,
            applied: s.applied,
            rejected: s
                .rejected
                .iter()
                .map(|r| {
                    let tx = state::with_journal(|j| j.get(&r.id).cloned());
                    let action = tx.as_ref().map(|t| &t.action);
                    RejectionDto {
                        id: r.id.to_string(),
                        action: action.map(Action::koha_name),
                        cardnumber: action.and_then(Action::cardnumber).map(ToString::to_string),
                        barcode: action.and_then(Action::barcode).map(ToString::to_string),
                        amount: action.and_then(Action::amount).map(|a| a.to_string()),
                        key: koha::message_key(&r.message),
                        message: r.message.clone(),
                    }
                })
                .collect(),
            failed: s.failed,
            uncertain: s.uncertain,
            not_sent: s.not_sent,
            stopped: s.stopped.map_or("finished", |r| r.kind()),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressDto<'a> {
    done: usize,
    total: usize,
    id: &'a str,
    status: &'static str,
}

fn problem(kind: &'static str) -> RunDto {
    RunDto::Problem {
        problem: kind,
        ask_password: false,
    }
}

/// Runs detection: the transport and token to send with, or why not.
async fn detect(
    settings: &Settings,
    creds: &koha::Credentials,
    allow_get: bool,
) -> Result<(Transport, Option<String>), RunDto> {
    let mut detector = sync::detector(settings, creds.clone());
    let mut request = detector.start();
    let detection = loop {
        let reply = http::send(&request).await;
        match detector.feed(reply) {
            DetectStep::Send(next) => request = next,
            DetectStep::Done(done) => break done,
        }
    };
    match detection {
        Detection::Works { transport, token } => Ok((transport, token)),
        Detection::Problem(koha::ConnectionProblem::NeedsGetConsent) if allow_get => {
            let probe =
                koha::service_probe_request(settings.server.as_str(), Transport::G, creds, None)
                    .map_err(|_| problem("csrf-refused"))?;
            match koha::interpret_get_probe(&http::send(&probe).await) {
                Ok(()) => Ok((Transport::G, None)),
                Err(p) => Err(problem(p.kind())),
            }
        }
        Detection::Problem(p) => Err(problem(p.kind())),
    }
}

/// Moves one transaction to a new status through `f`, in memory only.
fn change(
    id: &TransactionId,
    f: impl FnOnce(&mut Transaction) -> Result<(), crate::IllegalTransition>,
) -> Result<Transaction, JsValue> {
    state::with_journal(|j| {
        j.update(id, f)
            .map_err(|e| error("send-state", &e))?
            .map_err(|e| error("send-state", &e))?;
        j.get(id).cloned().ok_or_else(|| error("send-state", id))
    })
}

/// Sends one transaction request and classifies what came back.
async fn ask_koha(request: Result<koha::HttpRequest, koha::RequestError>) -> koha::Answer {
    match request {
        Ok(request) => koha::classify_reply(&http::send(&request).await),
        // P1 always has a token (detection gave one); without it nothing may leave.
        Err(_) => koha::Answer::AuthProblem { http_status: 403 },
    }
}

/// Runs two futures at once and waits for both.
async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    use std::task::Poll;
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                ra = x;
                rb = y;
                Poll::Pending
            }
        }
    })
    .await
}

/// Moves one transaction to a new status through `change`, stores it, and tells the page.
async fn change_and_store(
    id: &TransactionId,
    change: impl FnOnce(&mut Transaction) -> Result<(), crate::IllegalTransition>,
) -> Result<Transaction, JsValue> {
    let tx = state::with_journal(|j| {
        j.update(id, change)
            .map_err(|e| error("send-state", &e))?
            .map_err(|e| error("send-state", &e))?;
        j.get(id).cloned().ok_or_else(|| error("send-state", id))
    })?;
    state::persist(&tx).await.map_err(storage_error)?;
    Ok(tx)
}

/// Sends every `local` and `failed` transaction (and the confirmed uncertain ones) to Koha, one
/// at a time in recorded order. Calls `on_progress({done, total, id, status})` after every stored
/// status change. Resolves with what happened (see `RunDto`); rejects only when storage fails.
/// The page holds the `koha-send` lock around this call.
#[wasm_bindgen(js_name = sendToKoha)]
pub async fn send_to_koha(
    options: JsValue,
    on_progress: js_sys::Function,
) -> Result<JsValue, JsValue> {
    if RUNNING.with(|r| r.replace(true)) {
        return Err(error("send-busy", "a send run is going on"));
    }
    CANCEL.with(|c| c.set(false));
    let result = run(options, &on_progress).await;
    RUNNING.with(|r| r.set(false));
    to_js(&result?)
}

async fn run(options: JsValue, on_progress: &js_sys::Function) -> Result<RunDto, JsValue> {
    let options: RunOptions = if options.is_undefined() || options.is_null() {
        RunOptions::default()
    } else {
        serde_wasm_bindgen::from_value(options).map_err(|e| error("send-input", e))?
    };
    let creds = match credentials().await {
        Ok(c) => c,
        Err(missing) => {
            return Ok(RunDto::NotReady {
                missing: missing.kind(),
                origin: state::settings().map(|s| s.server.origin_pattern()),
            })
        }
    };
    let settings = state::settings().ok_or_else(|| error("send-settings", "no settings"))?;
    let planned = state::with_journal(|j| {
        let resend: Vec<Resend> = options
            .resend
            .iter()
            .filter_map(|id| j.get(&TransactionId::from_stored(id)))
            .filter_map(sync::confirmed_resend)
            .collect();
        let mut candidates: Vec<Transaction> = j.sendable_in_order().cloned().collect();
        candidates.extend(resend.iter().filter_map(|r| j.get(&r.id).cloned()));
        sync::plan(&candidates, &resend)
    });
    let (transport, mut token) = match detect(&settings, &creds, options.allow_get).await {
        Ok(found) => found,
        Err(RunDto::Problem {
            problem: "needs-get-consent",
            ..
        }) => {
            let payments = state::with_journal(|j| {
                let txs: Vec<&Transaction> = planned.iter().filter_map(|id| j.get(id)).collect();
                sync::get_consent_needed(Transport::G, &txs).map_or(0, |c| c.payments)
            });
            return Ok(RunDto::NeedsGetConsent { payments });
        }
        Err(RunDto::Problem {
            problem: "wrong-credentials",
            ..
        }) if settings.password().is_none() => {
            // A typed password that Koha refused is not offered again: ask anew.
            let _ = browser::session_remove(SESSION_PASSWORD_KEY).await;
            return Ok(RunDto::Problem {
                problem: "wrong-credentials",
                ask_password: true,
            });
        }
        Err(other) => return Ok(other),
    };
    let base = settings.server.as_str().to_owned();
    let mode = sync::koha_mode(settings.mode);
    let total = planned.len();
    let mut run = SendRun::new(transport, planned);
    let mut done = 0;
    // The last outcome, in memory and the mirror; its store-of-record write overlaps the next
    // request (a page dying meanwhile leaves it `sending` there, which start-up turns into
    // `uncertain`: never a false "sent", never a silent resend).
    let mut unsaved_outcome: Option<Transaction> = None;
    loop {
        if CANCEL.with(Cell::get) {
            run.cancel();
        }
        let Some(id) = run.next().map_err(|e| error("send-state", &e))? else {
            break;
        };
        let tx = change(&id, |t| sync::begin(t, browser::now()))?;
        // `sending` must be on disk before the request leaves: the synchronous mirror holds it at
        // once; if the mirror cannot, the store of record is awaited first.
        if !state::mirror_hold(&tx) {
            state::persist(&tx).await.map_err(storage_error)?;
        }
        let previous = unsaved_outcome.take();
        let request = |token: Option<&str>| {
            koha::transaction_request(&base, transport, &creds, token, None, mode, &tx)
        };
        progress(on_progress, done, total, &tx);
        // One store-of-record write for both (one round trip to Firefox's storage).
        let both: Vec<Transaction> = previous.iter().chain([&tx]).cloned().collect();
        let (stored, mut answer) =
            join(store_of_record(&both), ask_koha(request(token.as_deref()))).await;
        stored?;
        if let Some(previous) = &previous {
            progress(on_progress, done, total, previous);
        }
        let status = loop {
            match run.record(&answer).map_err(|e| error("send-state", &e))? {
                Decision::Finish(status) => break status,
                Decision::RefreshTokenAndRetry(_) => {
                    let reply = http::send(&koha::auth_probe_request(&base)).await;
                    match koha::refreshed_token(&reply) {
                        Some(fresh) => {
                            token = Some(fresh);
                            answer = ask_koha(request(token.as_deref())).await;
                        }
                        None => break run.refresh_failed().map_err(|e| error("send-state", &e))?,
                    }
                }
            }
        };
        let tx = change(&id, |t| t.finish_sending(browser::now(), status))?;
        state::mirror_hold(&tx);
        done += 1;
        unsaved_outcome = Some(tx);
    }
    if let Some(last) = unsaved_outcome {
        store_of_record(std::slice::from_ref(&last)).await?;
        progress(on_progress, done, total, &last);
    }
    // Everything is stored; packing what Koha accepted is housekeeping (a failure is redone
    // by a later write or the next start).
    let _ = state::pack_if_due().await;
    // ---- session-clock: end the Koha session this run logged in with (P2) ----
    // Detection logged the desk's account in through `svc/authentication`, and Firefox keeps that
    // session's `CGISESSID`: whoever opens Koha's staff interface in this browser next would be
    // logged in as the desk. End it; its answer does not matter (a failure leaves only what
    // Koha's session time-out ends anyway).
    if transport == Transport::P2 {
        let _ = http::send(&koha::logout_request(&base)).await;
    }
    // ---- end session-clock ----
    Ok(RunDto::ran(transport, run.summary()))
}

fn progress(on_progress: &js_sys::Function, done: usize, total: usize, tx: &Transaction) {
    let dto = ProgressDto {
        done,
        total,
        id: tx.id.as_str(),
        status: tx.status().name(),
    };
    if let Ok(value) = to_js(&dto) {
        let _ = on_progress.call1(&JsValue::NULL, &value);
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UncertainDto {
    id: String,
    action: &'static str,
    cardnumber: Option<String>,
    barcode: Option<String>,
    amount: Option<String>,
    reason: String,
    recorded_at: f64,
    /// The `#confirm` kind to ask before resending: `resend-uncertain` or `resend-payment`.
    question: &'static str,
}

/// The uncertain transactions, oldest first, with the question to ask before resending each.
#[wasm_bindgen(js_name = uncertainTransactions)]
pub fn uncertain_transactions() -> Result<JsValue, JsValue> {
    let rows: Vec<UncertainDto> = state::with_journal(|j| {
        j.in_order()
            .filter_map(|tx| {
                let question = sync::resend_question(tx)?;
                let Status::Uncertain { reason } = tx.status() else {
                    return None;
                };
                Some(UncertainDto {
                    id: tx.id.to_string(),
                    action: tx.action.koha_name(),
                    cardnumber: tx.action.cardnumber().map(ToString::to_string),
                    barcode: tx.action.barcode().map(ToString::to_string),
                    amount: tx.action.amount().map(|a| a.to_string()),
                    reason: reason.clone(),
                    recorded_at: tx.recorded_at.timestamp_millis() as f64,
                    question: question.kind(),
                })
            })
            .collect()
    });
    to_js(&rows)
}

/// The librarian found an uncertain transaction in Koha (its pending list, or the loan or
/// payment itself): it becomes `queued` (queue mode) or `applied` (apply mode) without sending.
#[wasm_bindgen(js_name = markFoundInKoha)]
pub async fn mark_found_in_koha(id: String) -> Result<JsValue, JsValue> {
    let mode = state::settings().map(|s| s.mode).unwrap_or_default();
    let status = sync::found_in_koha(mode);
    let id = TransactionId::from_stored(&id);
    let tx = change_and_store(&id, |t| t.confirm_in_koha(browser::now(), status)).await?;
    to_js(&tx.status().name())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecordDto {
    action: String,
    #[serde(default)]
    cardnumber: String,
    #[serde(default)]
    barcode: String,
    #[serde(default)]
    amount: String,
    /// Milliseconds since the epoch; now (plus its position in ms) when absent.
    at: Option<f64>,
}

fn parse_action(r: &RecordDto) -> Result<Action, crate::InputError> {
    Ok(match r.action.as_str() {
        "issue" => Action::Issue {
            cardnumber: Cardnumber::parse(&r.cardnumber)?,
            barcode: Barcode::parse(&r.barcode)?,
        },
        "return" => Action::Return {
            barcode: Barcode::parse(&r.barcode)?,
        },
        _ => Action::Payment {
            cardnumber: Cardnumber::parse(&r.cardnumber)?,
            amount: Amount::parse(&r.amount)?,
        },
    })
}

/// Records many transactions in one batch and one storage write (an import, a seeded test or
/// benchmark): `[{action, cardnumber, barcode, amount, at?}]`. All or nothing: the first invalid
/// entry refuses the whole batch. Resolves with how many were recorded.
#[wasm_bindgen(js_name = recordBatch)]
pub async fn record_batch(items: JsValue) -> Result<usize, JsValue> {
    let items: Vec<RecordDto> =
        serde_wasm_bindgen::from_value(items).map_err(|e| error("send-input", e))?;
    let branch = state::settings()
        .map(|s| s.branchcode)
        .ok_or_else(|| error("send-settings", "no settings"))?;
    let now = browser::now();
    let mut txs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let action = parse_action(item).map_err(js_error)?;
        let at = item
            .at
            .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
            .unwrap_or(now + chrono::TimeDelta::milliseconds(i as i64));
        let id = TransactionId::new(at, browser::random_u64()?);
        txs.push(Transaction::record(id, at, branch.clone(), action));
    }
    state::with_journal(|j| {
        for tx in &txs {
            j.record(tx.clone()).map_err(|e| error("send-state", &e))?;
        }
        Ok::<(), JsValue>(())
    })?;
    state::persist_many(&txs).await.map_err(storage_error)?;
    Ok(txs.len())
}

/// Writes transactions to the store of record (`browser.storage.local`) in one call; resolves
/// once Firefox has them all. The mirror is the caller's ([`state::mirror_hold`]), written
/// first.
async fn store_of_record(txs: &[Transaction]) -> Result<(), JsValue> {
    state::store_of_record(txs).await.map_err(storage_error)
}
