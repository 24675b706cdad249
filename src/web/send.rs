//! What the desk's send area calls: readiness, the send run, cancel, and the librarian's choices
//! for uncertain transactions. Every rule is the core's (`crate::sync`): the run is a
//! [`SendRun`] whose commands this module performs (mirror writes, store-of-record writes,
//! `fetch`) and whose results it feeds back.
//!
//! Where it runs: the toolbar popup closes when it loses focus, so its Send button opens the desk
//! in a tab (`desk.html?send=1`) and the run happens there; the page holds the `koha-send` Web
//! Lock for the whole run, so another page opening meanwhile leaves the `sending` row alone. If
//! the tab is closed anyway, each row in flight is `sending` in storage and becomes `uncertain`
//! at the next start; nothing is resent by itself.
//!
//! Keep-alive: Firefox silently re-sends a request whose reused keep-alive connection closed
//! without an answer: Koha then stores a transaction twice while the desk sees one clean answer.
//! `fetch` cannot force a fresh connection, so this case cannot be detected from here; on a
//! fresh connection a drop shows up as `uncertain`, as it should.

use super::dto::{js_error, to_js, ErrorDto};
use super::{browser, http, state};
use crate::journal;
use crate::kinds::AsKind;
use crate::koha::{self, ConnectionProblem, Transport};
use crate::settings::{Settings, SESSION_PASSWORD_KEY};
use crate::sync::{
    self, Command, Level, NotReady, PerformId, ResendQuestion, RunEnd, RunOptions, SendRun, Setup,
    StopReason, StorageRefused, Summary,
};
use crate::transaction::{Status, Transaction, TransactionId, UncertainReason};
use crate::Action;
use serde::Serialize;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use wasm_bindgen::prelude::*;

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
    missing: Option<AsKind<NotReady>>,
    /// The origin pattern to grant (also when ready, for the grant button).
    origin: Option<String>,
    /// Nothing to send ([`sync::nothing_to_send`]): the page says so and starts no run.
    nothing: bool,
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

pub(super) async fn credentials() -> Result<koha::Credentials, NotReady> {
    let settings = state::settings();
    let permitted = host_permission(settings.as_ref()).await;
    let password = session_password().await;
    sync::credentials(settings.as_ref(), permitted, password.as_deref())
}

/// What a send run with `options` (as for [`send_to_koha`]) would need first, and whether it
/// would find anything to send.
#[wasm_bindgen(js_name = sendReadiness)]
pub async fn send_readiness(options: JsValue) -> Result<JsValue, JsValue> {
    let options = run_options(options)?;
    let missing = credentials().await.err();
    let nothing = state::with_journal(|j| sync::nothing_to_send(j, &options.resend));
    to_js(&ReadinessDto {
        missing: missing.map(AsKind),
        origin: state::settings().map(|s| s.server.origin_pattern()),
        nothing,
    })
}

fn run_options(options: JsValue) -> Result<RunOptions, JsValue> {
    if options.is_undefined() || options.is_null() {
        Ok(RunOptions::default())
    } else {
        serde_wasm_bindgen::from_value(options).map_err(|e| error("send-input", e))
    }
}

/// Keeps the password typed at the prompt for this browser session (never on disk).
#[wasm_bindgen(js_name = setSessionPassword)]
pub async fn set_session_password(password: String) -> Result<(), JsValue> {
    if password.is_empty() {
        return Err(error("send-input", "empty password"));
    }
    browser::session_set_string(SESSION_PASSWORD_KEY, &password).await
}

/// Asks the run in progress to start nothing more and stop once its requests in flight are done.
#[wasm_bindgen(js_name = cancelSend)]
pub fn cancel_send() {
    CANCEL.with(|c| c.set(true));
}

