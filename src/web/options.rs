//! What the options page calls: show, save and test the connection settings, forget credentials.
//!
//! The rules are the core's (`settings::plan_save`, `plan_test`, `connection::ConnectionTest`);
//! this module reads and writes the stores and runs the requests.

use super::dto::{js_error, to_js, ErrorDto};
use super::zone::IntlZone;
use super::{browser, http, state};
use crate::clock::ClockCheck;
use crate::kinds::AsKind;
use crate::koha::{interpret_library, library_request, ConnectionProblem, LibraryCheck, Transport};
use crate::settings::connection::{
    ConnectionTest, Level, SessionReuse, TestOutcome, TestReport, TestStep,
};
use crate::settings::{
    self, merge_managed, KohaUrl, ManagedSettings, PasswordKept, SessionPassword, Settings,
    SettingsError, SettingsErrors, SettingsField, SettingsForm, SESSION_PASSWORD_KEY,
};
use serde::Serialize;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    /// The transport the last successful test found, and for which server: saved with the
    /// settings when they are saved for that server.
    static DETECTED: RefCell<Option<(KohaUrl, String)>> = const { RefCell::new(None) };
    /// Whether the stores were read into memory; later changes arrive through
    /// [`options_storage_changed`].
    static OPENED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Reads the stores once per page (the journal can be large); afterwards memory is kept current
/// by `storage.onChanged`.
async fn ensure_open() -> Result<(), JsValue> {
    if !OPENED.with(|o| o.get()) {
        state::open(false, Some(0)).await.map_err(storage_error)?;
        OPENED.with(|o| o.set(true));
    }
    Ok(())
}

/// Applies a `storage.onChanged` batch from `storage.local` (another page saved settings).
#[wasm_bindgen(js_name = optionsStorageChanged)]
pub fn options_storage_changed(changes: JsValue) -> bool {
    state::apply_storage_changes(&changes)
}

/// What the page shows when it opens.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ViewDto {
    form: SettingsForm,
    locked: Vec<SettingsField>,
    password_kept: PasswordKept,
    /// Whether Firefox lets the add-on reach the saved server; `None` before the first save.
    access: Option<bool>,
    host: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SavedDto {
    /// The normalised server address, shown in place of what was typed.
    server: String,
    /// The saved library code (a preset wins over what was typed).
    branchcode: String,
    password_kept: PasswordKept,
    locked: Vec<SettingsField>,
    host: String,
}

/// Which of [`TestOutcome`]'s cases a report is: `works`, `problem` or `no-access`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
enum OutcomeDto {
    Works,
    Problem,
    NoAccess,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TestDto {
    level: Level,
    outcome: OutcomeDto,
    transport: Option<Transport>,
    problem: Option<AsKind<ConnectionProblem>>,
    http_status: Option<u16>,
    session_reuse: SessionReuse,
    host: String,
    clock: ClockDto,
    /// Which offline checks this Koha and login allow; `None` when sending does not work or
    /// the probe could not finish.
    checks: Option<Vec<crate::checks::Availability>>,
    /// Whether Koha knows the library code; `None` when sending does not work.
    library: Option<LibraryDto>,
}

/// What Koha said of the library code: `state` is the kind of the `koha::LibraryCheck`, with
/// Koha's `name` for a known code.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LibraryDto {
    code: String,
    name: Option<String>,
    state: AsKind<LibraryCheck>,
}

impl LibraryDto {
    fn new(code: &str, check: LibraryCheck) -> Self {
        let name = match &check {
            LibraryCheck::Known { name } => Some(name.clone()),
            LibraryCheck::Unknown | LibraryCheck::Unchecked => None,
        };
        LibraryDto {
            code: code.to_owned(),
            name,
            state: AsKind(check),
        }
    }
}

/// The desk's clock against Koha's (`clock::ClockCheck`): `state` is `in-step`, `desk-ahead`,
/// `desk-behind` or `unknown`; both times (ms since the epoch) only when the clock is off.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClockDto {
    state: AsKind<ClockCheck>,
    desk: Option<f64>,
    koha: Option<f64>,
}

impl From<&ClockCheck> for ClockDto {
    fn from(check: &ClockCheck) -> Self {
        let times = check.times();
        ClockDto {
            state: AsKind(check.clone()),
            desk: times.map(|(desk, _)| desk.timestamp_millis() as f64),
            koha: times.map(|(_, koha)| koha.timestamp_millis() as f64),
        }
    }
}

#[derive(Serialize)]
struct FieldErrorDto {
    field: SettingsField,
    kind: AsKind<SettingsError>,
    detail: String,
}

