//! Export and its questions in a real Firefox: a `.koc` export never repeats rows already
//! exported, nor uncertain ones (above all payments), without the librarian saying so, because
//! Koha records every uploaded row again (docs/koha.md 9.3).

use e2e::desk::{clear_message_kind, message, wait_rows, with_open_desk};
use e2e::firefox::{Firefox, Options};
use serde_json::Value;

/// Catches downloads instead of saving them (`window.downloads` gets `{name, text}`), and
/// counts the questions asked (`window.asked` gets each `#confirm` kind as it opens).
const CATCH: &str = r##"(() => {
    window.downloads = [];
    HTMLAnchorElement.prototype.click = function () {
        const name = this.download;
        fetch(this.href).then(r => r.text()).then(text => window.downloads.push({ name, text }));
    };
    window.asked = [];
    const showModal = HTMLDialogElement.prototype.showModal;
    HTMLDialogElement.prototype.showModal = function () {
        window.asked.push(this.dataset.kind);
        return showModal.call(this);
    };
    return true;
})()"##;

async fn wait_downloads(ff: &Firefox, n: usize) {
    ff.wait_until(
        &format!("{n} downloads"),
        &format!("window.downloads.length === {n}"),
    )
    .await;
}

/// The transaction lines (header left out) of download number `i`.
async fn lines_of(ff: &Firefox, i: usize) -> Vec<String> {
    let text = ff.eval(&format!("window.downloads[{i}].text")).await;
    let text = text.as_str().expect("a file text");
    let mut lines = text.split("\r\n");
    let header = lines.next().expect("a header");
    assert!(
        header.starts_with("Version=1.0\tGenerator=koha-offline-circ"),
        "{text}"
    );
    lines.map(str::to_owned).collect()
}

