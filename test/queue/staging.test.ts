/**
 * A job's records reach the submitter through Redis (src/queue/staging.ts): a whole stream of
 * about 3 MB (many chunks, read several times) arrives complete and in order — the output
 * bytes equal a local run's — and no staged key is left behind.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { closeServer, listenLocal, runPipeline, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, writeQueueConfig } from "./helpers.js";

const PAGES = 3;
const PER_PAGE = 2000;
let server: Server;
let base: string;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    const page = Number(new URL(req.url ?? "/", "http://x").searchParams.get("page") ?? "1");
    const data =
      page > PAGES
        ? []
        : Array.from({ length: PER_PAGE }, (_, i) => ({
            id: (page - 1) * PER_PAGE + i,
            // Multi-byte text and a newline inside a value: lines are cut on record ends only.
            text: `é ✓ line\nbreak ${"x".repeat(400)} ${i}`,
          }));
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ data }));
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
    "    paginate: { type: page, page_param: page }",
    "output:",
    "  format: jsonl",
    "",
  ].join("\n");

it("a stream of about 3 MB staged in Redis arrives whole and in order, and nothing is left", async () => {
  const local = tempProject("pipelines-queue-staging-");
  const queued = tempProject("pipelines-queue-staging-");
  for (const p of [local, queued]) p.pipeline("p", text());
  writeQueueConfig(queued.dir, "t-staging");
  const redis = new Redis(redisUrl());
  const w = await startWorker(queued.dir);
  try {
    const a = await runPipeline(local.dir, "p");
    const b = await runPipeline(queued.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stream("items").records.written).toBe(PAGES * PER_PAGE);
    const out = readFileSync(queued.file("out/p/items.jsonl"));
    expect(out.length).toBeGreaterThan(2_500_000);
    expect(out.equals(readFileSync(local.file("out/p/items.jsonl")))).toBe(true);
    expect(await redis.keys("t-staging:staged:*")).toEqual([]);
  } finally {
    await w.stop();
    redis.disconnect();
    local.cleanup();
    queued.cleanup();
  }
}, 90_000);
