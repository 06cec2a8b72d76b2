import { createServer, type ServerResponse } from "node:http";
import { closeServer, listenLocal } from "../run/helpers.js";

export interface PauseServer {
  url: string;
  /** Arrival times (performance.now()) of every child request. */
  arrivals: number[];
  /** When the answer asking to wait was sent (performance.now()), or null. */
  waitSentAt(): number | null;
  close(): Promise<void>;
}

/**
 * A fan-out API for shared-pause tests: GET /orgs → `parents` ids, GET /orgs/:id/repos → one
 * record. The first `busy` child requests are held until all of them are waiting at once (so every
 * sender has a request in flight and none can send another); the last of them is answered with
 * a wait of `waitSeconds` — a 429 with Retry-After (`kind: "429"`), or a 200 whose
 * X-RateLimit-Remaining is 0 with a reset delta (`kind: "remaining"`) — and the others only
 * once `release()` resolves. Any request that then arrives within the wait went out while the
 * API had asked everyone to wait.
 */
export async function startPauseServer(opts: {
  parents: number;
  busy: number;
  waitSeconds: number;
  kind: "429" | "remaining";
  release: () => Promise<void>;
}): Promise<PauseServer> {
  const arrivals: number[] = [];
  let waitSentAt: number | null = null;
  const held: ServerResponse[] = [];
  const answer = (res: ServerResponse, org: number, headers: Record<string, string> = {}) => {
    res.writeHead(200, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify({ data: [{ id: org }] }));
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/orgs") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ data: Array.from({ length: opts.parents }, (_, i) => ({ id: i + 1 })) }));
      return;
    }
    arrivals.push(performance.now());
    const org = Number(/^\/orgs\/(\d+)/.exec(url.pathname)?.[1]);
    if (waitSentAt !== null) return answer(res, org);
    held.push(res);
    if (held.length < opts.busy) return;
    held.pop();
    waitSentAt = performance.now();
    const seconds = String(opts.waitSeconds);
    if (opts.kind === "429") {
      res.writeHead(429, { "content-type": "application/json", "retry-after": seconds });
      res.end(JSON.stringify({ error: "rate_limited" }));
    } else answer(res, org, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": seconds });
    const others = held.splice(0);
    opts.release().then(() => {
      for (const r of others) answer(r, Number(/^\/orgs\/(\d+)/.exec(r.req.url ?? "")?.[1]));
    });
  });
  const url = await listenLocal(server);
  return { url, arrivals, waitSentAt: () => waitSentAt, close: () => closeServer(server) };
}

/** The child requests that arrived while the API had asked to wait (none, when the pause is shared). */
export function arrivedDuringWait(s: PauseServer, waitSeconds: number): number[] {
  const from = s.waitSentAt();
  if (from === null) throw new Error("the server never asked to wait");
  return s.arrivals.filter((t) => t > from && t < from + waitSeconds * 1000).map((t) => Math.round(t - from));
}
