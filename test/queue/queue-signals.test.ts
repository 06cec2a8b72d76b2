// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${…}` templates
/**
 * Ctrl-C with a queue, through the real CLI (child processes) and real workers.
 *
 * `run --queue`: the local rule holds (nothing is committed after the signal; streams committed
 * before keep their output); the run's queued jobs are removed, its running job is told to stop
 * (it asks for no further page), the command waits for it and exits 130, and nothing of the run
 * is left in Redis. A later run gets every record once.
 *
 * `pipelines worker`: the first signal stops taking jobs and finishes the running one (exit 130);
 * a second one quits at once, and the job it held is run by another worker, every record once.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type ServerResponse } from "node:http";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BIN, ensureBuilt } from "../built.js";
import {
  closeServer,
  listenLocal,
  listFiles,
  readJsonl,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "../run/helpers.js";
import { redisUrl, startWorker, type WorkerProcess, writeQueueConfig } from "./helpers.js";

const PARENTS = 6;
/** Requests held open by the server (the second parent's first page), until released. */
const held: (() => void)[] = [];
let holding = true;
const seen: string[] = [];
const server = createServer((req, res: ServerResponse) => {
  const u = new URL(req.url ?? "/", "http://x");
  seen.push(`${u.pathname}${u.search}`);
  const send = (body: unknown) =>
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  if (u.pathname === "/parents")
    return send({ data: Array.from({ length: PARENTS }, (_, i) => ({ id: i + 1 })), next: null });
  const m = /^\/parents\/(\d+)\/children$/.exec(u.pathname);
  if (!m) return void res.writeHead(404).end();
  const id = Number(m[1]);
  const page = Number(u.searchParams.get("cursor") ?? "1");
  // Two pages per parent: the first names the second.
  const reply = () => send({ data: [{ parent: id, page }], next: page === 1 ? "2" : null });
  if (id === 2 && page === 1 && holding) return void held.push(reply);
  reply();
});
let url: string;
beforeAll(async () => {
  url = await listenLocal(server);
  await ensureBuilt();
}, 300_000);
afterAll(() => closeServer(server));

let p: TempProject;
const workers: WorkerProcess[] = [];
afterEach(async () => {
  holding = false;
  for (const r of held.splice(0)) r();
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  p?.cleanup();
});

