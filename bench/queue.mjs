// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and project configs use `${…}` templates
// Queue runs (`run --queue`, `pipelines worker`) side by side, on a throwaway redis-server
// (test/queue/redis-server.mjs): a fan-out of 200 partitions against a server that answers in
// 100 ms. Needs a build. Figures: 1 worker vs 4 workers (the 4 should be ≥ 3× faster), the
// queue's own overhead per job (enqueue → a worker starts it, median, with workers to spare:
// < 20 ms) on a burst (a run's 200 jobs at once: mostly their wait in line) and on a steady flow
// (one job every 20 ms), and a binding rate limit (the run takes within 10% of requests ÷ rate).
//   node bench/queue.mjs [--partitions 200] [--latency 100] [--rate 20]
//     [--only speedup,burst,steady,rate] [--bin <another build's dist/cli/bin.js>, for A/B]
// BENCH_DEBUG=1 prints the burst's jobs (enqueued, started, finished, worker);
// BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the workers.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { startRedis } from "../test/queue/redis-server.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const argv = process.argv.slice(2);
// --bin <dist/cli/bin.js of another build>: A/B runs against an older build, side by side.
const bin = argv.includes("--bin")
  ? path.resolve(argv[argv.indexOf("--bin") + 1])
  : path.join(root, "dist/cli/bin.js");
if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` first`);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const PARTITIONS = opt("partitions", 200);
const LATENCY = opt("latency", 100);
const RATE = opt("rate", 20);

/** Arrival times at the API (performance.now()) of the current scenario. */
const arrivals = [];
/** First arrival (Date.now()) per path, for the steady flow. */
const firstAt = new Map();
const server = createServer((req, res) => {
  arrivals.push(performance.now());
  if (!firstAt.has(req.url)) firstAt.set(req.url, Date.now());
  const url = new URL(req.url ?? "/", "http://x");
  res.setHeader("content-type", "application/json");
  const body =
    url.pathname === "/orgs"
      ? { data: Array.from({ length: PARTITIONS }, (_, i) => ({ id: i + 1 })) }
      : { data: Array.from({ length: 5 }, (_, i) => ({ id: i, org: url.pathname })) };
  setTimeout(() => res.end(JSON.stringify(body)), LATENCY);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;
const redis = await startRedis();

function project(prefix, rate) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pipelines-bench-queue-"));
  mkdirSync(path.join(dir, "pipelines"));
  writeFileSync(
    path.join(dir, "pipelines.config.yaml"),
    `queue:\n  redis: \${env.REDIS_URL}\n  prefix: ${prefix}\n`,
  );
  writeFileSync(
    path.join(dir, "pipelines", "fan.yaml"),
    [
      "source:",
      `  base_url: ${base}`,
      "  concurrency: 8",
      "  timeout: 30s",
      ...(rate ? [`  rate_limit: { requests_per_second: ${rate} }`] : []),
      "streams:",
      "  orgs: { path: /orgs, records: $.data }",
      "  repos: { parent: orgs, path: '/orgs/${parent.id}/repos', records: $.data }",
      "output: { format: jsonl }",
      "",
    ].join("\n"),
  );
  return dir;
}

const env = { PATH: process.env.PATH ?? "", NO_COLOR: "1", REDIS_URL: redis.url };

function startWorker(dir, concurrency) {
  const nodeArgs = process.env.BENCH_WORKER_NODE_ARGS ? process.env.BENCH_WORKER_NODE_ARGS.split(" ") : [];
  const child = spawn(process.execPath, [...nodeArgs, bin, "worker", "--concurrency", String(concurrency)], {
    cwd: dir,
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
      if (err.includes("taking jobs")) resolve(child);
    });
    child.on("exit", () => reject(new Error(`worker exited: ${err}`)));
  });
}

