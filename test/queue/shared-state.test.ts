// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${…}` templates
/**
 * A project with a queue keeps its saved state and run locks in Redis: a worker in a folder of
 * its own (another machine: no state folder, nothing shared) runs the jobs, the state (per
 * partition cursors, window checkpoints) ends in Redis exactly as a local run saves it to its
 * file, and a run from a third folder starts from it. `run` and `run --queue` of one pipeline
 * refuse each other, from any folder.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { runCli } from "../cli/helpers.js";
import {
  closeServer,
  listenLocal,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "../run/helpers.js";
import { redisUrl, startWorker, type WorkerProcess, writeQueueConfig } from "./helpers.js";

let server: Server;
let base: string;
/** `since` values the repos endpoint received, by org id, in order. */
const sinceSeen = new Map<string, (string | null)[]>();
/** Requests to /slow wait for this to be resolved. */
let releaseSlow: () => void = () => {};
let slowGate: Promise<void> = Promise.resolve();

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    res.setHeader("content-type", "application/json");
    if (url.pathname === "/orgs") {
      res.end(JSON.stringify({ data: [{ id: 1 }, { id: 2 }, { id: 3 }] }));
      return;
    }
    const m = /^\/orgs\/(\d+)\/repos$/.exec(url.pathname);
    if (m) {
      const since = url.searchParams.get("since");
      sinceSeen.set(m[1], [...(sinceSeen.get(m[1]) ?? []), since]);
      const org = Number(m[1]);
      const all = Array.from({ length: org + 1 }, (_, i) => ({
        id: org * 100 + i,
        updated_at: `2024-02-0${i + 1}T00:00:00Z`,
      }));
      res.end(JSON.stringify({ data: all.filter((r) => since === null || r.updated_at > since) }));
      return;
    }
    if (url.pathname === "/events") {
      const from = url.searchParams.get("from") ?? "";
      const day = Number(from.slice(8, 10));
      res.end(
        JSON.stringify({
          events: [
            { id: day * 10 + 1, day: from },
            { id: day * 10 + 2, day: from },
          ],
        }),
      );
      return;
    }
    if (url.pathname === "/slow") {
      slowGate.then(() => res.end(JSON.stringify({ data: [{ id: 1 }] })));
      return;
    }
    res.statusCode = 404;
    res.end("{}");
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

const text = () =>
  [
    sourceBlock(base),
    "streams:",
    "  orgs:",
    "    path: /orgs",
    "    records: $.data",
    "    primary_key: id",
    "  repos:",
    "    parent: orgs",
    "    path: /orgs/${parent.id}/repos",
    "    records: $.data",
    "    incremental: { cursor_field: updated_at, param: since }",
    "  events:",
    "    path: /events",
    "    params: { from: '${window.start}', to: '${window.last}' }",
    "    records: $.events",
    "    windows: { step: 1d, start: 2024-01-01, end: 2024-01-06, format: date }",
    "output:",
    "  format: jsonl",
    "  mode: append",
    "",
  ].join("\n");

/** A project folder of its own (one per machine), with the queue configured under `prefix`. */
function machine(prefix: string | null, pipelineText = text()): TempProject {
  const p = tempProject("pipelines-queue-state-");
  p.pipeline("p", pipelineText);
  if (prefix) writeQueueConfig(p.dir, prefix);
  return p;
}

/**
 * The state without its times (they differ between runs); committed file lengths are keyed by
 * the output's absolute path, shown here relative to the project that wrote them.
 */
function positions(text: string, root: string): unknown {
  const s = JSON.parse(text) as { streams: Record<string, Record<string, unknown>> };
  return Object.fromEntries(
    Object.entries(s.streams).map(([name, st]) => {
      const { updated_at: _, files, ...rest } = st;
      const rel = Object.entries((files ?? {}) as Record<string, number>).map(([f, n]) => [
        path.relative(root, f),
        n,
      ]);
      return [name, { ...rest, files: Object.fromEntries(rel) }];
    }),
  );
}

const OUTPUTS = ["out/p/orgs.jsonl", "out/p/repos.jsonl", "out/p/events.jsonl"];

