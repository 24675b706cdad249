//! The offline checks in the browser: the options page's download, status and deletion of the
//! snapshot, and the desk's copy of it. Every decision is the core's (`crate::checks`): this
//! module fetches the pages the download asks for and performs the storage plans.

use super::dto::{js_error, to_js, ErrorDto};
use super::zone::IntlZone;
use super::{browser, http, idb, options, state};
use crate::checks::{
    self, delete_plan, per_page, placed, read_snapshot, snapshot_keys, snapshot_status, DeskCheck,
    Download, DownloadError, List, Next, Place, Snapshot, StoppedDownload, PER_PAGE_OVERRIDE_KEY,
};
use crate::ids::{Amount, Cardnumber};
use crate::koha::{Credentials, HttpRequest, NoAnswer};
use crate::settings;
use crate::store;
use crate::store::keys::{CHECKS_AUTO_KEY, CHECKS_LIMIT_KEY, CHECKS_META_KEY};
use crate::transaction::Action;
use crate::zone::{FixedZone, ZoneRules};
use js_sys::{Array, Function, Object, Promise, Reflect};
use serde::Serialize;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

thread_local! {
    /// A download that stopped (a failure, a cancel): the next start for the same server and
    /// login goes on from the page it stopped at.
    static DOWNLOAD: RefCell<Option<StoppedDownload>> = const { RefCell::new(None) };
    static CANCEL: Cell<bool> = const { Cell::new(false) };
    static RUNNING: Cell<bool> = const { Cell::new(false) };
    /// The desk's copy of the stored snapshot.
    static SNAPSHOT: RefCell<Option<Snapshot>> = const { RefCell::new(None) };
    /// The balance above which the desk asks (`checks::read_balance_limit`).
    static LIMIT: Cell<Option<Amount>> = const { Cell::new(None) };
    /// The card the librarian said "record anyway" for (`checks::card_accepted_after`).
    static CARD_ACCEPTED: RefCell<Option<Cardnumber>> = const { RefCell::new(None) };
}

/// Never expected: a download that [`run`] let through without a snapshot.
struct DownloadUnfinished;

impl std::fmt::Display for DownloadUnfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the download ended without a snapshot")
    }
}

fn storage_error(e: impl ToString) -> JsValue {
    js_error(ErrorDto::new("storage", None, e.to_string()))
}

/// How a download ended.
#[derive(Serialize)]
#[serde(
    tag = "outcome",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
enum DownloadDto {
    /// Stored; the status of what is stored now, and whether only the changes were pulled.
    Done {
        status: checks::SnapshotStatus,
        incremental: bool,
    },
    /// Stopped by the librarian; the next start goes on from there.
    Cancelled,
    /// Stopped by a failure; nothing stored changed, the next start goes on from there.
    Failed {
        /// `no-answer`, `timeout`, `status` or `page`.
        problem: &'static str,
        list: List,
        page: u32,
        http_status: Option<u16>,
        detail: String,
    },
    /// Firefox may not reach the server (Save asks for it).
    NoAccess { host: String },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressDto {
    list: List,
    received: u64,
    total: Option<u64>,
}

fn test_per_page() -> u32 {
    let stored = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(PER_PAGE_OVERRIDE_KEY).ok().flatten());
    per_page(stored.as_deref())
}

/// Downloads the snapshot from the form's Koha, logged in as the core chooses
/// ([`Download::logging_in`]: HTTP Basic, else the staff session), calling `on_progress({list, received, total})` after every page, and stores it once every
/// list is read or left out: only the changes since the stored one unless `full` or the core
/// says otherwise ([`checks::plan_pull`]). A failure or [`cancel_checks_download`] stores
/// nothing; the next call for the same server goes on from the page it stopped at.
#[wasm_bindgen(js_name = downloadChecks)]
pub async fn download_checks(
    form: JsValue,
    on_progress: Function,
    full: bool,
) -> Result<JsValue, JsValue> {
    let (settings, creds, access) = options::server_and_login(form).await?;
    if !access {
        return to_js(&DownloadDto::NoAccess {
            host: settings.server.host().to_owned(),
        });
    }
    download_from(settings.server.as_str(), creds, Some(&on_progress), full).await
}

