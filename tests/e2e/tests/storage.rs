//! Storage that never loses a transaction (issue 4), in a real Firefox: reload, two desk tabs,
//! a refused write, the toolbar badge. The kill-and-restart test is in `storage_kill.rs`.

use e2e::desk::{
    core_call, eval_async, open_in_new_tab, open_second_desk, record_batch, record_checkout,
    reload_desk_in, row_ids, seed, seed_and_reload, with_open_desk,
};
use e2e::firefox::{Firefox, Options};
use e2e::sending::{runs, send, wait_for_run, with_desk_sending_to, DeskSettings};
use e2e::standin::{Config, Fault, FaultRule, StandIn, When};
use e2e::wait::wait_until;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Keys of `browser.storage.local` that hold transactions, and of the `localStorage` mirror.
async fn stored_keys(ff: &Firefox) -> (BTreeSet<String>, BTreeSet<String>) {
    let keys = eval_async(
        ff,
        r#"const all = await browser.storage.local.get(null);
           const mirror = [];
           for (let i = 0; i < localStorage.length; i++) mirror.push(localStorage.key(i));
           return [Object.keys(all).filter((k) => k.startsWith("tx:")).map((k) => k.slice(3)),
                   mirror.filter((k) => k.startsWith("koha-offline-circ:tx:")).map((k) => k.slice(21))];"#,
    )
    .await;
    let ids = |v: &Value| -> BTreeSet<String> { serde_json::from_value(v.clone()).expect("ids") };
    (ids(&keys[0]), ids(&keys[1]))
}

