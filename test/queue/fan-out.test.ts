// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and project configs use `${…}` templates
/**
 * `run --queue` against real `pipelines worker` processes (the built CLI) and a real Redis: a
 * fan-out of 220 partitions ends with the same output bytes, state, counts and exit code as a
 * local run of the same pipeline, with 1 and with 3 workers.
 */

import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UNITS_QUEUE } from "../../src/queue/jobs.js";
import { ensureBuilt } from "../built.js";
import {
  closeServer,
  listenLocal,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "../run/helpers.js";
import { redisUrl, startWorkers, type WorkerProcess, writeQueueConfig } from "./helpers.js";

const PARENTS = 220;
let server: Server;
let base: string;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    res.setHeader("content-type", "application/json");
    if (url.pathname === "/orgs") {
      const page = Number(url.searchParams.get("page") ?? "1");
      const all = Array.from({ length: PARENTS }, (_, i) => ({ id: i + 1, name: `org-${i + 1}` }));
      const data = all.slice((page - 1) * 50, page * 50);
      res.end(JSON.stringify({ data }));
      return;
    }
    const m = /^\/orgs\/(\d+)\/repos$/.exec(url.pathname);
    if (!m) {
      res.statusCode = 404;
      res.end("{}");
      return;
    }
    const org = Number(m[1]);
    const page = Number(url.searchParams.get("page") ?? "1");
    // Partitions of 0 to 4 records; the ones with more than 2 take two pages. Big ids stay exact.
    const n = org % 5;
    const all = Array.from(
      { length: n },
      (_, i) => `{"id":${org}00000000000000000${i},"org":${org},"n":${i}}`,
    );
    const data = all.slice((page - 1) * 2, page * 2);
    setTimeout(() => res.end(`{"data":[${data.join(",")}]}`), org % 7);
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

function pipeline(p: TempProject, mode: string): void {
  p.pipeline(
    "fan",
    [
      sourceBlock(base, "concurrency: 4"),
      "streams:",
      "  orgs:",
      "    path: /orgs",
      "    records: $.data",
      "    primary_key: id",
      "    paginate: { type: page, page_param: page }",
      "  repos:",
      "    parent: orgs",
      "    path: /orgs/${parent.id}/repos",
      "    records: $.data",
      "    paginate: { type: page, page_param: page }",
      "output:",
      "  format: jsonl",
      `  mode: ${mode}`,
      "",
    ].join("\n"),
  );
}

const counts = (s: { records: Record<string, number>; status: string }) => ({
  status: s.status,
  ...s.records,
});

describe("run --queue: a fan-out of 220 partitions", () => {
  for (const workers of [1, 3]) {
    it(`gives the local run's output bytes, counts and exit code with ${workers} worker(s)`, async () => {
      const local = tempProject("pipelines-queue-local-");
      const queued = tempProject("pipelines-queue-");
      const started: WorkerProcess[] = [];
      try {
        pipeline(local, "append");
        pipeline(queued, "append");
        writeQueueConfig(queued.dir, `t-fanout-${workers}`);
        const a = await runPipeline(local.dir, "fan");
        expect(a.code, a.stderr).toBe(0);
        started.push(...(await startWorkers(workers, queued.dir, ["--concurrency", "3"])));
        const b = await Promise.race([
          runPipeline(queued.dir, "fan", ["--queue"], { REDIS_URL: redisUrl() }),
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error(started.map((w) => w.stderr()).join("\n"))), 60_000),
          ),
        ]);
        expect(b.stderr).not.toContain(redisUrl());
        expect(b.code, b.stderr).toBe(a.code);
        for (const name of ["orgs", "repos"]) expect(counts(b.stream(name))).toEqual(counts(a.stream(name)));
        expect(b.stream("repos").requests).toBe(a.stream("repos").requests);
        expect(b.stream("repos").records.written).toBe(PARENTS * 2);
        for (const f of ["out/fan/orgs.jsonl", "out/fan/repos.jsonl"])
          expect(readFileSync(queued.file(f)).equals(readFileSync(local.file(f)))).toBe(true);
        if (workers === 3) {
          // Every worker took a share of the jobs (BullMQ records who processed each: `pb`).
          const redis = new Redis(redisUrl());
          try {
            const keys = (await redis.keys(`t-fanout-3:${UNITS_QUEUE}:*`)).filter((k) => /-\d+$/.test(k));
            const by = await Promise.all(keys.map((k) => redis.hget(k, "pb")));
            expect(new Set(by.filter(Boolean)).size).toBe(3);
          } finally {
            redis.disconnect();
          }
        }
      } finally {
        await Promise.all(started.map((w) => w.stop()));
        local.cleanup();
        queued.cleanup();
      }
    }, 120_000);
  }
});
