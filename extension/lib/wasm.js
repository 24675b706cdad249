// Loads the WASM core once per page; every page imports `core` from here.
//
// A write the store of record refuses leaves the transaction in memory and in the mirror, and
// the core counts it unsaved. After every call that awaited storage, the page's one handler
// (`whenUnsaved`, set by storage-sync.js: the blocking dialog and its retries) hears of any
// unsaved transaction, whichever call it came from; the failure is a value, not an event.
import init, * as wasm from "../pkg/koha_offline_circ.js";

await init();

let onUnsaved = () => {};
export function whenUnsaved(handler) { onUnsaved = handler; }

function checked(call) {
  return (...args) => {
    const result = call(...args);
    if (!(result instanceof Promise)) return result;
    const check = (detail) => { if (wasm.unsavedCount() > 0) onUnsaved(detail); };
    return result.then(
      (value) => { check(); return value; },
      (error) => { check(error?.detail); throw error; },
    );
  };
}

export const core = Object.fromEntries(Object.entries(wasm)
  .map(([name, value]) => [name, typeof value === "function" ? checked(value) : value]));
