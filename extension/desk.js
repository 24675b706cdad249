// The desk page: wires the forms, the table and the file tools to the core. Scans are queued in
// order (a promise chain), so a scanner typing faster than storage writes loses nothing.
import { core } from "./lib/wasm.js";
import { t, translatePage, errorMessage } from "./lib/i18n.js";
import { say, setSounds } from "./desk/feedback.js";
import { renderPage } from "./desk/table.js";
import { queueRecord, holdRecordsUntil } from "./desk/record.js";
import { showQuarantine } from "./desk/quarantine.js";
import { startChecks, showPaymentBalance } from "./desk/checks.js";
import { exportFiles, importFile, clearSent, clearAll } from "./desk/files.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 50;
const inPopup = new URLSearchParams(location.search).get("view") === "popup";
let offset = 0;
let lastPage = { counts: { total: 0, notAccepted: 0 } };

// Re-renders the counts and the current page from the core (also on "koc:changed").
export function refresh() {
  const info = core.deskInfo();
  $("setup-note").hidden = info.configured;
  setSounds(info.sounds);
  // Past the end (rows cleared meanwhile), the core answers the last page.
  lastPage = core.listPage($("filter").value, offset, PAGE_SIZE);
  offset = lastPage.offset;
  renderPage(lastPage, PAGE_SIZE, deleteRow);
}

// Puts `value` back into an input unless the next scan has already started there.
const putBack = (id, value) => () => { if (!$(id).value) $(id).value = value; };
const focusIn = (prefix) => (field) => $(`${prefix}-${field}`)?.focus();

function submitCheckout() {
  const form = { action: "issue", cardnumber: $("checkout-cardnumber").value, barcode: $("checkout-barcode").value };
  $("checkout-barcode").value = "";
  $("checkout-barcode").focus();
  queueRecord(form, putBack("checkout-barcode", form.barcode), focusIn("checkout"), refresh);
}

function submitCheckin() {
  const form = { action: "return", barcode: $("checkin-barcode").value };
  $("checkin-barcode").value = "";
  $("checkin-barcode").focus();
  queueRecord(form, putBack("checkin-barcode", form.barcode), focusIn("checkin"), refresh);
}

function submitPayment() {
  const form = { action: "payment", cardnumber: $("payment-cardnumber").value, amount: $("payment-amount").value };
  $("payment-cardnumber").value = $("payment-amount").value = "";
  $("payment-cardnumber").focus();
  showPaymentBalance();
  const restore = () => { putBack("payment-cardnumber", form.cardnumber)(); putBack("payment-amount", form.amount)(); showPaymentBalance(); };
  queueRecord(form, restore, focusIn("payment"), refresh);
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

// A form records on its button and on Enter in its last field. Enter is taken before it
// submits the form: a submission wakes Firefox's form and password handlers, which cost about
// 8% of the desk's work for a scan and look at nothing this page needs.
function onSubmit(id, handler) {
  $(id).addEventListener("submit", (e) => { e.preventDefault(); handler(); });
  $(id).addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.defaultPrevented || e.isComposing) return;
    if (!(e.target instanceof HTMLInputElement)) return;
    e.preventDefault();
    handler();
  });
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
$("clear-all").addEventListener("click", () => clearAll(!inPopup).then(refresh));
$("open-options").addEventListener("click", () => browser.runtime.openOptionsPage());
$("open-tab").addEventListener("click", async () => {
  await browser.tabs.create({ url: browser.runtime.getURL("desk.html") });
  window.close();
});
document.addEventListener("koc:changed", refresh);
try {
  showQuarantine((await core.openDesk()).quarantine);
} catch (error) {
  say("error", errorMessage(error));
}
holdRecordsUntil(startChecks());
refresh();
$("app").dataset.ready = "true";
holdRecordsUntil(afterPaint().then(finishOpen));

// After the first frame with the table is drawn (a tab in the background draws none).
function afterPaint() {
  return new Promise((resolve) => {
    requestAnimationFrame(() => setTimeout(resolve, 0));
    setTimeout(resolve, 250);
  });
}

// The start read only the archive chunks the first page needs; the core reads the rest now
// (or sooner, when something needs it), and says if a chunk turned out unreadable.
async function finishOpen() {
  try {
    showQuarantine((await core.finishOpen()).quarantine);
  } catch (error) {
    say("error", errorMessage(error));
  }
  refresh();
}
