//! The desk page in a real Firefox: it loads its WASM core, records, and keeps what it recorded.

use e2e::desk::with_open_desk;
use e2e::firefox::Options;

#[tokio::test(flavor = "multi_thread")]
async fn checkout_is_recorded_and_survives_a_reload() {
    with_open_desk(Options::default(), |ff| async move {
        ff.type_into("checkout-cardnumber", "A0001\n").await;
        // Enter on the card moves to the barcode, as with a scanner.
        let focused = ff.eval("document.activeElement.id").await;
        assert_eq!(focused, "checkout-barcode");
        ff.type_into("checkout-barcode", "39000001\n").await;
        ff.wait_for_css(r#"#transactions tbody tr[data-action="issue"][data-status="local"]"#)
            .await;
        let row = ff
            .eval(r##"[...document.querySelectorAll("#transactions tbody tr")].map(r => [r.dataset.id, r.cells[2].textContent, r.cells[3].textContent])"##)
            .await;
        let rows = row.as_array().expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], "A0001");
        assert_eq!(rows[0][2], "39000001");
        let id = rows[0][0].as_str().expect("a row id").to_owned();
        assert_eq!(ff.eval(r#"document.getElementById("checkout-cardnumber").value"#).await, "A0001");
        assert_eq!(ff.eval(r#"document.getElementById("checkout-barcode").value"#).await, "");
        assert_eq!(ff.eval(r#"document.getElementById("message").dataset.kind"#).await, "ok");
        ff.screenshot("foundation-desk-recorded").await;

        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        let after = ff
            .eval(r##"[...document.querySelectorAll("#transactions tbody tr")].map(r => r.dataset.id)"##)
            .await;
        assert_eq!(after, serde_json::json!([id]));
    })
    .await;
}