/// Downloads and stores the snapshot from `server` as `creds` (see [`download_checks`]).
async fn download_from(
    server: &str,
    creds: Credentials,
    on_progress: Option<&Function>,
    full: bool,
) -> Result<JsValue, JsValue> {
    if RUNNING.with(|r| r.replace(true)) {
        return Err(js_error(ErrorDto::new("checks-busy", None, "")));
    }
    CANCEL.with(|c| c.set(false));
    let server = server.to_owned();
    let stopped = DOWNLOAD
        .with(|d| d.borrow_mut().take())
        .and_then(|stopped| stopped.resume(&server, &creds, full));
    let mut download = match stopped {
        Some(download) => download,
        None => start(&server, &creds, full).await,
    };
    let outcome = run(&mut download, on_progress).await;
    if let Some(logout) = download.logout() {
        // Its answer (Koha's login page) does not matter.
        let _ = http::send(&logout).await;
    }
    RUNNING.with(|r| r.set(false));
    if let Err(dto) = outcome {
        DOWNLOAD.with(|d| *d.borrow_mut() = Some(StoppedDownload::new(&server, creds, download)));
        return to_js(&dto);
    }
    let incremental = download.is_incremental();
    // `run` ended without a stop, so every list is read or left out and `finish` gives one.
    let Some(snapshot) = download.finish() else {
        return Err(storage_error(DownloadUnfinished));
    };
    let meta = read_meta().await?;
    apply_snapshot_plan(checks::write_plan(&snapshot, meta.as_ref())).await?;
    let status = snapshot_status(&snapshot, browser::now());
    SNAPSHOT.with(|s| *s.borrow_mut() = Some(snapshot));
    to_js(&DownloadDto::Done {
        status,
        incremental,
    })
}

/// A new download from `server` as `creds`: whole, or only the changes since the stored
/// snapshot, as [`checks::plan_pull`] decides.
/// An unreadable stored snapshot counts as none: a full download replaces it.
async fn start(server: &str, creds: &Credentials, full: bool) -> Download {
    let stored = load().await.ok().flatten();
    let source = checks::pull_source(server, creds.userid.as_str());
    let pull = checks::plan_pull(stored.as_ref(), &source, full, browser::now());
    Download::logging_in(server, test_per_page(), browser::now(), creds.clone())
        .pulling(&source, &pull, stored)
}

/// After a successful send run, at the desk: downloads the snapshot again when it is due
/// ([`checks::auto_download_due`]), with the send run's server and login. Resolves to the
/// outcome as [`download_checks`] gives it, or `{outcome: "not-due"}`.
#[wasm_bindgen(js_name = downloadChecksIfDue)]
pub async fn download_checks_if_due() -> Result<JsValue, JsValue> {
    if !checks_download_due().await? {
        return to_js(&serde_json::json!({ "outcome": "not-due" }));
    }
    let (Some(settings), Ok(creds)) = (state::settings(), super::send::credentials().await) else {
        return to_js(&serde_json::json!({ "outcome": "not-due" }));
    };
    // Nothing to show the progress on at the desk.
    download_from(settings.server.as_str(), creds, None, false).await
}

/// A page fetch already under way: the download reads one page while the next one travels.
struct InFlight {
    answer: Rc<RefCell<Option<Result<http::RestPage, NoAnswer>>>>,
    settled: Promise,
}

impl InFlight {
    fn start(request: &HttpRequest) -> InFlight {
        let answer = Rc::new(RefCell::new(None));
        let (slot, request) = (answer.clone(), request.clone());
        // A promise runs without being awaited, unlike a Rust future.
        let settled = wasm_bindgen_futures::future_to_promise(async move {
            let got = http::fetch_rest_page(&request).await;
            *slot.borrow_mut() = Some(got);
            Ok(JsValue::UNDEFINED)
        });
        InFlight { answer, settled }
    }

    async fn answer(self) -> Result<http::RestPage, NoAnswer> {
        let _ = JsFuture::from(self.settled).await;
        let got = self.answer.borrow_mut().take();
        got.unwrap_or(Err(NoAnswer::Network))
    }
}

