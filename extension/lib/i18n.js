// Fills every [data-i18n] element from _locales, and sets the page language.
// Translations without substitutions, as looked up once: the table asks for the same few
// hundreds of times a second during a send, and each lookup crosses into the browser.
const plain = new Map();

export function t(key, substitutions) {
  if (substitutions !== undefined) return browser.i18n.getMessage(key, substitutions) || key;
  let text = plain.get(key);
  if (text === undefined) {
    text = browser.i18n.getMessage(key) || key;
    plain.set(key, text);
  }
  return text;
}

// The translation of `key`, or `fallback` when there is none.
export function tOr(key, fallback, substitutions) {
  return browser.i18n.getMessage(key, substitutions) || fallback;
}

// The page language, e.g. `de` or `en-US`.
export function language() {
  return browser.i18n.getMessage("@@ui_locale").replace("_", "-");
}

export function translatePage(root = document) {
  document.documentElement.lang = language();
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) {
    el.title = t(el.dataset.i18nTitle);
  }
}

// Maps a core error `{kind, field}` to a translated sentence.
export function errorMessage(error) {
  if (error && error.kind) {
    const field = error.field ? t(`field_${error.field}`) : "";
    const text = browser.i18n.getMessage(`error_${error.kind.replaceAll("-", "_")}`, [field]);
    return text || `${t("error_unknown")} (${error.kind})`;
  }
  return `${t("error_unknown")} (${error})`;
}
