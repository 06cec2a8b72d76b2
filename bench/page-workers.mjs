// The experiment behind issue 20's decision: does handing pages to worker threads pay on this
// machine? The product's own per-page work (dist/: parseJson, the shaper's select + shape, the
// stream's quality check, stringifyJson) runs either on the main thread, or in K worker threads
// that get the raw page bytes (a transferred ArrayBuffer, not a copy), post the next cursor back
// as soon as the page is parsed (cursor pagination needs it for the next request), and post the
// page's JSON lines back (transferred too), written in page order. Beside them, in the same loop,
// alternating: the floor (bench/floor.mjs). Also per page: JSON.parse against posting the parsed
// page between threads (what moving only the parse off the main thread would cost).
//   npm run build && node bench/page-workers.mjs [--records 200000] [--runs 5] [--workers 1,2]
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isMainThread, MessageChannel, parentPort, receiveMessageOnPort, Worker } from "node:worker_threads";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = (p) => pathToFileURL(path.join(root, "dist", p)).href;

const SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "object",
  required: ["id", "name", "email", "created_at", "amount", "active"],
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    email: { type: "string", format: "email" },
    created_at: { type: "string", format: "date-time" },
    amount: { type: "number" },
    active: { type: "boolean" },
    tags: { type: "array", items: { type: "string" } },
    owner: { type: "object", properties: { id: { type: "integer" } } },
  },
};

/** The product's per-page work, compiled once per thread: bytes → { cursor, lines }. */
async function pageWork() {
  const { parseJson, stringifyJson } = await import(dist("shared/json-text.js"));
  const { compileShaper } = await import(dist("records/shape.js"));
  const { StreamQuality } = await import(dist("records/quality.js"));
  const plan = { name: "records", records: "$.data", schema: { schema: SCHEMA }, primaryKey: null };
  const shaper = compileShaper(plan);
  const quality = new StreamQuality(plan, { invalidRecords: "skip", maxInvalidRatio: 0, drift: "warn" });
  const decoder = new TextDecoder();
  return (bytes, onCursor) => {
    const body = parseJson(decoder.decode(bytes));
    onCursor(body.next_cursor);
    let lines = "";
    for (const record of shaper.select(body)) {
      const row = shaper.shape(record);
      quality.check(row);
      lines += `${stringifyJson(row)}\n`;
    }
    return lines;
  };
}

if (!isMainThread) {
  const work = await pageWork();
  parentPort.postMessage({ ready: true });
  parentPort.on("message", ({ seq, bytes }) => {
    const lines = work(new Uint8Array(bytes), (cursor) => parentPort.postMessage({ seq, cursor }));
    const b = Buffer.from(lines);
    const out = b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
    parentPort.postMessage({ seq, out }, [out]);
  });
} else if (process.argv[2] === "--one") {
  // One timed run: --one <base> <n> <out> <workers (0: main thread)>
  await oneRun(...process.argv.slice(3));
} else await main();

async function oneRun(base, n, out, k) {
  const { Pool } = await import("undici");
  const pool = new Pool(base, { connections: 1 });
  const file = createWriteStream(out);
  const fetchPage = async (cursor) => {
    const res = await pool.request({
      path: `/cursor?n=${n}${cursor ? `&cursor=${cursor}` : ""}`,
      method: "GET",
    });
    return res.body.arrayBuffer();
  };
  const K = Number(k);
  // The pages alone, from the first request on: without starting Node and compiling the work.
  let t0 = 0;
  if (K === 0) {
    // As the product does it: the next page is requested once this one is parsed, before it is written.
    const work = await pageWork();
    t0 = performance.now();
    let next = fetchPage(null);
    while (next) {
      const bytes = await next;
      next = null;
      const lines = work(new Uint8Array(bytes), (cursor) => {
        if (cursor) next = fetchPage(cursor);
      });
      if (!file.write(lines)) await new Promise((r) => file.once("drain", r));
    }
  } else {
    const workers = Array.from({ length: K }, () => new Worker(new URL(import.meta.url)));
    await Promise.all(workers.map((w) => new Promise((r) => w.once("message", r))));
    t0 = performance.now();
    const cursors = new Map();
    const outs = new Map();
    let written = 0;
    let pages = -1;
    let finish;
    const done = new Promise((r) => {
      finish = r;
    });
    const flush = () => {
      while (outs.has(written)) {
        file.write(new Uint8Array(outs.get(written)));
        outs.delete(written++);
      }
      if (written === pages) finish();
    };
    for (const w of workers)
      w.on("message", (m) => {
        if ("cursor" in m) cursors.get(m.seq)(m.cursor);
        else {
          outs.set(m.seq, m.out);
          flush();
        }
      });
    let cursor = null;
    let seq = 0;
    do {
      const bytes = await fetchPage(cursor);
      const s = seq++;
      const parsed = new Promise((r) => cursors.set(s, r));
      workers[s % K].postMessage({ seq: s, bytes }, [bytes]);
      cursor = await parsed;
      cursors.delete(s);
    } while (cursor);
    pages = seq;
    flush();
    await done;
    await Promise.all(workers.map((w) => w.terminate()));
  }
  await new Promise((r) => file.end(r));
  await pool.close();
  process.stdout.write(`PAGES ${((performance.now() - t0) / 1000).toFixed(3)}\n`);
}

