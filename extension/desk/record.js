// Records desk forms one after the other (a promise chain), asking before recording what the
// journal warns about. A scanner may type faster than storage writes: nothing is lost.
import { core } from "../lib/wasm.js";
import { t, errorMessage } from "../lib/i18n.js";
import { ask } from "../lib/confirm.js";
import { say } from "./feedback.js";
import { amountText } from "./table.js";
import { checkText, ageText } from "./checks.js";

let queue = Promise.resolve();
let checkinNoted = false;

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
async function recordOne(form, restore, focusField, after) {
  try {
    let result = await core.record(form, null);
    // "Record anyway" stands for exactly the question asked: one that changed is asked again.
    while (!result.recorded) {
      say("warning", t("askingTitle"));
      const checks = result.checks ?? [];
      const body = [...result.warnings.map((w) => warningText(w, form)), ...checks.map(checkText)];
      if (checks.length) body.push(ageText(checks[0].age));
      const yes = await ask({
        kind: result.warnings[0]?.kind ?? "check", check: checks.map((c) => c.check).join(" "),
        title: t("askingTitle"), body,
        ok: t("recordAnyway"), cancel: t("dontRecord"), focus: "cancel",
      });
      if (!yes) return say("warning", t("notRecorded", [form.barcode || form.cardnumber]));
      result = await core.record(form, result.asked);
    }
    say("ok", recordedText(result.row));
  } catch (error) {
    say("error", errorMessage(error));
    // A failed storage write keeps the transaction (memory, mirror, retry): typing it again
    // would record it twice.
    if (error?.kind === "storage") return;
    restore();
    if (error?.field) focusField(error.field);
  } finally {
    after();
  }
}

// Holds every form recorded from now on until `promise` settles: the desk is ready before the
// offline checks' snapshot is read (megabytes with a large library), and a scan made meanwhile
// waits for it rather than going unchecked.
export function holdRecordsUntil(promise) {
  queue = queue.then(() => promise).catch(() => {});
}

// Queues a form behind the ones before it: scans are recorded in the order they were made.
export function queueRecord(form, restore, focusField, after) {
  queue = queue.then(() => recordOne(form, restore, focusField, after));
  return queue;
}