async function timedRun(dir) {
  arrivals.length = 0;
  const t0 = performance.now();
  const code = await new Promise((resolve) => {
    const c = spawn(process.execPath, [bin, "run", "fan", "--queue"], { cwd: dir, env, stdio: "ignore" });
    c.on("exit", resolve);
  });
  if (code !== 0) throw new Error(`run --queue exited ${code}`);
  const end = performance.now();
  return {
    seconds: (end - t0) / 1000,
    first: (arrivals[0] - t0) / 1000,
    tail: (end - arrivals.at(-1)) / 1000,
  };
}

async function scenario(name, { workers, concurrency, rate = null }) {
  const prefix = `bench-${name}`;
  const dir = project(prefix, rate);
  const started = await Promise.all(Array.from({ length: workers }, () => startWorker(dir, concurrency)));
  try {
    return { ...(await timedRun(dir)), dir, prefix };
  } finally {
    for (const w of started) w.kill("SIGTERM");
  }
}

/**
 * A steady flow: warm workers (a run done), then one job every `gapMs`, as a submitter would
 * enqueue it, with workers to spare. Returns enqueue → start (BullMQ's stamps) and enqueue → the
 * job's request at the API, medians and p90.
 */
async function steadyFlow({ workers, concurrency, jobs, gapMs }) {
  const prefix = "bench-steady";
  const dir = project(prefix, null);
  dirs.push(dir);
  const started = await Promise.all(Array.from({ length: workers }, () => startWorker(dir, concurrency)));
  try {
    await timedRun(dir); // compiles the pipeline in every worker that takes a job
    const { Queue } = await import("bullmq");
    const { createHash } = await import("node:crypto");
    const { readFileSync } = await import("node:fs");
    const fileHash = createHash("sha256")
      .update(readFileSync(path.join(dir, "pipelines", "fan.yaml")))
      .digest("hex");
    const version = JSON.parse(
      readFileSync(path.join(path.dirname(bin), "../../package.json"), "utf8"),
    ).version;
    const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue("units", { connection: conn, prefix });
    // A submitter holds the pipeline's lock with its run id: workers drop the jobs of a run without one.
    await conn.set(`${prefix}:lock:fan`, "steady");
    const sent = [];
    firstAt.clear();
    for (let i = 0; i < jobs; i++) {
      const org = 100_000 + i;
      sent.push({ org, at: Date.now() });
      await queue.add(
        "repos",
        {
          pipeline: "fan",
          fileHash,
          version,
          runId: "steady",
          runStartedAt: new Date().toISOString(),
          stream: "repos",
          unit: { label: String(org), parent: JSON.stringify({ id: org }), window: null },
          since: null,
          maxPages: null,
          staged: `.pipelines/state/steady/repos.${i}.jsonl`,
        },
        { jobId: `steady-${i}` },
      );
      await new Promise((r) => setTimeout(r, gapMs));
    }
    const finished = async () => {
      for (let i = 0; i < jobs; i++)
        if (!(await conn.hget(`${prefix}:units:steady-${i}`, "finishedOn"))) return false;
      return true;
    };
    while (!(await finished())) await new Promise((r) => setTimeout(r, 50));
    const start = [];
    for (let i = 0; i < jobs; i++) {
      const [ts, on] = await conn.hmget(`${prefix}:units:steady-${i}`, "timestamp", "processedOn");
      start.push(Number(on) - Number(ts));
    }
    const request = sent.map((s) => (firstAt.get(`/orgs/${s.org}/repos`) ?? Number.NaN) - s.at);
    await conn.del(`${prefix}:lock:fan`);
    await queue.close();
    conn.disconnect();
    return { start: stats(start), request: stats(request) };
  } finally {
    for (const w of started) w.kill("SIGTERM");
  }
}

function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  return { median: v[Math.floor(v.length / 2)], p90: v[Math.floor(v.length * 0.9)], n: v.length };
}

