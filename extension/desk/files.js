// Export and import of .koc files, and the two clears. Export and import run in a tab: Firefox
// closes the popup when a file dialog opens.
import { core } from "../lib/wasm.js";
import { t, errorMessage, language } from "../lib/i18n.js";
import { ask } from "../lib/confirm.js";
import { say } from "./feedback.js";

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// The question before exporting rows again, or uncertain ones (the core says which and how
// many); resolves true for "export them". #confirm carries data-count and data-payments.
function askExport(question) {
  const { kind, count, payments } = question;
  Object.assign(document.getElementById("confirm").dataset, { count, payments });
  const n = String(count);
  if (kind === "already-exported") {
    const when = new Date(question.at)
      .toLocaleString(language(), { dateStyle: "medium", timeStyle: "short" });
    const body = [t("exportAgainBody", [n, when])];
    if (payments) body.push(t("exportAgainPayments", [String(payments)]));
    return ask({ kind: "export-already-exported", title: t("exportAgainTitle"), body,
      ok: t("exportAgainOk"), cancel: t("exportLeaveOut"), focus: "cancel" });
  }
  const body = [t("exportUncertainBody", [n])];
  if (payments) body.push(t("exportUncertainPayments", [String(payments)]));
  return ask({ kind: "export-uncertain", title: t("exportUncertainTitle"), body,
    ok: t(payments ? "exportUncertainPaymentOk" : "exportUncertainOk"),
    cancel: t("exportLeaveOut"), focus: "cancel" });
}

// Exports what the core takes, asking its questions first (each answer stands for exactly the
// question asked; a changed question is asked again). A decline leaves those rows out. The core
// refuses while a send goes on in any tab: its rows may be reaching Koha right now.
export async function exportFiles() {
  try {
    const answers = { confirmed: [], declined: [] };
    let result = await core.exportKoc(answers);
    while (result.questions) {
      for (const q of result.questions) (await askExport(q) ? answers.confirmed : answers.declined).push(q);
      result = await core.exportKoc(answers);
    }
    const { files, leftOut, level } = result;
    for (const file of files) download(file.name, file.text);
    const notes = ["alreadyExported", "uncertain", "rejected", "sending"]
      .filter((reason) => leftOut[reason] > 0)
      .map((reason) => t(`exportLeftOut_${reason}`, [String(leftOut[reason])]));
    if (!files.length) {
      return say(level, [t(notes.length ? "exportNone" : "exportNothing"), ...notes].join(" "));
    }
    const count = files.reduce((n, f) => n + f.count, 0);
    const done = t("exported", [String(count), files.map((f) => f.name).join(", ")]);
    say(level, [done, ...notes].join(" "));
  } catch (error) {
    if (error?.kind === "send-running-elsewhere") say("warning", t("exportWhileSending"));
    else say("error", errorMessage(error));
  }
}

function reportLines(report) {
  const lines = [t("importGood", [String(report.good)])];
  if (report.duplicates) lines.push(t("importDuplicates", [String(report.duplicates)]));
  lines.push(t(report.basis === "utc" ? "importBasisUtc" : "importBasisServer", [report.zone]));
  for (const w of report.warnings) {
    const text = t(`importWarning_${w.kind.replaceAll("-", "_")}`, [w.value ?? ""]);
    lines.push(w.line ? t("importLine", [String(w.line), text]) : text);
  }
  for (const e of report.errors) {
    const text = e.value ? t("importValue", [errorMessage(e), e.value]) : errorMessage(e);
    lines.push(t("importLine", [String(e.line), text]));
  }
  return lines;
}

export async function importFile(input) {
  const file = input.files[0];
  input.value = "";
  if (!file) return;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    let basis;
    let ok = "extra";
    while (ok === "extra") {
      const report = core.readImport(bytes, basis);
      const { good, duplicates, errors } = report;
      Object.assign(document.getElementById("confirm").dataset,
        { good, duplicates, errors: errors.length, basis: report.basis });
      basis = report.otherBasis;
      ok = await ask({
        kind: "import-report", title: t("importTitle", [file.name]), body: reportLines(report),
        ok: t("importOk", [String(report.good)]), cancel: t("deskCancel"),
        extra: t(basis === "utc" ? "importReadUtc" : "importReadServer"),
        focus: report.good ? "ok" : "cancel",
      });
    }
    if (!ok) {
      core.cancelImport();
      return say("warning", t("importCancelled"));
    }
    say("ok", t("imported", [String(await core.commitImport())]));
  } catch (error) {
    say("error", errorMessage(error));
  }
}

export async function clearSent() {
  try {
    say("ok", t("clearedSent", [String(await core.clearSent())]));
  } catch (error) {
    say("error", errorMessage(error));
  }
}

// Asks with the core's question and passes the answered one back: if the rows changed meanwhile
// (another tab recorded, deleted or sent), the core deletes nothing and gives the new question.
export async function clearAll(inTab) {
  let question = core.clearAllQuestion();
  let changed = false;
  for (;;) {
    if (!question) return say("warning", t("clearNothing"));
    const body = changed ? [t("clearAllChanged")] : [];
    body.push(t("clearAllBody", [String(question.total)]));
    if (question.notAccepted) body.push(t("clearAllUnsent", [String(question.notAccepted)]));
    body.push(t("storageRemovalWarning"));
    const answer = await ask({
      kind: "clear-all", title: t("clearAllTitle"), body, ok: t("clearAllOk"),
      cancel: t("deskCancel"), extra: question.notAccepted && inTab ? t("exportFirst") : undefined,
      focus: "cancel",
    });
    if (answer === "extra") return exportFiles();
    if (!answer) return say("warning", t("clearCancelled"));
    try {
      const result = await core.clearAll(question);
      if (!("askAgain" in result)) return say("ok", t("clearedAll", [String(result.cleared)]));
      question = result.askAgain;
      changed = true;
    } catch (error) {
      return say("error", errorMessage(error));
    }
  }
}