/// Waits for the question of this kind and returns `#confirm`'s data attributes.
async fn question(ff: &Firefox, kind: &str) -> Value {
    ff.wait_for_css(&format!(r##"#confirm[open][data-kind="{kind}"]"##))
        .await;
    ff.eval(r##"Object.assign({}, document.getElementById("confirm").dataset)"##)
        .await
}

/// Clears #message and clicks Export.
async fn export(ff: &Firefox) {
    clear_message_kind(ff).await;
    ff.click("export").await;
}

/// Waits for the export's message; returns its kind and text.
async fn outcome(ff: &Firefox) -> (String, String) {
    ff.wait_until(
        "the export's message",
        r##"document.getElementById("message").dataset.kind !== """##,
    )
    .await;
    message(ff).await
}

async fn asked(ff: &Firefox) -> Value {
    ff.eval("window.asked").await
}

/// Issue: a second export repeated the first one's rows, so uploading both files recorded every
/// loan twice in Koha.
#[tokio::test(flavor = "multi_thread")]
async fn export_again_asks_about_rows_already_exported_and_a_decline_leaves_them_out() {
    with_open_desk(Options::default(), |ff| async move {
        ff.type_into("checkout-cardnumber", "C0001\n").await;
        ff.type_into("checkout-barcode", "B0001\nB0002\n").await;
        wait_rows(&ff, 2).await;
        ff.eval(CATCH).await;

        export(&ff).await;
        wait_downloads(&ff, 1).await;
        assert_eq!(lines_of(&ff, 0).await.len(), 2);
        assert_eq!(outcome(&ff).await.0, "ok");

        // Again: it asks, naming how many and when; declining exports nothing.
        export(&ff).await;
        let data = question(&ff, "export-already-exported").await;
        assert_eq!(data["count"], "2", "{data}");
        assert_eq!(data["payments"], "0", "{data}");
        ff.screenshot("export-already-exported").await;
        ff.click("confirm-cancel").await;
        let (kind, text) = outcome(&ff).await;
        assert_eq!(kind, "warning", "{text}");
        assert!(
            text.contains('2'),
            "the message says how many were left out: {text}"
        );
        assert_eq!(ff.eval("window.downloads.length").await, 1);

        // Confirmed: both again, and only after the question.
        export(&ff).await;
        let data = question(&ff, "export-already-exported").await;
        assert_eq!(data["count"], "2", "{data}");
        ff.click("confirm-ok").await;
        wait_downloads(&ff, 2).await;
        assert_eq!(lines_of(&ff, 1).await.len(), 2);
        assert_eq!(outcome(&ff).await.0, "ok");
        assert_eq!(
            asked(&ff).await,
            serde_json::json!(["export-already-exported", "export-already-exported"])
        );
    })
    .await;
}

/// Seeds an uncertain payment (a send whose answer was lost) and a checkin never sent, then
/// reloads the desk.
async fn seed_uncertain_payment(ff: &Firefox) {
    ff.client
        .execute_async(
            r##"const done = arguments[0];
            const entry = (i, tx, history) => {
                const ms = Date.UTC(2026, 0, 5, 8, 0, i);
                const id = ms.toString(16).padStart(13, "0") + "-" + i.toString(16).padStart(16, "0");
                const at = (s) => new Date(ms + s * 1000).toISOString();
                return ["tx:" + id, { v: 1, tx: { id, recorded_at: at(0), branchcode: "DE-627", ...tx,
                    history: history.map(([s, status, reason]) => ({ at: at(s), status, reason })) } }];
            };
            browser.storage.local.set(Object.fromEntries([
                entry(1, { action: "payment", cardnumber: "C0009", amount: 250 },
                    [[0, "local"], [1, "sending"], [2, "uncertain", "connection-lost"]]),
                entry(2, { action: "return", barcode: "B0007" }, [[0, "local"]]),
            ])).then(() => done(true));"##,
            vec![],
        )
        .await
        .expect("seeded");
    ff.client.refresh().await.expect("reload");
    ff.wait_ready().await;
    ff.wait_for_css(r##"#transactions tbody tr[data-action="payment"][data-status="uncertain"]"##)
        .await;
}

/// Issue: export took uncertain rows silently, so a payment Koha may already have credited
/// went into the file and was credited twice on upload.
#[tokio::test(flavor = "multi_thread")]
async fn an_uncertain_payment_is_not_exported_without_the_payment_question() {
    with_open_desk(Options::default(), |ff| async move {
        seed_uncertain_payment(&ff).await;
        ff.eval(CATCH).await;

        // The payment is named; declining exports the checkin only.
        export(&ff).await;
        let data = question(&ff, "export-uncertain").await;
        assert_eq!(data["count"], "1", "{data}");
        assert_eq!(data["payments"], "1", "{data}");
        ff.screenshot("export-uncertain-payment").await;
        ff.click("confirm-cancel").await;
        wait_downloads(&ff, 1).await;
        let lines = lines_of(&ff, 0).await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with("\treturn\tB0007"), "{lines:?}");
        assert_eq!(outcome(&ff).await.0, "warning");

        // Next time the payment is the only row never exported: only its question is asked
        // (the checkin is not repeated); confirmed, the file holds the payment only.
        export(&ff).await;
        let data = question(&ff, "export-uncertain").await;
        assert_eq!(data["payments"], "1", "{data}");
        ff.click("confirm-ok").await;
        wait_downloads(&ff, 2).await;
        let lines = lines_of(&ff, 1).await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with("\tpayment\tC0009\t2.50"), "{lines:?}");
        assert_eq!(outcome(&ff).await.0, "ok");
        assert_eq!(
            asked(&ff).await,
            serde_json::json!(["export-uncertain", "export-uncertain"])
        );
    })
    .await;
}

/// Issue: after an export, the next export took the new rows together with every earlier one.
#[tokio::test(flavor = "multi_thread")]
async fn a_row_recorded_after_an_export_is_exported_without_a_question() {
    with_open_desk(Options::default(), |ff| async move {
        ff.type_into("checkin-barcode", "B0001\nB0002\n").await;
        wait_rows(&ff, 2).await;
        ff.eval(CATCH).await;
        export(&ff).await;
        wait_downloads(&ff, 1).await;
        assert_eq!(outcome(&ff).await.0, "ok");

        ff.type_into("checkin-barcode", "B0003\n").await;
        wait_rows(&ff, 3).await;
        export(&ff).await;
        wait_downloads(&ff, 2).await;
        let lines = lines_of(&ff, 1).await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with("\treturn\tB0003"), "{lines:?}");
        assert_eq!(outcome(&ff).await.0, "ok");
        assert_eq!(asked(&ff).await, serde_json::json!([]));
    })
    .await;
}
