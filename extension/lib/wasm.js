// Loads the WASM core once per page; every page imports `core` from here.
import init, * as core from "../pkg/koha_offline_circ.js";

await init();

export { core };