async fn run(download: &mut Download, on_progress: Option<&Function>) -> Result<(), DownloadDto> {
    // The page fetched ahead ([`Download::page_after`]), used only if it is the one asked for.
    let mut ahead: Option<(HttpRequest, InFlight)> = None;
    loop {
        if CANCEL.with(|c| c.get()) {
            return Err(DownloadDto::Cancelled);
        }
        let (list, progress) = download.progress();
        let request = match download.next() {
            Next::Done => return Ok(()),
            Next::Page(request) => request,
            Next::Login(request) => {
                let reply = http::send(&request).await;
                if let Err(error) = download.feed_login(&reply) {
                    // The login precedes the page: no page to name.
                    return Err(failed(&error, list, 0));
                }
                continue;
            }
        };
        let page = request
            .param("_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let in_flight = match ahead.take() {
            Some((fetched, in_flight)) if fetched == request => in_flight,
            _ => InFlight::start(&request),
        };
        ahead = download
            .page_after()
            .map(|after| (after.clone(), InFlight::start(&after)));
        let answer = match in_flight.answer().await {
            Ok(answer) => answer,
            Err(why) => {
                return Err(DownloadDto::Failed {
                    problem: match why {
                        NoAnswer::Timeout => "timeout",
                        _ => "no-answer",
                    },
                    list,
                    page,
                    http_status: None,
                    detail: String::new(),
                })
            }
        };
        download.note_koha_time(answer.date.as_deref());
        let fed = download.feed(answer.status, answer.total_count.as_deref(), &answer.body);
        if let Err(error) = fed {
            return Err(failed(&error, list, page));
        }
        let (list, progress) = match download.progress() {
            (now, p) if now == list => (now, p),
            // The list just ended: report it complete before the next one starts.
            _ => (list, progress_done(progress)),
        };
        let dto = ProgressDto {
            list,
            received: progress.received,
            total: progress.total,
        };
        if let (Some(on_progress), Ok(value)) = (on_progress, to_js(&dto)) {
            let _ = on_progress.call1(&JsValue::NULL, &value);
        }
    }
}

fn failed(error: &DownloadError, list: List, page: u32) -> DownloadDto {
    let (page, http_status) = match error {
        DownloadError::Status {
            page, http_status, ..
        } => (*page, Some(*http_status)),
        DownloadError::Page { page, .. } => (*page, None),
        DownloadError::Login { .. } => (page, None),
    };
    DownloadDto::Failed {
        problem: error.kind(),
        list,
        page,
        http_status,
        detail: error.to_string(),
    }
}

fn progress_done(before: checks::Progress) -> checks::Progress {
    checks::Progress {
        received: before.total.unwrap_or(before.received),
        total: before.total,
        done: true,
    }
}

/// Which checks this Koha and login allow: the connection test's probe of each list's first page
/// ([`Download::probing`]). `None` when it could not finish (no answer, a login that failed):
/// the test says nothing about the checks then.
pub(super) async fn probe(server: &str, creds: Credentials) -> Option<Vec<checks::Availability>> {
    let mut probe = Download::probing(server, browser::now(), creds);
    let found = loop {
        match probe.next() {
            Next::Done => break probe.availability(),
            Next::Login(request) => {
                if probe.feed_login(&http::send(&request).await).is_err() {
                    break None;
                }
            }
            Next::Page(request) => {
                let Ok(answer) = http::fetch_rest_page(&request).await else {
                    break None;
                };
                let fed = probe.feed(answer.status, answer.total_count.as_deref(), &answer.body);
                if fed.is_err() {
                    break None;
                }
            }
        }
    };
    if let Some(logout) = probe.logout() {
        // Its answer (Koha's login page) does not matter.
        let _ = http::send(&logout).await;
    }
    found
}

/// Stops a running download after the page in flight; nothing is stored.
#[wasm_bindgen(js_name = cancelChecksDownload)]
pub fn cancel_checks_download() {
    CANCEL.with(|c| c.set(true));
}

async fn read_meta() -> Result<Option<Value>, JsValue> {
    read_text(CHECKS_META_KEY).await
}

async fn read_text(key: &str) -> Result<Option<Value>, JsValue> {
    let got = browser::local_get(&JsValue::from_str(key)).await?;
    Ok(Reflect::get(&got, &JsValue::from_str(key))?
        .as_string()
        .map(Value::String))
}

async fn read_limit() -> Result<Option<Amount>, JsValue> {
    Ok(checks::read_balance_limit(
        read_text(CHECKS_LIMIT_KEY).await?.as_ref(),
    ))
}