/// Reloads the desk and returns the rows it shows, and the transactions `storage.local` holds.
async fn reload_and_read(ff: &Firefox) -> (BTreeSet<String>, BTreeSet<String>) {
    ff.client.refresh().await.expect("reload");
    ff.wait_ready().await;
    let shown = row_ids(ff).await.into_iter().collect();
    (shown, stored_keys(ff).await.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_keeps_every_transaction_in_both_stores() {
    with_open_desk(Options::default(), |ff| async move {
        let mut recorded = BTreeSet::new();
        for i in 0..5 {
            recorded.insert(record_checkout(&ff, "C0001", &format!("B00{i:02}")).await);
        }
        assert_eq!(recorded.len(), 5);
        let (primary, mirror) = stored_keys(&ff).await;
        assert_eq!(
            primary, recorded,
            "storage.local holds one key per transaction"
        );
        assert_eq!(
            mirror, recorded,
            "the mirror holds every unsent transaction"
        );

        let (shown, _) = reload_and_read(&ff).await;
        assert_eq!(shown, recorded);

        // The mirror alone (storage.local lost one) still brings it back, and repairs the store.
        let lost = recorded.iter().next().expect("one").clone();
        eval_async(
            &ff,
            &format!(r#"await browser.storage.local.remove("tx:{lost}");"#),
        )
        .await;
        // The removal reached this page too (another tab's "clear"); reload to start from storage.
        let (shown, primary) = reload_and_read(&ff).await;
        assert_eq!(shown, recorded, "the mirror restored the lost entry");
        assert_eq!(primary, recorded, "and storage.local was repaired from it");

        // The start reads localStorage's keys and values each joined by U+0001; an item
        // holding that character makes it read them one by one, and nothing is missed.
        let lost = recorded.iter().nth(1).expect("two").clone();
        eval_async(
            &ff,
            &format!(
                r#"localStorage.setItem("koha-offline-circ:note", "a\u0001b");
                   await browser.storage.local.remove("tx:{lost}");"#
            ),
        )
        .await;
        let (shown, primary) = reload_and_read(&ff).await;
        assert_eq!(shown, recorded, "read one by one, the mirror restored it");
        assert_eq!(primary, recorded);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_desk_tabs_recording_alternately_keep_all_200() {
    with_open_desk(Options::default(), |ff| async move {
        let first = ff.client.window().await.expect("first tab");
        let second = open_second_desk(&ff).await;
        let tabs = [first, second];
        let mut recorded = BTreeSet::new();
        for i in 0..200 {
            ff.client
                .switch_to_window(tabs[i % 2].clone())
                .await
                .expect("switch");
            let card = if i % 2 == 0 { "C0001" } else { "C0002" };
            recorded.insert(record_checkout(&ff, card, &format!("T{i:05}")).await);
        }
        assert_eq!(recorded.len(), 200, "200 distinct ids");
        for tab in &tabs {
            ff.client
                .switch_to_window(tab.clone())
                .await
                .expect("switch");
            ff.wait_until(
                "every transaction in this tab",
                "window.kocCore.listPage('', 0, 1).total === 200",
            )
            .await;
            let shown: BTreeSet<String> = row_ids(&ff).await.into_iter().collect();
            assert_eq!(shown, recorded);
        }
        let (primary, mirror) = stored_keys(&ff).await;
        assert_eq!(primary, recorded);
        assert_eq!(mirror, recorded);
        // And a fresh page agrees.
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        let shown: BTreeSet<String> = row_ids(&ff).await.into_iter().collect();
        assert_eq!(shown, recorded);
    })
    .await;
}

/// How many keys of each kind `browser.storage.local` holds: `[tx:, archive:]`.
async fn key_kinds(ff: &Firefox) -> (usize, usize) {
    let n = eval_async(
        ff,
        r#"const keys = Object.keys(await browser.storage.local.get(null));
           return [keys.filter((k) => k.startsWith("tx:")).length,
                   keys.filter((k) => k.startsWith("archive:")).length];"#,
    )
    .await;
    let count = |v: &Value| v.as_u64().expect("a count") as usize;
    (count(&n[0]), count(&n[1]))
}

/// Writes a marker key and waits until this page's `storage.onChanged` saw it: the page's own
/// listener, registered earlier, has then handled every write made before the marker.
async fn settle(ff: &Firefox, writer: &Firefox, marker: &str) {
    ff.eval(&format!(
        r#"(() => {{ browser.storage.onChanged.addListener((c) => {{ if (c["{marker}"]) window["{marker}"] = true; }}); return true; }})()"#
    ))
    .await;
    eval_async(
        writer,
        &format!(r#"await browser.storage.local.set({{"{marker}": 1}});"#),
    )
    .await;
    ff.wait_until("the marker", &format!(r#"window["{marker}"] === true"#))
        .await;
}

/// The desk holds `total` transactions, and still does after a reload.
async fn total_now_and_after_reload(ff: &Firefox, total: u64) {
    let shown = "window.kocCore.listPage('', 0, 1).total";
    assert_eq!(ff.eval(shown).await, json!(total));
    ff.client.refresh().await.expect("reload");
    ff.wait_ready().await;
    assert_eq!(ff.eval(shown).await, json!(total), "after a reload");
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_transactions_are_packed_and_every_page_keeps_them() {
    with_open_desk(Options::default(), |ff| async move {
        let first = ff.client.window().await.expect("first tab");
        // 1,200 that Koha applied and 5 not sent, one key each (as sending leaves them).
        seed(&ff, 1, 1_205, 5, false).await;
        ff.wait_until(
            "all seeded",
            "window.kocCore.listPage('', 0, 1).total === 1205",
        )
        .await;
        assert_eq!(key_kinds(&ff).await, (1_205, 0));

        // A second desk opens: it packs 1,000 of the accepted ones into two chunks.
        let second = open_second_desk(&ff).await;
        ff.wait_until(
            "all there",
            "window.kocCore.listPage('', 0, 1).total === 1205",
        )
        .await;
        assert_eq!(key_kinds(&ff).await, (205, 2));
        assert_eq!(
            ff.eval(r##"document.getElementById("count-unsent").textContent"##)
                .await,
            "5"
        );

        // The first desk saw the single keys go, and knows they were packed, not deleted.
        ff.client
            .switch_to_window(first.clone())
            .await
            .expect("switch");
        settle(&ff, &ff, "marker-packed").await;
        total_now_and_after_reload(&ff, 1205).await;

        // Clearing what Koha accepted removes the chunks too, here and in the other desk.
        clear_message(&ff).await;
        ff.click("clear-sent").await;
        // Done once the desk says so (memory is cleared before storage is).
        assert_eq!(outcome(&ff).await[0], "ok");
        assert_eq!(
            ff.eval("window.kocCore.listPage('', 0, 1).total").await,
            json!(5)
        );
        assert_eq!(key_kinds(&ff).await, (5, 0));
        ff.client.switch_to_window(second).await.expect("switch");
        settle(&ff, &ff, "marker-cleared").await;
        total_now_and_after_reload(&ff, 5).await;
    })
    .await;
}

/// A desk that exports right after another desk's send run must leave out what that run gave
/// Koha: it hears of the run's answers through storage events, and before exporting it waits for
/// its own barrier write's event, which comes after theirs. In Firefox that event comes, so
/// neither desk reads all of `storage.local` before its send or its export.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_right_after_another_desks_send_leaves_out_what_koha_has() {
    let koha = StandIn::start(Config::default()).expect("stand-in");
    let settings = DeskSettings::queue(&koha);
    with_desk_sending_to(
        Options::granting_permissions(),
        koha,
        settings,
        |ff, koha| async move {
            let first = ff.client.window().await.expect("first tab");
            let batch = json!([
                {"action": "return", "barcode": "B0041"},
                {"action": "return", "barcode": "B0042"},
                {"action": "return", "barcode": "B0043"},
            ]);
            assert_eq!(record_batch(&ff, &batch).await, 3);
            let second = open_second_desk(&ff).await;
            ff.wait_until("the three", "window.kocCore.listPage('', 0, 1).total === 3")
                .await;

            ff.client.switch_to_window(first).await.expect("switch");
            assert_eq!(send(&ff, Duration::from_secs(60)).await, "ran");
            assert_eq!(koha.transaction_requests().len(), 3);
            assert_eq!(core_call(&ff, "core.refreshesReadingEverything()").await, 0);

            // At once in the other desk, with one of its own not sent yet.
            ff.client.switch_to_window(second).await.expect("switch");
            let exported = core_call(
                &ff,
                r#"(async () => {
                    await core.recordBatch([{ action: "return", barcode: "B0044" }]);
                    const answer = await core.exportKoc({ confirmed: [], declined: [] });
                    return answer.files.map((file) => file.text);
                })()"#,
            )
            .await;
            let text = exported[0].as_str().expect("one file");
            assert!(text.contains("B0044"), "{text}");
            for sent in ["B0041", "B0042", "B0043"] {
                assert!(!text.contains(sent), "{sent} is in Koha already: {text}");
            }
            assert_eq!(exported.as_array().map(Vec::len), Some(1));
            assert_eq!(core_call(&ff, "core.refreshesReadingEverything()").await, 0);
        },
    )
    .await;
}

/// A deletion another desk made is found missing by name; the desk then waits for its barrier
/// (its events tell it what happened) instead of reading all of `storage.local`, and refuses
/// the deletion as not found, writing nothing back.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_what_another_desk_deleted_is_refused_without_reading_everything() {
    with_open_desk(Options::default(), |ff| async move {
        let first = ff.client.window().await.expect("first tab");
        let ids = [
            record_checkout(&ff, "C0001", "B0051").await,
            record_checkout(&ff, "C0001", "B0052").await,
        ];
        let delete = |id: &str| {
            format!(r#"core.deleteTransaction("{id}").then(() => "deleted", (e) => e.kind)"#)
        };
        open_second_desk(&ff).await;
        ff.wait_until("the two", "window.kocCore.listPage('', 0, 1).total === 2")
            .await;
        assert_eq!(core_call(&ff, &delete(&ids[0])).await, "deleted");

        ff.client.switch_to_window(first).await.expect("switch");
        // As if the librarian had clicked the row before the table caught up.
        assert_eq!(core_call(&ff, &delete(&ids[0])).await, "not-found");
        assert_eq!(core_call(&ff, "core.refreshesReadingEverything()").await, 0);
        let (primary, mirror) = stored_keys(&ff).await;
        let left: BTreeSet<String> = [ids[1].clone()].into();
        assert_eq!(primary, left, "nothing written back");
        assert_eq!(mirror, left);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_send_packs_what_koha_accepted_and_loses_nothing() {
    let koha = StandIn::start(Config::default()).expect("stand-in");
    let settings = DeskSettings::queue(&koha);
    let options = Options::granting_permissions();
    with_desk_sending_to(options, koha, settings, move |ff, koha| async move {
        // An outage's worth: 520 not sent, one key each.
        seed(&ff, 1, 520, 520, false).await;
        ff.wait_until(
            "all seeded",
            "window.kocCore.listPage('', 0, 1).total === 520",
        )
        .await;
        assert_eq!(send(&ff, Duration::from_secs(300)).await, "ran");

        // The run stored what Koha accepted in archive chunks as it went (one per group of
        // answers), then removed the older single keys it had left beside them, and the page
        // did not take that removal for a deletion.
        let chunks = wait_until(
            "the old single keys removed",
            Duration::from_secs(30),
            || async {
                let (single, chunks) = key_kinds(&ff).await;
                (single == 0).then_some(chunks)
            },
        )
        .await;
        assert!(chunks >= 1, "{chunks} chunks");
        assert_eq!(
            ff.eval(r##"document.getElementById("count-unsent").textContent"##)
                .await,
            "0"
        );
        total_now_and_after_reload(&ff, 520).await;
        let statuses = ff
            .eval("[...new Set(window.kocCore.listPage('', 0, 1000).rows.map((r) => r.status))]")
            .await;
        assert_eq!(statuses, json!(["queued"]));
        // Each was sent exactly once.
        let mut barcodes = sent_barcodes(&koha);
        assert_eq!(barcodes.len(), 520);
        barcodes.sort();
        barcodes.dedup();
        assert_eq!(barcodes.len(), 520, "nothing sent twice");
    })
    .await;
}

/// The barcode of every `service.pl` request Koha was sent, in order.
fn sent_barcodes(koha: &StandIn) -> Vec<String> {
    koha.service_requests()
        .iter()
        .filter_map(|r| {
            r.params
                .iter()
                .find(|(n, _)| n == "barcode")
                .map(|(_, v)| v.clone())
        })
        .collect()
}

/// How many pending chunks `browser.storage.local` holds.
async fn pending_chunks(ff: &Firefox) -> usize {
    eval_async(
        ff,
        r#"return Object.keys(await browser.storage.local.get(null))
               .filter((k) => k.startsWith("pending:")).length;"#,
    )
    .await
    .as_u64()
    .expect("a count") as usize
}

/// A start holding the send lock packs what an outage left unsent (one key each) into pending
/// chunks; the other tab, the badge, a deletion and a send all keep every row exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn unsent_rows_are_packed_at_a_start_and_kept_and_sent_once() {
    let koha = StandIn::start(Config::default()).expect("stand-in");
    let settings = DeskSettings::queue(&koha);
    let options = Options::granting_permissions();
    with_desk_sending_to(options, koha, settings, move |ff, koha| async move {
        let first = ff.client.window().await.expect("first tab");
        let other = open_in_new_tab(&ff, "desk.html").await;
        ff.wait_ready().await;
        ff.client
            .switch_to_window(first.clone())
            .await
            .expect("switch");
        seed(&ff, 1, 300, 300, false).await;
        ff.wait_until(
            "all seeded",
            "window.kocCore.listPage('', 0, 1).total === 300",
        )
        .await;
        assert_eq!(
            (key_kinds(&ff).await, pending_chunks(&ff).await),
            ((300, 0), 0)
        );
        reload_desk_in(&ff, &first).await;
        // 250 to a chunk: two chunks, and no single key left.
        assert_eq!(
            (key_kinds(&ff).await, pending_chunks(&ff).await),
            ((0, 0), 2)
        );
        assert_eq!(
            ff.eval("window.kocCore.listPage('', 0, 1).total").await,
            json!(300)
        );
        wait_for_badge(&ff, "300").await;

        // The other tab heard the packing as packing; it deletes one row.
        ff.client
            .switch_to_window(other.clone())
            .await
            .expect("switch");
        assert_eq!(
            ff.eval("window.kocCore.listPage('', 0, 1).total").await,
            json!(300)
        );
        let gone = ff
            .eval("window.kocCore.listPage('', 0, 300).rows[17].id")
            .await;
        let gone = gone.as_str().expect("an id").to_owned();
        core_call(&ff, &format!("core.deleteTransaction({gone:?})")).await;
        ff.client
            .switch_to_window(first.clone())
            .await
            .expect("switch");
        ff.wait_until(
            "the deletion heard",
            "window.kocCore.listPage('', 0, 1).total === 299",
        )
        .await;
        wait_for_badge(&ff, "299").await;
        total_now_and_after_reload(&ff, 299).await;
        assert!(
            stored_statuses(&ff).await.get(&gone).is_none(),
            "the chunk let it go"
        );

        assert_eq!(send(&ff, Duration::from_secs(300)).await, "ran");
        let barcodes = sent_barcodes(&koha);
        let unique: BTreeSet<&String> = barcodes.iter().collect();
        assert_eq!((barcodes.len(), unique.len()), (299, 299), "each sent once");
        wait_for_badge(&ff, "").await;
        total_now_and_after_reload(&ff, 299).await;
    })
    .await;
}

/// Issue 11, path 7: when the store of record refused the write that travelled with a request,
/// the run ended before recording Koha's answer to that request, and after a reload the
/// transaction Koha had accepted showed `uncertain` (this test expected `["queued",
/// "uncertain"]` then). Now the answer is kept in memory and the mirror, and the run stops.
#[tokio::test(flavor = "multi_thread")]
async fn an_acceptance_whose_store_write_failed_is_not_shown_uncertain_after_a_reload() {
    let koha = StandIn::start(Config::default()).expect("stand-in");
    let settings = DeskSettings::queue(&koha);
    let options = Options::granting_permissions();
    with_desk_sending_to(options, koha, settings, move |ff, koha| async move {
        seed(&ff, 1, 2, 2, false).await;
        ff.wait_until("both seeded", "window.kocCore.listPage('', 0, 1).total === 2")
            .await;
        // The store of record refuses the write that carries the first outcome (with the
        // second's `sending`, while the second's request travels): both answers are kept in
        // memory and the mirror, and the run stops for storage.
        ff.eval(
            r#"(() => {
              const local = browser.storage.local;
              const real = local.set.bind(local);
              local.set = (items) => Object.keys(items).filter((k) => k.startsWith("tx:")).length > 1
                ? Promise.reject(new Error("QuotaExceededError (injected by the test)"))
                : real(items);
              return true;
            })()"#,
        )
        .await;
        send(&ff, Duration::from_secs(60)).await;
        let stopped = ff
            .eval(r#"document.getElementById("send-summary").dataset.stopped"#)
            .await;
        assert_eq!(stopped, json!("storage"));
        let sent = koha
            .service_requests()
            .iter()
            .filter(|r| r.params.iter().any(|(n, _)| n == "barcode"))
            .count();
        assert_eq!(sent, 2, "both went to Koha");

        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        let statuses = ff
            .eval("window.kocCore.listPage('', 0, 10).rows.map((r) => r.status).reverse()")
            .await;
        // Koha said "Added." to both, and the mirror kept both answers.
        assert_eq!(statuses, json!(["queued", "queued"]));
    })
    .await;
}

/// Makes this page's `browser.storage.local.set` reject the next `times` calls.
async fn fail_writes(ff: &Firefox, times: u32) {
    ff.eval(&format!(
        r#"(() => {{
          const local = browser.storage.local;
          const real = window.__realSet ?? local.set.bind(local);
          window.__realSet = real;
          window.__failures = {times};
          local.set = (items) => window.__failures-- > 0
            ? Promise.reject(new Error("QuotaExceededError (injected by the test)"))
            : real(items);
          return true;
        }})()"#
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_write_blocks_the_desk_and_loses_nothing() {
    with_open_desk(Options::default(), |ff| async move {
        let kept = record_checkout(&ff, "C0001", "B0001").await;

        // Refused twice: the desk does not say "recorded", blocks, and keeps it.
        fail_writes(&ff, 2).await;
        ff.type_into("checkout-barcode", "B0002\n").await;
        ff.wait_for_css("dialog#storage-error[open]").await;
        assert_eq!(ff.eval(r#"document.getElementById("message").dataset.kind"#).await, "error");
        assert_ne!(
            ff.eval(r#"document.getElementById("message").textContent"#).await,
            ff.eval(r#"browser.i18n.getMessage("recordedCheckout")"#).await
        );
        let (primary, mirror) = stored_keys(&ff).await;
        assert_eq!(primary.len(), 1, "not in storage.local yet");
        assert_eq!(mirror.len(), 2, "but in the mirror");
        ff.screenshot("storage-write-refused").await;
        // Retry by hand (refused again), then the page's own retry gets it through.
        ff.click("storage-error-retry").await;
        ff.wait_until("the second refusal", "window.__failures <= 0").await;
        ff.wait_until(
            "the dialog closes",
            r#"!document.querySelector("dialog#storage-error[open]")"#,
        )
        .await;
        let (primary, _) = stored_keys(&ff).await;
        assert_eq!(primary, mirror, "stored after the retry");
        ff.wait_until(
            "the row",
            "window.kocCore.listPage('', 0, 1).total === 2",
        )
        .await;

        // Refused for good, then the page is reloaded: the mirror brings it back and the store
        // of record gets it at open.
        fail_writes(&ff, 1_000_000).await;
        ff.type_into("checkout-barcode", "B0003\n").await;
        ff.wait_for_css("dialog#storage-error[open]").await;
        // Escape does not dismiss it.
        ff.eval(r#"document.getElementById("storage-error").dispatchEvent(new Event("cancel", {cancelable: true}))"#)
            .await;
        assert_eq!(ff.eval(r#"document.getElementById("storage-error").open"#).await, json!(true));
        let (_, mirror) = stored_keys(&ff).await;
        assert_eq!(mirror.len(), 3);
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        let shown: BTreeSet<String> = row_ids(&ff).await.into_iter().collect();
        assert_eq!(shown, mirror, "all three shown after the reload");
        assert!(shown.contains(&kept));
        let (primary, _) = stored_keys(&ff).await;
        assert_eq!(primary, mirror, "and all three in storage.local");
        assert_eq!(
            ff.eval(r#"!!document.querySelector("dialog#storage-error[open]")"#).await,
            json!(false)
        );
    })
    .await;
}

async fn badge(ff: &Firefox) -> String {
    eval_async(ff, "return await browser.action.getBadgeText({});")
        .await
        .as_str()
        .expect("badge text")
        .to_owned()
}

async fn wait_for_badge(ff: &Firefox, want: &str) {
    let what = format!("the badge {want:?}");
    wait_until(&what, Duration::from_secs(30), || async {
        let have = badge(ff).await;
        if have == want {
            Ok(())
        } else {
            Err(format!("{have:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_badge_counts_what_koha_has_not_accepted() {
    with_open_desk(Options::default(), |ff| async move {
        wait_for_badge(&ff, "").await;
        record_checkout(&ff, "C0001", "B0001").await;
        record_checkout(&ff, "C0001", "B0002").await;
        wait_for_badge(&ff, "2").await;
        // Five more from elsewhere: two not accepted, three applied in Koha.
        seed(&ff, 1, 5, 2, false).await;
        wait_for_badge(&ff, "4").await;
        // An applied one removed changes nothing; a local one removed counts down.
        let keys = eval_async(&ff, "return Object.keys(core.syntheticEntries(1, 5, 2));").await;
        let (unsent, applied) = (
            keys[0].as_str().expect("key"),
            keys[4].as_str().expect("key"),
        );
        eval_async(
            &ff,
            &format!(r#"await browser.storage.local.remove(["{applied}", "{unsent}"]);"#),
        )
        .await;
        wait_for_badge(&ff, "3").await;
        // The desk's own rows followed the other writes too.
        ff.wait_until(
            "rows of the seeded transactions",
            "window.kocCore.listPage('', 0, 1).total === 5",
        )
        .await;
        // At 10,000 more the badge still follows each change quickly.
        seed(&ff, 100, 10_000, 10_000, false).await;
        wait_for_badge(&ff, "10003").await;
        let started = std::time::Instant::now();
        record_checkout(&ff, "C0001", "B0003").await;
        wait_for_badge(&ff, "10004").await;
        eprintln!("badge after one more at 10,000: {:?}", started.elapsed());
    })
    .await;
}

/// The status of every stored transaction, by id: its copy in a pending chunk (unsent rows a
/// start packed), its single key `tx:<id>` (written later, so newer), or its copy in an archive
/// chunk (accepted), which a send run writes beside the older single key.
async fn stored_statuses(ff: &Firefox) -> Value {
    eval_async(
        ff,
        r#"const all = await browser.storage.local.get(null);
           const out = {};
           for (const [k, v] of Object.entries(all)) {
             if (k.startsWith("pending:")) {
               for (const row of JSON.parse(v).txs) out[row[0]] = row[7].at(-1)[1];
             }
           }
           for (const [k, v] of Object.entries(all)) {
             if (k.startsWith("tx:")) out[k.slice(3)] = v.tx.history.at(-1).status;
           }
           // A chunk's copy is accepted, which no single key's older copy supersedes. A row:
           // [id, recorded, branch, action, card, barcode, amount, [[at, status, detail]], exported].
           for (const [k, v] of Object.entries(all)) {
             if (k.startsWith("archive:")) {
               for (const row of JSON.parse(v).txs) out[row[0]] = row[7].at(-1)[1];
             }
           }
           return out;"#,
    )
    .await
}

/// Empties `#message`, so the next outcome is the one read.
async fn clear_message(ff: &Firefox) {
    ff.eval(r#"Object.assign(document.getElementById("message"), { textContent: "" }).dataset.kind = """#)
        .await;
}

/// Waits for the next outcome in `#message` (after [`clear_message`]): `[kind, text]`.
async fn outcome(ff: &Firefox) -> Value {
    ff.wait_until(
        "an outcome",
        r#"document.getElementById("message").dataset.kind"#,
    )
    .await;
    ff.eval(r#"[document.getElementById("message").dataset.kind, document.getElementById("message").textContent]"#)
        .await
}

/// Page A sends; its first request is answered late (F1), so the run is in flight. Page B, which
/// may still see the row being sent as `local`, must not delete it or clear everything: that
/// would remove from the desk a transaction Koha is receiving. Both are refused with the
/// translated reason, as are an export and a second send, and nothing changes; afterwards both
/// rows are `queued` everywhere and each reached Koha once.
#[tokio::test(flavor = "multi_thread")]
async fn delete_clear_export_and_send_in_another_window_are_refused_while_a_send_is_in_flight() {
    let koha = StandIn::start(Config::default()).expect("stand-in");
    koha.set_faults(vec![FaultRule::nth(
        Fault::Delay { ms: 10_000 },
        When::action("issue"),
    )]);
    let settings = DeskSettings::queue(&koha);
    let options = Options::granting_permissions();
    with_desk_sending_to(options, koha, settings, move |ff, koha| async move {
        let barcode_requests = || {
            koha.service_requests()
                .into_iter()
                .filter(|r| r.params.iter().any(|(n, _)| n == "barcode"))
                .collect::<Vec<_>>()
        };
        let a = ff.client.window().await.expect("first tab");
        let first = record_checkout(&ff, "C0001", "B0001").await;
        let second = record_checkout(&ff, "C0001", "B0002").await;
        let b = open_second_desk(&ff).await;
        ff.wait_until("both rows", "window.kocCore.listPage('', 0, 1).total === 2")
            .await;

        // A sends: the first transaction's answer is held back.
        ff.client.switch_to_window(a.clone()).await.expect("switch");
        let before = runs(&ff).await;
        ff.click("send").await;
        ff.wait_for_css("#send-grant:not([hidden])").await;
        ff.click("send-grant").await;
        wait_until("a request to reach Koha", Duration::from_secs(30), || async {
            !barcode_requests().is_empty()
        })
        .await;

        // B: delete the row not yet sent (still `local` everywhere), then clear everything.
        ff.client.switch_to_window(b.clone()).await.expect("switch");
        let want = "A send to Koha is running in another window. Try again when it has finished.";
        clear_message(&ff).await;
        ff.wait_for_css(&format!(
            r#"#transactions tr[data-id="{second}"] button[data-role="delete"]"#
        ))
        .await
        .click()
        .await
        .expect("delete clicked");
        assert_eq!(outcome(&ff).await, json!(["error", want]), "delete refused");
        clear_message(&ff).await;
        ff.click("clear-all").await;
        ff.wait_for_css(r#"#confirm[open][data-kind="clear-all"]"#)
            .await;
        ff.click("confirm-ok").await;
        assert_eq!(outcome(&ff).await, json!(["error", want]), "clear all refused");
        // Nor an export, nor a second send: the core takes the lock itself.
        for (button, said) in [
            ("export", "A send to Koha is going on (in this tab or another)."),
            ("send", "Another desk window is sending right now."),
        ] {
            clear_message(&ff).await;
            ff.click(button).await;
            ff.wait_until(
                "a warning",
                r#"document.getElementById("message").dataset.kind === "warning""#,
            )
            .await;
            let text = ff.eval(r#"document.getElementById("message").textContent"#).await;
            assert!(text.as_str().unwrap().starts_with(said), "{button}: {text}");
        }
        let refused = core_call(
            &ff,
            r#"core.exportKoc({ confirmed: [], declined: [] }).then(() => "exported", (e) => e.kind)"#,
        )
        .await;
        assert_eq!(refused, "send-running-elsewhere");
        assert_eq!(
            barcode_requests()[0].status,
            None,
            "the first answer was still on its way while B tried"
        );
        assert_eq!(ff.eval("window.kocCore.listPage('', 0, 1).total").await, json!(2));
        let stored = stored_statuses(&ff).await;
        assert!(
            stored.get(&first).is_some() && stored.get(&second).is_some(),
            "both still stored: {stored}"
        );

        // The run ends: both queued in A, in B and in storage, each sent to Koha once.
        ff.client.switch_to_window(a).await.expect("switch");
        assert_eq!(
            wait_for_run(&ff, before + 1, Duration::from_secs(60)).await,
            "ran"
        );
        let queued = json!({ first.clone(): "queued", second.clone(): "queued" });
        let shown = r#"Object.fromEntries(window.kocCore.listPage("", 0, 10).rows.map((r) => [r.id, r.status]))"#;
        assert_eq!(ff.eval(shown).await, queued);
        ff.client.switch_to_window(b).await.expect("switch");
        ff.wait_until(
            "both queued in B",
            r#"window.kocCore.listPage("", 0, 10).rows.every((r) => r.status === "queued")"#,
        )
        .await;
        assert_eq!(ff.eval(shown).await, queued);
        assert_eq!(stored_statuses(&ff).await, queued);
        let mut barcodes: Vec<String> = barcode_requests()
            .iter()
            .filter_map(|r| r.param("barcode").map(str::to_owned))
            .collect();
        barcodes.sort();
        assert_eq!(barcodes, ["B0001", "B0002"], "each sent exactly once");
        assert_eq!(koha.model().queue.len(), 2);
    })
    .await;
}

/// What the desk says about entries it could not read, in one language.
async fn quarantine_notice_in(locale: &'static str, want: &'static str) {
    let options = Options {
        locale: locale.into(),
        ..Options::default()
    };
    with_open_desk(options, move |ff| async move {
        record_checkout(&ff, "C0001", "B0001").await;
        assert_eq!(
            ff.eval(r#"!!document.getElementById("storage-quarantine")"#)
                .await,
            json!(false),
            "no notice while everything reads"
        );
        let bad = json!({"v": 1, "tx": {"id": "broken", "garbage": true}});
        eval_async(
            &ff,
            &format!(r#"await browser.storage.local.set({{"tx:broken": {bad}}});"#),
        )
        .await;
        for start in ["the start that finds it", "a later start"] {
            ff.client.refresh().await.expect("reload");
            ff.wait_ready().await;
            let notice = ff.wait_for_css("#storage-quarantine").await;
            assert_eq!(notice.text().await.expect("text"), want, "{start}");
            assert_eq!(
                ff.eval(r#"document.getElementById("storage-quarantine").dataset.count"#)
                    .await,
                "1"
            );
            let kept = eval_async(
                &ff,
                r#"const all = await browser.storage.local.get(null);
                   return [all["quarantine:tx:broken"]?.value ?? null, "tx:broken" in all];"#,
            )
            .await;
            assert_eq!(kept, json!([bad, false]), "kept aside unchanged ({start})");
            assert_eq!(
                ff.eval("window.kocCore.listPage('', 0, 1).total").await,
                json!(1),
                "the readable transaction is shown"
            );
        }
        ff.screenshot(&format!("storage-quarantine-{locale}")).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_entry_is_announced_on_the_desk_and_kept_unchanged() {
    quarantine_notice_in(
        "en-US",
        "1 stored entry could not be read and was kept aside unchanged. Ask your Koha admin before clearing this browser's data.",
    )
    .await;
    quarantine_notice_in(
        "de",
        "1 gespeicherter Eintrag konnte nicht gelesen werden und wurde unverändert beiseitegelegt. Fragen Sie Ihre Koha-Administration, bevor Sie die Daten dieses Browsers löschen.",
    )
    .await;
}

/// A desk's start shows the newest rows and every count while older archive chunks are still
/// unread, and reads them before anything needs them: a filter finds a transaction in the oldest
/// chunk, and a chunk that turns out unreadable is announced and kept aside, as at any start.
#[tokio::test(flavor = "multi_thread")]
async fn older_archive_chunks_are_read_after_the_desk_shows_and_none_is_lost() {
    with_open_desk(Options::default(), |ff| async move {
        // 10 not sent (the oldest), then 1,990 Koha applied: 1,500 in three chunks, the newest
        // 490 one key each.
        seed_and_reload(&ff, 1, 2_000, 10, true).await;
        assert_eq!(
            ff.eval("window.kocCore.archiveChunksLeftAtStart()").await,
            json!(3),
            "the first page needs none of the chunks"
        );
        let counts = ff.eval(r##"document.getElementById("counts").textContent"##).await;
        assert!(counts.as_str().expect("text").contains("1990"), "{counts}");
        assert_eq!(
            ff.eval(r##"document.getElementById("count-unsent").textContent"##)
                .await,
            "10"
        );
        // The first transaction in the oldest chunk, found by a filter: typed by a librarian,
        // and asked at the instant the desk became ready, before its chunk was read.
        ff.type_into("filter", "S00000011").await;
        ff.wait_until(
            "the archived row",
            r##"[...document.querySelectorAll("#transactions tbody tr")].map(r => r.cells[3]?.textContent).join() === "S00000011""##,
        )
        .await;
        ff.eval(r#"sessionStorage.setItem("koc-list-at-ready", "S00000011")"#)
            .await;
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        assert_eq!(
            ff.eval("[window.kocUnreadAtReady, window.kocListedAtReady.rows.map(r => r.barcode)]")
                .await,
            json!([true, ["S00000011"]])
        );
        ff.eval(r#"sessionStorage.removeItem("koc-list-at-ready")"#)
            .await;

        // The oldest chunk's rows damaged, its summary intact: read only after the start.
        let damaged = eval_async(
            &ff,
            r##"const all = await browser.storage.local.get(null);
               const key = Object.keys(all).filter(k => k.startsWith("archive:")).sort()[0];
               const text = all[key];
               const rows = text.indexOf('"txs"');
               await browser.storage.local.set({[key]: text.slice(0, rows) + text.slice(rows).replace(',"applied",', ',"bogus",')});
               return key;"##,
        )
        .await;
        let key = damaged.as_str().expect("a chunk key").to_owned();
        ff.client.refresh().await.expect("reload");
        ff.wait_ready().await;
        assert_eq!(
            ff.eval("window.kocCore.archiveChunksLeftAtStart()").await,
            json!(3)
        );
        let notice = ff.wait_for_css("#storage-quarantine").await;
        assert_eq!(notice.attr("data-count").await.expect("count"), Some("1".into()));
        assert_eq!(
            ff.eval("window.kocCore.listPage('', 0, 1).total").await,
            json!(1_500)
        );
        let kept = eval_async(
            &ff,
            &format!(
                r#"const all = await browser.storage.local.get(null);
                   return ["quarantine:{key}" in all, "{key}" in all];"#
            ),
        )
        .await;
        assert_eq!(kept, json!([true, false]), "kept aside, not dropped");
    })
    .await;
}

/// Makes the stored copies (both stores) of the transaction `id` look like a send the page's
/// closing interrupted: `sending` after what it had.
async fn interrupt_a_send_of(ff: &Firefox, id: &str) {
    eval_async(
        ff,
        &format!(
            r#"const key = "tx:{id}", mirrorKey = "koha-offline-circ:tx:{id}";
               const stored = (await browser.storage.local.get(key))[key];
               const at = new Date().toISOString();
               stored.tx.history.push({{ ...stored.tx.history.at(-1), at, status: "sending" }});
               localStorage.setItem(mirrorKey, JSON.stringify(stored));
               await browser.storage.local.set({{ [key]: stored }});"#
        ),
    )
    .await;
}

/// The desk's start reads storage from the page's head, while its core loads, and recovers an
/// interrupted send (`sending` becomes `uncertain`) only if it got the send lock before that
/// read: while another page holds the lock (it may be sending that very row), the row is left
/// as stored. Once no page holds it, the next start recovers it.
#[tokio::test(flavor = "multi_thread")]
async fn a_start_recovers_an_interrupted_send_only_when_no_other_page_holds_the_send_lock() {
    with_open_desk(Options::default(), |ff| async move {
        let desk = ff.client.window().await.expect("desk tab");
        let id = record_checkout(&ff, "C0001", "S0000001").await;
        interrupt_a_send_of(&ff, &id).await;

        let other = open_in_new_tab(&ff, "options.html").await;
        let held = eval_async(
            &ff,
            r#"return await new Promise((granted) => {
                 navigator.locks.request("koha-send", () => {
                   granted(true);
                   return new Promise((release) => { window.kocReleaseSendLock = release; });
                 });
               });"#,
        )
        .await;
        assert_eq!(held, json!(true), "the other page holds the send lock");

        reload_desk_in(&ff, &desk).await;
        let stored = stored_statuses(&ff).await;
        assert_eq!(
            stored[&id],
            json!("sending"),
            "left alone while another page holds the lock"
        );

        ff.client.switch_to_window(other).await.expect("switch");
        ff.eval("window.kocReleaseSendLock()").await;
        reload_desk_in(&ff, &desk).await;
        // The start writes its repairs before the desk is ready.
        assert_eq!(stored_statuses(&ff).await[&id], json!("uncertain"));
        // It was the head's read (the core takes it once), and its lock is released.
        let taken = ff
            .eval("'kocEarlyRead' in window && window.kocEarlyRead === undefined")
            .await;
        assert_eq!(taken, json!(true), "the start used the early read");
        assert!(
            !send_lock_held(&ff).await,
            "the send lock is let go once the start is done"
        );
        let shown = core_call(&ff, "core.listPage('', 0, 10).rows.map((r) => r.status)").await;
        assert_eq!(shown, json!(["uncertain"]));
    })
    .await;
}

/// Another page writes one transaction after another while the desk reloads (no timers: that
/// page is in the background, where Firefox slows them). The desk's head listens before its
/// early read and hands what it heard to the page's storage glue once the core is loaded: every
/// write, whether Firefox's read has it or not, is on the desk once the writes stop, without the
/// desk reading storage again.
#[tokio::test(flavor = "multi_thread")]
async fn writes_another_page_makes_while_the_desk_starts_all_reach_it() {
    const WRITES: u32 = 400;
    with_open_desk(Options::default(), |ff| async move {
        let desk = ff.client.window().await.expect("desk tab");
        let other = open_in_new_tab(&ff, "options.html").await;
        eval_async(
            &ff,
            &format!(
                r#"window.kocWritten = 0;
                   (async () => {{
                     for (let n = 1; n <= {WRITES}; n++) {{
                       await browser.storage.local.set(core.syntheticEntries(n, 1, 1, false));
                       window.kocWritten = n;
                     }}
                   }})();
                   return null;"#
            ),
        )
        .await;

        reload_desk_in(&ff, &desk).await;
        ff.client.switch_to_window(other).await.expect("switch");
        let written_at_ready = ff.eval("window.kocWritten").await;
        ff.wait_until(
            "every write made",
            &format!("window.kocWritten === {WRITES}"),
        )
        .await;
        ff.client.switch_to_window(desk).await.expect("switch");
        let written = written_at_ready.as_u64().expect("a count");
        assert!(
            0 < written && written < u64::from(WRITES),
            "the writes went on while the desk started ({written} of {WRITES} by then)"
        );
        ff.wait_until(
            "every write on the desk",
            &format!("window.kocCore.listPage('', 0, 1).total === {WRITES}"),
        )
        .await;
        let reads = core_call(&ff, "core.refreshesReadingEverything()").await;
        assert_eq!(reads, json!(0), "nothing read again");
    })
    .await;
}

/// The send lock a page's head took for its early read, as `navigator.locks` reports it.
async fn send_lock_held(ff: &Firefox) -> bool {
    let held = eval_async(
        ff,
        "return (await navigator.locks.query()).held.map((l) => l.name);",
    )
    .await;
    held.as_array()
        .expect("lock names")
        .iter()
        .any(|name| name == "koha-send")
}

/// A page whose core never takes its early read (it failed to load) must not keep the other
/// pages from sending: the head lets the send lock go after a few seconds. Here the head script
/// runs in a page without the desk's core (the options page, once started).
#[tokio::test(flavor = "multi_thread")]
async fn an_early_read_no_core_takes_lets_the_send_lock_go() {
    with_open_desk(Options::default(), |ff| async move {
        ff.open("options.html").await;
        ff.eval(
            r#"document.head.append(Object.assign(document.createElement("script"), { src: "lib/early-read.js" }))"#,
        )
        .await;
        wait_until("the head's read holds the send lock", Duration::from_secs(5), || {
            send_lock_held(&ff)
        })
        .await;
        wait_until("the send lock let go", Duration::from_secs(20), || async {
            !send_lock_held(&ff).await
        })
        .await;
        let taken = ff.eval("typeof window.kocEarlyRead.take").await;
        assert_eq!(taken, json!("function"), "no core took it");
    })
    .await;
}
