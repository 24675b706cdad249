// Options page: wires the form to the core (src/web/options.rs). Rules and validation live there.
import { core } from "./lib/wasm.js";
import { language, t, translatePage } from "./lib/i18n.js";
import { wireChecks, showAvailability, downloadIfDue } from "./options-checks.js";

const $ = (id) => document.getElementById(id);
const FIELDS = ["server", "branchcode", "userid", "password", "mode", "timezone"];
const CHECKS = { rememberPassword: "remember-password", loginOnce: "login-once", sounds: "sounds" };
const key = (text) => text.replaceAll("-", "_").toLowerCase();

// The action bar sticks to the bottom and grows with its message: a field scrolled into view
// (by Tab, or by a jump to an error) stops above it, not under it.
new ResizeObserver(([entry]) => {
  const height = Math.ceil(entry.target.getBoundingClientRect().height);
  document.documentElement.style.setProperty("--sticky-bottom", `${height}px`);
}).observe(document.querySelector(".actions"));

function readForm() {
  const form = Object.fromEntries(FIELDS.map((id) => [id, $(id).value]));
  for (const [name, id] of Object.entries(CHECKS)) form[name] = $(id).checked;
  form.inFlight = Number($("in-flight").value);
  return form;
}

function showForm(view) {
  for (const id of FIELDS) $(id).value = view.form[id] ?? "";
  for (const [name, id] of Object.entries(CHECKS)) $(id).checked = view.form[name];
  $("in-flight").value = String(view.form.inFlight);
  for (const id of view.locked) {
    $(id).disabled = true;
    $(`${id}-locked`).hidden = false;
  }
  showPasswordKept(view.passwordKept);
  $("remember-note").hidden = !$("remember-password").checked;
}

function showPasswordKept(kept) {
  $("password").value = "";
  $("password-kept").textContent = t(`opt_password_kept_${key(kept)}`);
}

function say(kind, lines, data = {}) {
  const out = $("options-message");
  out.dataset.kind = kind;
  for (const name of ["outcome", "transport", "problem", "sessionReuse"]) delete out.dataset[name];
  Object.assign(out.dataset, data);
  out.textContent = lines.filter(Boolean).join(" ");
}

function markErrors(fields = []) {
  for (const id of FIELDS) {
    $(id).removeAttribute("aria-invalid");
    $(`${id}-error`).hidden = true;
    delete $(`${id}-error`).dataset.kind;
  }
  for (const e of fields) {
    $(e.field).setAttribute("aria-invalid", "true");
    $(`${e.field}-error`).textContent =
      browser.i18n.getMessage(`opt_err_${key(e.field)}_${key(e.kind)}`) || `${t("opt_err_other")} (${e.detail})`;
    $(`${e.field}-error`).dataset.kind = e.kind;
    $(`${e.field}-error`).hidden = false;
  }
  if (fields.length) $(fields[0].field).focus();
}

function showFailure(error) {
  if (error?.kind === "invalid-form") {
    markErrors(error.fields);
    say("error", [t("opt_invalid", [String(error.fields.length)])]);
  } else {
    say("error", [t("opt_storage_failed"), error?.detail ?? String(error)]);
  }
}

// Asks Firefox for the server's origin. Must run synchronously inside the click (user gesture).
function requestAccess() {
  const pattern = core.originPattern($("server").value);
  return pattern ? browser.permissions.request({ origins: [pattern] }).catch(() => false) : Promise.resolve(false);
}

async function save(event) {
  const access = requestAccess();
  event.preventDefault();
  markErrors();
  try {
    const saved = await core.saveOptions(readForm());
    $("server").value = saved.server;
    $("branchcode").value = saved.branchcode;
    showPasswordKept(saved.passwordKept);
    say("ok", [t("opt_saved")]);
    if (!(await access)) say("warning", [t("opt_saved"), t("opt_no_access", [saved.host])]);
  } catch (error) {
    showFailure(error);
  }
}

function testLines(r) {
  const reuseFailed = ["missing-permission", "unavailable"].includes(r.sessionReuse);
  if (r.outcome === "works") return [t(`opt_test_works_${key(r.transport)}`), reuseFailed && t(`opt_reuse_${key(r.sessionReuse)}`)];
  if (r.outcome === "no-access") return [t("opt_no_access", [r.host])];
  return [t(`opt_test_${key(r.problem)}`, [r.host, String(r.httpStatus ?? "")])];
}

// The clock warning: both times in the page's language, shown only when the clock is off.
function showClock(clock = { state: "" }) {
  const out = $("options-clock");
  const off = clock.state === "desk-ahead" || clock.state === "desk-behind";
  const when = (ms) => new Intl.DateTimeFormat(language(), { dateStyle: "medium", timeStyle: "medium" }).format(ms);
  Object.assign(out.dataset, { state: clock.state, desk: clock.desk ?? "", koha: clock.koha ?? "" });
  out.textContent = off ? t(`opt_clock_${key(clock.state)}`, [when(clock.desk), when(clock.koha)]) : "";
  out.hidden = !off;
}

// What Koha said of the library code (known, unknown, or it could not say), after a test.
function showLibrary(library) {
  const out = $("options-library");
  out.classList.toggle("warning", library?.state === "unknown");
  out.setAttribute("role", library?.state === "unknown" ? "alert" : "status");
  out.textContent = library ? t(`opt_library_${library.state}`, [library.code, library.name ?? ""]) : "";
  out.hidden = !library;
}

async function testConnection() {
  const access = requestAccess();
  markErrors();
  showClock();
  showLibrary(null);
  showAvailability(null);
  say("", [t("opt_testing")]);
  delete $("options-message").dataset.kind;
  $("test-connection").disabled = true;
  try {
    await access;
    const r = await core.testConnection(readForm());
    showClock(r.clock);
    showLibrary(r.library);
    showAvailability(r.checks);
    say(r.level, testLines(r), { outcome: r.outcome, transport: r.transport ?? "", problem: r.problem ?? "", sessionReuse: r.sessionReuse });
    if (r.outcome === "works") downloadIfDue(readForm);
  } catch (error) {
    showFailure(error);
  } finally {
    $("test-connection").disabled = false;
  }
}

async function forget() {
  markErrors();
  try {
    await core.forgetCredentials();
    $("userid").value = "";
    $("remember-password").checked = false;
    $("remember-note").hidden = true;
    showPasswordKept("none");
    say("ok", [t("opt_forgotten")]);
  } catch (error) {
    showFailure(error);
  }
}

translatePage();
$("timezones").append(...["UTC", ...Intl.supportedValuesOf("timeZone")].map((zone) => new Option(zone)));
$("options-form").addEventListener("submit", (event) => event.preventDefault());
$("save").addEventListener("click", save);
$("test-connection").addEventListener("click", testConnection);
$("forget-credentials").addEventListener("click", forget);
browser.storage.onChanged.addListener((changes, area) => area === "local" && core.optionsStorageChanged(changes));
$("remember-password").addEventListener("change", () => { $("remember-note").hidden = !$("remember-password").checked; });
try {
  const view = await core.openOptions();
  showForm(view);
  if (view.access === false) say("warning", [t("opt_no_access", [view.host])]);
} catch (error) {
  showFailure(error);
}
await wireChecks(readForm);
$("app").dataset.ready = "true";