/// The stored balance limit as the options page shows it (`12.50`), or `""` for none.
#[wasm_bindgen(js_name = balanceLimit)]
pub async fn balance_limit() -> Result<String, JsValue> {
    Ok(read_limit()
        .await?
        .map(|a| a.to_string())
        .unwrap_or_default())
}

/// Stores the balance limit typed on the options page (empty: none); resolves to it as shown
/// again, or rejects with the amount's error (nothing stored).
#[wasm_bindgen(js_name = saveBalanceLimit)]
pub async fn save_balance_limit(text: String) -> Result<String, JsValue> {
    let limit = checks::parse_balance_limit(&text).map_err(js_error)?;
    state::apply_primary(&[checks::balance_limit_change(limit)])
        .await
        .map_err(|e| storage_error(e.0))?;
    LIMIT.with(|l| l.set(limit));
    Ok(limit.map(|a| a.to_string()).unwrap_or_default())
}

async fn read_auto() -> Result<checks::AutoDownload, JsValue> {
    Ok(checks::read_auto_download(
        read_text(CHECKS_AUTO_KEY).await?.as_ref(),
    ))
}

/// The automatic download's setting as the options page shows it: hours, 0 for never.
#[wasm_bindgen(js_name = autoDownloadHours)]
pub async fn auto_download_hours() -> Result<u32, JsValue> {
    Ok(read_auto().await?.hours())
}

/// Stores the hours typed on the options page (empty: the default); resolves to them as shown
/// again, or rejects with kind `auto-hours` (nothing stored).
#[wasm_bindgen(js_name = saveAutoDownloadHours)]
pub async fn save_auto_download_hours(text: String) -> Result<u32, JsValue> {
    let setting = checks::parse_auto_hours(&text)
        .map_err(|e| js_error(ErrorDto::new("auto-hours", None, e)))?;
    state::apply_primary(&[checks::auto_download_change(setting)])
        .await
        .map_err(|e| storage_error(e.0))?;
    Ok(setting.hours())
}

/// Whether the stored snapshot is due for an automatic download now
/// ([`checks::auto_download_due`]).
#[wasm_bindgen(js_name = checksDownloadDue)]
pub async fn checks_download_due() -> Result<bool, JsValue> {
    let setting = read_auto().await?;
    let stored = load().await?;
    Ok(checks::auto_download_due(
        setting,
        stored.as_ref(),
        browser::now(),
    ))
}

/// Reads the stored snapshot, `None` when there is none. A chunk missing from the add-on's
/// database is looked for in `browser.storage.local`, where earlier builds kept the chunks.
async fn load() -> Result<Option<Snapshot>, JsValue> {
    let Some(meta) = read_meta().await? else {
        return Ok(None);
    };
    let keys = snapshot_keys(&meta);
    let mut entries: HashMap<String, Value> = idb::get_many(&keys)
        .await
        .map_err(storage_error)?
        .into_iter()
        .map(|(key, text)| (key, Value::String(text)))
        .collect();
    let missing: Array = keys
        .iter()
        .filter(|key| !entries.contains_key(*key))
        .map(|key| JsValue::from_str(key))
        .collect();
    if missing.length() > 0 {
        let got = browser::local_get(&missing).await?;
        for key in Object::keys(&Object::from(got.clone())).iter() {
            if let (Some(name), Some(text)) =
                (key.as_string(), Reflect::get(&got, &key)?.as_string())
            {
                entries.insert(name, Value::String(text));
            }
        }
    }
    read_snapshot(Some(&meta), |key| entries.get(key)).map_err(storage_error)
}

/// Performs a snapshot's writes in order, each where [`placed`] puts it; stops at the first
/// that fails.
async fn apply_snapshot_plan(plan: Vec<store::Change>) -> Result<(), JsValue> {
    let writes = placed(plan);
    for run in writes.chunk_by(|a, b| a.0 == b.0) {
        let changes: Vec<store::Change> = run.iter().map(|(_, change)| change.clone()).collect();
        match run[0].0 {
            Place::Local => state::apply_primary(&changes)
                .await
                .map_err(|e| storage_error(e.0))?,
            Place::Chunks => idb::apply(&changes).await.map_err(storage_error)?,
        }
    }
    Ok(())
}