describe("state in Redis", () => {
  it("a worker on another machine needs no shared folder; the state is saved in Redis as a local run saves it", async () => {
    const local = machine(null);
    const submitter = machine("t-state");
    const workerMachine = machine("t-state");
    const third = machine("t-state");
    const redis = new Redis(redisUrl());
    let worker: WorkerProcess | null = null;
    try {
      const a = await runPipeline(local.dir, "p");
      expect(a.code, a.stderr).toBe(0);
      worker = await startWorker(workerMachine.dir, ["--concurrency", "2"]);
      sinceSeen.clear();
      const b = await runPipeline(submitter.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
      expect(b.code, b.stderr).toBe(0);
      for (const f of OUTPUTS)
        expect(readFileSync(submitter.file(f)).equals(readFileSync(local.file(f)))).toBe(true);
      // The worker's folder got nothing: no state, no outputs, no staged records.
      expect(existsSync(workerMachine.file(".pipelines"))).toBe(false);
      expect(existsSync(workerMachine.file("out"))).toBe(false);
      // The state lives in Redis, equal to the local run's file; the submitter's folder has none.
      const saved = await redis.get("t-state:state:p");
      expect(saved).not.toBeNull();
      const localState = readFileSync(local.file(".pipelines/state/p.json"), "utf8");
      expect(positions(saved ?? "", submitter.dir)).toEqual(positions(localState, local.dir));
      expect(positions(localState, local.dir)).toMatchObject({
        repos: {
          partitions: { "1": "2024-02-02T00:00:00Z", "3": "2024-02-04T00:00:00Z" },
          files: { "out/p/repos.jsonl": readFileSync(local.file("out/p/repos.jsonl")).length },
        },
        events: { cursor: "2024-01-06T00:00:00Z" },
      });
      expect(existsSync(submitter.file(".pipelines/state/p.json"))).toBe(false);
      // No staged records are left in Redis.
      expect(await redis.keys("t-state:staged:*")).toEqual([]);

      // A local run on a third machine starts from the positions in Redis: nothing new.
      sinceSeen.clear();
      const c = await runPipeline(third.dir, "p", [], { REDIS_URL: redisUrl() });
      expect(c.code, c.stderr).toBe(0);
      expect(sinceSeen.get("3")).toEqual(["2024-02-04T00:00:00Z"]);
      expect(c.stream("repos").records.written).toBe(0);
      expect(c.stream("events").records.written).toBe(0);
      const after = JSON.parse((await redis.get("t-state:state:p")) ?? "{}");
      expect(after.streams.repos.partitions).toEqual(JSON.parse(localState).streams.repos.partitions);
    } finally {
      await worker?.stop();
      redis.disconnect();
      for (const p of [local, submitter, workerMachine, third]) p.cleanup();
    }
  }, 90_000);

  it("saved state in Redis that cannot be used: exit 2, nothing sent, the key named, never quoted", async () => {
    const p = machine("t-state-bad");
    const redis = new Redis(redisUrl());
    try {
      await redis.set(
        "t-state-bad:state:p",
        '{"version": 1, "auth": {"refresh_token": "rt-s3cret"}, "streams": [',
      );
      sinceSeen.clear();
      const r = await runCli(["run", "p"], p.dir, { REDIS_URL: redisUrl() });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        "the saved state in Redis (key t-state-bad:state:p) is not valid JSON. Nothing was sent",
      );
      expect(r.stderr).not.toContain("rt-s3cret");
      expect(sinceSeen.size).toBe(0);
      expect(await redis.get("t-state-bad:lock:p")).toBeNull();
    } finally {
      redis.disconnect();
      p.cleanup();
    }
  }, 30_000);

  it("the first run with a queue starts from the state folder's file when Redis has none", async () => {
    const p = machine("t-state-first");
    try {
      mkdirSync(p.file(".pipelines/state"), { recursive: true });
      writeFileSync(
        p.file(".pipelines/state/p.json"),
        JSON.stringify({ version: 1, streams: { repos: { partitions: { "2": "2024-02-02T00:00:00Z" } } } }),
      );
      sinceSeen.clear();
      const r = await runPipeline(p.dir, "p", [], { REDIS_URL: redisUrl() });
      expect(r.code, r.stderr).toBe(0);
      expect(sinceSeen.get("2")).toEqual(["2024-02-02T00:00:00Z"]);
      expect(sinceSeen.get("1")).toEqual([null]);
    } finally {
      p.cleanup();
    }
  }, 60_000);
});

const slowText = () =>
  [
    sourceBlock(base),
    "streams:",
    "  items:",
    "    path: /slow",
    "    records: $.data",
    "output:",
    "  format: jsonl",
    "",
  ].join("\n");

describe("one lock in Redis for run and run --queue", () => {
  it("a local run is refused while a run --queue holds the lock, from another folder", async () => {
    const one = machine("t-state-lock1", slowText());
    const two = machine("t-state-lock1", slowText());
    const redis = new Redis(redisUrl());
    try {
      // No worker yet: the queue run waits on its job, holding the lock.
      const first = runPipeline(one.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
      while ((await redis.get("t-state-lock1:lock:p")) === null) await new Promise((r) => setTimeout(r, 20));
      const second = await runCli(["run", "p"], two.dir, { REDIS_URL: redisUrl() });
      expect(second.code).toBe(1);
      expect(second.stderr).toContain("`p` is already running");
      expect(existsSync(two.file("out/p/items.jsonl"))).toBe(false);
      const w = await startWorker(one.dir);
      try {
        expect((await first).code).toBe(0);
      } finally {
        await w.stop();
      }
    } finally {
      redis.disconnect();
      one.cleanup();
      two.cleanup();
    }
  }, 60_000);

  it("a run --queue is refused while a local run holds the lock", async () => {
    const one = machine("t-state-lock2", slowText());
    const two = machine("t-state-lock2", slowText());
    const redis = new Redis(redisUrl());
    slowGate = new Promise((r) => {
      releaseSlow = r;
    });
    try {
      const first = runPipeline(one.dir, "p", [], { REDIS_URL: redisUrl() });
      while ((await redis.get("t-state-lock2:lock:p")) === null) await new Promise((r) => setTimeout(r, 20));
      const second = await runCli(["run", "p", "--queue"], two.dir, { REDIS_URL: redisUrl() });
      expect(second.code).toBe(1);
      expect(second.stderr).toContain("`p` is already running");
      releaseSlow();
      const done = await first;
      expect(done.code, done.stderr).toBe(0);
      expect(await redis.get("t-state-lock2:lock:p")).toBeNull();
    } finally {
      releaseSlow();
      slowGate = Promise.resolve();
      redis.disconnect();
      one.cleanup();
      two.cleanup();
    }
  }, 60_000);

  it("a local run of a project with a queue whose Redis does not answer: exit 1, nothing sent", async () => {
    const p = machine("t-state-down");
    try {
      sinceSeen.clear();
      const r = await runCli(["run", "p"], p.dir, { REDIS_URL: "redis://:s3cret-pw@127.0.0.1:1/0" });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("unreachable");
      expect(r.stderr).not.toContain("s3cret-pw");
      expect(sinceSeen.size).toBe(0);
    } finally {
      p.cleanup();
    }
  }, 30_000);
});
