//! Admin presets through `storage.managed`: shown locked and enforced on save.
//!
//! Firefox on Linux reads an add-on's managed storage from
//! `~/.mozilla/managed-storage/<add-on id>.json` (a "native manifest" of type `storage`), besides
//! enterprise policies. This test binary points `HOME` at a temporary folder holding such a file,
//! so nothing outside the test changes. (It is its own binary because `HOME` is per process.)

use e2e::firefox::{with_firefox, Options, ADDON_ID};
use e2e::standin::{Config, StandIn};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn managed_server_and_library_are_locked_and_enforced() {
    let koha = StandIn::start(Config::default()).expect("the stand-in starts");
    let base = koha.base_url();
    let home = std::env::temp_dir().join(format!("koc-managed-home-{}", std::process::id()));
    let dir = home.join(".mozilla/managed-storage");
    std::fs::create_dir_all(&dir).expect("managed-storage folder");
    let manifest = json!({
        "name": ADDON_ID,
        "description": "Koha offline circulation presets (test)",
        "type": "storage",
        "data": { "server": base, "branchcode": "DE-25" }
    });
    std::fs::write(dir.join(format!("{ADDON_ID}.json")), manifest.to_string()).expect("written");
    // Only this test binary's Firefox sees it.
    std::env::set_var("HOME", &home);

    let options = Options {
        prefs: vec![(
            "extensions.webextOptionalPermissionPrompts".into(),
            json!(false),
        )],
        ..Options::default()
    };
    let base2 = base.clone();
    with_firefox(options, move |ff| async move {
        ff.open("options.html").await;
        let shown = ff
            .eval(
                "(() => { const $ = (id) => document.getElementById(id);
                   return { server: $('server').value, serverDisabled: $('server').disabled,
                            serverLocked: !$('server-locked').hidden,
                            branch: $('branchcode').value, branchDisabled: $('branchcode').disabled,
                            branchLocked: !$('branchcode-locked').hidden,
                            useridDisabled: $('userid').disabled }; })()",
            )
            .await;
        assert_eq!(
            shown,
            json!({ "server": base2, "serverDisabled": true, "serverLocked": true,
                    "branch": "DE-25", "branchDisabled": true, "branchLocked": true,
                    "useridDisabled": false })
        );

        // Even a form changed behind the lock saves the presets.
        ff.eval(
            "(() => { const $ = (id) => document.getElementById(id);
               $('server').disabled = false; $('server').value = 'https://elsewhere.example.org';
               $('branchcode').disabled = false; $('branchcode').value = 'XX';
               $('userid').value = 'desk'; $('password').value = 'secret123'; return true; })()",
        )
        .await;
        ff.click("save").await;
        ff.wait_until(
            "saved",
            "document.getElementById('options-message').dataset.kind === 'ok'",
        )
        .await;
        let script = "const done = arguments[arguments.length - 1];
            browser.storage.local.get('settings').then((v) => done(v.settings));";
        let saved = ff
            .client
            .execute_async(script, vec![])
            .await
            .expect("settings");
        assert_eq!(saved["server"], base2.as_str());
        assert_eq!(saved["branchcode"], "DE-25");
        // The page shows what was saved.
        let shown = ff
            .eval("[document.getElementById('server').value, document.getElementById('branchcode').value]")
            .await;
        assert_eq!(shown, json!([base2, "DE-25"]));
        ff.screenshot("options-managed-en-light").await;
    })
    .await;
    let _ = std::fs::remove_dir_all(&home);
    drop(koha);
}
