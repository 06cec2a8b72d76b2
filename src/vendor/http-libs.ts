// undici's Pool: only the Pool, its request API and what they need. undici's index also loads
// fetch, WebSocket, caches and proxies, three times the code to read (and bundle) for every run.
import type { Pool as UndiciPool } from "undici";
import api from "undici/lib/api/index.js";
import Dispatcher from "undici/lib/dispatcher/dispatcher.js";
import _Pool from "undici/lib/dispatcher/pool.js";

// What undici's index does: `request`, `stream`, … are methods of every dispatcher.
Object.assign(Dispatcher.prototype, api);

export const Pool = _Pool as typeof UndiciPool;
export type Pool = UndiciPool;
