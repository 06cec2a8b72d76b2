import { RunError } from "../../shared/errors.js";
import type { SessionKind } from "./protocol.js";

/**
 * A trivial kind for the pool's own tests (and a template for new kinds): returns its units'
 * bytes upper-cased with the session's prefix, after `delayMs`; a unit `fail` throws a RunError,
 * `crash` ends the thread; `end` returns how many units the session saw.
 */
export const echoKind: SessionKind<
  { prefix: string },
  { prefix: string; n: number },
  { bytes: Uint8Array; delayMs?: number },
  { text: string; n: number; thread: number },
  { units: number }
> = {
  open: (init) => ({ prefix: init.prefix, n: 0 }),
  async unit(state, payload) {
    const text = Buffer.from(payload.bytes).toString("utf8");
    if (payload.delayMs) await new Promise((r) => setTimeout(r, payload.delayMs));
    if (text === "fail") throw new RunError("bad_body", "line 3 of the unit is malformed", { line: 3 });
    if (text === "crash") process.exit(7);
    state.n++;
    const { threadId } = await import("node:worker_threads");
    return { result: { text: `${state.prefix}${text.toUpperCase()}`, n: state.n, thread: threadId } };
  },
  end: (state) => ({ units: state.n }),
};
