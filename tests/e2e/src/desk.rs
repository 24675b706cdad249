//! The desk page in Firefox: recording as a librarian does (the checkout form), and reading and
//! filling the journal through the page's own core (`window.kocCore` or `lib/wasm.js`, both of
//! the test build), never by writing the storage format by hand.

use crate::firefox::{with_firefox, Firefox, Options, ADDON_UUID};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Opens a desk in a new tab and switches to it; returns the tab.
pub async fn open_second_desk(ff: &Firefox) -> fantoccini::wd::WindowHandle {
    open_in_new_tab(ff, "desk.html").await
}

/// Switches to `tab`, reloads it and waits until the desk there is ready.
pub async fn reload_desk_in(ff: &Firefox, tab: &fantoccini::wd::WindowHandle) {
    ff.client
        .switch_to_window(tab.clone())
        .await
        .expect("switch");
    ff.client.refresh().await.expect("reload");
    ff.wait_ready().await;
}

/// Opens one of the add-on's pages in a new tab and switches to it; returns the tab.
pub async fn open_in_new_tab(ff: &Firefox, page: &str) -> fantoccini::wd::WindowHandle {
    let tab = ff.client.new_window(true).await.expect("new tab").handle;
    ff.client
        .switch_to_window(tab.clone())
        .await
        .expect("switch");
    ff.open(page).await;
    tab
}

/// Calls the page's core: `expr` is a JS expression over `core` (awaited). Panics with the
/// error the core threw.
pub async fn core_call(ff: &Firefox, expr: &str) -> Value {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
const core = window.kocCore;
(async () => {{
  try {{ done({{ ok: (await ({expr})) ?? null }}); }}
  catch (e) {{ done({{ err: (e && e.kind) ? {{ kind: e.kind, detail: e.detail }} : String(e) }}); }}
}})();"#
    );
    let value = ff
        .client
        .execute_async(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("core call {expr}: {e}"));
    match value.get("ok") {
        Some(ok) => ok.clone(),
        None => panic!("core call {expr} failed: {value}"),
    }
}

/// Runs `body` (a JS async function body; `core` is the WASM core, loaded through
/// `lib/wasm.js`, so it works on any page of the add-on) and returns what it returns. Waits up
/// to two minutes.
pub async fn eval_async(ff: &Firefox, body: &str) -> Value {
    let script = format!(
        r##"const done = arguments[arguments.length - 1];
        import("moz-extension://{ADDON_UUID}/lib/wasm.js")
          .then(async ({{ core }}) => {{ {body} }})
          .then((value) => done({{ ok: value ?? null }}), (e) => done({{ error: String(e?.message ?? JSON.stringify(e)).slice(0, 500) }}));"##
    );
    ff.client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(120)),
            Some(Duration::from_secs(120)),
            Some(Duration::ZERO),
        ))
        .await
        .expect("timeouts");
    let answer = ff
        .client
        .execute_async(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("async script failed: {e}\n{body}"));
    match answer.get("error") {
        Some(error) => panic!("async script threw {error}\n{body}"),
        None => answer.get("ok").cloned().unwrap_or(Value::Null),
    }
}

