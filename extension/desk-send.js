// Send to Koha (issue 7): wires #send-area and #confirm to the core's send API. The rules (what is
// sent, in what order, what each answer means) are the core's; this file only shows and asks.
// Every stored status change is announced with the document event "koc:changed".
import { core } from "./lib/wasm.js";
import { t, errorMessage, language } from "./lib/i18n.js";
import { amountText } from "./desk/table.js";
import { ask } from "./lib/confirm.js";

const $ = (id) => document.getElementById(id);
const show = (id, on) => { $(id).hidden = !on; };

function say(kind, text) {
  $("message").dataset.kind = kind;
  $("message").textContent = text;
}

function changed(detail) {
  document.dispatchEvent(new CustomEvent("koc:changed", { detail }));
}

// The desk fills the core's state in desk.js; wait until it says it is ready.
function whenReady() {
  return new Promise((resolve) => {
    const app = $("app");
    if (app.dataset.ready === "true") return resolve();
    new MutationObserver((_, observer) => {
      if (app.dataset.ready === "true") { observer.disconnect(); resolve(); }
    }).observe(app, { attributes: true, attributeFilter: ["data-ready"] });
  });
}

// A popup closes as soon as it loses focus, so sending always runs in a desk tab.
function inPopup() {
  try {
    return browser.extension.getViews({ type: "popup" }).includes(window);
  } catch {
    return false;
  }
}

let grantOrigin = null;

function showSetup(missing, origin) {
  show("password-area", false);
  show("send-setup", true);
  $("send-setup-text").textContent = t(`sendMissing_${missing}`, [origin ?? ""]);
  grantOrigin = missing === "permission" ? origin : null;
  show("send-grant", missing === "permission");
}

function hideSetup() {
  show("send-setup", false);
  show("password-area", false);
}

function askPassword(options = {}) {
  pendingOptions = options;
  show("send-setup", false);
  show("password-area", true);
  $("password-prompt").value = "";
  $("password-prompt").focus();
  say("warning", t("sendNeedPassword"));
}

function setBusy(busy) {
  if (busy) {
    $("send-progress").removeAttribute("value"); // indeterminate while detecting
    $("send-progress-text").textContent = t("sendStarted");
  }
  $("send").disabled = busy;
  show("send-cancel", busy);
  $("send-cancel").disabled = false;
  show("send-progress", busy);
  if (!busy) $("send-progress-text").textContent = "";
}

// While a run goes on, the table, the counts and the progress bar follow at most every
// RENDER_EVERY_MS: re-rendering them costs a few milliseconds, and doing it for each of 30-60
// status changes a second ran on the path between one answer and the next request. Against a
// fast Koha, redrawing only the progress bar and its text with every change made each
// transaction take 3-5 ms longer, one request at a time. The end of a run renders at once
// (flushChanges).
const RENDER_EVERY_MS = 250;
let changeTimer = null;
let latestProgress = null;

function renderProgress() {
  if (latestProgress === null) return;
  const { done, total } = latestProgress;
  latestProgress = null;
  $("send-progress").max = Math.max(total, 1);
  $("send-progress").value = done;
  $("send-progress-text").textContent = t("sendProgress", [String(done), String(total)]);
}

function changedSoon() {
  if (changeTimer !== null) return;
  changeTimer = setTimeout(() => {
    changeTimer = null;
    renderProgress();
    changed({});
  }, RENDER_EVERY_MS);
}

// Renders now, dropping a render still waiting.
function flushChanges() {
  clearTimeout(changeTimer);
  changeTimer = null;
  renderProgress();
  changed({});
}

// The first change of a run shows at once (the bar leaves its "detecting" state); the others
// with the next render.
function onProgress({ done, total }) {
  const first = !$("send-progress").hasAttribute("value");
  latestProgress = { done, total };
  if (first) renderProgress();
  changedSoon();
}

function item(text, extra) {
  const li = document.createElement("li");
  li.textContent = text;
  if (extra) li.append(" ", extra);
  return li;
}

// The summary's count lines of the last run, as [name, n] in the order shown.
let shownCounts = [];

