// The desk's early read: started from the page's head, so that Firefox reads storage while the
// page's modules and the core's .wasm load, instead of after them (docs/desk-start.md, the third
// step). The core's start takes what it finds here once (state.rs, `open`); a page without it
// reads as before.
//
// The order keeps the start's rules:
// - it listens to storage.onChanged before it reads, and keeps every batch until the page's
//   storage glue takes them (`listen`, storage-sync.js), in one synchronous step, so no batch is
//   heard twice or missed; the core keeps what it hears before its start for after it;
// - it asks for the send lock before it reads, as the core's start does, and holds it until the
//   core says the start's repairs are written (`release`): the read is as fresh as under the
//   lock. The lock's name is the core's SEND_LOCK (a test checks they agree). A page whose core
//   has not taken the read within UNTAKEN_MS (it failed to load) lets the lock go, so that it
//   does not keep the other pages from sending; the core then starts without it.
"use strict";

globalThis.kocEarlyRead = (() => {
  const UNTAKEN_MS = 10_000;
  const heard = [];
  let forward = null;
  browser.storage.onChanged.addListener((changes, area) => {
    if (area !== "local") return;
    if (forward) forward(changes);
    else heard.push(changes);
  });

  let unlock = () => {};
  let released = false;
  const release = () => {
    released = true;
    unlock();
  };
  // true: this page holds the send lock; false: another page does, or Web Locks are missing or
  // refuse (the start then recovers nothing, as the core's own start would).
  const locked = new Promise((granted) => {
    try {
      const holding = navigator.locks.request("koha-send", { ifAvailable: true }, (lock) => {
        granted(lock !== null);
        return lock && !released && new Promise((resolve) => { unlock = resolve; });
      });
      holding.catch(() => granted(false));
    } catch {
      granted(false);
    }
  });
  const read = locked.then(async (held) => {
    try {
      return { held, entries: await browser.storage.local.get(null) };
    } catch (error) {
      release();
      throw error;
    }
  });
  // Not "unhandled" while the page's modules load: the core takes the rejection.
  read.catch(() => {});
  let taken = false;
  setTimeout(() => { if (!taken) release(); }, UNTAKEN_MS);

  return {
    // The read, once: `held` says whether the send lock is still held for the core.
    take() {
      taken = true;
      return read.then(({ held, entries }) => ({ held: held && !released, entries }));
    },
    release,
    listen(handler) {
      for (const changes of heard.splice(0)) handler(changes);
      forward = handler;
    },
  };
})();
