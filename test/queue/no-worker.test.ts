/**
 * `run --queue` with no `pipelines worker` taking jobs says so at once (it waits for one: it
 * used to wait in silence), and completes when a worker starts.
 */
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { BIN, ensureBuilt } from "../built.js";
import { closeServer, listenLocal, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, type WorkerProcess, writeQueueConfig } from "./helpers.js";

let server: Server;
let base: string;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end('{"data":[{"id":1}]}');
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

it("says that no worker takes jobs, then runs once one starts", async () => {
  const p = tempProject("pipelines-queue-noworker-");
  let w: WorkerProcess | null = null;
  try {
    p.pipeline(
      "p",
      [sourceBlock(base), "streams:", "  items: { path: /items, records: $.data }", ""].join("\n"),
    );
    writeQueueConfig(p.dir, "t-no-worker");
    const run = spawn(process.execPath, [BIN, "run", "p", "--queue"], {
      cwd: p.dir,
      env: { PATH: process.env.PATH ?? "", NO_COLOR: "1", REDIS_URL: redisUrl() },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    run.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => run.on("exit", resolve));
    const deadline = Date.now() + 30_000;
    while (!stderr.includes("no `pipelines worker` takes jobs")) {
      if (Date.now() > deadline) {
        run.kill("SIGKILL");
        throw new Error(`not said:\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(stderr).not.toContain(redisUrl());
    w = await startWorker(p.dir);
    expect(await exited).toBe(0);
  } finally {
    await w?.stop();
    p.cleanup();
  }
}, 60_000);
