// npm run bench:windows: date windows (format 1.1).
//  1. A cursor-paginated export API with 50 ms latency per response and 12 windows of data (20
//     pages of 100 records each): `concurrency: 8` at least 5× faster than `concurrency: 1`, with
//     byte-identical output (windows run concurrently, written in order).
//  2. Checkpoint overhead: a 200,000-record `append` run in 20 windows (a commit and a state write
//     after each) within 10% of the same run without windows (one request sequence over the same
//     range, the same pages), both at concurrency 1, no latency.
// The API runs in another process; wall times are the best of 3 (the machine is shared).
//   node bench/windows.mjs
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const DAY = 86_400_000;
const T0 = Date.UTC(2024, 0, 1);

if (process.argv[2] === "--server") {
  // GET /export?from_date&to_date (inclusive days)&cursor&per_day&per_page&delay
  const server = http.createServer((req, res) => {
    const q = new URL(req.url, "http://x").searchParams;
    const from = Date.parse(`${q.get("from_date")}T00:00:00Z`);
    const to = Date.parse(`${q.get("to_date")}T00:00:00Z`);
    const perDay = Number(q.get("per_day"));
    const perPage = Number(q.get("per_page"));
    const at = Number(q.get("cursor") ?? 0);
    const total = ((to - from) / DAY + 1) * perDay;
    const rows = [];
    for (let i = at; i < Math.min(at + perPage, total); i++) {
      const day = new Date(from + Math.floor(i / perDay) * DAY).toISOString().slice(0, 10);
      const n = i % perDay;
      rows.push(
        `{"id":"${day}-${String(n).padStart(6, "0")}","day":"${day}","n":${n},"kind":"${n % 3 ? "view" : "click"}","amount":${(n % 1000) / 10}}`,
      );
    }
    const next = at + perPage < total ? `"${at + perPage}"` : "null";
    const body = `{"events":[${rows.join(",")}],"next":${next}}`;
    setTimeout(
      () => {
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      },
      Number(q.get("delay") ?? 0),
    );
  });
  server.listen(0, "127.0.0.1", () =>
    console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })),
  );
} else {
  await main();
}

async function main() {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const bin = path.join(root, "dist/cli/bin.js");
  if (!existsSync(bin)) throw new Error("dist/cli/bin.js is missing: run `npm run build` first");
  const api = spawn(process.execPath, [fileURLToPath(import.meta.url), "--server"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const base = await new Promise((r) => api.stdout.once("data", (d) => r(JSON.parse(String(d)).url)));
  const dir = mkdtempSync(path.join(os.tmpdir(), "pipelines-bench-windows-"));
  const day = (d) => new Date(T0 + d * DAY).toISOString().slice(0, 10);

  const windowed = (
    concurrency,
    days,
    extra,
  ) => `source: { base_url: "${base}", concurrency: ${concurrency}, timeout: 60s }
streams:
  events:
    path: /export
    params: { from_date: "\${window.start}", to_date: "\${window.last}", ${extra} }
    records: $.events
    paginate: { type: cursor, cursor: $.next }
    windows: { step: 1d, start: ${day(0)}, end: ${day(days)}, format: date }
output: { mode: append }
`;
  const plain = (days, extra) => `source: { base_url: "${base}", concurrency: 1, timeout: 60s }
streams:
  events:
    path: /export
    params: { from_date: "${day(0)}", to_date: "${day(days - 1)}", ${extra} }
    records: $.events
    paginate: { type: cursor, cursor: $.next }
output: { mode: append }
`;

  /** One fresh run of a pipeline text: wall seconds (process), the stream's own ms, output digest. */
  function measure(name, text) {
    const project = path.join(dir, name);
    rmSync(project, { recursive: true, force: true });
    mkdirSync(path.join(project, "pipelines"), { recursive: true });
    writeFileSync(path.join(project, "pipelines", "bench.yaml"), text);
    const started = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [bin, "run", "bench", "--json"], {
      cwd: project,
      encoding: "utf8",
      env: { ...process.env, CI: "1" },
      maxBuffer: 1 << 26,
    });
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    if (r.status !== 0) throw new Error(`${name} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
    const summary = JSON.parse(r.stdout);
    const out = readFileSync(path.join(project, "out", "bench", "events.jsonl"));
    return {
      wall,
      streamMs: summary.streams[0].duration_ms,
      records: summary.streams[0].records.written,
      digest: createHash("sha256").update(out).digest("hex"),
    };
  }
  const best = (runs) => runs.reduce((a, b) => (b.wall < a.wall ? b : a));
  const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

  try {
    console.log(`windows bench · node ${process.version} · ${os.cpus().length} cpus`);
    // 1. 12 windows × 20 pages × 100 records, 50 ms per response.
    const latency = "per_day: 2000, per_page: 100, delay: 50";
    const c1 = [];
    const c8 = [];
    for (let i = 0; i < 3; i++) {
      c1.push(measure("c1", windowed(1, 12, latency)));
      c8.push(measure("c8", windowed(8, 12, latency)));
    }
    const [b1, b8] = [best(c1), best(c8)];
    // 2. 200,000 records in 20 windows of 10,000 (pages of 1,000), against the same pages unwindowed.
    const big = "per_day: 10000, per_page: 1000, delay: 0";
    const w = [];
    const p = [];
    for (let i = 0; i < 3; i++) {
      w.push(measure("windows20", windowed(1, 20, big)));
      p.push(measure("plain", plain(20, big)));
    }
    const [bw, bp] = [best(w), best(p)];

    console.log(
      `\n  ${"run".padEnd(46)} ${"records".padStart(9)} ${"wall s".padStart(7)} ${"stream s".padStart(9)}  output sha256`,
    );
    for (const [label, m] of [
      ["12 windows, 50 ms latency, concurrency 1", b1],
      ["12 windows, 50 ms latency, concurrency 8", b8],
      ["200,000 records, append, 20 windows", bw],
      ["200,000 records, append, no windows", bp],
    ])
      console.log(
        `  ${label.padEnd(46)} ${fmt(m.records).padStart(9)} ${fmt(m.wall, 2).padStart(7)} ${fmt(m.streamMs / 1000, 2).padStart(9)}  ${m.digest.slice(0, 16)}`,
      );
    console.log("");
    const speedup = b1.wall / b8.wall;
    const overhead = bw.wall / bp.wall - 1;
    const checks = [
      [
        "concurrency 8 ≥ 5× faster than concurrency 1 (wall)",
        speedup >= 5,
        `${fmt(speedup, 2)}× (stream time ${fmt(b1.streamMs / b8.streamMs, 2)}×)`,
      ],
      [
        "the same bytes at concurrency 1 and 8 (every run)",
        c1.concat(c8).every((m) => m.digest === b1.digest),
        c1
          .concat(c8)
          .map((m) => `${fmt(m.records)} ${m.digest.slice(0, 8)}`)
          .join(", "),
      ],
      [
        "checkpoint overhead of 20 windows ≤ 10% (wall)",
        overhead <= 0.1,
        `${fmt(overhead * 100, 1)}% (stream time ${fmt((bw.streamMs / bp.streamMs - 1) * 100, 1)}%)`,
      ],
      ["the same records with and without windows", bw.digest === bp.digest, `${fmt(bw.records)} records`],
    ];
    let ok = true;
    for (const [what, pass, value] of checks) {
      ok &&= pass;
      console.log(`  ${pass ? "PASS" : "FAIL"}  ${what}: ${value}`);
    }
    process.exitCode = ok ? 0 : 1;
  } finally {
    api.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
