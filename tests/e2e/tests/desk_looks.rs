//! The desk in German and English, light and dark, as a popup and in a tab, and the desk and the
//! options page in each of the six languages: screenshots under `target/screenshots/` for people
//! to look at, no text wider than its box, and the German interface checked.

use e2e::desk::with_open_desk;
use e2e::firefox::{with_firefox, Firefox, Options};
use serde_json::json;

/// Stores transactions Koha answered (as a send run would have), then reloads the page.
async fn seed_answered(ff: &Firefox) {
    let entry = |id: &str, at: &str, action: serde_json::Value, last: serde_json::Value| {
        let mut tx = json!({
            "id": id, "recorded_at": at, "branchcode": "DE-627",
            "history": [{"at": at, "status": "local"}, {"at": at, "status": "sending"}, last],
        });
        for (k, v) in action.as_object().expect("fields") {
            tx[k] = v.clone();
        }
        (format!("tx:{id}"), json!({"v": 1, "tx": tx}))
    };
    let items: serde_json::Map<_, _> = [
        entry("0019a0000000-00000000000000a1", "2026-11-28T07:58:00Z",
            json!({"action": "issue", "cardnumber": "C0005", "barcode": "B0031"}),
            json!({"at": "2026-11-28T07:59:00Z", "status": "queued"})),
        entry("0019a0000001-00000000000000a2", "2026-11-28T07:58:30Z",
            json!({"action": "issue", "cardnumber": "C9999", "barcode": "B0032"}),
            json!({"at": "2026-11-28T07:59:00Z", "status": "rejected", "message": "Borrower not found."})),
        entry("0019a0000002-00000000000000a3", "2026-11-28T07:58:40Z",
            json!({"action": "payment", "cardnumber": "C0006", "amount": 350}),
            json!({"at": "2026-11-28T07:59:00Z", "status": "uncertain", "reason": "timeout"})),
    ]
    .into_iter()
    .collect();
    ff.client
        .execute_async(
            "browser.storage.local.set(arguments[0]).then(() => arguments[1](true))",
            vec![json!(items)],
        )
        .await
        .expect("seeded");
}

