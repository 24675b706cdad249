// The offline checks at the desk: the core keeps its copy of the stored snapshot (read at start
// and again whenever the options page stores or deletes one); this module only says what a
// check that fired means, in the page's language.
import { core } from "../lib/wasm.js";
import { language, t } from "../lib/i18n.js";
import { say } from "./feedback.js";

// A calendar day from Koha ("2025-01-31", no time): JS reads it as midnight UTC, so it is shown
// in UTC too, or west of Greenwich it would be the day before.
const day = (text) => text ? new Intl.DateTimeFormat(language(), { dateStyle: "medium", timeZone: "UTC" }).format(new Date(text)) : "";
const money = (cents) => cents == null ? "" : new Intl.NumberFormat(language(), { minimumFractionDigits: 2 }).format(cents / 100);

export function checkText(c) {
  const subs = [day(c.on ?? c.until), c.cardnumber ?? t("check_holder_unknown"), money(c.balance_cents), money(c.limit_cents)];
  const until = c.kind === "restricted" && c.until ? "_until" : "";
  return t(`check_${c.kind.replaceAll("-", "_")}${until}`, subs);
}

// How old the snapshot behind the checks is, with the date and time it was read.
export function ageText(age) {
  const when = new Intl.DateTimeFormat(language(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(age.takenAt));
  return t("check_age", [t(`age_${age.unit}`, [String(age.amount)]), when]);
}

// A payment shows the balance the snapshot holds for the card typed.
export function showPaymentBalance() {
  const out = document.getElementById("payment-balance");
  const found = core.paymentBalance(document.getElementById("payment-cardnumber").value);
  out.hidden = !found;
  out.dataset.balanceCents = found ? String(found.balanceCents) : "";
  out.textContent = found ? `${t("check_payment_balance", [money(found.balanceCents)])} ${ageText(found.age)}` : "";
}

async function load() {
  try {
    await core.loadChecks();
  } catch (error) {
    say("warning", `${t("check_snapshot_unreadable")} (${error?.detail ?? error})`);
  }
  showPaymentBalance();
  document.getElementById("app").dataset.checksLoaded = "true";
}

// After a send run Koha answered to its end, the core downloads the snapshot again when it is
// due; the desk reloads it through storage.onChanged. Nothing is said unless it failed.
async function downloadAfterSend(event) {
  if (!event.detail?.kohaAnswered) return;
  const marker = document.getElementById("message");
  try {
    const r = await core.downloadChecksIfDue();
    marker.dataset.checksAuto = r.outcome;
    if (r.outcome !== "done" && r.outcome !== "not-due") say("warning", t("check_auto_failed"));
  } catch (error) {
    marker.dataset.checksAuto = "error";
    say("warning", t("check_auto_failed"));
  }
}

export async function startChecks() {
  document.addEventListener("koc:send-finished", downloadAfterSend);
  document.getElementById("payment-cardnumber").addEventListener("input", showPaymentBalance);
  browser.storage.onChanged.addListener((changes, area) => {
    if (area === "local" && core.checksChanged(changes)) load();
  });
  await load();
}
