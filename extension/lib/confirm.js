// The one dialog the desk asks every question with (#confirm, ui-contract.md).
// ask({kind, title, body, ok, cancel}) resolves true for OK, false for Cancel or Escape.
export function ask({ kind, title, body, ok, cancel }) {
  const dialog = document.getElementById("confirm");
  dialog.dataset.kind = kind;
  dialog.querySelector("#confirm-title").textContent = title;
  const text = dialog.querySelector("#confirm-body");
  text.replaceChildren(...[].concat(body).map((line) => {
    const p = document.createElement("p");
    p.textContent = line;
    return p;
  }));
  dialog.querySelector("#confirm-ok").textContent = ok;
  dialog.querySelector("#confirm-cancel").textContent = cancel;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      dialog.close();
      delete dialog.dataset.kind;
      resolve(answer);
    };
    const onClose = () => done(false);
    dialog.addEventListener("close", onClose);
    dialog.querySelector("#confirm-ok").onclick = () => done(true);
    dialog.querySelector("#confirm-cancel").onclick = () => done(false);
    dialog.showModal();
    dialog.querySelector("#confirm-ok").focus();
  });
}