function showSummary(result) {
  const box = $("send-summary");
  box.dataset.stopped = result.stopped;
  const head = document.createElement("p");
  head.textContent = t(`sendStopped_${result.stopped.replaceAll("-", "_")}`);
  const list = document.createElement("ul");
  const counts = [["queued", result.queued], ["applied", result.applied],
    ["rejected", result.rejected.length], ["uncertain", result.uncertain],
    ["failed", result.failed], ["notSent", result.notSent],
    ["leftOutExported", result.leftOutExported], ["heldBack", result.heldBack],
    ["skipped", result.skipped]];
  shownCounts = counts.filter(([, n]) => n > 0);
  for (const [name, n] of shownCounts) list.append(item(t(`sendCount_${name}`, [String(n)])));
  const reasons = document.createElement("ul");
  reasons.className = "rejections";
  for (const r of result.rejected) {
    const original = document.createElement("span");
    original.className = "original";
    original.textContent = `(Koha: “${r.message}”)`;
    const what = [t(`action_${r.action}`), r.cardnumber, r.barcode, r.amount].filter(Boolean).join(" · ");
    const reason = r.key ? t(r.key.replaceAll("-", "_")) : t("koha_other_answer");
    reasons.append(item(`${what}: ${reason}`, original));
  }
  box.replaceChildren(head, list, ...(result.rejected.length ? [reasons] : []));
  show("send-summary", true);
  say(result.level, head.textContent);
}

async function run(options = {}) {
  setBusy(true);
  show("send-summary", false);
  say("ok", t("sendStarted"));
  let result;
  try {
    result = await core.sendToKoha(options, onProgress);
  } catch (error) {
    flushChanges();
    setBusy(false);
    say("error", errorMessage(error));
    return "error";
  }
  flushChanges();
  setBusy(false);
  switch (result.outcome) {
    case "sendingElsewhere":
      say("warning", t("sendElsewhere"));
      return "elsewhere";
    case "notReady":
      if (result.missing === "password") askPassword(options);
      else showSetup(result.missing, result.origin);
      return "not-ready";
    case "problem":
      if (result.askPassword) askPassword(options);
      say("error", t(`sendProblem_${result.problem.replaceAll("-", "_")}`));
      return `problem-${result.problem}`;
    case "askExported": {
      const body = [t("sendExportedBody", [String(result.count),
        new Date(result.exportedAt).toLocaleString(language())])];
      if (result.payments > 0) body.push(t("sendExportedPayments", [String(result.payments)]));
      // The status line names the open question, not the connection check before it.
      say("warning", t("sendExportedTitle"));
      const answer = await ask({ kind: "send-exported", title: t("sendExportedTitle"), body,
        ok: t("sendExportedOk"), extra: t("sendExportedOthers"), cancel: t("sendConfirmCancel"),
        focus: "cancel" });
      if (answer === true) return run({ ...options, exported: "send" });
      if (answer === "extra") return run({ ...options, exported: "leave-out" });
      say("warning", t("sendExportedDeclined"));
      return "exported-declined";
    }
    case "askClock": {
      const time = (ms) => new Date(ms).toLocaleString(language());
      say("warning", t("sendClockTitle"));
      const ok = await ask({ kind: "send-clock", title: t("sendClockTitle"),
        body: [t("sendClockBody", [time(result.desk), time(result.koha)])],
        ok: t("sendClockOk"), cancel: t("sendConfirmCancel"), focus: "cancel" });
      if (ok) return run({ ...options, clockConfirmed: true });
      say("warning", t("sendClockDeclined"));
      return "clock-declined";
    }
    case "needsGetConsent": {
      const body = [t("sendGetBody")];
      if (result.payments > 0) body.push(t("sendGetPayments", [String(result.payments)]));
      say("warning", t("sendGetTitle"));
      const ok = await ask({ kind: "send-get", title: t("sendGetTitle"), body,
        ok: t("sendGetOk"), cancel: t("sendConfirmCancel") });
      if (ok) return run({ ...options, allowGet: true });
      say("warning", t("sendGetDeclined"));
      return "get-declined";
    }
    default:
      showSummary(result);
      renderUncertain();
      kohaAnswered = result.kohaAnswered;
      return "ran";
  }
}

// Every Send attempt ends with the document event "koc:send-finished": `outcome` names how it
// ended ("ran", "nothing", "problem-…", …), `counts` the summary's lines ([] without a summary),
// `kohaAnswered` whether Koha answered a run to its end (the core's word on it).
let kohaAnswered = false;
async function send(options = {}) {
  shownCounts = [];
  kohaAnswered = false;
  const outcome = await attempt(options);
  document.dispatchEvent(new CustomEvent("koc:send-finished",
    { detail: { outcome, counts: shownCounts, kohaAnswered } }));
}

