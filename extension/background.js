// Keeps the toolbar badge equal to the number of transactions Koha has not accepted yet (empty
// at 0). The core reads the store of record once, then only the keys each storage change names;
// this script knows nothing of the storage layout.
let core = null;
const pending = [];

function showBadge(count) {
  browser.action.setBadgeText({ text: count ? String(count) : "" });
}

// Registered synchronously, so a change that wakes this event page is not missed; changes that
// arrive while the core loads are applied after the first full read.
browser.storage.onChanged.addListener((changes, area) => {
  if (area !== "local") return;
  if (core) showBadge(core.badgeApply(changes));
  else pending.push(changes);
});

import("./lib/wasm.js").then(async (module) => {
  const loaded = module.core;
  let count = await loaded.badgeOpen();
  for (const changes of pending.splice(0)) count = loaded.badgeApply(changes);
  core = loaded;
  showBadge(count);
});
