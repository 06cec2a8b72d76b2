// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and project configs use `${…}` templates
/**
 * A worker killed with SIGKILL in the middle of its jobs: BullMQ's stalled-job detection (made
 * short here) gives its jobs to the other workers, and the output has every record exactly once,
 * byte for byte as a local run's.
 */

import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { closeServer, listenLocal, runPipeline, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorkers, type WorkerProcess, writeQueueConfig } from "./helpers.js";

const PARENTS = 60;
let server: Server;
let base: string;
let onChild: (() => void) | null = null;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    res.setHeader("content-type", "application/json");
    if (url.pathname === "/orgs") {
      res.end(JSON.stringify({ data: Array.from({ length: PARENTS }, (_, i) => ({ id: i + 1 })) }));
      return;
    }
    const org = Number(/^\/orgs\/(\d+)/.exec(url.pathname)?.[1]);
    onChild?.();
    const data = [
      { id: org * 10, org },
      { id: org * 10 + 1, org },
    ];
    // Slow answers: the kill lands while the worker holds jobs.
    setTimeout(() => res.end(JSON.stringify({ data })), 60);
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

const text = () =>
  [
    sourceBlock(base, "concurrency: 2"),
    "streams:",
    "  orgs:",
    "    path: /orgs",
    "    records: $.data",
    "    primary_key: id",
    "  repos:",
    "    parent: orgs",
    "    path: /orgs/${parent.id}/repos",
    "    records: $.data",
    "    primary_key: id",
    "output:",
    "  format: jsonl",
    "  mode: merge",
    "",
  ].join("\n");

it("a worker killed with SIGKILL mid-job: its jobs run elsewhere, every record exactly once", async () => {
  const local = tempProject("pipelines-queue-kill-local-");
  const queued = tempProject("pipelines-queue-kill-");
  const workers: WorkerProcess[] = [];
  try {
    local.pipeline("p", text());
    queued.pipeline("p", text());
    writeQueueConfig(queued.dir, "t-kill");
    const a = await runPipeline(local.dir, "p");
    expect(a.code, a.stderr).toBe(0);
    const env = { PIPELINES_WORKER_LOCK_MS: "1000", PIPELINES_WORKER_STALLED_MS: "500" };
    workers.push(...(await startWorkers(3, queued.dir, ["--concurrency", "2"], env)));
    let seen = 0;
    onChild = () => {
      seen++;
      if (seen === 15) workers[0].child.kill("SIGKILL");
    };
    const b = await runPipeline(queued.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
    onChild = null;
    expect((await workers[0].exited).signal).toBe("SIGKILL");
    expect(b.code, b.stderr).toBe(0);
    // The killed worker held jobs (each worker always holds 2 while 40 wait): they were fetched again.
    expect(seen).toBeGreaterThan(PARENTS);
    const out = readFileSync(queued.file("out/p/repos.jsonl"), "utf8");
    const ids = out
      .split("\n")
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { id: number }).id);
    expect(ids.length).toBe(PARENTS * 2);
    expect(new Set(ids).size).toBe(PARENTS * 2);
    expect(out).toBe(readFileSync(local.file("out/p/repos.jsonl"), "utf8"));
    expect(b.stream("repos").records.written).toBe(PARENTS * 2);
  } finally {
    onChild = null;
    await Promise.all(workers.map((w) => w.stop()));
    local.cleanup();
    queued.cleanup();
  }
}, 90_000);
