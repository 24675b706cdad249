//! The `.koc` file benchmark: export and import of a long outage's worth of transactions in the
//! desk page.

use crate::desk::{async_number, seed_unsent};
use crate::firefox::{with_firefox, Firefox, Options};
use crate::report::{self, Figure};
use std::sync::{Arc, Mutex};

const KOC: &str = ".koc files in Firefox";

/// Times a core call in the page: `expr` over `core`, awaited; returns milliseconds.
async fn time_in_page(ff: &Firefox, setup: &str, expr: &str) -> f64 {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        const core = window.kocCore;
        (async () => {{
            {setup}
            const t0 = performance.now();
            await ({expr});
            done(performance.now() - t0);
        }})().catch((e) => done("error: " + (e && e.kind ? e.kind + " " + e.detail : e)));"#
    );
    async_number(ff, &script, &format!("timed call {expr}")).await
}

/// An export of everything not accepted, each question answered "export them" (as a
/// librarian clicking OK, without the dialogs).
const EXPORT_ALL: &str = "(async () => { const answers = { confirmed: [], declined: [] }; let r; \
    while ((r = await core.exportKoc(answers)).questions) answers.confirmed.push(...r.questions); \
    return r; })()";

/// `.koc` export and import of `count` transactions in the browser, `runs` times each.
pub async fn figures(count: usize, runs: usize) -> Vec<Figure> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    with_firefox(Options::default(), move |ff| async move {
        // A slow figure is reported, not failed: allow page scripts five minutes.
        let timeouts = fantoccini::wd::TimeoutConfiguration::new(
            Some(std::time::Duration::from_secs(300)),
            None,
            None,
        );
        ff.client
            .update_timeouts(timeouts)
            .await
            .expect("time-outs");
        ff.open("desk.html").await;
        seed_unsent(&ff, count).await;
        let mut export_ms = Vec::new();
        let mut import_ms = Vec::new();
        for _ in 0..runs {
            // Writing the file text only (every not-yet-accepted transaction; from the second
            // run on they were exported before, so the question is answered "export them").
            export_ms.push(time_in_page(&ff, "", EXPORT_ALL).await);
            // Reading the same file back: parse, validate, flag duplicates (all of them here).
            import_ms.push(
                time_in_page(
                    &ff,
                    &format!(
                        "const {{ files }} = await {EXPORT_ALL}; \
                         const bytes = new TextEncoder().encode(files[0].text);"
                    ),
                    "core.readImport(bytes, null)",
                )
                .await,
            );
            ff.eval("window.kocCore.cancelImport()").await;
        }
        let export = report::median(&mut export_ms);
        let import = report::median(&mut import_ms);
        let mut figures = sink.lock().expect("figures");
        figures.push(Figure::against(
            KOC,
            format!(".koc export of {count} (write, mark exported, store), median of {runs}"),
            report::ms(export),
            "< 1 s",
            export < 1000.0,
        ));
        figures.push(Figure::plain(
            KOC,
            format!(
                ".koc import report of {count} (read, validate, flag duplicates), median of {runs}"
            ),
            report::ms(import),
        ));
    })
    .await;
    let figures = out.lock().expect("figures").clone();
    figures
}
