/**
 * `run a b --queue` compiles both files at its start; b's submitter opens once a's run ended.
 * A b.yaml edited meanwhile (deployed to the workers) differs from the text the submitter
 * compiled: the workers refuse b's jobs (by hash of the text loaded at the start) instead of
 * running the edit while the submitter validates and writes with the old text.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { runCli } from "../cli/helpers.js";
import { closeServer, listenLocal, sourceBlock, type TempProject, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, type WorkerProcess, writeQueueConfig } from "./helpers.js";

let server: Server;
let base: string;
/** Called when the API gets the request of pipeline a (its run is going). */
let onA: () => void = () => {};

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url === "/a") onA();
    res.end(JSON.stringify({ data: [{ id: 1 }], other: [{ id: 2 }, { id: 3 }] }));
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

const text = (path: string, records: string) =>
  [
    sourceBlock(base),
    "streams:",
    "  items:",
    `    path: ${path}`,
    `    records: ${records}`,
    "output: { format: jsonl }",
    "",
  ].join("\n");

it("a pipeline file edited while an earlier pipeline of the command runs: its jobs are refused", async () => {
  const p: TempProject = tempProject("pipelines-queue-edited-");
  let w: WorkerProcess | null = null;
  try {
    p.pipeline("a", text("/a", "$.data"));
    p.pipeline("b", text("/b", "$.data"));
    writeQueueConfig(p.dir, "t-edited-file");
    onA = () => p.pipeline("b", text("/b", "$.other"));
    w = await startWorker(p.dir);
    const r = await runCli(["run", "a", "b", "--queue", "--json"], p.dir, { REDIS_URL: redisUrl() });
    const [a, b] = JSON.parse(r.stdout) as {
      status: string;
      streams: { error: { message: string } | null }[];
    }[];
    expect(a.status).toBe("ok");
    expect(b.status).toBe("failed");
    expect(b.streams[0].error?.message).toContain("differs from the submitter's");
    expect(r.code).toBe(1);
  } finally {
    onA = () => {};
    await w?.stop();
    p.cleanup();
  }
}, 60_000);
