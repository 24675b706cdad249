//! Drives Firefox ESR through geckodriver with the built add-on installed.
//!
//! One browser per test, always closed (even when the test panics), one test at a time, each in
//! its own copy of a warm profile (`warm_profile`). Tests wait on conditions in the page, never
//! on fixed sleeps.

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::warm_profile::{self, ProfileCopy};

/// The add-on's fixed gecko id (manifest.json).
pub const ADDON_ID: &str = "koha-offline-circ@koha-desk.org";
/// The moz-extension:// host the tests pin through a preference.
pub const ADDON_UUID: &str = "5b0c6a38-7d1e-4c39-9a55-0f6e2f6b8a11";

/// Where the unpacked test build of the add-on is (`www-test/`: the pages with their test hooks),
/// from `KOC_ADDON_DIR` (set by `./build.sh test`). Returns `None` (the caller skips) unless
/// `KOC_E2E_REQUIRED` is set, in which case a missing add-on, Firefox or geckodriver is an error.
/// Panics if the folder is the shipped build (`www/`), which has no test hooks.
pub fn addon_dir() -> Option<PathBuf> {
    let required = std::env::var_os("KOC_E2E_REQUIRED").is_some();
    let dir = std::env::var_os("KOC_ADDON_DIR").map(PathBuf::from);
    if let Some(d) = dir.as_ref().filter(|d| d.join("manifest.json").exists()) {
        assert!(
            d.join("test/hooks.js").exists(),
            "KOC_ADDON_DIR={} has no test hooks: point it at the test build, www-test/ \
             (./build.sh test builds it)",
            d.display()
        );
    }
    let ready = dir
        .as_ref()
        .is_some_and(|d| d.join("manifest.json").exists())
        && which("geckodriver").is_some()
        && Path::new(FIREFOX_BINARY).exists();
    match (ready, required) {
        (true, _) => dir,
        (false, true) => panic!(
            "KOC_E2E_REQUIRED is set but the add-on (KOC_ADDON_DIR={dir:?}), geckodriver or \
             {FIREFOX_BINARY} is missing; run ./build.sh test"
        ),
        (false, false) => {
            eprintln!(
                "SKIPPED: Firefox test needs KOC_ADDON_DIR, geckodriver and Firefox ESR; \
                 run ./build.sh test"
            );
            None
        }
    }
}

const FIREFOX_BINARY: &str = "/usr/bin/firefox-esr";

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// How to start the browser.
#[derive(Debug, Clone)]
pub struct Options {
    /// UI locale, e.g. `en-US` or `de`.
    pub locale: String,
    /// Dark colour scheme.
    pub dark: bool,
    /// Window size.
    pub width: u32,
    /// Window size.
    pub height: u32,
    /// A profile folder to reuse (for restart tests); a fresh temporary one otherwise.
    pub profile: Option<PathBuf>,
    /// Extra preferences.
    pub prefs: Vec<(String, Value)>,
    /// Install as a temporary add-on (forgotten when Firefox stops). `false` installs it
    /// permanently (needs `profile`; unsigned add-ons work on ESR), for restart tests.
    pub install_temporary: bool,
    /// What to install instead of `KOC_ADDON_DIR` (e.g. the packed `dist/*.xpi`).
    pub addon_path: Option<PathBuf>,
    /// Install nothing: the add-on is already installed permanently in `profile`, or an
    /// enterprise policy of `binary`'s installation installs it.
    pub skip_install: bool,
    /// Another Firefox than the system's ESR (e.g. the demo's, which carries a policy).
    pub binary: Option<PathBuf>,
    /// The time zone Firefox runs in (`TZ`, e.g. `America/Toronto`); the machine's otherwise.
    pub zone: Option<String>,
}

