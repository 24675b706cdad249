// Keeps the toolbar badge equal to the number of transactions Koha has not accepted yet.
const ACCEPTED = new Set(["queued", "applied"]);
const notAccepted = new Set();

function isTransactionKey(key) {
  return key.startsWith("tx:");
}

function currentStatus(value) {
  const history = value?.history ?? value?.transaction?.history;
  return history?.[history.length - 1]?.status;
}

function track(key, value) {
  if (value && !ACCEPTED.has(currentStatus(value))) notAccepted.add(key);
  else notAccepted.delete(key);
}

function showBadge() {
  const n = notAccepted.size;
  browser.action.setBadgeText({ text: n ? String(n) : "" });
}

browser.storage.onChanged.addListener((changes, area) => {
  if (area !== "local") return;
  for (const [key, change] of Object.entries(changes)) {
    if (isTransactionKey(key)) track(key, change.newValue);
  }
  showBadge();
});

const all = await browser.storage.local.get(null);
for (const [key, value] of Object.entries(all)) {
  if (isTransactionKey(key)) track(key, value);
}
showBadge();