/// `{kind: "invalid-form", fields: [{field, kind, detail}]}`: every invalid field.
#[derive(Serialize)]
struct FormErrorDto {
    kind: &'static str,
    fields: Vec<FieldErrorDto>,
}

fn form_error(errors: SettingsErrors) -> JsValue {
    let fields = errors
        .errors()
        .iter()
        .map(|e| FieldErrorDto {
            field: e.field(),
            kind: AsKind(e.clone()),
            detail: e.to_string(),
        })
        .collect();
    let dto = FormErrorDto {
        kind: "invalid-form",
        fields,
    };
    to_js(&dto).unwrap_or_else(|e| e)
}

fn storage_error(e: impl std::fmt::Debug) -> JsValue {
    js_error(ErrorDto::new("storage", None, format!("{e:?}")))
}

/// Whether the browser's time zone database knows `name`. `new Intl.DateTimeFormat` throws a
/// RangeError for an unknown zone; `Reflect.construct` turns that into an `Err` (calling the
/// constructor binding directly would let the exception escape through the wasm stack).
fn zone_known(name: &str) -> bool {
    let construct = || -> Result<JsValue, JsValue> {
        let intl = js_sys::Reflect::get(&js_sys::global(), &"Intl".into())?;
        let constructor: js_sys::Function =
            js_sys::Reflect::get(&intl, &"DateTimeFormat".into())?.dyn_into()?;
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"timeZone".into(), &name.into())?;
        let args = js_sys::Array::of2(&"en-US".into(), &options);
        js_sys::Reflect::construct(&constructor, &args)
    };
    construct().is_ok()
}

/// The match pattern to ask Firefox for, `<scheme>://<host>/*`, or `null` for an address the
/// core refuses. Synchronous, so Save can call `permissions.request` within the click.
#[wasm_bindgen(js_name = originPattern)]
pub fn origin_pattern(url: &str) -> Option<String> {
    KohaUrl::parse(url).ok().map(|u| u.origin_pattern())
}

/// Saved settings (or the first-visit defaults) with the policy presets applied; the password
/// field is always empty.
#[wasm_bindgen(js_name = openOptions)]
pub async fn open_options() -> Result<JsValue, JsValue> {
    ensure_open().await?;
    let saved = state::settings();
    let session = session_password().await;
    let form = saved.as_ref().map_or_else(
        || SettingsForm::initial(&IntlZone::browser_zone()),
        Settings::to_form,
    );
    let merged = merge_managed(&form, &managed().await);
    let access = match &saved {
        Some(s) => Some(has_access(&s.server).await),
        None => None,
    };
    to_js(&ViewDto {
        form: merged.form,
        locked: merged.locked,
        password_kept: PasswordKept::of(saved.as_ref(), session.as_deref()),
        access,
        host: saved.map(|s| s.server.host().to_owned()),
    })
}

/// Validates the whole form and saves it, or saves nothing and rejects with every invalid
/// field. The password goes to storage only when remembered, else to `storage.session`.
#[wasm_bindgen(js_name = saveOptions)]
pub async fn save_options(form: JsValue) -> Result<JsValue, JsValue> {
    let form: SettingsForm = serde_wasm_bindgen::from_value(form)?;
    ensure_open().await?;
    let previous = state::settings();
    let session = session_password().await;
    let detected = DETECTED.with(|d| d.borrow().clone());
    let plan = settings::plan_save(
        &form,
        previous.as_ref(),
        &managed().await,
        session.as_deref(),
        detected.as_ref().map(|(server, t)| (server, t.as_str())),
        &zone_known,
    )
    .map_err(form_error)?;
    state::save_settings(&plan.settings)
        .await
        .map_err(storage_error)?;
    apply_session_password(&plan.session_password).await?;
    to_js(&SavedDto {
        server: plan.settings.server.as_str().to_owned(),
        branchcode: plan.settings.branchcode.as_str().to_owned(),
        password_kept: plan.password_kept,
        locked: plan.locked,
        host: plan.settings.server.host().to_owned(),
    })
}

