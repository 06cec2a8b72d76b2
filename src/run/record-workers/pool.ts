import { Worker } from "node:worker_threads";
import { interrupted, RunError, type RunErrorKind } from "../../shared/errors.js";
import type { ToMain, ToWorker, WorkerFailure } from "./protocol.js";

/**
 * A pool of record workers (worker_threads): "raw bytes in, serialized output out". The main
 * thread opens a session of a kind (worker.ts registers the kinds) with the session's plan (shape,
 * filter, record schema, output options: never headers, tokens or the redactor's secrets), then
 * submits units (a chunk of complete JSONL lines or CSV rows, one page body, …) with their
 * buffers transferred. A session's units run in submission order in ONE worker (its state, e.g. a
 * decoder and the stream's statistics, lives there); `spread` sessions run one state per worker
 * and their units round-robin. Either way results resolve strictly in submission order, at most
 * `maxInFlight` units are in flight per session (`room()` waits), a failure in the worker (a
 * thrown RunError keeps its kind, message and details; a crash is `internal`) rejects that unit
 * and every later one, and abort (the run's signal, Ctrl-C) terminates every thread.
 */
export class RecordWorkerPool {
  private readonly workers: PoolWorker[] = [];
  private nextSession = 1;
  private dead: RunError | null = null;
  private readonly onAbort = () => {
    void this.terminate(interrupted());
  };

  constructor(
    readonly size: number,
    private readonly opts: { maxInFlight?: number; signal?: AbortSignal } = {},
  ) {
    if (!(size >= 1)) throw new Error("a record worker pool needs at least one worker");
    opts.signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /** Threads started so far (workers start when a session first needs them). */
  get threads(): number {
    return this.workers.length;
  }

  /**
   * A session of `kind` (worker.ts). `init` is structured-cloned to its worker(s) once.
   * `spread: true`: one state per worker, units round-robin (for units independent of each other).
   */
  open<P, R, F = unknown>(
    kind: string,
    init: unknown,
    opts: { spread?: boolean } = {},
  ): WorkerSession<P, R, F> {
    if (this.dead) throw this.dead;
    if (this.opts.signal?.aborted) throw interrupted();
    const count = opts.spread ? this.size : 1;
    const lanes: Lane[] = [];
    for (let i = 0; i < count; i++) {
      const w = this.pick(opts.spread ? i : -1);
      const sid = this.nextSession++;
      w.sessions++;
      w.post({ t: "open", sid, kind, init });
      lanes.push({ worker: w, sid });
    }
    return new WorkerSession<P, R, F>(lanes, Math.max(1, this.opts.maxInFlight ?? 2 * count));
  }

  /** Ends every thread; units still in flight reject with `reason`. */
  async terminate(
    reason: RunError = new RunError("aborted", "the record workers were stopped"),
  ): Promise<void> {
    this.dead ??= reason;
    this.opts.signal?.removeEventListener("abort", this.onAbort);
    const all = this.workers.splice(0);
    for (const w of all) w.fail(this.dead);
    await Promise.all(all.map((w) => w.thread.terminate().catch(() => 0)));
  }

  /** Worker `i` (spread), or the one with the fewest sessions (started when below `size`). */
  private pick(i: number): PoolWorker {
    if (i >= 0) {
      while (this.workers.length <= i) this.workers.push(new PoolWorker());
      return this.workers[i];
    }
    if (this.workers.length < this.size && !this.workers.some((w) => w.sessions === 0)) {
      const w = new PoolWorker();
      this.workers.push(w);
      return w;
    }
    return this.workers.reduce((a, b) => (b.sessions < a.sessions ? b : a));
  }
}

interface Lane {
  worker: PoolWorker;
  sid: number;
}

/** A session's units: submitted, run in order (per lane), results resolved in submission order. */
export class WorkerSession<P, R, F = unknown> {
  private seq = 0;
  private last: Promise<unknown> = Promise.resolve();
  private waiting: (() => void) | null = null;
  inFlight = 0;

  constructor(
    private readonly lanes: Lane[],
    readonly maxInFlight: number,
  ) {}

