// Keeps the toolbar badge equal to the number of transactions Koha has not accepted yet (empty
// at 0). The core reads the store of record once, then only the keys each storage change names;
// this script knows nothing of the storage layout.
//
// Changes are applied in batches at most every BADGE_EVERY_MS: a send run writes storage many
// times a second, and applying each write and setting the badge for it ran on the same thread
// as the desk page's run (a few percent of its time).
const BADGE_EVERY_MS = 250;
let core = null;
const pending = [];
let timer = null;

function showBadge(count) {
  browser.action.setBadgeText({ text: count ? String(count) : "" });
}

function applyPending() {
  timer = null;
  if (!core || pending.length === 0) return;
  let count = null;
  for (const changes of pending.splice(0)) count = core.badgeApply(changes);
  showBadge(count);
}

// Registered synchronously, so a change that wakes this event page is not missed; changes that
// arrive while the core loads are applied after the first full read.
browser.storage.onChanged.addListener((changes, area) => {
  if (area !== "local") return;
  pending.push(changes);
  if (core && timer === null) timer = setTimeout(applyPending, BADGE_EVERY_MS);
});

import("./lib/wasm.js").then(async (module) => {
  const loaded = module.core;
  let count = await loaded.badgeOpen();
  for (const changes of pending.splice(0)) count = loaded.badgeApply(changes);
  core = loaded;
  showBadge(count);
});