async fn record_some(ff: &Firefox, unsent_after: usize) {
    ff.type_into("checkout-cardnumber", "C0001\n").await;
    ff.type_into("checkout-barcode", "B0001\nB0002\n").await;
    ff.type_into("checkin-barcode", "B0003\n").await;
    ff.type_into("payment-cardnumber", "C0002\n").await;
    ff.type_into("payment-amount", "2,50\n").await;
    let done =
        format!(r##"document.getElementById("count-unsent").textContent === "{unsent_after}""##);
    ff.wait_until("recorded", &done).await;
}

async fn screenshots(locale: &str, dark: bool) {
    let options = Options {
        locale: locale.into(),
        dark,
        width: 800,
        height: 600,
        ..Options::default()
    };
    let tag = format!("{}-{}", &locale[..2], if dark { "dark" } else { "light" });
    with_firefox(options, move |ff| async move {
        ff.open("desk.html?view=popup").await;
        seed_answered(&ff).await;
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        record_some(&ff, 6).await;
        ff.screenshot(&format!("desk-popup-{tag}")).await;
        ff.client.set_window_size(1280, 900).await.expect("resize");
        ff.open("desk.html").await;
        ff.type_into("checkout-cardnumber", "C0001\n").await;
        ff.type_into("checkout-barcode", "B0002\n").await;
        ff.wait_for_css(r##"#confirm[open][data-kind="duplicate-scan"]"##)
            .await;
        ff.screenshot(&format!("desk-tab-question-{tag}")).await;
        ff.click("confirm-cancel").await;
        ff.wait_until("answered", r##"!document.getElementById("confirm").open"##)
            .await;
        ff.screenshot(&format!("desk-tab-{tag}")).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshots_english_light() {
    screenshots("en-US", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshots_english_dark() {
    screenshots("en-US", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshots_german_light() {
    screenshots("de", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshots_german_dark() {
    screenshots("de", true).await;
}

/// Elements whose text is wider than their box (a long word in a narrow column): what spills
/// into the next cell or off the page. Form fields scroll their own text and are left out.
const OVERFLOWING: &str = r##"[...document.querySelectorAll("body *")]
    .filter((e) => e.getClientRects().length && !["INPUT", "SELECT", "TEXTAREA", "OPTION"].includes(e.tagName))
    .filter((e) => getComputedStyle(e).display !== "inline" && e.scrollWidth > e.clientWidth + 1)
    .filter((e) => !["auto", "scroll", "hidden"].includes(getComputedStyle(e).overflowX))
    .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}: ${e.textContent.trim().slice(0, 40)}`)"##;

/// Scrolls the transactions table to the top of the window.
const TABLE_IN_VIEW: &str =
    r##"document.querySelector(".journal-head").scrollIntoView({ block: "start" })"##;

/// How much wider the transactions table is than its box (which then scrolls sideways).
const TABLE_OVERFLOW: &str = r##"(() => { const w = document.querySelector(".table-wrap");
    return w ? w.scrollWidth - w.clientWidth : 0; })()"##;

async fn assert_nothing_overflows(ff: &Firefox, what: &str) {
    let overflowing = ff.eval(OVERFLOWING).await;
    assert_eq!(overflowing, json!([]), "{what}: text wider than its box");
    let page = ff
        .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert_eq!(page, 0, "{what}: the page scrolls sideways");
}

/// The message `key` of `lang` in `i18n/<lang>/<file>`.
fn message(lang: &str, file: &str, key: &str) -> serde_json::Value {
    let path = format!("{}/../../i18n/{lang}/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let all: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    all[key]["message"].clone()
}

/// The popup (800×600) and a narrow tab of the desk, and the options page with every field's
/// error shown, wide and narrow, in `locale`: screenshots `lang-*-<lang>`. No text spills out of
/// its box, no page scrolls sideways, and the popup's table shows every column (in a narrow tab
/// it may scroll inside its box).
async fn in_language(locale: &'static str) {
    let options = Options {
        locale: locale.into(),
        width: 800,
        height: 600,
        ..Options::default()
    };
    let lang = &locale[..2];
    with_firefox(options, move |ff| async move {
        ff.open("desk.html?view=popup").await;
        assert_eq!(ff.eval("document.documentElement.lang").await, locale);
        // The manifest's __MSG_…__ fields come from this language too.
        assert_eq!(
            ff.eval("browser.runtime.getManifest().name").await,
            message(lang, "manifest.json", "extensionName")
        );
        seed_answered(&ff).await;
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        record_some(&ff, 6).await;
        ff.screenshot(&format!("lang-desk-popup-{lang}")).await;
        ff.eval(TABLE_IN_VIEW).await;
        ff.screenshot(&format!("lang-desk-popup-table-{lang}"))
            .await;
        assert_nothing_overflows(&ff, "popup").await;
        // The popup shows every column: long words of the headers and answers break instead.
        assert_eq!(
            ff.eval(TABLE_OVERFLOW).await,
            0,
            "the popup's table scrolls sideways"
        );
        // A tab about as narrow as a desk PC's half screen.
        ff.client.set_window_size(640, 900).await.expect("resize");
        ff.open("desk.html").await;
        ff.screenshot(&format!("lang-desk-tab-{lang}")).await;
        ff.eval(TABLE_IN_VIEW).await;
        ff.screenshot(&format!("lang-desk-tab-table-{lang}")).await;
        assert_nothing_overflows(&ff, "narrow tab").await;
        for (width, tag) in [(900, "options"), (520, "options-narrow")] {
            ff.client
                .set_window_size(width, 1400)
                .await
                .expect("resize");
            ff.open("options.html").await;
            ff.click("save").await;
            ff.wait_until(
                "errors shown",
                r##"!document.getElementById("server-error").hidden"##,
            )
            .await;
            ff.screenshot(&format!("lang-{tag}-{lang}")).await;
            assert_nothing_overflows(&ff, tag).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_czech() {
    in_language("cs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_german() {
    in_language("de").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_english() {
    in_language("en-US").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_spanish() {
    in_language("es-ES").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_french() {
    in_language("fr").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_italian() {
    in_language("it").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshots_at_200_percent_zoom() {
    let options = Options {
        locale: "de".into(),
        // A 1280×900 window at 200 % zoom has 640×450 CSS pixels.
        width: 640,
        height: 450,
        prefs: vec![("layout.css.devPixelsPerPx".into(), json!("2.0"))],
        ..Options::default()
    };
    with_open_desk(options, |ff| async move {
        record_some(&ff, 4).await;
        // Nothing is wider than the window: no sideways scrolling for the forms.
        let overflow = ff
            .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .await;
        assert_eq!(overflow, 0);
        ff.screenshot("desk-tab-de-zoom200").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_desk_speaks_german_when_the_browser_does() {
    let options = Options {
        locale: "de".into(),
        ..Options::default()
    };
    with_open_desk(options, |ff| async move {
        assert_eq!(ff.eval("document.documentElement.lang").await, "de");
        let label = r##"document.querySelector("label[for=checkout-cardnumber]").textContent"##;
        assert_eq!(ff.eval(label).await, "Ausweisnummer");
        assert_eq!(
            ff.eval(r##"document.querySelector("#checkin-form h2").textContent"##)
                .await,
            "Rückgabe"
        );
        ff.type_into("checkout-barcode", "B0001\n").await;
        ff.wait_until(
            "an error",
            r##"document.getElementById("message").dataset.kind === "error""##,
        )
        .await;
        assert_eq!(
            ff.eval(r##"document.getElementById("message").textContent"##)
                .await,
            "Ausweisnummer ist leer."
        );
        // Koha's answers are translated, with the original beside them.
        seed_answered(&ff).await;
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        let answer = ff
            .eval(r##"document.querySelector("tr[data-status=rejected]").cells[6].textContent"##)
            .await;
        assert_eq!(answer, "Person nicht gefunden („Borrower not found.“)");
        // The uncertain payment's amount is written as German writes money.
        let uncertain = ff
            .eval(r##"document.querySelector("#uncertain-list li").firstChild.textContent"##)
            .await;
        assert!(
            uncertain
                .as_str()
                .is_some_and(|t| t.contains("C0006 · 3,50")),
            "{uncertain}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_rows_cannot_be_deleted_one_by_one_and_clear_sent_removes_them() {
    with_open_desk(Options::default(), |ff| async move {
        seed_answered(&ff).await;
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        let deletable = r##"[...document.querySelectorAll("#transactions tbody tr")].map(r => [r.dataset.status, !!r.querySelector("[data-role=delete]")])"##;
        assert_eq!(
            ff.eval(deletable).await,
            json!([["uncertain", true], ["rejected", true], ["queued", false]])
        );
        assert_eq!(ff.eval(r##"document.getElementById("count-unsent").textContent"##).await, "2");
        ff.click("clear-sent").await;
        ff.wait_until("cleared", r##"document.querySelectorAll("#transactions tbody tr").length === 2"##)
            .await;
        assert_eq!(ff.eval(r##"document.getElementById("message").dataset.kind"##).await, "ok");
    })
    .await;
}
