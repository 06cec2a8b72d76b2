// undici's Pool, bundled into one file by the build (scripts/bundle-vendor.mjs). Only the Pool,
// its request API and what they need: undici's index also loads fetch, WebSocket, caches and
// proxies, three times the code to read at every run. From sources (tests, tsx) it is the same
// modules, unbundled.
import type { Pool as UndiciPool } from "undici";
import api from "undici/lib/api/index.js";
import Dispatcher from "undici/lib/dispatcher/dispatcher.js";
import _Pool from "undici/lib/dispatcher/pool.js";

// What undici's index does: `request`, `stream`, … are methods of every dispatcher.
Object.assign(Dispatcher.prototype, api);

export const Pool = _Pool as typeof UndiciPool;
export type Pool = UndiciPool;
