/**
 * A run (or a queue job) with more than ten requests in flight at once: each one listens to the
 * run's signal (so that Ctrl-C ends it), and Node warns on stderr of a "possible EventTarget
 * memory leak" past ten listeners on one AbortSignal — noise in every run with concurrency > 10.
 */
import type { ServerResponse } from "node:http";
import { Redis } from "ioredis";
import { afterEach, beforeEach, expect, it } from "vitest";
import { loadProject } from "../../src/config/project.js";
import { UnitRunner } from "../../src/queue/worker.js";
import { redisUrl, streamJobs } from "../queue/helpers.js";
import { sourceBlock, streamSession, useLocalServer, useTempProject } from "./helpers.js";

const CONCURRENCY = 16;
/** Answers held until CONCURRENCY requests are in flight at once, then every one answered. */
let held: { offset: number; res: ServerResponse }[] = [];
let inFlightAtOnce = 0;

function answer(offset: number, res: ServerResponse) {
  const items = offset < 4000 ? Array.from({ length: 100 }, (_, i) => ({ id: offset + i })) : [];
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ items }));
}

const api = useLocalServer((req, res) => {
  const offset = Number(new URL(req.url ?? "/", "http://x").searchParams.get("offset") ?? 0);
  if (offset === 0) return answer(offset, res); // the first page shows the page size
  held.push({ offset, res });
  if (held.length >= CONCURRENCY) inFlightAtOnce = CONCURRENCY;
  if (held.length >= CONCURRENCY || inFlightAtOnce) {
    const go = held;
    held = [];
    for (const h of go) answer(h.offset, h.res);
  }
});

const p = useTempProject("pipelines-signal-listeners-");
const warnings: string[] = [];
const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
beforeEach(() => {
  held = [];
  inFlightAtOnce = 0;
  warnings.length = 0;
  process.on("warning", onWarning);
});
afterEach(() => {
  process.off("warning", onWarning);
});

const PIPELINE = () => `${sourceBlock(api.url, `concurrency: ${CONCURRENCY}`)}
streams:
  s: { path: /items, records: $.items, paginate: { type: offset, limit: 100 } }
`;

it(`a local run with ${CONCURRENCY} requests in flight warns of no listener leak`, async () => {
  // The CLI's signal (Ctrl-C), as bin.ts passes it.
  const run = new AbortController();
  const session = streamSession(p.dir, PIPELINE(), { signal: run.signal });
  const { running, result } = session.start(0, {
    concurrency: CONCURRENCY,
    prefetch: CONCURRENCY,
    signal: run.signal,
  });
  try {
    await running;
  } finally {
    await session.close();
  }
  expect(result.status, JSON.stringify(result.error)).toBe("ok");
  expect(inFlightAtOnce).toBe(CONCURRENCY);
  await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
  expect(warnings).toEqual([]);
});

it(`a queue job with ${CONCURRENCY} requests in flight warns of no listener leak`, async () => {
  p.pipeline("p", PIPELINE());
  const project = await loadProject(p.dir);
  const redis = new Redis(redisUrl());
  const runner = new UnitRunner(project, {}, [], { redis, prefix: "t-listeners" });
  try {
    const job = await streamJobs(project, "s", "t-listeners");
    // The job's own signal (cancel.ts), as the worker passes it.
    const outcome = await runner.process(job(0), new AbortController().signal);
    expect(outcome.error).toBe(null);
    expect(outcome.rows).toBe(4000);
  } finally {
    await runner.close();
    await redis.del(...(await redis.keys("t-listeners:*")), "t-listeners:none");
    redis.disconnect();
  }
  expect(inFlightAtOnce).toBe(CONCURRENCY);
  await new Promise((r) => setImmediate(r));
  expect(warnings).toEqual([]);
});
