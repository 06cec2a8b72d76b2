// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and project configs use `${…}` templates
/**
 * `run --queue` of small tricky pipelines against a real `pipelines worker` gives a local run's
 * `--json` summary (minus times and run ids), output bytes, quarantine files and exit code: a
 * partition that fails after retries (`on_partition_error: skip`) and a whole stream that fails
 * still count the requests and retries they made (a worker's failed job used to report none),
 * next to invalid records quarantined and a stream with an empty result.
 */
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { closeServer, listenLocal, runPipeline, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, type WorkerProcess, writeQueueConfig } from "./helpers.js";
import { comparable } from "./parity.js";

let server: Server;
let base: string;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    res.setHeader("content-type", "application/json");
    if (url.pathname === "/parents") return res.end('{"data":[{"id":1},{"id":2},{"id":3}]}');
    if (url.pathname === "/empty") return res.end('{"data":[]}');
    // Partition 2 and the `broken` stream fail after their retries.
    if (url.pathname === "/kids/2" || url.pathname === "/broken") {
      res.statusCode = 500;
      return res.end("{}");
    }
    const m = /^\/kids\/(\d+)$/.exec(url.pathname);
    if (m) return res.end(`{"data":[{"id":${Number(m[1]) * 10}},{"id":"not a number"}]}`);
    res.statusCode = 404;
    res.end("{}");
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

const text = () =>
  [
    sourceBlock(base).replace("max_attempts: 4", "max_attempts: 2"),
    "validation: { invalid_records: skip, max_invalid_ratio: 0.6 }",
    "streams:",
    "  parents: { path: /parents, records: $.data, primary_key: id }",
    "  kids:",
    "    parent: parents",
    "    path: /kids/${parent.id}",
    "    records: $.data",
    "    primary_key: id",
    "    on_partition_error: skip",
    "    schema: { type: object, properties: { id: { type: integer } }, required: [id] }",
    "  nothing: { path: /empty, records: $.data }",
    "  broken: { path: /broken, records: $.data }",
    "output: { format: jsonl }",
    "",
  ].join("\n");

it("a failed partition and a failed stream count their requests and retries as in a local run", async () => {
  const local = tempProject("pipelines-queue-failed-local-");
  const queued = tempProject("pipelines-queue-failed-");
  let w: WorkerProcess | null = null;
  try {
    local.pipeline("t", text());
    queued.pipeline("t", text());
    writeQueueConfig(queued.dir, "t-failed-unit");
    const a = await runPipeline(local.dir, "t");
    expect(a.code, a.stderr).toBe(1);
    // The local run's own figures: the failing partition's two attempts count.
    expect(a.stream("kids").requests).toBe(4);
    expect(a.stream("kids").retries).toEqual({ status_500: 1 });
    expect(a.stream("broken").requests).toBe(2);
    w = await startWorker(queued.dir);
    const b = await runPipeline(queued.dir, "t", ["--queue"], { REDIS_URL: redisUrl() });
    expect(b.code, b.stderr).toBe(a.code);
    expect(comparable(b.summary, queued.dir)).toEqual(comparable(a.summary, local.dir));
    for (const f of [
      "out/t/parents.jsonl",
      "out/t/kids.jsonl",
      "out/t/kids.invalid.jsonl",
      "out/t/nothing.jsonl",
    ]) {
      expect(existsSync(local.file(f)), f).toBe(true);
      expect(readFileSync(queued.file(f)).equals(readFileSync(local.file(f))), f).toBe(true);
    }
  } finally {
    await w?.stop();
    local.cleanup();
    queued.cleanup();
  }
}, 60_000);