  /** Resolves when another unit may be submitted; undefined when one may be now. */
  room(): Promise<void> | undefined {
    if (this.inFlight < this.maxInFlight) return undefined;
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /**
   * Sends one unit (its `transfer` buffers move to the worker: do not touch them after). The
   * promise resolves after every earlier unit's, with the worker's result; a rejected promise
   * nobody awaits is not an unhandled rejection (a stream that failed early drops its results).
   */
  submit(payload: P, transfer: readonly ArrayBuffer[] = []): Promise<R> {
    const seq = this.seq++;
    units++;
    const lane = this.lanes[seq % this.lanes.length];
    this.inFlight++;
    const own = lane.worker.request({ t: "unit", sid: lane.sid, seq, payload }, transfer);
    const settled = own.finally(() => {
      this.inFlight--;
      const w = this.waiting;
      this.waiting = null;
      w?.();
    });
    // A lane may fail while an earlier unit of another lane still runs: handled here, reported in order.
    settled.catch(() => {});
    const ordered = this.last.then(
      () => settled,
      () => settled,
    ) as Promise<R>;
    ordered.catch(() => {});
    this.last = ordered;
    return ordered;
  }

  /** After every unit: each lane's final result (its state's summary), in lane order; frees the state. */
  async end(): Promise<F[]> {
    await this.last.catch(() => {});
    return Promise.all(
      this.lanes.map((l) => {
        l.worker.sessions--;
        return l.worker.request({ t: "end", sid: l.sid, seq: this.seq++ }, []) as Promise<F>;
      }),
    );
  }
}

/** Threads of every pool that have not exited yet (tests check that abort leaves none). */
let alive = 0;
export function aliveRecordWorkers(): number {
  return alive;
}
/** Units submitted by every session of this process (tests check which path a run took). */
let units = 0;
export function recordWorkerUnits(): number {
  return units;
}

/** One thread and the replies it owes, by request number. */
class PoolWorker {
  readonly thread: Worker;
  sessions = 0;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failed: RunError | null = null;

  constructor() {
    const { file, execArgv } = workerEntry();
    this.thread = new Worker(file, {
      execArgv,
      stdout: false,
      stderr: false,
      // Measured (600k-line JSONL export): 8 MiB keeps the thread's peak RSS 15–35 MiB below
      // 16 or the default, at the same CPU time.
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    alive++;
    this.thread.on("message", (m: ToMain) => this.reply(m));
    this.thread.on("error", (err) =>
      this.fail(new RunError("internal", `a record worker failed: ${(err as Error).message ?? String(err)}`)),
    );
    this.thread.on("exit", (code) => {
      alive--;
      this.fail(new RunError("internal", `a record worker stopped (exit code ${code})`));
    });
  }

  post(m: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (!this.failed) this.thread.postMessage(m, transfer);
  }

  request(m: ToWorker & { t: "unit" | "end" }, transfer: readonly ArrayBuffer[]): Promise<unknown> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage({ ...m, id }, transfer);
    });
  }

  private reply(m: ToMain): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.t === "done") p.resolve(m.result);
    else p.reject(fromWorker(m.error));
  }

  fail(err: RunError): void {
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(this.failed);
    this.pending.clear();
  }
}

function fromWorker(e: WorkerFailure): Error {
  if (e.name === "RunError") return new RunError(e.kind as RunErrorKind, e.message, e.details ?? {});
  return new RunError("internal", `a record worker failed: ${e.message}`);
}

/**
 * The worker's entry beside this module: in the bundle (dist/app/pipelines.cjs) the worker's own
 * bundle dist/app/record-worker.cjs; from tsc's dist/, worker.js; from the sources (tests), worker.ts
 * compiled by tsx (dev-worker.mjs).
 */
function workerEntry(): { file: URL; execArgv?: string[] } {
  const here = import.meta.url;
  if (here.endsWith(".cjs")) return { file: new URL("./record-worker.cjs", here), execArgv: [] };
  if (here.endsWith(".ts")) return { file: new URL("./dev-worker.mjs", here), execArgv: [] };
  return { file: new URL("./worker.js", here), execArgv: [] };
}
