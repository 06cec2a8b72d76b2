// undici's Pool: only the Pool, its request API and what they need. undici's index also loads
// fetch, WebSocket, caches and proxies, three times the code to read (and bundle) for every run.
import type { Dispatcher as UndiciDispatcher, Pool as UndiciPool } from "undici";
import api from "undici/lib/api/index.js";
import Dispatcher from "undici/lib/dispatcher/dispatcher.js";
import _Pool from "undici/lib/dispatcher/pool.js";

// What undici's index does: `request`, `stream`, … are methods of every dispatcher.
Object.assign(Dispatcher.prototype, api);

export const Pool = _Pool as typeof UndiciPool;
export type Pool = UndiciPool;

/**
 * `pool.request(opts)`, plus `onSent`: called once undici has written the whole request on the
 * socket (its `onRequestSent` handler hook, right after the write), never for a request that does
 * not get that far (it fails or is aborted first). The request is undici's own `request()`; only
 * the handler it dispatches gets the hook.
 */
export function requestSent(
  pool: Pool,
  opts: UndiciDispatcher.RequestOptions,
  onSent: () => void,
): Promise<UndiciDispatcher.ResponseData> {
  const dispatcher = {
    dispatch: (o: UndiciDispatcher.DispatchOptions, handler: { onRequestSent?: () => void }) => {
      handler.onRequestSent = onSent;
      return pool.dispatch(o, handler as UndiciDispatcher.DispatchHandler);
    },
  };
  return api.request.call(dispatcher, opts) as Promise<UndiciDispatcher.ResponseData>;
}
