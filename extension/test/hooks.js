// Test hooks: only the test build of the pages (www-test/, `./build.sh test` and `bench`) loads
// this module; the add-on a library installs (www/, dist/*.xpi) has none of it.
// - window.kocCore: the page's own core, for the browser tests and benchmarks (a WebDriver script
//   runs in a sandbox of its own, where importing lib/wasm.js would load a second, empty core).
// - performance marks "koc:ready" when #app gets data-ready="true" and "koc:checks-loaded" when
//   it gets data-checks-loaded="true" (the offline checks' snapshot read), for the start-up
//   benchmarks.
// - at the instant #app gets data-ready="true", before the page's own next step: whether archive
//   chunks were still unread (window.kocUnreadAtReady), and the page the table would list with
//   the filter in sessionStorage "koc-list-at-ready", if any (window.kocListedAtReady).
// - #send-area data-outcome and data-runs (how the last Send attempt ended, how many ended) and
//   data-count/data-n on the summary's lines, from the desk's "koc:send-finished" event.
import { core } from "../lib/wasm.js";

window.kocCore = core;

const app = document.getElementById("app");
if (app) {
  const markReady = () => {
    if (app.dataset.ready === "true" && !performance.getEntriesByName("koc:ready").length) {
      performance.mark("koc:ready");
      const filter = sessionStorage.getItem("koc-list-at-ready");
      if (filter !== null) {
        window.kocUnreadAtReady = core.archiveUnread();
        window.kocListedAtReady = core.listPage(filter, 0, 50);
      }
    }
    if (app.dataset.checksLoaded === "true" && !performance.getEntriesByName("koc:checks-loaded").length) {
      performance.mark("koc:checks-loaded");
    }
  };
  new MutationObserver(markReady).observe(app, { attributes: true, attributeFilter: ["data-ready", "data-checks-loaded"] });
  markReady();
}

document.addEventListener("koc:send-finished", ({ detail: { outcome, counts } }) => {
  const lines = document.querySelectorAll("#send-summary > ul:first-of-type > li");
  counts.forEach(([name, n], i) => {
    if (lines[i]) Object.assign(lines[i].dataset, { count: name, n: String(n) });
  });
  const area = document.getElementById("send-area");
  area.dataset.outcome = outcome;
  area.dataset.runs = String(Number(area.dataset.runs ?? 0) + 1);
});