/// What is stored: `null`, or `{age: {unit, amount, takenAt}, patrons, items, coverage,
/// unavailable: [{list, permission, why: {kind, http_status}}], noneAvailable}`.
#[wasm_bindgen(js_name = checksStatus)]
pub async fn checks_status() -> Result<JsValue, JsValue> {
    match load().await? {
        Some(snapshot) => to_js(&snapshot_status(&snapshot, browser::now())),
        None => Ok(JsValue::NULL),
    }
}

/// Deletes the stored snapshot (and what a stopped download left behind).
#[wasm_bindgen(js_name = deleteChecks)]
pub async fn delete_checks() -> Result<(), JsValue> {
    CANCEL.with(|c| c.set(true));
    DOWNLOAD.with(|d| *d.borrow_mut() = None);
    // Chunks in the add-on's database, and any an earlier build left in storage.local.
    let all = browser::local_get(&JsValue::NULL).await?;
    let mut keys: Vec<String> = Object::keys(&Object::from(all))
        .iter()
        .filter_map(|k| k.as_string())
        .collect();
    keys.extend(idb::keys().await.map_err(storage_error)?);
    apply_snapshot_plan(delete_plan(keys.iter().map(String::as_str))).await?;
    SNAPSHOT.with(|s| *s.borrow_mut() = None);
    Ok(())
}

/// The desk reads the stored snapshot (at start, and when `checks:meta` changed). Resolves to
/// whether one is there.
#[wasm_bindgen(js_name = loadChecks)]
pub async fn load_checks() -> Result<bool, JsValue> {
    let limit = read_limit().await?;
    LIMIT.with(|l| l.set(limit));
    let snapshot = load().await?;
    let found = snapshot.is_some();
    SNAPSHOT.with(|s| *s.borrow_mut() = snapshot);
    Ok(found)
}

/// What a payment on `cardnumber` shows from the desk's snapshot: `null`, or
/// `{balanceCents, age: {unit, amount, takenAt}}` ([`checks::payment_balance`]).
#[wasm_bindgen(js_name = paymentBalance)]
pub fn payment_balance(cardnumber: String) -> Result<JsValue, JsValue> {
    let shown = SNAPSHOT.with(|s| {
        s.borrow()
            .as_ref()
            .and_then(|snapshot| checks::payment_balance(snapshot, &cardnumber, browser::now()))
    });
    match shown {
        Some(balance) => to_js(&balance),
        None => Ok(JsValue::NULL),
    }
}

/// Whether a `storage.onChanged` batch changed the stored snapshot or balance limit (the desk
/// then calls
/// [`load_checks`]).
#[wasm_bindgen(js_name = checksChanged)]
pub fn checks_changed(changes: JsValue) -> bool {
    [CHECKS_META_KEY, CHECKS_LIMIT_KEY]
        .iter()
        .any(|key| Reflect::has(&changes, &JsValue::from_str(key)).unwrap_or(false))
}

/// The checks the desk asks about before recording `action` (none without a snapshot).
pub fn desk_checks(action: &Action, now: chrono::DateTime<chrono::Utc>) -> Vec<DeskCheck> {
    let accepted = CARD_ACCEPTED.with(|c| c.borrow().clone());
    SNAPSHOT.with(|s| {
        let held = s.borrow();
        let Some(snapshot) = held.as_ref() else {
            return Vec::new();
        };
        let today = checks::koha_today(now, &*koha_zone());
        state::with_journal(|journal| {
            checks::desk_checks(
                snapshot,
                action,
                journal,
                checks::card_limits(LIMIT.with(|l| l.get())),
                accepted.as_ref(),
                today,
                now,
            )
        })
    })
}

/// Koha's zone for the checks; one this browser cannot read, or none set up, gives way to the
/// desk's own (a warning a day off around midnight is better than none).
fn koha_zone() -> Rc<dyn ZoneRules> {
    let name = settings::koha_zone_name(state::settings().as_ref(), IntlZone::browser_zone);
    match IntlZone::named(&name).or_else(|_| IntlZone::named(&IntlZone::browser_zone())) {
        Ok(zone) => zone,
        Err(_) => Rc::new(FixedZone::utc()),
    }
}

/// Notes a recorded action for the card answered for ([`checks::card_accepted_after`]).
pub fn recorded(action: &Action, answered: Option<&[DeskCheck]>) {
    CARD_ACCEPTED.with(|c| {
        let previous = c.borrow_mut().take();
        *c.borrow_mut() = checks::card_accepted_after(previous, action, answered);
    });
}
