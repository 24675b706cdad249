// The notice about stored entries that could not be read (kept aside under `quarantine:` keys,
// unchanged). Shown at every start while they exist, so nobody clears the browser's data unaware
// that it holds transactions the desk cannot show.
import { t } from "../lib/i18n.js";

// Shows `#storage-quarantine` after the setup note for `openDesk()`'s `{count, keys}`.
export function showQuarantine({ count, keys }) {
  document.getElementById("storage-quarantine")?.remove();
  if (!count) return;
  const note = document.createElement("p");
  note.id = "storage-quarantine";
  note.className = "note";
  note.setAttribute("role", "alert");
  note.dataset.count = String(count);
  note.title = keys.join("\n");
  note.textContent = count === 1
    ? t("storageQuarantineOne")
    : t("storageQuarantineMany", [String(count)]);
  document.getElementById("setup-note").after(note);
}
