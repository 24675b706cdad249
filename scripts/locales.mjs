// Builds _locales/<lang>/messages.json from i18n/<lang>/*.json (one file per feature, so parallel
// work does not collide) and fails when a language lacks a key that English has, or has extra ones.
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [source, target] = process.argv.slice(2);
const languages = readdirSync(source).sort();
const merged = {};
for (const lang of languages) {
  merged[lang] = {};
  for (const file of readdirSync(join(source, lang)).filter((f) => f.endsWith(".json")).sort()) {
    const part = JSON.parse(readFileSync(join(source, lang, file), "utf8"));
    for (const [key, entry] of Object.entries(part)) {
      if (key in merged[lang]) throw new Error(`${lang}: key ${key} defined twice (${file})`);
      if (!entry.message) throw new Error(`${lang}/${file}: ${key} has no message`);
      if (lang === "en" && !entry.description) throw new Error(`en/${file}: ${key} has no description`);
      merged[lang][key] = entry;
    }
  }
}
const reference = Object.keys(merged.en);
const problems = [];
for (const lang of languages) {
  const keys = new Set(Object.keys(merged[lang]));
  for (const key of reference) if (!keys.has(key)) problems.push(`${lang}: missing ${key}`);
  for (const key of keys) if (!reference.includes(key)) problems.push(`${lang}: extra ${key}`);
  for (const key of reference) {
    const want = (merged.en[key].message.match(/\$[A-Z_]+\$/g) || []).sort().join();
    const have = (merged[lang][key]?.message.match(/\$[A-Z_]+\$/g) || []).sort().join();
    if (keys.has(key) && want !== have) problems.push(`${lang}: ${key} placeholders ${have} ≠ ${want}`);
  }
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
for (const lang of languages) {
  mkdirSync(join(target, "_locales", lang), { recursive: true });
  writeFileSync(join(target, "_locales", lang, "messages.json"), JSON.stringify(merged[lang], null, 2));
}
console.log(`locales: ${languages.join(", ")} complete (${reference.length} keys each)`);
