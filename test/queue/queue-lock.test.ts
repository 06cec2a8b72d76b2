/**
 * The run lock of a queue run lives in Redis: a second `run --queue` of a pipeline already
 * running, from another project folder (another machine), is refused with exit 1.
 */
import { createServer, type Server } from "node:http";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { runCli } from "../cli/helpers.js";
import { closeServer, listenLocal, runPipeline, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, writeQueueConfig } from "./helpers.js";

let server: Server;
let base: string;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ data: [{ id: 1 }] }));
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

const text = () =>
  [
    sourceBlock(base),
    "streams:",
    "  items:",
    "    path: /items",
    "    records: $.data",
    "output:",
    "  format: jsonl",
    "",
  ].join("\n");

it("a second run --queue of a running pipeline is refused, from any machine", async () => {
  const one = tempProject("pipelines-queue-lock-");
  const two = tempProject("pipelines-queue-lock-");
  const redis = new Redis(redisUrl());
  try {
    for (const p of [one, two]) {
      p.pipeline("p", text());
      writeQueueConfig(p.dir, "t-lock");
    }
    // No worker yet: the first run waits on its job, holding the lock.
    const first = runPipeline(one.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
    while ((await redis.get("t-lock:lock:p")) === null) await new Promise((r) => setTimeout(r, 20));
    const second = await runCli(["run", "p", "--queue"], two.dir, { REDIS_URL: redisUrl() });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain("already running");
    const w = await startWorker(one.dir);
    try {
      expect((await first).code).toBe(0);
    } finally {
      await w.stop();
    }
    expect(await redis.get("t-lock:lock:p")).toBeNull();
  } finally {
    redis.disconnect();
    one.cleanup();
    two.cleanup();
  }
}, 60_000);