impl Options {
    /// The defaults, with optional permissions (the Koha host) granted without a prompt, as
    /// a librarian would click "Allow".
    pub fn granting_permissions() -> Options {
        Options {
            prefs: vec![(
                "extensions.webextOptionalPermissionPrompts".to_owned(),
                json!(false),
            )],
            ..Options::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            locale: "en-US".into(),
            dark: false,
            width: 900,
            height: 900,
            profile: None,
            prefs: Vec::new(),
            install_temporary: true,
            addon_path: None,
            skip_install: false,
            binary: None,
            zone: None,
        }
    }
}

// One Firefox at a time: the machine has two cores and tests share the stand-in ports.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running Firefox with the add-on installed.
pub struct Firefox {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    /// Removed once Firefox has quit (the field is dropped after `close` has waited).
    _profile: Option<ProfileCopy>,
}

struct InstallAddon {
    path: PathBuf,
    temporary: bool,
}

impl std::fmt::Debug for InstallAddon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InstallAddon({:?})", self.path)
    }
}

impl WebDriverCompatibleCommand for InstallAddon {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/moz/addon/install",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "path": self.path, "temporary": self.temporary });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Starts geckodriver; Firefox runs in time zone `zone` if given (`TZ` reaches Firefox from
/// geckodriver's own environment; the `env` capability did not change Firefox's zone).
fn start_geckodriver(zone: Option<&str>) -> (Child, u16) {
    let mut command = Command::new("geckodriver");
    if let Some(zone) = zone {
        command.env("TZ", zone);
    }
    let mut driver = command
        .args(["--port", "0", "--allow-system-access", "--log", "info"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("geckodriver starts");
    let stdout = driver.stdout.take().expect("geckodriver stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("geckodriver prints its port")
            .expect("readable geckodriver output");
        if let Some(rest) = line.split("Listening on ").nth(1) {
            let port = rest.trim().rsplit(':').next().unwrap_or_default();
            break port.parse().expect("a port number");
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (driver, port)
}

/// Starts Firefox at `binary` headless in profile folder `profile`, opens a blank page and
/// quits it normally: what makes a warm profile.
pub(crate) async fn start_and_quit(binary: &Path, profile: &Path) -> Result<(), String> {
    let (mut driver, port) = start_geckodriver(None);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "moz:firefoxOptions".into(),
        json!({ "binary": binary, "args": ["-headless", "-profile", profile] }),
    );
    let outcome = match ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
    {
        Ok(client) => {
            let opened = client.goto("about:blank").await.map_err(|e| e.to_string());
            let closed = client.close().await.map_err(|e| e.to_string());
            opened.and(closed)
        }
        Err(e) => Err(format!("Firefox session: {e}")),
    };
    let _ = driver.kill();
    let _ = driver.wait();
    outcome
}

impl Firefox {
    /// Starts geckodriver and Firefox, installs the add-on from `addon`.
    pub async fn start(addon: &Path, options: &Options) -> Firefox {
        let binary = options
            .binary
            .as_deref()
            .unwrap_or(Path::new(FIREFOX_BINARY));
        // Only the system's Firefox starts warm: another (the demo's) may carry a policy that
        // installs the add-on, which must never reach the template.
        let warm = match (&options.profile, &options.binary) {
            (None, None) => warm_profile::fresh_copy(binary).await,
            _ => None,
        };
        let (mut driver, port) = start_geckodriver(options.zone.as_deref());
        let mut prefs = serde_json::Map::new();
        prefs.insert(
            "extensions.webextensions.uuids".into(),
            json!(json!({ ADDON_ID: ADDON_UUID }).to_string()),
        );
        prefs.insert("intl.locale.requested".into(), json!(options.locale));
        prefs.insert("intl.accept_languages".into(), json!(options.locale));
        // 0 = dark, 1 = light for prefers-color-scheme in content and extension pages.
        let scheme = if options.dark { 0 } else { 1 };
        prefs.insert(
            "layout.css.prefers-color-scheme.content-override".into(),
            json!(scheme),
        );
        prefs.insert("ui.systemUsesDarkTheme".into(), json!(options.dark as i32));
        prefs.insert("xpinstall.signatures.required".into(), json!(false));
        prefs.insert("extensions.autoDisableScopes".into(), json!(0));
        for (k, v) in &options.prefs {
            prefs.insert(k.clone(), v.clone());
        }
        let mut args = vec![
            json!("-headless"),
            json!("--width"),
            json!(options.width.to_string()),
            json!("--height"),
            json!(options.height.to_string()),
        ];
        if let Some(profile) = options
            .profile
            .as_deref()
            .or(warm.as_ref().map(|w| w.path()))
        {
            args.push(json!("-profile"));
            args.push(json!(profile));
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "moz:firefoxOptions".into(),
            json!({
                "binary": binary,
                "args": args,
                "prefs": prefs,
            }),
        );
        let client = match ClientBuilder::native()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => client,
            Err(e) => {
                let _ = driver.kill();
                panic!("Firefox session: {e}");
            }
        };
        let firefox = Firefox {
            client,
            driver,
            _profile: warm,
        };
        if !options.skip_install {
            firefox
                .client
                .issue_cmd(InstallAddon {
                    path: options
                        .addon_path
                        .clone()
                        .unwrap_or_else(|| addon.to_path_buf()),
                    temporary: options.install_temporary,
                })
                .await
                .expect("the add-on installs");
        }
        firefox
    }

    /// The URL of a page of the add-on, e.g. `desk.html`.
    pub fn page_url(page: &str) -> String {
        format!("moz-extension://{ADDON_UUID}/{page}")
    }

    /// Opens a page of the add-on and waits until its WASM core is loaded.
    pub async fn open(&self, page: &str) {
        self.client
            .goto(&Self::page_url(page))
            .await
            .expect("navigation");
        self.wait_ready().await;
    }

    /// Waits for `#app[data-ready="true"]`.
    pub async fn wait_ready(&self) {
        self.wait_for_css(r#"#app[data-ready="true"]"#).await;
    }

    /// Waits until an element matching `css` exists (30 s at most).
    pub async fn wait_for_css(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting for {css}: {e}"))
    }

    /// Waits until `script` (a JS expression) is truthy, 30 s at most.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let what = format!("{what} ({script})");
        let script = format!("return !!({script});");
        crate::wait::wait_until(&what, Duration::from_secs(30), || async {
            // A page between two documents (a reload) answers with an error: not yet.
            self.client.execute(&script, vec![]).await.ok() == Some(Value::Bool(true))
        })
        .await;
    }

    /// Runs a JS expression in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(&format!("return ({script});"), vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// Finds one element by id.
    pub async fn by_id(&self, id: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"))
    }

    /// Types into the element with this id (keys as a scanner sends them; `\n` is Enter).
    pub async fn type_into(&self, id: &str, text: &str) {
        let keys = text.replace('\n', "\u{E007}");
        self.by_id(id)
            .await
            .send_keys(&keys)
            .await
            .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
    }

    /// Clicks the element with this id.
    pub async fn click(&self, id: &str) {
        self.by_id(id)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
    }

    /// Saves a screenshot as `target/screenshots/<name>.png` for people to look at.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    /// Ends the session and geckodriver.
    pub async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `target/screenshots` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
}

/// Runs `body` with a fresh Firefox and closes it afterwards, also when `body` panics (the
/// panic is then re-raised). Returns without running when Firefox tests are not set up.
pub async fn with_firefox<F, Fut>(options: Options, body: F)
where
    F: FnOnce(std::sync::Arc<Firefox>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(addon) = addon_dir() else { return };
    let _serial = ONE_AT_A_TIME.lock().await;
    let firefox = std::sync::Arc::new(Firefox::start(&addon, &options).await);
    let outcome = tokio::spawn(body(firefox.clone())).await;
    match std::sync::Arc::try_unwrap(firefox) {
        Ok(firefox) => firefox.close().await,
        Err(_) => eprintln!("a test kept its Firefox handle; the browser is left to exit"),
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}