/// Tests the form's server and credentials without creating any transaction in Koha, and
/// remembers the transport that works.
#[wasm_bindgen(js_name = testConnection)]
pub async fn test_connection(form: JsValue) -> Result<JsValue, JsValue> {
    let (settings, creds, access) = server_and_login(form).await?;
    let report = if access {
        run_test(ConnectionTest::new(
            &settings.server,
            creds.clone(),
            settings.login_once,
        ))
        .await
    } else {
        TestReport::no_access()
    };
    let mut checks = None;
    let mut library = None;
    if let Some(transport) = report.transport() {
        remember_transport(&settings.server, transport.name()).await?;
        // Koha answers: ask which offline checks it allows, and whether it knows the library
        // code. Whatever the answers, sending is unaffected.
        // Both at once: neither waits for the other's answer (or its time-out).
        let request = library_request(settings.server.as_str(), &settings.branchcode);
        let (probed, reply) = browser::join(
            super::checks::probe(settings.server.as_str(), creds),
            http::send(&request),
        )
        .await;
        checks = probed;
        let check = interpret_library(&reply, &settings.branchcode);
        library = Some(LibraryDto::new(settings.branchcode.as_str(), check));
    }
    let mut dto = test_dto(&report, settings.server.host());
    dto.checks = checks;
    dto.library = library;
    to_js(&dto)
}

/// Removes user name and password from the saved settings and from `storage.session`.
#[wasm_bindgen(js_name = forgetCredentials)]
pub async fn forget_credentials() -> Result<(), JsValue> {
    ensure_open().await?;
    if let Some(saved) = state::settings() {
        state::save_settings(&settings::forget_credentials(&saved))
            .await
            .map_err(storage_error)?;
    }
    apply_session_password(&SessionPassword::Clear).await
}

async fn run_test(mut test: ConnectionTest) -> TestReport {
    let mut request = test.start();
    loop {
        let sent = browser::now();
        let reply = http::send(&request).await;
        match test.feed(reply, sent, browser::now()) {
            TestStep::Send(next) => request = next,
            TestStep::Done(report) => return report,
        }
    }
}

/// Keeps the transport for the next save, and in the saved settings when they are for this
/// server.
async fn remember_transport(server: &KohaUrl, transport: &str) -> Result<(), JsValue> {
    DETECTED.with(|d| *d.borrow_mut() = Some((server.clone(), transport.to_owned())));
    let saved = state::settings().and_then(|s| s.with_detected_transport(server, transport));
    match saved {
        Some(saved) => state::save_settings(&saved).await.map_err(storage_error),
        None => Ok(()),
    }
}

fn test_dto(report: &TestReport, host: &str) -> TestDto {
    let (outcome, transport, problem) = match &report.outcome {
        TestOutcome::Works(t) => (OutcomeDto::Works, Some(*t), None),
        TestOutcome::Problem(p) => (OutcomeDto::Problem, None, Some(p)),
        TestOutcome::NoAccess => (OutcomeDto::NoAccess, None, None),
    };
    let http_status = problem.and_then(|p| match p {
        ConnectionProblem::ServerError { http_status }
        | ConnectionProblem::UnexpectedAnswer { http_status } => Some(*http_status),
        _ => None,
    });
    TestDto {
        level: report.level(),
        outcome,
        transport,
        problem: problem.map(|p| AsKind(p.clone())),
        http_status,
        session_reuse: report.session_reuse,
        host: host.to_owned(),
        clock: ClockDto::from(&report.clock),
        checks: None,
        library: None,
    }
}

async fn apply_session_password(plan: &SessionPassword) -> Result<(), JsValue> {
    match plan {
        SessionPassword::Set(password) => {
            browser::session_set_string(SESSION_PASSWORD_KEY, password).await
        }
        SessionPassword::Clear => browser::session_remove(SESSION_PASSWORD_KEY).await,
    }
    .map_err(storage_error)
}

async fn session_password() -> Option<String> {
    browser::session_get_string(SESSION_PASSWORD_KEY)
        .await
        .ok()
        .flatten()
}

async fn managed() -> ManagedSettings {
    serde_wasm_bindgen::from_value(browser::managed_get().await.into()).unwrap_or_default()
}

async fn has_access(server: &KohaUrl) -> bool {
    browser::has_origin_permission(&server.origin_pattern())
        .await
        .unwrap_or(false)
}

/// The server and login the form gives (for the connection test and the offline checks'
/// download), and whether Firefox lets the add-on reach that server.
pub(super) async fn server_and_login(
    form: JsValue,
) -> Result<(Settings, crate::koha::Credentials, bool), JsValue> {
    let form: SettingsForm = serde_wasm_bindgen::from_value(form)?;
    ensure_open().await?;
    let previous = state::settings();
    let session = session_password().await;
    let (settings, creds) = settings::plan_test(
        &form,
        previous.as_ref(),
        &managed().await,
        session.as_deref(),
        &zone_known,
    )
    .map_err(form_error)?;
    let access = has_access(&settings.server).await;
    Ok((settings, creds, access))
}
