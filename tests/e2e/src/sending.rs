//! Sending from the desk to the Koha stand-in: the desk's settings, the Send button, and the
//! set-up most send tests share (a stand-in, a Firefox, the desk open and set up to send to it).

use crate::desk::{core_call, with_open_desk};
use crate::firefox::{Firefox, Options};
use crate::standin::StandIn;
use crate::wait::wait_until;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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
    /// Queue mode's requests in flight at once (1 to 4); 0 leaves the default.
    pub in_flight: u8,
}

impl DeskSettings {
    /// The stand-in's desk account in queue mode, its password remembered, one login per run:
    /// what most tests change one field of.
    pub fn queue(koha: &StandIn) -> DeskSettings {
        DeskSettings {
            server: koha.base_url(),
            mode: "queue",
            password: Some(crate::standin::DEMO_PASSWORD),
            login_once: true,
            in_flight: 0,
        }
    }
}

/// Stores settings through the core's `saveOptions`, as the options page does.
pub async fn configure(ff: &Firefox, s: &DeskSettings) {
    let form = json!({
        "server": s.server,
        "branchcode": "DE-627",
        "userid": crate::standin::DEMO_USER,
        "password": s.password.unwrap_or(""),
        "rememberPassword": s.password.is_some(),
        "mode": s.mode,
        "timezone": "Europe/Berlin",
        "loginOnce": s.login_once,
        "inFlight": s.in_flight,
    });
    core_call(ff, &format!("core.saveOptions({form})")).await;
}

/// Runs `body` with `koha` and a fresh Firefox (see [`with_open_desk`]) whose desk is set up
/// with `settings`.
pub async fn with_desk_sending_to<F, Fut>(
    options: Options,
    koha: StandIn,
    settings: DeskSettings,
    body: F,
) where
    F: FnOnce(Arc<Firefox>, Arc<StandIn>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let koha = Arc::new(koha);
    with_open_desk(options, move |ff| async move {
        configure(&ff, &settings).await;
        body(ff, koha).await;
    })
    .await;
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
    wait_until("the send run to finish", at_most, || async {
        runs(ff).await > before
    })
    .await;
    let outcome = ff
        .eval(r#"document.getElementById("send-area").dataset.outcome"#)
        .await;
    outcome.as_str().unwrap_or_default().to_owned()
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
