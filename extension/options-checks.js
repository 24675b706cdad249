// The options page's offline checks: download, cancel and delete the snapshot of Koha, and say
// what is stored. The core (src/web/checks.rs) does the work; this wires the buttons to it.
import { core } from "./lib/wasm.js";
import { language, t, errorMessage } from "./lib/i18n.js";

const $ = (id) => document.getElementById(id);
const key = (text) => text.replaceAll("-", "_");
const listName = (list) => t(`chk_list_${list}`);

function message(kind, text, outcome = "") {
  const out = $("snapshot-message");
  out.dataset.kind = kind;
  out.dataset.result = outcome;
  out.textContent = text;
}

function showStatus(status) {
  const out = $("snapshot-status");
  const lines = $("snapshot-unavailable");
  lines.replaceChildren();
  if (!status) {
    Object.assign(out.dataset, { snapshot: "none", patrons: "", items: "", fullAt: "" });
    out.textContent = t("chk_status_none");
    return;
  }
  const format = (at) => new Intl.DateTimeFormat(language(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(at));
  const when = format(status.age.takenAt);
  const age = t(`age_${status.age.unit}`, [String(status.age.amount)]);
  Object.assign(out.dataset, {
    snapshot: status.noneAvailable ? "unavailable" : "stored",
    patrons: String(status.patrons), items: String(status.items),
    unavailable: status.unavailable.map((u) => u.list).join(" "),
    fullAt: String(Date.parse(status.fullAt)),
  });
  out.textContent = (status.noneAvailable
    ? t("chk_status_unavailable", [age, when])
    : t("chk_status_stored", [String(status.patrons), String(status.items), age, when]))
    + " " + t("chk_status_full", [format(status.fullAt)]);
  lines.append(...status.unavailable.map((u) => {
    const li = document.createElement("li");
    li.dataset.list = u.list;
    li.dataset.permission = u.permission;
    li.textContent = t(`chk_unavailable_${key(u.why.kind)}`, [listName(u.list), u.permission, String(u.why.http_status ?? "")]);
    return li;
  }));
}

// What the connection test found about each list: readable, or why not (`null`: not probed).
export function showAvailability(lists) {
  const out = $("checks-availability");
  out.replaceChildren(...(lists ?? []).map((a) => {
    const li = document.createElement("li");
    Object.assign(li.dataset, { list: a.list, permission: a.permission, available: String(!a.unavailable), why: a.unavailable?.kind ?? "" });
    li.textContent = a.unavailable
      ? t(`chk_unavailable_${key(a.unavailable.kind)}`, [listName(a.list), a.permission, String(a.unavailable.http_status ?? "")])
      : a.list === "patrons"
        ? t("chk_available_patrons", [listName(a.list), "view_borrower_infos_from_any_libraries"])
        : t("chk_available", [listName(a.list)]);
    return li;
  }));
  out.hidden = !lists;
}

async function refreshStatus() {
  try {
    showStatus(await core.checksStatus());
  } catch (error) {
    $("snapshot-status").dataset.snapshot = "unreadable";
    $("snapshot-status").textContent = `${t("check_snapshot_unreadable")} (${error?.detail ?? error})`;
  }
}

function running(on) {
  $("snapshot-download").disabled = on;
  $("snapshot-full").disabled = on;
  $("snapshot-delete").disabled = on;
  $("snapshot-cancel").hidden = !on;
  $("snapshot-progress").hidden = !on;
}

function showProgress(p) {
  const bar = $("snapshot-progress");
  if (p.total) { bar.max = p.total; bar.value = Math.min(p.received, p.total); } else bar.removeAttribute("value");
  bar.dataset.list = p.list;
  message("", t("chk_progress", [listName(p.list), String(p.received), String(p.total ?? "?")]), "running");
}

function outcomeText(r) {
  if (r.outcome === "done") return ["ok", t(r.incremental ? "chk_done_incremental" : "chk_done")];
  if (r.outcome === "cancelled") return ["warning", t("chk_cancelled")];
  if (r.outcome === "no-access") return ["error", t("opt_no_access", [r.host])];
  return ["error", t(`chk_failed_${key(r.problem)}`, [listName(r.list), String(r.page), String(r.httpStatus ?? "")])];
}

async function download(readForm, askAccess = true) {
  // Asked within the click: Firefox grants host access only on a user gesture.
  const pattern = askAccess ? core.originPattern($("server").value) : null;
  const access = pattern ? browser.permissions.request({ origins: [pattern] }).catch(() => false) : Promise.resolve(false);
  running(true);
  message("", t("chk_starting"), "running");
  try {
    await access;
    const r = await core.downloadChecks(readForm(), showProgress, $("snapshot-full").checked);
    const [kind, text] = outcomeText(r);
    message(kind, text, r.outcome);
    $("snapshot-message").dataset.pull = r.outcome === "done" ? (r.incremental ? "incremental" : "full") : "";
    // Asked for once: the next download reads only the changes again.
    if (r.outcome === "done") $("snapshot-full").checked = false;
  } catch (error) {
    const text = error?.kind === "invalid-form" ? t("chk_form_first") : errorMessage(error);
    message("error", text, "error");
  } finally {
    // The status first: the buttons come back once the page says what is stored.
    await refreshStatus();
    running(false);
  }
}

async function remove() {
  try {
    await core.deleteChecks();
    message("ok", t("chk_deleted"), "deleted");
  } catch (error) {
    message("error", errorMessage(error), "error");
  }
  await refreshStatus();
}

// The balance limit is stored when the field is left (Enter or Tab).
async function saveLimit() {
  const out = $("balance-limit-message");
  try {
    $("balance-limit").value = await core.saveBalanceLimit($("balance-limit").value);
    $("balance-limit").removeAttribute("aria-invalid");
    out.dataset.kind = "ok";
    out.textContent = t("chk_limit_saved");
  } catch (error) {
    $("balance-limit").setAttribute("aria-invalid", "true");
    out.dataset.kind = "error";
    out.textContent = errorMessage(error);
  }
}

// After a connection test that reached Koha: download again when the snapshot is old enough.
export async function downloadIfDue(readForm) {
  let due = false;
  try {
    due = !$("snapshot-download").disabled && await core.checksDownloadDue();
  } catch {
    // An unreadable snapshot is the status line's to say; the test itself went well.
  }
  $("auto-download-hours").dataset.due = String(due);
  if (!due) return;
  $("snapshot-message").dataset.auto = "true";
  await download(readForm, false);
}

async function saveAutoHours() {
  const out = $("auto-download-message");
  try {
    $("auto-download-hours").value = String(await core.saveAutoDownloadHours($("auto-download-hours").value));
    $("auto-download-hours").removeAttribute("aria-invalid");
    out.dataset.kind = "ok";
    out.textContent = t("chk_auto_saved");
  } catch (error) {
    $("auto-download-hours").setAttribute("aria-invalid", "true");
    out.dataset.kind = "error";
    out.textContent = errorMessage(error);
  }
}

// Forgetting the credentials leaves the snapshot: say so next to its delete button.
function offerDelete() {
  if ($("snapshot-status").dataset.snapshot === "none") return;
  message("warning", t("chk_forget_offer"), "offer-delete");
}

export async function wireChecks(readForm) {
  $("balance-limit").addEventListener("change", saveLimit);
  $("auto-download-hours").addEventListener("change", saveAutoHours);
  $("forget-credentials").addEventListener("click", offerDelete);
  // Another page stored or deleted a snapshot.
  browser.storage.onChanged.addListener((changes, area) => {
    if (area === "local" && core.checksChanged(changes) && !$("snapshot-download").disabled) refreshStatus();
  });
  try {
    $("balance-limit").value = await core.balanceLimit();
  } catch (error) {
    $("balance-limit-message").textContent = errorMessage(error);
  }
  try {
    $("auto-download-hours").value = String(await core.autoDownloadHours());
  } catch (error) {
    $("auto-download-message").textContent = errorMessage(error);
  }
  $("snapshot-download").addEventListener("click", () => { delete $("snapshot-message").dataset.auto; download(readForm); });
  $("snapshot-cancel").addEventListener("click", () => core.cancelChecksDownload());
  $("snapshot-delete").addEventListener("click", remove);
  await refreshStatus();
}
