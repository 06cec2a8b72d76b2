/** Messages between the pool (pool.ts) and a record worker (worker.ts). */

export type ToWorker =
  | { t: "open"; sid: number; kind: string; init: unknown }
  | { t: "unit"; sid: number; seq: number; payload: unknown; id?: number }
  | { t: "end"; sid: number; seq: number; id?: number };

export type ToMain =
  | { t: "done"; id: number; result: unknown }
  | { t: "fail"; id: number; error: WorkerFailure };

/** An error thrown in a worker: a RunError keeps its kind, message and details. */
export interface WorkerFailure {
  name: string;
  kind?: string;
  message: string;
  details?: Record<string, unknown>;
}

/** What a unit's handler returns: its result, and the buffers in it to transfer (not copy). */
export interface UnitOutput<R> {
  result: R;
  transfer?: ArrayBuffer[];
}

/**
 * One kind of session a worker runs (worker.ts registers them by name): `open` builds the
 * session's state from its init (structured-cloned), `unit` handles one unit in order, `end`
 * returns the session's final summary. A unit that throws fails the session: later units reject
 * with the same error.
 */
export interface SessionKind<I, S, P, R, F> {
  open(init: I): S;
  unit(state: S, payload: P): UnitOutput<R> | Promise<UnitOutput<R>>;
  end(state: S): F;
}