function pipeline(prefix: string): void {
  p = tempProject("pipelines-queue-signals-");
  writeQueueConfig(p.dir, prefix);
  p.pipeline(
    "p",
    `${sourceBlock(url, "concurrency: 1")}
streams:
  parents: { path: /parents, records: $.data, primary_key: id }
  children:
    parent: parents
    path: /parents/\${parent.id}/children
    records: $.data
    paginate: { type: cursor, cursor: $.next, param: cursor }
`,
  );
}

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnRun(): { child: ChildProcess; exited: Promise<Exit> } {
  const child = spawn(process.execPath, [BIN, "run", "p", "--queue", "--json"], {
    cwd: p.dir,
    env: { PATH: process.env.PATH ?? "", NO_COLOR: "1", REDIS_URL: redisUrl() },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<Exit>((resolve) =>
    child.on("exit", (code) => resolve({ code, stdout, stderr })),
  );
  return { child, exited };
}

/** Waits until `ready()` holds (polling; never a timing assertion). */
async function until(ready: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Status = { name: string; status: string; error?: { kind: string } | null };
const statusOf = (r: Exit, name: string) =>
  (JSON.parse(r.stdout) as { streams: Status[] }).streams.find((s) => s.name === name);
const childRequests = () => seen.filter((s) => s.includes("/children"));

describe.each(["SIGINT", "SIGTERM"] as const)("%s of run --queue", (sig) => {
  it("removes the queued jobs, stops the running one, commits nothing after the signal, exits 130", async () => {
    const prefix = `t-qsig-${sig}`;
    pipeline(prefix);
    holding = true;
    seen.length = 0;
    // One worker taking one job at a time: the second parent's job runs (held by the server),
    // the later parents' jobs wait in the queue.
    workers.push(await startWorker(p.dir, ["--concurrency", "1"]));
    const { child, exited } = spawnRun();
    await until(() => held.length === 1, "the second partition's first page");
    child.kill(sig);
    // The worker heard that the run was cancelled; only then does its page arrive.
    await until(
      () => workers[0].stderr().includes("was cancelled: stopping its 1 running job"),
      "the worker",
    );
    for (const r of held.splice(0)) r();
    const r = await exited;
    expect(r.code, r.stderr).toBe(130);
    expect(statusOf(r, "parents")?.status).toBe("ok");
    expect(statusOf(r, "children")?.status).toBe("failed");
    expect(statusOf(r, "children")?.error?.kind).toBe("aborted");
    // The running job asked for no second page; the queued ones never ran.
    expect(childRequests()).toEqual([
      "/parents/1/children",
      "/parents/1/children?cursor=2",
      "/parents/2/children",
    ]);
    // Nothing after the signal: the parents (committed before) and not one child record.
    expect(readJsonl(p.file("out/p/parents.jsonl"))).toHaveLength(PARENTS);
    expect(listFiles(p.file("out/p"))).toEqual(["parents.jsonl"]);
    // Nothing of the run is left in Redis: no job queued or running, no staged records, no lock.
    const redis = new Redis(redisUrl());
    const queue = new Queue("units", { connection: redis, prefix });
    try {
      const counts = await queue.getJobCounts("waiting", "active", "delayed", "prioritized");
      expect(counts).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0 });
      expect(await redis.keys(`${prefix}:staged:*`)).toEqual([]);
      expect(await redis.get(`${prefix}:lock:p`)).toBeNull();
    } finally {
      await queue.close();
      redis.disconnect();
    }
    // The worker goes on: the next run gets every record once.
    holding = false;
    const again = await runPipeline(p.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
    expect(again.code, again.stderr).toBe(0);
    const children = readJsonl(p.file("out/p/children.jsonl")) as { parent: number; page: number }[];
    expect(children.map((c) => `${c.parent}.${c.page}`)).toEqual(
      Array.from({ length: PARENTS }, (_, i) => [`${i + 1}.1`, `${i + 1}.2`]).flat(),
    );
  }, 120_000);
});

describe("Ctrl-C of pipelines worker", () => {
  it("the first signal finishes the running job and takes no other; the run completes on another worker", async () => {
    pipeline("t-qsig-worker1");
    holding = true;
    seen.length = 0;
    const first = await startWorker(p.dir, ["--concurrency", "1"]);
    workers.push(first);
    const run = runPipeline(p.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
    await until(() => held.length === 1, "the second partition's first page");
    first.child.kill("SIGTERM");
    await until(() => first.stderr().includes("taking no more jobs"), "the worker's message");
    // Another worker takes the queued jobs; the first one's page arrives and its job finishes.
    workers.push(await startWorker(p.dir, ["--concurrency", "1"]));
    for (const r of held.splice(0)) r();
    // Stopped by a signal: 130, as every command (README, exit codes), once its job is done.
    expect((await first.exited).code).toBe(130);
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    const children = readJsonl(p.file("out/p/children.jsonl")) as { parent: number; page: number }[];
    expect(children.map((c) => `${c.parent}.${c.page}`)).toEqual(
      Array.from({ length: PARENTS }, (_, i) => [`${i + 1}.1`, `${i + 1}.2`]).flat(),
    );
    // The stopping worker fetched only its own job's pages after the signal; each page once.
    expect(childRequests().filter((s) => s.startsWith("/parents/2/"))).toEqual([
      "/parents/2/children",
      "/parents/2/children?cursor=2",
    ]);
  }, 120_000);

  it("a second signal quits at once; the job it held runs on another worker, every record once", async () => {
    pipeline("t-qsig-worker2");
    holding = true;
    seen.length = 0;
    const lock = { PIPELINES_WORKER_LOCK_MS: "1000", PIPELINES_WORKER_STALLED_MS: "500" };
    const first = await startWorker(p.dir, ["--concurrency", "1"], lock);
    workers.push(first);
    const run = runPipeline(p.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
    await until(() => held.length === 1, "the second partition's first page");
    first.child.kill("SIGTERM");
    await until(() => first.stderr().includes("taking no more jobs"), "the worker's message");
    first.child.kill("SIGTERM");
    expect((await first.exited).code).toBe(130);
    // The held page is answered to nobody; the second worker runs the job again, whole.
    holding = false;
    for (const r of held.splice(0)) r();
    workers.push(await startWorker(p.dir, ["--concurrency", "1"], lock));
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    const children = readJsonl(p.file("out/p/children.jsonl")) as { parent: number; page: number }[];
    expect(children.map((c) => `${c.parent}.${c.page}`)).toEqual(
      Array.from({ length: PARENTS }, (_, i) => [`${i + 1}.1`, `${i + 1}.2`]).flat(),
    );
  }, 120_000);
});
