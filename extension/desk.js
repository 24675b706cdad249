import { core } from "./lib/wasm.js";
import { t, translatePage, errorMessage } from "./lib/i18n.js";

const $ = (id) => document.getElementById(id);

function say(kind, text) {
  $("message").dataset.kind = kind;
  $("message").textContent = text;
}

function renderRows(rows) {
  const body = $("transactions").tBodies[0];
  body.replaceChildren(...rows.map(rowElement));
  $("count-unsent").textContent = rows.filter((r) => r.status !== "queued" && r.status !== "applied").length;
}

function rowElement(row) {
  const tr = document.createElement("tr");
  tr.dataset.id = row.id;
  tr.dataset.action = row.action;
  tr.dataset.status = row.status;
  const time = new Date(row.recordedAt);
  const cells = [time.toLocaleString(), t(`action_${row.action}`), row.cardnumber, row.barcode,
    row.amount, t(`status_${row.status}`), row.answer];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text ?? "";
    tr.append(td);
  }
  tr.cells[0].title = time.toISOString();
  return tr;
}

async function recordCheckout(event) {
  event.preventDefault();
  try {
    await core.recordCheckout($("checkout-cardnumber").value, $("checkout-barcode").value);
    $("checkout-barcode").value = "";
    renderRows(core.listTransactions());
    say("ok", t("recordedCheckout"));
  } catch (error) {
    say("error", errorMessage(error));
  }
  $("checkout-barcode").focus();
}

translatePage();
$("checkout-form").addEventListener("submit", recordCheckout);
$("checkout-cardnumber").addEventListener("keydown", (e) => {
  if (e.key === "Enter") { e.preventDefault(); $("checkout-barcode").focus(); }
});
$("checkout-clear").addEventListener("click", () => {
  $("checkout-cardnumber").value = "";
  $("checkout-cardnumber").focus();
});
// Stand-in until the desk re-renders through its own refresh() (issue 5).
document.addEventListener("koc:changed", () => renderRows(core.listTransactions()));
renderRows(await core.openDesk());
$("app").dataset.ready = "true";
