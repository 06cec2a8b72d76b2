/**
 * In-process sessions (openSession: the real client, executor and budget) against a loopback
 * server that logs, in order, each request's arrival and each answer it sends: the tests of
 * "a budget slot counts from the request's write" (test/http/budget-send.test.ts, and the Redis
 * budget's in test/queue/redis-budget-slot.test.ts).
 */
import { createServer, type Server } from "node:http";
import { compilePlan } from "../../src/compile/compile-plan.js";
import { loadPipelineText } from "../../src/config/load-pipeline.js";
import { makeProject } from "../../src/config/project.js";
import type { RequestBudget } from "../../src/http/rate-budget.js";
import { newRequestStats } from "../../src/http/request-stats.js";
import { openSession } from "../../src/run/run-pipeline.js";
import { closeServer, listenLocal, sourceBlock, type TempProject, tempProject } from "../run/helpers.js";

export interface LogServer {
  url: string;
  /** "arrived <n>" and "answered <n>", in the order they happened (n: the request's path number). */
  events: string[];
  /** Arrival times (performance.now()) of every request. */
  arrivals: number[];
  close(): Promise<void>;
}

/** A server that answers request /<n> after `answerMs` (or `answerMs(n)`) ms. */
export async function logServer(answerMs: number | ((n: number) => number)): Promise<LogServer> {
  const events: string[] = [];
  const arrivals: number[] = [];
  const server: Server = createServer((req, res) => {
    const n = (req.url ?? "").slice(1);
    arrivals.push(performance.now());
    events.push(`arrived ${n}`);
    setTimeout(
      () => {
        events.push(`answered ${n}`);
        res.writeHead(200, { "content-type": "application/json" }).end('{"data":[]}');
      },
      typeof answerMs === "number" ? answerMs : answerMs(Number(n)),
    );
  });
  const url = await listenLocal(server);
  return { url, events, arrivals, close: () => closeServer(server) };
}

/**
 * The most requests within any 1000 ms, or within `windowMs` (a second less the lateness the
 * arrivals' own clock may add: a handler that runs late records a request later than it came).
 */
export function busiestSecond(times: number[], windowMs = 1000): number {
  const t = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i] - t[j] >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/**
 * A session of a pipeline on `url` with `source` lines added (rate_limit, concurrency), and
 * `budget` instead of the local one when given. `get(n)` sends GET /<n> through the executor.
 */
export function session(url: string, source: string, budget?: RequestBudget) {
  const p: TempProject = tempProject("pipelines-budget-send-");
  const text = `${sourceBlock(url, source)}\nstreams:\n  a: { path: /a, records: $.data }\n`;
  const loaded = loadPipelineText(makeProject(p.dir, null, {}), "p", "pipelines/p.yaml", text, {});
  const plan = compilePlan(loaded);
  const { client, executor } = openSession(plan, loaded.redactor, { budget });
  const get = (n: number) =>
    executor.fetch({ method: "GET", url: `${url}/${n}`, headers: {} }, newRequestStats());
  return {
    plan,
    get,
    close: async () => {
      await client.close();
      p.cleanup();
    },
  };
}

/** Blocks the event loop for `ms` (a busy worker: nothing else runs meanwhile). */
export function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {}
}

/** Sends GET /1 … /`n` at once through a session at 5 requests/s (concurrency 10), `budget` or the local one. */
export async function sendAtFivePerSecond(api: LogServer, n: number, budget?: RequestBudget): Promise<void> {
  const s = session(api.url, "concurrency: 10\nrate_limit: { requests_per_second: 5 }", budget);
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => s.get(i + 1)));
  } finally {
    await s.close();
  }
}

/**
 * The 6th request of a server that answers the 1st after 600 ms and the 2nd after 1.3 s
 * (logServer((n) => (n === 1 ? 600 : 1300))): counted from the write, it goes out at about 1 s,
 * after the 1st answer and before the 2nd; counted from the 1st answer, at 1.6 s, after it.
 */
export function expectCountedFromTheWrite(api: LogServer): void {
  const { events } = api;
  if (!(events.indexOf("answered 1") < events.indexOf("arrived 6")))
    throw new Error(`the 6th request left before the 1st answer:\n${events.join("\n")}`);
  if (!(events.indexOf("arrived 6") < events.indexOf("answered 2")))
    throw new Error(`the 6th request waited for the 2nd answer:\n${events.join("\n")}`);
  if (busiestSecond(api.arrivals) > 5)
    throw new Error(`${busiestSecond(api.arrivals)} requests in one second`);
}