/// Runs an async page script that ends with `done(number)` and returns the number; anything
/// else (an error text) fails with `what`.
pub async fn async_number(ff: &Firefox, script: &str, what: &str) -> f64 {
    let value = ff
        .client
        .execute_async(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    value.as_f64().unwrap_or_else(|| panic!("{what}: {value}"))
}

/// Every transaction as the core lists it (newest first).
pub async fn transactions(ff: &Firefox) -> Vec<Value> {
    match core_call(ff, "core.listPage(\"\", 0, 4294967295).rows").await {
        Value::Array(rows) => rows,
        other => panic!("rows: {other}"),
    }
}

/// Ids of every row the desk's table can show (all its pages), newest first, as the page's
/// core lists them.
pub async fn row_ids(ff: &Firefox) -> Vec<String> {
    let value = ff
        .eval(r##"window.kocCore.listPage("", 0, 4294967295).rows.map(r => r.id)"##)
        .await;
    serde_json::from_value(value).expect("row ids")
}

/// Records transactions in one batch through the core (`recordBatch`); returns how many.
pub async fn record_batch(ff: &Firefox, items: &Value) -> usize {
    let n = core_call(ff, &format!("core.recordBatch({items})")).await;
    n.as_u64().expect("a count") as usize
}

/// Records one checkout through the desk's form and waits for its row; returns its id.
pub async fn record_checkout(ff: &Firefox, cardnumber: &str, barcode: &str) -> String {
    let card = ff
        .eval(r##"document.getElementById("checkout-cardnumber").value"##)
        .await;
    if card != cardnumber {
        ff.eval(r##"document.getElementById("checkout-cardnumber").value = """##)
            .await;
        ff.type_into("checkout-cardnumber", &format!("{cardnumber}\n"))
            .await;
    }
    ff.type_into("checkout-barcode", &format!("{barcode}\n"))
        .await;
    // The desk shows the newest page first, so the new row appears at the top.
    ff.wait_until(
        "the new row",
        &format!(
            r##"[...document.querySelectorAll("#transactions tbody tr")].some(r => r.cells[3]?.textContent === "{barcode}")"##
        ),
    )
    .await;
    let id = ff
        .eval(&format!(
            r##"[...document.querySelectorAll("#transactions tbody tr")].find(r => r.cells[3]?.textContent === "{barcode}")?.dataset.id"##
        ))
        .await;
    id.as_str().expect("the row of the new checkout").to_owned()
}

/// Writes `count` synthetic transactions (numbered from `first`) straight into
/// `browser.storage.local`, in the core's layout, 5,000 per write; with `packed`, the applied
/// ones in archive chunks (a desk in use for a while), else one key each (right after a send).
pub async fn seed(ff: &Firefox, first: u32, count: u32, unsent: u32, packed: bool) {
    let mut done = 0;
    while done < count {
        let batch = (count - done).min(5_000);
        let unsent_here = unsent.saturating_sub(done).min(batch);
        eval_async(
            ff,
            &format!(
                "await browser.storage.local.set(core.syntheticEntries({}, {batch}, {unsent_here}, {packed}));",
                first + done
            ),
        )
        .await;
        done += batch;
    }
}

/// [`seed`], then reloads the desk and waits until it is ready.
pub async fn seed_and_reload(ff: &Firefox, first: u32, count: u32, unsent: u32, packed: bool) {
    seed(ff, first, count, unsent, packed).await;
    ff.client.refresh().await.expect("reload");
    ff.wait_ready().await;
}

/// Stores `count` transactions not yet sent, one key each, as a long outage would leave them,
/// then reloads the desk.
pub async fn seed_unsent(ff: &Firefox, count: usize) {
    let count = u32::try_from(count).expect("a count that fits");
    seed_and_reload(ff, 1, count, count, false).await;
}

/// Waits until the desk's table shows `n` rows.
pub async fn wait_rows(ff: &Firefox, n: usize) {
    ff.wait_until(
        &format!("{n} rows"),
        &format!(r##"document.querySelectorAll("#transactions tbody tr").length === {n}"##),
    )
    .await;
}

/// The desk's message now: its kind (`ok`, `error`, …; empty when none) and text.
pub async fn message(ff: &Firefox) -> (String, String) {
    let v = ff
        .eval(r##"[document.getElementById("message").dataset.kind, document.getElementById("message").textContent]"##)
        .await;
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_str().unwrap_or_default().to_owned(),
    )
}

/// Clears the message's kind, so that the next one can be waited for.
pub async fn clear_message_kind(ff: &Firefox) {
    ff.eval(r##"(document.getElementById("message").dataset.kind = "", true)"##)
        .await;
}

/// Runs `body` with a fresh Firefox (see [`with_firefox`]) whose desk page is open and ready.
pub async fn with_open_desk<F, Fut>(options: Options, body: F)
where
    F: FnOnce(Arc<Firefox>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_firefox(options, move |ff| async move {
        ff.open("desk.html").await;
        body(ff).await;
    })
    .await;
}

/// A JS expression: a promise of a connection to the add-on's IndexedDB database of snapshot
/// chunks (`koha-offline-circ-checks`), rejected if it does not exist yet (which it does not
/// create: the upgrade is aborted).
pub const OPEN_SNAPSHOT_DATABASE: &str = "new Promise((ok, ko) => {
  const r = indexedDB.open('koha-offline-circ-checks');
  r.onupgradeneeded = () => r.transaction.abort();
  r.onsuccess = () => ok(r.result);
  r.onerror = () => ko(r.error);
})";

/// Every stored entry of the offline checks' snapshot, as `{key: text}`: the `checks:` entries
/// of `browser.storage.local` (`checks:meta`, and chunks an earlier build kept there) and the
/// chunks in the add-on's IndexedDB database (`koha-offline-circ-checks`), which this creates
/// nowhere: a database not there yet reads as empty.
pub async fn stored_snapshot_entries(ff: &Firefox) -> Value {
    let body = format!(
        r#"const all = await browser.storage.local.get(null);
        const entries = Object.fromEntries(
          Object.entries(all).filter(([k]) => k.startsWith('checks:')));
        const db = await ({OPEN_SNAPSHOT_DATABASE}).catch(() => null);
        if (db) {{
          const store = db.transaction('chunks').objectStore('chunks');
          const asked = (r) => new Promise((ok, ko) => {{
            r.onsuccess = () => ok(r.result); r.onerror = () => ko(r.error); }});
          const [keys, values] = await Promise.all([asked(store.getAllKeys()), asked(store.getAll())]);
          keys.forEach((k, i) => {{ entries[k] = values[i]; }});
          db.close();
        }}
        return entries;"#
    );
    eval_async(ff, &body).await
}

/// Stores `text` under `key` in the add-on's IndexedDB database of snapshot chunks, as the
/// add-on does (the database must exist: a snapshot was downloaded).
pub async fn put_snapshot_chunk(ff: &Firefox, key: &str, text: &str) {
    let body = format!(
        r#"const db = await {OPEN_SNAPSHOT_DATABASE};
        const tx = db.transaction('chunks', 'readwrite');
        tx.objectStore('chunks').put({text}, {key});
        await new Promise((ok, ko) => {{ tx.oncomplete = ok; tx.onerror = () => ko(tx.error); }});
        db.close();
        return true;"#,
        text = serde_json::to_string(text).unwrap_or_default(),
        key = serde_json::to_string(key).unwrap_or_default(),
    );
    assert_eq!(eval_async(ff, &body).await, Value::Bool(true));
}
