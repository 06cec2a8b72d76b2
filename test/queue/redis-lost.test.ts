// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${…}` templates
/**
 * Redis lost in the middle of a queue run: the run stops within a bounded time (here 1.5 s
 * without Redis) with a clear error and exit 1; what was committed before is whole partitions.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { closeServer, listenLocal, runPipeline, sourceBlock, tempProject } from "../run/helpers.js";
import { startWorker } from "./helpers.js";
import { type RedisServer, startRedis } from "./redis-server.mjs";

let server: Server;
let base: string;
let redis: RedisServer;
let onChild: (() => void) | null = null;

beforeAll(async () => {
  await ensureBuilt();
  // Its own server: this test stops it.
  redis = await startRedis();
  process.env.PIPELINES_QUEUE_LOST_MS = "1500";
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    res.setHeader("content-type", "application/json");
    if (url.pathname === "/orgs") {
      res.end(JSON.stringify({ data: Array.from({ length: 40 }, (_, i) => ({ id: i + 1 })) }));
      return;
    }
    onChild?.();
    const org = Number(/^\/orgs\/(\d+)/.exec(url.pathname)?.[1]);
    setTimeout(() => res.end(JSON.stringify({ data: [{ id: org * 10 }, { id: org * 10 + 1 }] })), 100);
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(async () => {
  delete process.env.PIPELINES_QUEUE_LOST_MS;
  await closeServer(server);
  await redis.stop();
});

it("Redis lost mid-run: the run stops within a bounded time, exit 1, nothing committed half", async () => {
  const p = tempProject("pipelines-queue-lost-");
  try {
    p.pipeline(
      "p",
      [
        sourceBlock(base, "concurrency: 2"),
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
        "  mode: append",
        "",
      ].join("\n"),
    );
    writeFileSync(
      path.join(p.dir, "pipelines.config.yaml"),
      "queue:\n  redis: ${env.REDIS_URL}\n  prefix: t-lost\n",
    );
    const w = await startWorker(p.dir, ["--concurrency", "2"], { REDIS_URL: redis.url });
    let seen = 0;
    onChild = () => {
      seen++;
      if (seen === 8) void redis.stop();
    };
    try {
      const r = await runPipeline(p.dir, "p", ["--queue"], { REDIS_URL: redis.url });
      expect(r.code).toBe(1);
      const repos = r.stream("repos");
      expect(repos.error?.kind).toBe("queue");
      expect(repos.error?.message).toContain("lost the connection to the queue's redis at 127.0.0.1");
      const out = p.file("out/p/repos.jsonl");
      const ids = existsSync(out)
        ? readFileSync(out, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => (JSON.parse(l) as { id: number }).id)
        : [];
      // Whole partitions only: each one's two records, in order.
      expect(ids.length % 2).toBe(0);
      for (let i = 0; i < ids.length; i += 2) expect(ids[i + 1]).toBe(ids[i] + 1);
    } finally {
      onChild = null;
      w.child.kill("SIGKILL");
      await w.exited;
    }
  } finally {
    p.cleanup();
  }
}, 40_000);

it("a worker that loses Redis says each error once a second, not once per BullMQ worker it runs", async () => {
  const own = await startRedis();
  const p = tempProject("pipelines-queue-lost-say-");
  try {
    p.pipeline(
      "p",
      [sourceBlock(base), "streams:", "  s:", "    path: /orgs", "    records: $.data", ""].join("\n"),
    );
    writeFileSync(
      path.join(p.dir, "pipelines.config.yaml"),
      "queue:\n  redis: ${env.REDIS_URL}\n  prefix: t-say\n",
    );
    // Eight lanes (cmd-worker.ts): each sees the shared connection's errors.
    const w = await startWorker(p.dir, ["--concurrency", "8"], { REDIS_URL: own.url });
    try {
      await own.stop();
      await new Promise((r) => setTimeout(r, 3000));
      const lines = w
        .stderr()
        .split("\n")
        .filter((l) => l.startsWith("worker: "));
      expect(lines.length, "the lost connection is said").toBeGreaterThan(0);
      const counts = new Map<string, number>();
      for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
      // Once a second over 3 s: at most 4 (5 leaves a loaded machine's timers some room); the
      // eight lanes and their connections said it about 160 times before.
      for (const [line, n] of counts) expect(n, line).toBeLessThanOrEqual(5);
    } finally {
      w.child.kill("SIGKILL");
      await w.exited;
    }
  } finally {
    p.cleanup();
    await own.stop().catch(() => {});
  }
}, 40_000);
