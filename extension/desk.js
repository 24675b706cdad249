// The desk page: wires the forms, the table and the file tools to the core. Scans are queued in
// order (a promise chain), so a scanner typing faster than storage writes loses nothing.
import { core } from "./lib/wasm.js";
import { t, translatePage, errorMessage } from "./lib/i18n.js";
import { ask } from "./lib/confirm.js";
import { say, setSounds } from "./desk/feedback.js";
import { renderPage, amountText } from "./desk/table.js";
import { exportFiles, importFile, clearSent, clearAll } from "./desk/files.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 50;
const inPopup = new URLSearchParams(location.search).get("view") === "popup";
let offset = 0;
let lastPage = { counts: { total: 0, notAccepted: 0 } };
let queue = Promise.resolve();
let checkinNoted = false;

// Re-renders the counts and the current page from the core (also on "koc:changed").
export function refresh() {
  const info = core.deskInfo();
  $("setup-note").hidden = info.configured;
  setSounds(info.sounds);
  lastPage = core.listPage($("filter").value, offset, PAGE_SIZE);
  if (offset > 0 && offset >= lastPage.total) {
    offset = Math.max(0, Math.floor((lastPage.total - 1) / PAGE_SIZE) * PAGE_SIZE);
    lastPage = core.listPage($("filter").value, offset, PAGE_SIZE);
  }
  renderPage(lastPage, PAGE_SIZE, deleteRow);
}

function warningText(w, form) {
  const subs = [form.barcode || form.cardnumber, w.cardnumber ?? "", form.cardnumber];
  return t(`warning_${w.kind.replaceAll("-", "_")}_${form.action}`, subs);
}

function recordedText(row) {
  const text = t(`recorded_${row.action}`, [row.barcode ?? "", row.cardnumber ?? "", amountText(row.amount)]);
  if (row.action !== "return" || checkinNoted) return text;
  checkinNoted = true;
  return `${text} ${t("checkinNote")}`;
}

// Records one form; `restore` puts the typed values back when nothing was recorded.
async function recordOne(form, restore, focusField) {
  try {
    let result = await core.record(form, false);
    if (!result.recorded) {
      say("warning", t("askingTitle"));
      const yes = await ask({
        kind: result.warnings[0].kind, title: t("askingTitle"),
        body: result.warnings.map((w) => warningText(w, form)),
        ok: t("recordAnyway"), cancel: t("dontRecord"), focus: "cancel",
      });
      if (!yes) return say("warning", t("notRecorded", [form.barcode || form.cardnumber]));
      result = await core.record(form, true);
    }
    say("ok", recordedText(result.row));
  } catch (error) {
    say("error", errorMessage(error));
    restore();
    if (error?.field) focusField(error.field);
  } finally {
    refresh();
  }
}

function enqueue(form, restore, focusField) {
  queue = queue.then(() => recordOne(form, restore, focusField));
  return queue;
}

// Puts `value` back into an input unless the next scan has already started there.
const putBack = (id, value) => () => { if (!$(id).value) $(id).value = value; };
const focusIn = (prefix) => (field) => $(`${prefix}-${field}`)?.focus();

function submitCheckout() {
  const form = { action: "issue", cardnumber: $("checkout-cardnumber").value, barcode: $("checkout-barcode").value };
  $("checkout-barcode").value = "";
  $("checkout-barcode").focus();
  enqueue(form, putBack("checkout-barcode", form.barcode), focusIn("checkout"));
}

function submitCheckin() {
  const form = { action: "return", barcode: $("checkin-barcode").value };
  $("checkin-barcode").value = "";
  $("checkin-barcode").focus();
  enqueue(form, putBack("checkin-barcode", form.barcode), focusIn("checkin"));
}

function submitPayment() {
  const form = { action: "payment", cardnumber: $("payment-cardnumber").value, amount: $("payment-amount").value };
  $("payment-cardnumber").value = $("payment-amount").value = "";
  $("payment-cardnumber").focus();
  const restore = () => { putBack("payment-cardnumber", form.cardnumber)(); putBack("payment-amount", form.amount)(); };
  enqueue(form, restore, focusIn("payment"));
}

async function deleteRow(row) {
  try {
    await core.deleteTransaction(row.id);
    say("ok", t("deleted", [t(`action_${row.action}`), row.barcode ?? row.cardnumber]), undo);
    $("undo").focus();
  } catch (error) {
    say("error", errorMessage(error));
  }
  refresh();
  async function undo() {
    try {
      await core.undoDelete(row.id);
      say("ok", t("restored", [t(`action_${row.action}`), row.barcode ?? row.cardnumber]));
    } catch (error) {
      say("error", errorMessage(error));
    }
    refresh();
    $("checkout-barcode").focus();
  }
}

function onEnter(id, next) {
  $(id).addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); $(next).focus(); }
  });
}

function onSubmit(id, handler) {
  $(id).addEventListener("submit", (e) => { e.preventDefault(); handler(); });
}

function movePage(step) {
  offset = Math.max(0, offset + step * PAGE_SIZE);
  refresh();
}

translatePage();
document.body.classList.toggle("popup", inPopup);
onSubmit("checkout-form", submitCheckout);
onSubmit("checkin-form", submitCheckin);
onSubmit("payment-form", submitPayment);
onEnter("checkout-cardnumber", "checkout-barcode");
onEnter("payment-cardnumber", "payment-amount");
$("checkout-clear").addEventListener("click", () => {
  $("checkout-cardnumber").value = "";
  $("checkout-cardnumber").focus();
});
$("filter").addEventListener("input", () => { offset = 0; refresh(); });
$("page-prev").addEventListener("click", () => movePage(-1));
$("page-next").addEventListener("click", () => movePage(1));
$("export").addEventListener("click", exportFiles);
$("import").addEventListener("change", (e) => importFile(e.target).then(refresh));
$("clear-sent").addEventListener("click", () => clearSent().then(refresh));
$("clear-all").addEventListener("click", () => clearAll(lastPage.counts, !inPopup).then(refresh));
$("open-options").addEventListener("click", () => browser.runtime.openOptionsPage());
$("open-tab").addEventListener("click", async () => {
  await browser.tabs.create({ url: browser.runtime.getURL("desk.html") });
  window.close();
});
document.addEventListener("koc:changed", refresh);
try {
  await core.openDesk();
} catch (error) {
  say("error", errorMessage(error));
}
refresh();
$("app").dataset.ready = "true";