/// Whether a run is going on in this page.
#[wasm_bindgen(js_name = isSending)]
pub fn is_sending() -> bool {
    RUNNING.with(Cell::get)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RejectionDto {
    id: String,
    /// What it was: action, card number, barcode, amount (as the desk shows them).
    action: Option<AsKind<Action>>,
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
    /// Another page holds the send lock (it sends or exports); nothing was sent.
    SendingElsewhere,
    /// Something is missing; nothing was sent.
    NotReady {
        missing: AsKind<NotReady>,
        origin: Option<String>,
    },
    /// Detection found no way to send; nothing was sent. `askPassword`: Koha refused a password
    /// typed for this session (it was dropped), so the page asks again.
    Problem {
        problem: AsKind<ConnectionProblem>,
        ask_password: bool,
    },
    /// Some were exported to a `.koc` file: ask, then call again with `exported`.
    AskExported {
        count: usize,
        payments: usize,
        exported_at: f64,
    },
    /// The desk's clock differs from Koha's: ask, then call again with `clockConfirmed`.
    AskClock { desk: f64, koha: f64 },
    /// Only GET would work: ask, then call again with `allowGet`.
    NeedsGetConsent { payments: usize },
    /// The run happened (perhaps stopping early).
    Ran {
        transport: Transport,
        level: Level,
        queued: usize,
        applied: usize,
        rejected: Vec<RejectionDto>,
        failed: usize,
        uncertain: usize,
        not_sent: usize,
        left_out_exported: usize,
        held_back: usize,
        skipped: usize,
        stopped: StopReason,
        /// [`Summary::koha_answered_to_the_end`]: the desk may download the offline checks.
        koha_answered: bool,
    },
}

impl RunDto {
    fn from_end(end: RunEnd, transport: Transport) -> RunDto {
        match end {
            RunEnd::NotReady(missing) => RunDto::NotReady {
                missing: AsKind(missing),
                origin: state::settings().map(|s| s.server.origin_pattern()),
            },
            RunEnd::AskExported(q) => RunDto::AskExported {
                count: q.count,
                payments: q.payments,
                exported_at: q.exported_at.timestamp_millis() as f64,
            },
            RunEnd::AskGet { payments } => RunDto::NeedsGetConsent { payments },
            RunEnd::AskClock { desk, koha } => RunDto::AskClock {
                desk: desk.timestamp_millis() as f64,
                koha: koha.timestamp_millis() as f64,
            },
            RunEnd::Problem {
                problem,
                forget_session_password,
            } => RunDto::Problem {
                problem: AsKind(problem),
                ask_password: forget_session_password,
            },
            RunEnd::Ran(s) => RunDto::ran(transport, &s),
        }
    }

    fn ran(transport: Transport, s: &Summary) -> RunDto {
        RunDto::Ran {
            transport,
            level: s.level(),
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
                        action: action.cloned().map(AsKind),
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
            left_out_exported: s.left_out_exported,
            held_back: s.held_back,
            skipped: s.skipped,
            stopped: s.stopped.unwrap_or(StopReason::Finished),
            koha_answered: s.koha_answered_to_the_end(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressDto<'a> {
    done: usize,
    total: usize,
    id: &'a str,
    status: AsKind<Status>,
}

/// Sends every `local` and `failed` transaction (and the confirmed uncertain ones) to Koha, in
/// recorded order, several at once in queue mode as the core allows. Calls `on_progress({done, total, id, status})` after every
/// status change. Resolves with what happened (see `RunDto`). Holds the `koha-send` lock for
/// the whole run; if another page holds it, sends nothing (`sendingElsewhere`).
#[wasm_bindgen(js_name = sendToKoha)]
pub async fn send_to_koha(
    options: JsValue,
    on_progress: js_sys::Function,
) -> Result<JsValue, JsValue> {
    if RUNNING.with(Cell::get) {
        return Err(error("send-busy", "a send run is going on"));
    }
    let Some(lock) = state::SendLock::acquire_if_available().await else {
        return to_js(&RunDto::SendingElsewhere);
    };
    // Only with the lock held: `is_sending` tells the page's other writers that it is.
    RUNNING.with(|r| r.set(true));
    CANCEL.with(|c| c.set(false));
    let result = run(options, &on_progress).await;
    drop(lock);
    RUNNING.with(|r| r.set(false));
    to_js(&result?)
}

/// A started [`Command::Perform`]: its store write and request, and its id.
type Started =
    Pin<Box<dyn Future<Output = (PerformId, Result<(), StorageRefused>, Option<koha::Reply>)>>>;

/// Performs what the core's [`SendRun`] asks, feeding back each result; decides nothing.
/// Several `Perform`s may be outstanding: each starts when given, and when the run waits the
/// first one done is fed back.
async fn run(options: JsValue, on_progress: &js_sys::Function) -> Result<RunDto, JsValue> {
    let options = run_options(options)?;
    state::refresh_from_stores().await;
    let settings = state::settings();
    let setup = Setup {
        host_permission: host_permission(settings.as_ref()).await,
        session_password: session_password().await,
        settings,
        options,
    };
    let (mut run, mut command) = state::with_journal(|j| SendRun::start(setup, j, browser::now()));
    let mut started: Vec<Started> = Vec::new();
    loop {
        if CANCEL.with(Cell::get) {
            if let Some(run) = run.as_mut() {
                run.cancel();
            }
        }
        let step = match (command, run.as_mut()) {
            (Command::Finish(end), run) => {
                let transport = run.map_or(Transport::P3, |r| r.transport());
                if let RunEnd::Problem {
                    forget_session_password: true,
                    ..
                } = &end
                {
                    let _ = browser::session_remove(SESSION_PASSWORD_KEY).await;
                }
                // Everything is stored; packing what Koha accepted is housekeeping (a failure is
                // redone by a later write or the next start), so the desk is not kept waiting for
                // it: packing 500 rewrites a chunk and removes 500 keys. It starts on a later
                // task: spawned tasks run before the page's own continuation, and building the
                // chunk would delay showing the run's end.
                wasm_bindgen_futures::spawn_local(async {
                    browser::later_task().await;
                    let _ = state::pack_if_due().await;
                });
                return Ok(RunDto::from_end(end, transport));
            }
            (_, None) => return Err(error("send-state", "no run")),
            (Command::Mirror(txs), Some(run)) => {
                let took = txs.iter().all(state::mirror_hold);
                for tx in &txs {
                    progress(on_progress, run.progress(), tx);
                }
                state::with_journal(|j| run.mirrored(took, j, browser::now()))
            }
            (Command::Perform { id, store, request }, Some(run)) => {
                started.push(Box::pin(async move {
                    let (stored, reply) =
                        browser::join(store_of_record(&store), ask(request)).await;
                    (id, stored, reply)
                }));
                state::with_journal(|j| run.poll(j, browser::now()))
            }
            (Command::Wait, Some(run)) => {
                let Some((id, stored, reply)) = first_done(&mut started).await else {
                    return Err(error("send-state", "the run waits for nothing"));
                };
                state::with_journal(|j| run.performed(id, stored, reply, j, browser::now()))
            }
        };
        command = step.map_err(|e| error("send-state", e))?;
    }
}

/// Writes to the store of record (nothing to write is a success). A refusal leaves the copies
/// in memory and the mirror, marked for a retry.
async fn store_of_record(txs: &[Transaction]) -> Result<(), StorageRefused> {
    if txs.is_empty() {
        return Ok(());
    }
    state::store_of_record(txs)
        .await
        .map_err(|_| StorageRefused)
}

async fn ask(request: Option<koha::HttpRequest>) -> Option<koha::Reply> {
    match request {
        Some(request) => Some(http::send(&request).await),
        None => None,
    }
}

/// Waits for the first of `started` to be done and removes it; `None` when there is none.
/// Every one is polled in the order it was started, so their store writes go out in that
/// order.
async fn first_done<T>(started: &mut Vec<Pin<Box<dyn Future<Output = T>>>>) -> Option<T> {
    if started.is_empty() {
        return None;
    }
    std::future::poll_fn(|cx| {
        let done = started
            .iter_mut()
            .enumerate()
            .find_map(|(at, f)| match f.as_mut().poll(cx) {
                Poll::Ready(v) => Some((at, v)),
                Poll::Pending => None,
            });
        match done {
            Some((at, v)) => {
                drop(started.remove(at));
                Poll::Ready(Some(v))
            }
            None => Poll::Pending,
        }
    })
    .await
}

fn progress(on_progress: &js_sys::Function, (done, total): (usize, usize), tx: &Transaction) {
    let dto = ProgressDto {
        done,
        total,
        id: tx.id.as_str(),
        status: AsKind(tx.status().clone()),
    };
    if let Ok(value) = to_js(&dto) {
        let _ = on_progress.call1(&JsValue::NULL, &value);
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UncertainDto {
    id: String,
    action: AsKind<Action>,
    cardnumber: Option<String>,
    barcode: Option<String>,
    amount: Option<String>,
    reason: AsKind<UncertainReason>,
    recorded_at: f64,
    /// The `#confirm` kind to ask before resending: `resend-uncertain` or `resend-payment`.
    question: ResendQuestion,
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
                    action: AsKind(tx.action.clone()),
                    cardnumber: tx.action.cardnumber().map(ToString::to_string),
                    barcode: tx.action.barcode().map(ToString::to_string),
                    amount: tx.action.amount().map(|a| a.to_string()),
                    reason: AsKind(*reason),
                    recorded_at: tx.recorded_at.timestamp_millis() as f64,
                    question,
                })
            })
            .collect()
    });
    to_js(&rows)
}

/// The librarian found an uncertain transaction in Koha (its pending list, or the loan or
/// payment itself): it becomes `queued` (queue mode) or `applied` (apply mode) without sending.
/// Like every write to a stored transaction, under the send lock: refused while a page sends
/// (`send-running-elsewhere`), whose run may be resending this very one.
#[wasm_bindgen(js_name = markFoundInKoha)]
pub async fn mark_found_in_koha(id: String) -> Result<JsValue, JsValue> {
    let (_lock, held) = state::lock_unless_sending().await;
    journal::change_allowed(held).map_err(|e| error(e.kind(), &e))?;
    let status = sync::found_in_koha(state::settings().as_ref());
    let id = TransactionId::from_stored(&id);
    state::refresh_from_stores_of(std::slice::from_ref(&id)).await;
    let tx = state::with_journal(|j| {
        j.update(&id, |t| t.confirm_in_koha(browser::now(), status))
            .map_err(|e| error(e.kind(), &e))?
            .map_err(|e| error(e.kind(), &e))?;
        j.get(&id).cloned().ok_or_else(|| error("not-found", &id))
    })?;
    state::persist(&tx).await.map_err(storage_error)?;
    to_js(&AsKind(tx.status().clone()))
}