/** Median of enqueue → start of the run's jobs, from BullMQ's own stamps. */
async function enqueueToStart(prefix) {
  const r = new Redis(redis.url);
  const keys = (await r.keys(`${prefix}:units:*`)).filter((k) => /-\d+$/.test(k));
  const gaps = [];
  const debug = [];
  for (const k of keys) {
    const [ts, on, done, by] = await r.hmget(k, "timestamp", "processedOn", "finishedOn", "pb");
    if (ts && on) gaps.push(Number(on) - Number(ts));
    if (process.env.BENCH_DEBUG) debug.push([Number(ts), Number(on), Number(done), by]);
  }
  if (process.env.BENCH_DEBUG) {
    debug.sort((a, b) => a[0] - b[0]);
    const t0 = debug[0][0];
    for (const [ts, on, done, by] of debug) console.error(ts - t0, on - t0, done - t0, by);
  }
  r.disconnect();
  gaps.sort((a, b) => a - b);
  return {
    median: gaps[Math.floor(gaps.length / 2)],
    p90: gaps[Math.floor(gaps.length * 0.9)],
    jobs: gaps.length,
  };
}

const only = (() => {
  const i = argv.indexOf("--only");
  return i >= 0 ? new Set(argv[i + 1].split(",")) : null;
})();
const wanted = (name) => !only || only.has(name);
const dirs = [];

const rows = [];
try {
  if (wanted("speedup")) {
    const one = await scenario("one", { workers: 1, concurrency: 2 });
    const four = await scenario("four", { workers: 4, concurrency: 2 });
    dirs.push(one.dir, four.dir);
    rows.push(["1 worker (concurrency 2)", `${one.seconds.toFixed(2)} s`, ""]);
    const speedup = one.seconds / four.seconds;
    rows.push([
      "4 workers (concurrency 2)",
      `${four.seconds.toFixed(2)} s`,
      `${speedup.toFixed(2)}× faster (goal ≥ 3×)`,
    ]);
  }
  if (wanted("burst")) {
    const spare = await scenario("spare", { workers: 4, concurrency: 64 });
    dirs.push(spare.dir);
    const gap = await enqueueToStart(spare.prefix);
    rows.push([
      "enqueue → start, burst",
      `${gap.median} ms`,
      `median of ${gap.jobs} jobs enqueued at once, workers to spare (goal < 20 ms; p90 ${gap.p90} ms)`,
    ]);
  }
  if (wanted("steady")) {
    const flow = await steadyFlow({ workers: 4, concurrency: 8, jobs: 100, gapMs: 20 });
    rows.push([
      "enqueue → start, steady",
      `${flow.start.median} ms`,
      `median of ${flow.start.n} jobs, one every 20 ms, warm workers (p90 ${flow.start.p90} ms)`,
    ]);
    rows.push([
      "enqueue → request at the API",
      `${flow.request.median} ms`,
      `median, same jobs: the queue and the worker's own work per job (p90 ${flow.request.p90} ms)`,
    ]);
  }
  if (wanted("rate")) {
    const requests = PARTITIONS + 1;
    const bound = await scenario("rate", { workers: 4, concurrency: 8, rate: RATE });
    dirs.push(bound.dir);
    const ideal = requests / RATE;
    rows.push([
      `rate_limit ${RATE}/s, 4 workers`,
      `${bound.seconds.toFixed(2)} s`,
      `requests ÷ rate = ${ideal.toFixed(2)} s: ${((bound.seconds / ideal - 1) * 100).toFixed(1)}% over (goal ≤ 10%)`,
    ]);
    const span = bound.seconds - bound.first - bound.tail;
    rows.push([
      "  of which",
      "",
      `${bound.first.toFixed(2)} s to the first request, ${span.toFixed(2)} s of requests, ${bound.tail.toFixed(2)} s after the last`,
    ]);
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
} finally {
  server.close();
  await redis.stop();
}
console.log(`queue bench: ${PARTITIONS} partitions, ${LATENCY} ms per response`);
for (const [a, b, c] of rows) console.log(`  ${a.padEnd(28)} ${b.padStart(9)}  ${c}`);