function clonePerPage() {
  const record = (i) =>
    `{"id":${i},"name":"record-${i}","email":"user${i}@example.com","created_at":"2024-01-1${i % 10}T00:00:00Z","amount":${i / 100},"active":true,"tags":["t${i % 7}"],"owner":{"id":${i % 101}}}`;
  const text = `{"data":[${Array.from({ length: 1000 }, (_, i) => record(i)).join(",")}],"next_cursor":"1000"}`;
  const page = JSON.parse(text);
  const { port1, port2 } = new MessageChannel();
  const time = (f) => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 30; i++) f();
    return Number(process.hrtime.bigint() - t) / 30e6;
  };
  const parse = [];
  const post = [];
  for (let r = 0; r < 7; r++) {
    parse.push(time(() => JSON.parse(text)));
    post.push(
      time(() => {
        port1.postMessage(page);
        receiveMessageOnPort(port2);
      }),
    );
  }
  port1.close();
  return { parse: median(parse), post: median(post) };
}

function median(xs) {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

async function main() {
  const argv = process.argv.slice(2);
  const opt = (name, dflt) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : dflt);
  const N = Number(opt("records", 200_000));
  const RUNS = Number(opt("runs", 5));
  const ks = String(opt("workers", "1,2")).split(",").map(Number);
  const server = spawn(process.execPath, [path.join(root, "bench/server.mjs")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const base = await new Promise((r) => server.stdout.once("data", (d) => r(JSON.parse(String(d)).url)));
  const dir = mkdtempSync(path.join(os.tmpdir(), "pipelines-page-workers-"));
  const variants = [
    [
      "floor (bench/floor.mjs)",
      [path.join(root, "bench/floor.mjs"), base, String(N), path.join(dir, "floor.jsonl")],
    ],
    [
      "main thread only",
      [fileURLToPath(import.meta.url), "--one", base, String(N), path.join(dir, "k0.jsonl"), "0"],
    ],
    ...ks.map((k) => [
      `${k} worker thread${k > 1 ? "s" : ""}`,
      [fileURLToPath(import.meta.url), "--one", base, String(N), path.join(dir, `k${k}.jsonl`), String(k)],
    ]),
  ];
  const runs = Object.fromEntries(variants.map(([name]) => [name, []]));
  try {
    console.log(
      `page workers · node ${process.version} · ${os.cpus().length} cpus · ${N.toLocaleString("en-US")} records · median of ${RUNS} alternating runs · load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
    for (let i = 0; i < RUNS; i++)
      for (const [name, args] of variants) {
        const r = spawnSync("/usr/bin/time", ["-f", "BENCH %e %U %S %M", process.execPath, ...args], {
          encoding: "utf8",
        });
        const line = r.stderr.split("\n").find((l) => l.startsWith("BENCH "));
        if (r.status !== 0 || !line) throw new Error(`${name} failed:\n${r.stderr.slice(-2000)}`);
        const [, wall, user, sys, rss] = line.split(" ");
        const pages = r.stdout.match(/PAGES (\S+)/);
        runs[name].push({
          wall: +wall,
          cpu: +user + +sys,
          rss: +rss / 1024,
          pages: pages ? +pages[1] : +wall,
        });
      }
    const floor = median(runs[variants[0][0]].map((r) => r.wall));
    console.log(
      `  ${"variant".padEnd(24)} ${"wall s".padStart(7)} ${"× floor".padStart(8)} ${"pages s".padStart(8)} ${"cpu s".padStart(6)} ${"RSS MiB".padStart(8)}   (wall s of each run)`,
    );
    for (const [name] of variants) {
      const wall = median(runs[name].map((r) => r.wall));
      const cpu = median(runs[name].map((r) => r.cpu));
      const pages = median(runs[name].map((r) => r.pages));
      const rss = median(runs[name].map((r) => r.rss));
      console.log(
        `  ${name.padEnd(24)} ${wall.toFixed(2).padStart(7)} ${(wall / floor).toFixed(2).padStart(8)} ${pages.toFixed(2).padStart(8)} ${cpu.toFixed(2).padStart(6)} ${rss.toFixed(1).padStart(8)}   (${runs[name].map((r) => r.wall).join(", ")})`,
      );
    }
    const same = variants
      .slice(1)
      .every(([, args]) => readFileSync(args[4]).equals(readFileSync(path.join(dir, "floor.jsonl"))));
    console.log(`  every variant's output identical to the floor's: ${same ? "yes" : "NO"}`);
    const c = clonePerPage();
    console.log(
      `a page of 1,000 records: JSON.parse ${c.parse.toFixed(2)} ms · posting the parsed page to another thread ${c.post.toFixed(2)} ms`,
    );
    console.log(
      `load at the end: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
