/**
 * `pipelines worker --schedules`: a pipeline with `schedule` (cron, UTC; six fields: every
 * second here) runs once per due time across two workers; a run still going when the next one
 * is due is skipped, and the worker says so. `validate` refuses a cron that does not parse.
 */
import { mkdirSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { runCli } from "../cli/helpers.js";
import { closeServer, listenLocal, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, startWorkers, type WorkerProcess, writeQueueConfig } from "./helpers.js";

let server: Server;
let base: string;
let delayMs = 0;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    setTimeout(() => res.end(JSON.stringify({ data: [{ id: 1 }] })), delayMs);
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

const text = (cron: string) =>
  [
    `schedule: "${cron}"`,
    sourceBlock(base),
    "streams:",
    "  items:",
    "    path: /items",
    "    records: $.data",
    "output:",
    "  format: jsonl",
    "",
  ].join("\n");

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("validate exits 2 on a schedule that does not parse", async () => {
  const p = tempProject("pipelines-queue-sched-");
  try {
    p.pipeline("p", text("61 * * * *"));
    const r = await runCli(["validate", "p"], p.dir, {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cron expression does not parse");
  } finally {
    p.cleanup();
  }
});

it("two workers with --schedules run each due time once", async () => {
  const p = tempProject("pipelines-queue-sched-");
  const workers: WorkerProcess[] = [];
  try {
    p.pipeline("p", text("* * * * * *"));
    writeQueueConfig(p.dir, "t-sched-once");
    delayMs = 0;
    workers.push(...(await startWorkers(2, p.dir, ["--schedules"])));
    await wait(4500);
    await Promise.all(workers.map((w) => w.stop()));
    const logs = workers.map((w) => w.stderr()).join("\n");
    // A second run of one due time would have found the first one's lock: none was skipped.
    expect(logs).not.toContain("skipped");
    // One report per run, named by the second the run started: never two in one due second.
    const runs = readdirSync(p.file("reports/p")).filter((f) => /^\d{8}T\d{6}Z-[0-9a-f]{6}\.json$/.test(f));
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(new Set(runs.map((f) => f.slice(0, 16))).size).toBe(runs.length);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    p.cleanup();
  }
}, 60_000);

it("a run still going when the next is due is skipped and reported", async () => {
  const p = tempProject("pipelines-queue-sched-");
  let w: WorkerProcess | null = null;
  try {
    p.pipeline("p", text("* * * * * *"));
    writeQueueConfig(p.dir, "t-sched-skip");
    delayMs = 2500;
    w = await startWorker(p.dir, ["--schedules"]);
    await wait(4000);
    await w.stop();
    expect(w.stderr()).toContain("[schedule p] skipped: the previous run is still going");
  } finally {
    await w?.stop();
    p.cleanup();
  }
}, 60_000);

it("a scheduled run refused for a broken lock file fails and says why (it is not 'still going')", async () => {
  const p = tempProject("pipelines-queue-sched-");
  let w: WorkerProcess | null = null;
  try {
    p.pipeline("p", text("* * * * * *"));
    writeQueueConfig(p.dir, "t-sched-badlock");
    // A folder where the run lock file goes: no run holds it, and none can start.
    mkdirSync(p.file(".pipelines/state/p.lock"), { recursive: true });
    delayMs = 0;
    w = await startWorker(p.dir, ["--schedules"]);
    const worker = w;
    const deadline = Date.now() + 30_000;
    while (!/\[schedule p\] (skipped|failed)/.test(worker.stderr())) {
      if (Date.now() > deadline) throw new Error(`no scheduled run:\n${worker.stderr()}`);
      await wait(50);
    }
    await w.stop();
    expect(w.stderr()).toContain("[schedule p] failed: .pipelines/state/p.lock is not a lock file");
    expect(w.stderr()).not.toContain("skipped");
  } finally {
    await w?.stop();
    p.cleanup();
  }
}, 60_000);

it("status shows the workers, running runs and next scheduled times", async () => {
  const p = tempProject("pipelines-queue-sched-");
  let w: WorkerProcess | null = null;
  try {
    p.pipeline("p", text("0 0 1 1 *"));
    writeQueueConfig(p.dir, "t-sched-status");
    w = await startWorker(p.dir, ["--schedules"]);
    const r = await runCli(["status", "--json"], p.dir, { REDIS_URL: redisUrl() });
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as {
      workers: { name: string }[];
      running: unknown[];
      scheduled: { pipeline: string; cron: string; next: string }[];
    };
    // Each worker by its name (host:pid, as its own log says), not the queue's.
    expect(s.workers.map((x) => x.name)).toEqual([`${hostname()}:${w.child.pid}`]);
    expect(s.running).toEqual([]);
    expect(s.scheduled).toEqual([
      { pipeline: "p", cron: "0 0 1 1 *", next: expect.stringMatching(/-01-01T00:00:00\.000Z$/) },
    ]);
    expect(r.stdout).not.toContain(redisUrl());
  } finally {
    await w?.stop();
    p.cleanup();
  }
}, 60_000);
