// Export and import of .koc files, and the two clears. Export and import run in a tab: Firefox
// closes the popup when a file dialog opens.
import { core } from "../lib/wasm.js";
import { t, errorMessage } from "../lib/i18n.js";
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

export async function exportFiles() {
  try {
    const files = await core.exportKoc();
    if (!files.length) return say("warning", t("exportNothing"));
    for (const file of files) download(file.name, file.text);
    const count = files.reduce((n, f) => n + f.count, 0);
    say("ok", t("exported", [String(count), files.map((f) => f.name).join(", ")]));
  } catch (error) {
    say("error", errorMessage(error));
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
      basis = report.basis === "utc" ? "server-zone" : "utc";
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

export async function clearAll(counts, inTab) {
  if (!counts.total) return say("warning", t("clearNothing"));
  const body = [t("clearAllBody", [String(counts.total)])];
  if (counts.notAccepted) body.push(t("clearAllUnsent", [String(counts.notAccepted)]));
  body.push(t("storageRemovalWarning"));
  const answer = await ask({
    kind: "clear-all", title: t("clearAllTitle"), body, ok: t("clearAllOk"),
    cancel: t("deskCancel"), extra: counts.notAccepted && inTab ? t("exportFirst") : undefined,
    focus: "cancel",
  });
  if (answer === "extra") return exportFiles();
  if (!answer) return say("warning", t("clearCancelled"));
  try {
    say("ok", t("clearedAll", [String(await core.clearAll())]));
  } catch (error) {
    say("error", errorMessage(error));
  }
}
