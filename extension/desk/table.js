// The transactions table: one page at a time (the core returns only the page), counts, pager.
import { t, tOr, language } from "../lib/i18n.js";

const STATUSES = ["local", "sending", "queued", "applied", "rejected", "failed", "uncertain"];
const $ = (id) => document.getElementById(id);

function cell(text, title) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (title) td.title = title;
  return td;
}

// The time as toLocaleString writes it, its date and its time each kept on one line: a narrow
// table may wrap between them. The formats are made once (toLocaleString makes one per call).
const DATE = { year: "numeric", month: "numeric", day: "numeric" };
const CLOCK = { hour: "numeric", minute: "numeric", second: "numeric" };
let timeFormats = null;

function whole(text) {
  return Object.assign(document.createElement("span"), { className: "whole", textContent: text });
}

function timeCell(time) {
  timeFormats ??= [{ ...DATE, ...CLOCK }, DATE, CLOCK]
    .map((options) => new Intl.DateTimeFormat(language(), options));
  const [full, date, clock] = timeFormats.map((f) => f.format(time));
  const td = cell("", time.toISOString());
  if (full.startsWith(date) && full.endsWith(clock) && full.length > date.length + clock.length) {
    td.append(whole(date), full.slice(date.length, full.length - clock.length), whole(clock));
  } else {
    td.append(whole(full));
  }
  return td;
}

function answerText(row) {
  if (!row.answerKey) return row.answer;
  const translated = tOr(`answer_${row.answerKey.replaceAll("-", "_")}`, "");
  if (!translated) return row.answer;
  return row.answer ? t("answerWithOriginal", [translated, row.answer]) : translated;
}

export function amountText(amount) {
  if (!amount) return "";
  const options = { minimumFractionDigits: 2, maximumFractionDigits: 2 };
  return Number(amount).toLocaleString(language(), options);
}

function rowElement(row, onDelete) {
  const tr = document.createElement("tr");
  Object.assign(tr.dataset, { id: row.id, action: row.action, status: row.status });
  const time = new Date(row.recordedAt);
  tr.append(
    timeCell(time),
    cell(t(`action_${row.action}`)),
    cell(row.cardnumber),
    cell(row.barcode),
    cell(amountText(row.amount)),
    cell(row.exported ? t("statusExported", [t(`status_${row.status}`)]) : t(`status_${row.status}`)),
    cell(answerText(row)),
  );
  tr.cells[5].className = "status";
  tr.cells[6].className = "answer";
  const td = document.createElement("td");
  if (row.deletable) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.role = "delete";
    button.className = "delete";
    button.textContent = "✕";
    const what = [t(`action_${row.action}`), row.barcode ?? row.cardnumber].join(" ");
    button.title = button.ariaLabel = t("deleteRow", [what]);
    button.addEventListener("click", () => onDelete(row));
    td.append(button);
  }
  tr.append(td);
  return tr;
}

// The rows last rendered, by what they show. A send re-renders the page four times a second
// and changes a few of its rows; building a row (translations, date formats) cost more than the
// send's own work per transaction against a fast Koha, so unchanged rows are kept as they are.
// (`onDelete` is the same function for every render.)
let rendered = new Map();

// Puts `rows` into `body` in order, moving only what is out of place: a scan adds one row at
// the top and drops one at the bottom, and taking out and putting back the other 49 made
// Firefox rebuild their layout (an eighth of the desk's work for a scan).
function placeRows(body, rows) {
  let next = body.firstElementChild;
  for (const tr of rows) {
    if (tr === next) next = next.nextElementSibling;
    else body.insertBefore(tr, next);
  }
  while (next) {
    const gone = next;
    next = next.nextElementSibling;
    gone.remove();
  }
}

// Renders a page from core.listPage(): rows, counts and the pager.
export function renderPage(page, pageSize, onDelete) {
  const rows = page.rows.map((row) => {
    const key = JSON.stringify(row);
    return [key, rendered.get(key) ?? rowElement(row, onDelete)];
  });
  rendered = new Map(rows);
  placeRows($("transactions").tBodies[0], rows.map(([, tr]) => tr));
  $("count-unsent").textContent = page.counts.notAccepted;
  const parts = STATUSES.filter((s) => page.counts[s] > 0)
    .map((s) => `${t(`status_${s}`)}: ${page.counts[s]}`);
  $("counts").textContent = parts.join(" · ");
  $("empty-note").hidden = page.total > 0;
  const last = Math.min(page.offset + page.rows.length, page.total);
  $("page-info").textContent = page.total
    ? t("pageInfo", [String(page.offset + 1), String(last), String(page.total)]) : "";
  $("page-prev").disabled = page.offset === 0;
  $("page-next").disabled = last >= page.total;
}
