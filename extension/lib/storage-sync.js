// The page side of storage (issue 4), loaded once by every page that shows transactions:
// - storage.onChanged (another desk tab, the popup, the options page) → the core's journal →
//   `document` event "koc:changed", on which the page re-renders;
// - a write the store of record refused (the core then counts unsaved transactions, see
//   wasm.js) → the blocking #storage-error dialog with #storage-error-retry; retried every few
//   seconds until stored.
import { core, whenUnsaved } from "./wasm.js";
import { t } from "./i18n.js";

const RETRY_EVERY_MS = 3000;

function onChanged(changes) {
  if (core.applyStorageChanges(changes)) changed();
}
// The desk's head has listened since before its early read (early-read.js): its batches are
// taken over here, none twice or missed. The core keeps those heard before its start for after.
if (globalThis.kocEarlyRead) {
  globalThis.kocEarlyRead.listen(onChanged);
} else {
  browser.storage.onChanged.addListener((changes, area) => {
    if (area === "local") onChanged(changes);
  });
}

function changed() {
  document.dispatchEvent(new CustomEvent("koc:changed"));
}

let dialog = null;
let timer = null;

function storageDialog() {
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "storage-error";
  dialog.setAttribute("role", "alertdialog");
  const title = document.createElement("h2");
  title.id = "storage-error-title";
  const body = document.createElement("p");
  body.id = "storage-error-body";
  const detail = document.createElement("p");
  detail.id = "storage-error-detail";
  detail.className = "detail";
  const retry = document.createElement("button");
  retry.id = "storage-error-retry";
  retry.type = "button";
  retry.addEventListener("click", retryNow);
  dialog.append(title, body, detail, retry);
  // Blocking: Escape does not close it; only a successful write does.
  dialog.addEventListener("cancel", (event) => event.preventDefault());
  (document.getElementById("app") ?? document.body).append(dialog);
  return dialog;
}

function showFailure(detail) {
  const d = storageDialog();
  d.querySelector("#storage-error-title").textContent = t("storageErrorTitle");
  d.querySelector("#storage-error-body").textContent =
    t("storageErrorBody", [String(core.unsavedCount())]);
  if (detail) d.querySelector("#storage-error-detail").textContent = detail;
  d.querySelector("#storage-error-retry").textContent = t("storageErrorRetry");
  if (!d.open) d.showModal();
  if (!timer) timer = setInterval(retryNow, RETRY_EVERY_MS);
}

let retrying = false;
async function retryNow() {
  if (retrying) return;
  retrying = true;
  try {
    const left = await core.retryUnsaved();
    if (left === 0) recovered();
  } catch (error) {
    showFailure(error?.detail);
  } finally {
    retrying = false;
  }
}

function recovered() {
  clearInterval(timer);
  timer = null;
  if (dialog?.open) dialog.close();
  const message = document.getElementById("message");
  if (message) {
    message.dataset.kind = "ok";
    message.textContent = t("storageSaved");
  }
  changed();
}

whenUnsaved(showFailure);
if (core.unsavedCount() > 0) showFailure();
