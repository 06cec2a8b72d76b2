// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and project configs use `${…}` templates
/**
 * `source.rate_limit` holds across workers: 4 real workers share one budget kept in Redis, and
 * the test server, counting requests per sliding second, never sees more than the declared rate.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { busiestSecond } from "../http/budget-session.js";
import { closeServer, listenLocal, runPipeline, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorkers, type WorkerProcess, writeQueueConfig } from "./helpers.js";

const PARENTS = 24;
let server: Server;
let base: string;
const arrivals: number[] = [];

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    arrivals.push(performance.now());
    const url = new URL(req.url ?? "/", "http://x");
    res.setHeader("content-type", "application/json");
    if (url.pathname === "/orgs") {
      res.end(JSON.stringify({ data: Array.from({ length: PARENTS }, (_, i) => ({ id: i + 1 })) }));
      return;
    }
    const org = Number(/^\/orgs\/(\d+)/.exec(url.pathname)?.[1]);
    setTimeout(() => res.end(JSON.stringify({ data: [{ id: org }] })), 20);
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

it("4 workers together never exceed requests_per_second: 5", async () => {
  const p = tempProject("pipelines-queue-rate-");
  const workers: WorkerProcess[] = [];
  try {
    p.pipeline(
      "p",
      [
        sourceBlock(base, "concurrency: 4\nrate_limit: { requests_per_second: 5 }"),
        "streams:",
        "  orgs:",
        "    path: /orgs",
        "    records: $.data",
        "  repos:",
        "    parent: orgs",
        "    path: /orgs/${parent.id}/repos",
        "    records: $.data",
        "output:",
        "  format: jsonl",
        "",
      ].join("\n"),
    );
    writeQueueConfig(p.dir, "t-rate");
    workers.push(...(await startWorkers(4, p.dir, ["--concurrency", "4"])));
    arrivals.length = 0;
    const r = await runPipeline(p.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
    expect(r.code).toBe(0);
    expect(r.stream("repos").records.written).toBe(PARENTS);
    expect(arrivals.length).toBe(PARENTS + 1);
    // The arrivals are timed by this test's process, busy with the run's output and the workers'
    // (CI once saw 6 in a second: a request handled late by this event loop); a budget that
    // does not hold across the 4 workers gives up to 20 in a second.
    expect(busiestSecond(arrivals, 950)).toBeLessThanOrEqual(5);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    p.cleanup();
  }
}, 90_000);
