//! The demo of `./build.sh run` as a library deploys the add-on: a Firefox whose enterprise
//! policy force-installs the packed `.xpi` and presets the server and library through managed
//! storage (`scripts/demo.sh`). Checked here headless, against the stand-in.

use e2e::firefox::{with_firefox, Options};
use e2e::standin::{Config, StandIn};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn packed_addon() -> PathBuf {
    std::fs::read_dir(workspace().join("dist"))
        .expect("dist/ (run ./build.sh)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "xpi"))
        .expect("a packed dist/*.xpi")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_firefox_has_the_addon_deployed_by_policy_and_pointed_at_the_standin() {
    if e2e::firefox::addon_dir().is_none() {
        return;
    }
    let koha = StandIn::start(Config::default()).expect("the stand-in starts");
    let base = koha.base_url();
    let demo = std::env::temp_dir().join(format!("koc-demo-{}", std::process::id()));
    let prepared = Command::new(workspace().join("scripts/demo.sh"))
        .arg("prepare")
        .arg(&demo)
        .arg(packed_addon())
        .arg(&base)
        .status()
        .expect("scripts/demo.sh runs");
    assert!(prepared.success(), "scripts/demo.sh prepare failed");
    let installed = Command::new(workspace().join("scripts/demo.sh"))
        .arg("install")
        .arg(&demo)
        .status()
        .expect("scripts/demo.sh runs");
    assert!(installed.success(), "scripts/demo.sh install failed");

    let options = Options {
        binary: Some(demo.join("firefox/firefox-esr")),
        profile: Some(demo.join("profile")),
        // Nothing installed by the test: the policy did it.
        skip_install: true,
        ..Options::default()
    };
    let expected = base.clone();
    with_firefox(options, move |ff| async move {
        ff.open("options.html").await;
        let shown = ff
            .eval(
                "(() => { const $ = (id) => document.getElementById(id);
                   return { server: $('server').value, serverLocked: $('server').disabled,
                            branch: $('branchcode').value,
                            branchLocked: $('branchcode').disabled }; })()",
            )
            .await;
        assert_eq!(
            shown,
            json!({ "server": expected, "serverLocked": true,
                    "branch": "DE-627", "branchLocked": true })
        );
        ff.open("desk.html").await;
        // A policy-installed add-on cannot be removed by the user.
        let removable = ff
            .eval("browser.management.getSelf().then((me) => me.installType)")
            .await;
        assert_eq!(removable, json!("admin"));
    })
    .await;
    let _ = std::fs::remove_dir_all(&demo);
}
