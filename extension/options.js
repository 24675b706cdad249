import { translatePage } from "./lib/i18n.js";

translatePage();
document.getElementById("app").dataset.ready = "true";
