// The one dialog the desk asks every question with (#confirm). Its element ids and data-*
// attributes are what the browser tests (tests/e2e) find it by: keep them stable.
// ask({kind, check, title, body, ok, cancel, extra, focus}) resolves true for OK, false for Cancel or
// Escape, and "extra" for the optional third button. `body` is a string or a list of lines;
// `focus: "cancel"` puts the focus on Cancel (a scanner's Enter then records nothing). `check`
// names the offline checks that fired (`data-check`, space-separated).
export function ask({ kind, check, title, body, ok, cancel, extra, focus }) {
  const dialog = document.getElementById("confirm");
  const button = (id) => dialog.querySelector(`#confirm-${id}`);
  dialog.dataset.kind = kind;
  if (check) dialog.dataset.check = check;
  else delete dialog.dataset.check;
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector("#confirm-body").replaceChildren(...[].concat(body).map((line) => {
    const p = document.createElement("p");
    p.textContent = line;
    return p;
  }));
  button("ok").textContent = ok;
  button("cancel").textContent = cancel;
  button("extra").textContent = extra ?? "";
  button("extra").hidden = !extra;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      dialog.close();
      delete dialog.dataset.kind;
      delete dialog.dataset.check;
      opener?.focus?.();
      resolve(answer);
    };
    // Escape closes the dialog. A close event queued by the previous question (which fires
    // after this one opened) is ignored: the dialog is open again by then.
    const onClose = () => { if (!dialog.open) done(false); };
    dialog.addEventListener("close", onClose);
    button("ok").onclick = () => done(true);
    button("cancel").onclick = () => done(false);
    button("extra").onclick = () => done("extra");
    dialog.showModal();
    button(focus === "cancel" ? "cancel" : "ok").focus();
  });
}
