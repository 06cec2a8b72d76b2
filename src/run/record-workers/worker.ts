import { parentPort } from "node:worker_threads";
import { pagesKind } from "../page-work/pages-kind.js";
import type { SessionKind, ToMain, ToWorker, WorkerFailure } from "./protocol.js";
import { streamedKind } from "./streamed-kind.js";

/**
 * A record worker's thread (its own bundle entry: scripts/bundle.mjs builds
 * dist/app/record-worker.cjs). Sessions of the registered kinds, each unit handled in the order
 * sent; a unit that throws fails its session.
 */
/** A kind of any types (each checks its own; messages arrive as structured clones). */
type AnyKind = SessionKind<never, unknown, never, unknown, unknown>;
const KINDS: Record<string, AnyKind> = {
  streamed: streamedKind,
  pages: pagesKind,
  // Kinds put here before this module loads: the pool's test kind `echo`, added only when the
  // thread runs from the sources (dev-worker.mjs), never in the build.
  ...((globalThis as Record<symbol, unknown>)[Symbol.for("pipelines.extraWorkerKinds")] as Record<
    string,
    AnyKind
  >),
};

interface Session {
  kind: AnyKind;
  state: unknown;
  failed: WorkerFailure | null;
  /** Units run one after the other (a handler may be async). */
  chain: Promise<void>;
}
const sessions = new Map<number, Session>();
const port = parentPort!;

port.on("message", (m: ToWorker) => {
  if (m.t === "open") {
    const kind = KINDS[m.kind];
    const s: Session = { kind, state: null, failed: null, chain: Promise.resolve() };
    sessions.set(m.sid, s);
    try {
      if (!kind) throw new Error(`no record worker kind ${JSON.stringify(m.kind)}`);
      s.state = kind.open(m.init as never);
    } catch (err) {
      s.failed = failure(err);
    }
    return;
  }
  const s = sessions.get(m.sid)!;
  const id = m.id!;
  s.chain = s.chain.then(async () => {
    if (s.failed) return send({ t: "fail", id, error: s.failed });
    try {
      if (m.t === "end") {
        sessions.delete(m.sid);
        return send({ t: "done", id, result: s.kind.end(s.state) });
      }
      const out = await s.kind.unit(s.state, m.payload as never);
      send({ t: "done", id, result: out.result }, out.transfer);
    } catch (err) {
      s.failed = failure(err);
      send({ t: "fail", id, error: s.failed });
    }
  });
});

function send(m: ToMain, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

function failure(err: unknown): WorkerFailure {
  const e = err as { name?: string; kind?: string; message?: string; details?: Record<string, unknown> };
  return {
    name: e?.name === "RunError" ? "RunError" : "Error",
    kind: e?.kind,
    message: e?.message ?? String(err),
    details: e?.details,
  };
}
