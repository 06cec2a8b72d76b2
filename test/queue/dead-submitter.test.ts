// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${…}` templates
/**
 * A `run --queue` killed with SIGKILL (no Ctrl-C, so nothing marks its run cancelled): once its
 * lock in Redis is gone (it expires 30 s after the submitter died; deleted here), the workers
 * drop the run's queued jobs instead of fetching every partition for a run nobody reads.
 */
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { UNITS_QUEUE } from "../../src/queue/jobs.js";
import { BIN, ensureBuilt } from "../built.js";
import { closeServer, FAN_OUT_STREAMS, listenLocal, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, type WorkerProcess, writeQueueConfig } from "./helpers.js";

const PARENTS = 30;
const PREFIX = "t-dead-submitter";
let server: Server;
let base: string;
let childRequests = 0;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url === "/orgs") {
      res.end(JSON.stringify({ data: Array.from({ length: PARENTS }, (_, i) => ({ id: i + 1 })) }));
      return;
    }
    childRequests++;
    setTimeout(() => res.end('{"data":[{"id":1}]}'), 100);
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

const text = () => `${sourceBlock(base)}\n${FAN_OUT_STREAMS}`;

async function until(what: string, ok: () => boolean | Promise<boolean>, log: () => string): Promise<void> {
  const deadline = Date.now() + 45_000;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`never: ${what}\n${log()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it("the jobs of a killed submitter's run are dropped once its lock is gone", async () => {
  const p = tempProject("pipelines-queue-dead-");
  const redis = new Redis(redisUrl());
  const queue = new Queue(UNITS_QUEUE, { connection: redis, prefix: PREFIX });
  let w: WorkerProcess | null = null;
  try {
    p.pipeline("p", text());
    writeQueueConfig(p.dir, PREFIX);
    w = await startWorker(p.dir, ["--concurrency", "1"]);
    const worker = w;
    const submitter = spawn(process.execPath, [BIN, "run", "p", "--queue"], {
      cwd: p.dir,
      env: { PATH: process.env.PATH ?? "", NO_COLOR: "1", REDIS_URL: redisUrl() },
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => submitter.on("exit", resolve));
    await until("two partitions fetched", () => childRequests >= 2, worker.stderr);
    submitter.kill("SIGKILL");
    await exited;
    // What its lock does 30 s after the submitter died.
    await redis.del(`${PREFIX}:lock:p`);
    const atLockGone = childRequests;
    await until(
      "the run's jobs all gone from the queue",
      async () => {
        const n = await queue.getJobCounts("waiting", "active", "prioritized");
        return (n.waiting ?? 0) + (n.active ?? 0) + (n.prioritized ?? 0) === 0;
      },
      worker.stderr,
    );
    // At most the job that had already started (concurrency 1), never the other partitions.
    expect(childRequests).toBeLessThanOrEqual(atLockGone + 1);
    expect(childRequests).toBeLessThan(PARENTS);
    expect(worker.stderr()).toMatch(/run \S+ is no longer going \(its submitter is gone\)/);
  } finally {
    await w?.stop();
    await queue.close();
    redis.disconnect();
    p.cleanup();
  }
}, 90_000);