async function attempt(options) {
  if (inPopup()) {
    await browser.tabs.create({ url: browser.runtime.getURL("desk.html?send=1") });
    window.close();
    return "moved-to-tab";
  }
  if (core.isSending()) return "busy";
  const ready = await core.sendReadiness(options);
  if (ready.missing === "password") { askPassword(options); return "password"; }
  if (ready.missing) { showSetup(ready.missing, ready.origin); return "not-ready"; }
  hideSetup();
  if (ready.nothing) {
    say("ok", t("sendNothing"));
    return "nothing";
  }
  return run(options);
}

async function passwordGiven() {
  const password = $("password-prompt").value;
  if (!password) return $("password-prompt").focus();
  try {
    await core.setSessionPassword(password);
  } catch (error) {
    return say("error", errorMessage(error));
  }
  $("password-prompt").value = "";
  show("password-area", false);
  const options = pendingOptions;
  pendingOptions = {};
  await send(options);
}

let pendingOptions = {};
let renderQueued = false;

function renderUncertain() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const rows = core.uncertainTransactions();
    $("uncertain-list").replaceChildren(...rows.map(uncertainItem));
    show("uncertain-area", rows.length > 0);
  });
}

function uncertainItem(row) {
  const li = document.createElement("li");
  li.dataset.id = row.id;
  li.dataset.action = row.action;
  const what = [t(`action_${row.action}`), row.cardnumber, row.barcode, amountText(row.amount)]
    .filter(Boolean).join(" · ");
  li.textContent = `${new Date(row.recordedAt).toLocaleString(language())} – ${what} (${t(`uncertainReason_${row.reason.replaceAll("-", "_")}`)})`;
  const resend = document.createElement("button");
  resend.type = "button";
  resend.dataset.role = "resend";
  resend.textContent = t("uncertainResend");
  const done = document.createElement("button");
  done.type = "button";
  done.dataset.role = "mark-done";
  done.textContent = t("uncertainMarkDone");
  li.append(resend, done);
  return li;
}

async function onRowAction(event) {
  const button = event.target.closest("[data-role]");
  const row = button?.closest("[data-id]");
  if (!row || !["resend", "mark-done"].includes(button.dataset.role)) return;
  const question = core.uncertainTransactions().find((r) => r.id === row.dataset.id)?.question;
  if (!question) return;
  if (button.dataset.role === "resend") {
    const payment = question === "resend-payment";
    const ok = await ask({ kind: question, title: t(payment ? "resendPaymentTitle" : "resendTitle"),
      body: [t(payment ? "resendPaymentBody" : "resendBody")],
      ok: t(payment ? "resendPaymentOk" : "resendOk"), cancel: t("sendConfirmCancel") });
    if (ok) await send({ resend: [row.dataset.id] });
  } else {
    const ok = await ask({ kind: "mark-done", title: t("markDoneTitle"), body: [t("markDoneBody")],
      ok: t("markDoneOk"), cancel: t("sendConfirmCancel") });
    if (!ok) return;
    try {
      const status = await core.markFoundInKoha(row.dataset.id);
      changed({ id: row.dataset.id, status });
      say("ok", t("markDoneDone"));
    } catch (error) {
      say("error", errorMessage(error));
    }
  }
}

$("send").addEventListener("click", () => send());
$("send-cancel").addEventListener("click", () => {
  core.cancelSend();
  $("send-cancel").disabled = true;
  say("warning", t("sendCancelling"));
});
$("send-grant").addEventListener("click", () => {
  // permissions.request must be the first call of the click handler.
  browser.permissions.request({ origins: [grantOrigin] }).then((granted) => {
    if (granted) { hideSetup(); send(); } else { say("error", t("sendMissing_permission", [grantOrigin])); }
  });
});
$("password-prompt-ok").addEventListener("click", passwordGiven);
$("password-prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter") { e.preventDefault(); passwordGiven(); }
});
$("uncertain-list").addEventListener("click", onRowAction);
$("transactions").addEventListener("click", onRowAction);
document.addEventListener("koc:changed", renderUncertain);
window.addEventListener("beforeunload", (event) => {
  if (core.isSending()) event.preventDefault();
});

await whenReady();
renderUncertain();
if (new URLSearchParams(location.search).get("send") === "1") {
  history.replaceState(null, "", location.pathname);
  send();
}
