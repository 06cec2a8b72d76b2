// npm run bench: pipelines vs a floor script, side by side in the same run.
// Needs a build (npm ci does it) and GNU time (/usr/bin/time, Debian package `time`).
//   node bench/run.mjs [--records 200000] [--big 2000000] [--quick] [--only core,db,latency,startup]
// `db` (duckdb, parquet, postgres) starts a throwaway PostgreSQL cluster (test/pg/pg-cluster.mjs).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = path.join(root, "dist/cli/bin.js");
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const quick = argv.includes("--quick");
const N = opt("records", quick ? 50_000 : 200_000);
const BIG = opt("big", quick ? 200_000 : 2_000_000);
const onlyAt = argv.indexOf("--only");
const groups = new Set(onlyAt >= 0 ? argv[onlyAt + 1].split(",") : ["core", "db", "latency", "startup"]);
const want = (g) => groups.has(g);

if (!existsSync(bin)) throw new Error("dist/cli/bin.js is missing: run `npm run build` first");
if (!existsSync("/usr/bin/time")) throw new Error("GNU time is missing: apt-get install -y time");

function startServer(latency) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [path.join(root, "bench/server.mjs"), "--latency", String(latency)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    child.stdout.once("data", (d) => resolve({ url: JSON.parse(String(d)).url, stop: () => child.kill() }));
    child.once("error", reject);
  });
}

/** Runs a command under GNU time: wall s, cpu s (user+sys), peak RSS MiB. */
function measure(cmd, args, cwd) {
  const r = spawnSync("/usr/bin/time", ["-f", "BENCH %e %U %S %M", cmd, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, CI: "1" },
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = r.stderr.split("\n").find((l) => l.startsWith("BENCH "));
  if (r.status !== 0 || !line)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const [, wall, user, sys, rssKb] = line.split(" ");
  return { wall: +wall, cpu: +user + +sys, rss: +rssKb / 1024, stdout: r.stdout };
}

function sha(file) {
  return new Promise((resolve) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (d) => h.update(d))
      .on("end", () => resolve(h.digest("hex")));
  });
}

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

function project(base, latencyBase, pgUrl) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pipelines-bench-"));
  mkdirSync(path.join(dir, "pipelines"));
  mkdirSync(path.join(dir, "schemas"));
  writeFileSync(path.join(dir, "schemas/record.schema.json"), JSON.stringify(SCHEMA, null, 2));
  const cursor = (
    format,
    n,
  ) => `source: { base_url: "${base}", retry: { max_attempts: 3, initial_delay: 50ms } }
streams:
  records:
    path: /cursor
    params: { n: ${n} }
    records: $.data
    paginate: { type: cursor, cursor: $.next_cursor }
    schema: record.schema.json
output: { format: ${format} }
`;
  const pgPipeline = (
    mode,
    url,
  ) => `source: { base_url: "${base}", retry: { max_attempts: 3, initial_delay: 50ms } }
streams:
  records:
    path: /cursor
    params: { n: ${N} }
    records: $.data
    paginate: { type: cursor, cursor: $.next_cursor }
    schema: record.schema.json
    primary_key: id
output: { format: postgres, url: "${url}", mode: ${mode} }
`;
  if (pgUrl) {
    writeFileSync(path.join(dir, "pipelines/pg-append.yaml"), pgPipeline("append", pgUrl));
    writeFileSync(path.join(dir, "pipelines/pg-merge.yaml"), pgPipeline("merge", pgUrl));
  }
  writeFileSync(path.join(dir, "pipelines/jsonl.yaml"), cursor("jsonl", N));
  writeFileSync(path.join(dir, "pipelines/csv.yaml"), cursor("csv", N));
  writeFileSync(path.join(dir, "pipelines/sqlite.yaml"), cursor("sqlite", N));
  writeFileSync(path.join(dir, "pipelines/duckdb.yaml"), cursor("duckdb", N));
  writeFileSync(path.join(dir, "pipelines/parquet.yaml"), cursor("parquet", N));
  writeFileSync(path.join(dir, "pipelines/bigduck.yaml"), cursor("duckdb", BIG));
  writeFileSync(path.join(dir, "pipelines/big.yaml"), cursor("jsonl", BIG));
  const lat = (type, concurrency) => `source: { base_url: "${latencyBase}", concurrency: ${concurrency} }
streams:
  records:
    path: /${type}
    params: { n: 10000 }
    records: ${type === "offset" ? "$.items" : "$.results"}
    paginate: ${type === "offset" ? "{ type: offset, limit: 100 }" : "{ type: page, size_param: per_page, size: 100 }"}
`;
  for (const t of ["offset", "page"])
    for (const c of [1, 8]) writeFileSync(path.join(dir, `pipelines/lat-${t}-${c}.yaml`), lat(t, c));
  return dir;
}

const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const rows = [];
const row = (name, n, m) => rows.push({ name, n, ...m, rate: n / m.wall });

const fast = await startServer(0);
const slow = await startServer(50);
const cluster = want("db") ? await import("../test/pg/pg-cluster.mjs") : null;
const pgServer = cluster ? await cluster.startCluster() : null;
const pgUrl = pgServer ? await cluster.createDatabase(pgServer.adminUrl, "bench") : null;
const dir = project(fast.url, slow.url, pgUrl);
const VALIDATE = `pipelines validate (${readdirSync(path.join(dir, "pipelines")).length} pipelines)`;
const t0 = Date.now();
try {
  console.log(
    `pipelines bench · node ${process.version} · ${os.cpus().length} cpus · ${N.toLocaleString("en-US")} records (big: ${BIG.toLocaleString("en-US")})`,
  );
  // Side by side, alternating, best of 3: the machine is shared and noisy.
  const floorRuns = [];
  const pipeRuns = [];
  for (let i = 0; i < (want("core") ? 3 : 1); i++) {
    floorRuns.push(
      measure(
        process.execPath,
        [path.join(root, "bench/floor.mjs"), fast.url, String(N), path.join(dir, "floor.jsonl")],
        dir,
      ),
    );
    pipeRuns.push(measure(process.execPath, [bin, "run", "jsonl"], dir));
  }
  const best = (runs) => runs.reduce((a, b) => (b.wall < a.wall ? b : a));
  const floor = best(floorRuns);
  const pipe = best(pipeRuns);
  row("floor (fetch + JSON.parse + write)", N, floor);
  row("pipelines run → jsonl (+ validate)", N, pipe);
  const same =
    (await sha(path.join(dir, "floor.jsonl"))) === (await sha(path.join(dir, "out/jsonl/records.jsonl")));
  const run = (name) => measure(process.execPath, [bin, "run", name], dir);
  let csv;
  let sqlite;
  let big;
  if (want("core")) {
    csv = run("csv");
    row("pipelines run → csv", N, csv);
    sqlite = run("sqlite");
    row("pipelines run → sqlite", N, sqlite);
  }
  let db;
  if (want("db")) {
    db = {};
    db.duck = run("duckdb");
    row("pipelines run → duckdb", N, db.duck);
    db.parquet = run("parquet");
    row("pipelines run → parquet", N, db.parquet);
    db.pgAppend = run("pg-append");
    row("pipelines run → postgres append", N, db.pgAppend);
    run("pg-merge"); // the table exists: the timed merge upserts every row into it
    db.pgMerge = run("pg-merge");
    row("pipelines run → postgres merge (upsert)", N, db.pgMerge);
    db.bigDuck = run("bigduck");
    row("pipelines run → duckdb (big)", BIG, db.bigDuck);
  }
  if (want("core")) {
    big = run("big");
    row("pipelines run → jsonl (big)", BIG, big);
  }

  console.log("\nthroughput (cursor pages of 1,000 records, no latency)");
  console.log(
    `  ${"run".padEnd(38)} ${"records".padStart(10)} ${"rec/s".padStart(10)} ${"wall s".padStart(7)} ${"cpu s".padStart(7)} ${"peak RSS MiB".padStart(13)}`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.name.padEnd(38)} ${fmt(r.n).padStart(10)} ${fmt(r.rate).padStart(10)} ${fmt(r.wall, 2).padStart(7)} ${fmt(r.cpu, 2).padStart(7)} ${fmt(r.rss, 1).padStart(13)}`,
    );
  }
  console.log(
    `  runs (wall s): floor ${floorRuns.map((r) => r.wall).join(", ")} · pipelines ${pipeRuns.map((r) => r.wall).join(", ")}`,
  );
  const ratio = pipe.wall / floor.wall;
  const rssGrowth = big ? big.rss / pipe.rss - 1 : 0;

  const lat = {};
  if (want("latency")) {
    console.log(
      "\nlatency-bound (50 ms per response, 10,000 records in pages of 100): the stream's fetch time, and the whole process",
    );
    for (const t of ["offset", "page"]) {
      const seq = measure(process.execPath, [bin, "run", `lat-${t}-1`, "--json"], dir);
      const par = measure(process.execPath, [bin, "run", `lat-${t}-8`, "--json"], dir);
      const streamS = (m) => JSON.parse(m.stdout).streams[0].duration_ms / 1000;
      const [s1, s8] = [streamS(seq), streamS(par)];
      const equal =
        (await sha(path.join(dir, `out/lat-${t}-1/records.jsonl`))) ===
        (await sha(path.join(dir, `out/lat-${t}-8/records.jsonl`)));
      lat[t] = { speedup: s1 / s8, equal };
      console.log(
        `  ${t.padEnd(7)} concurrency 1: ${fmt(s1, 2)} s (process ${fmt(seq.wall, 2)} s) · concurrency 8: ${fmt(s8, 2)} s (process ${fmt(par.wall, 2)} s) · ${fmt(s1 / s8, 1)}× faster (process ${fmt(seq.wall / par.wall, 1)}×) · identical output: ${equal ? "yes" : "NO"}`,
      );
    }
  }

  const startup = {};
  if (want("startup")) {
    console.log("\nstart-up (median of 7)");
    const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const [name, args] of [
      ["pipelines --help", ["--help"]],
      [VALIDATE, ["validate"]],
      ["node -e '' (the floor)", null],
    ]) {
      const walls = [];
      for (let i = 0; i < 7; i++)
        walls.push(measure(process.execPath, args ? [bin, ...args] : ["-e", ""], dir).wall);
      startup[name] = median(walls);
      console.log(`  ${name.padEnd(34)} ${fmt(startup[name] * 1000)} ms`);
    }
  }

  const checks = [];
  if (want("core"))
    checks.push(
      [
        `wall time ≤ 1.3× the floor (${N.toLocaleString("en-US")} records)`,
        ratio <= 1.3,
        `${fmt(ratio, 2)}×`,
      ],
      ["output identical to the floor's", same, same ? "identical" : "DIFFERENT"],
      ["peak RSS < 150 MiB (jsonl)", pipe.rss < 150, `${fmt(pipe.rss, 1)} MiB`],
      [
        "peak RSS < 150 MiB (csv, sqlite)",
        csv.rss < 150 && sqlite.rss < 150,
        `${fmt(csv.rss, 1)} / ${fmt(sqlite.rss, 1)} MiB`,
      ],
      [
        `peak RSS at ${BIG.toLocaleString("en-US")} within 15% of ${N.toLocaleString("en-US")}`,
        rssGrowth <= 0.15,
        `${rssGrowth >= 0 ? "+" : ""}${fmt(rssGrowth * 100, 1)}%`,
      ],
    );
  if (db)
    checks.push(
      [
        "duckdb and parquet ≤ 1.4× jsonl",
        db.duck.wall <= 1.4 * pipe.wall && db.parquet.wall <= 1.4 * pipe.wall,
        `${fmt(db.duck.wall / pipe.wall, 2)}× / ${fmt(db.parquet.wall / pipe.wall, 2)}×`,
      ],
      [
        "postgres append ≤ 1.6× jsonl, merge ≤ 2×",
        db.pgAppend.wall <= 1.6 * pipe.wall && db.pgMerge.wall <= 2 * pipe.wall,
        `${fmt(db.pgAppend.wall / pipe.wall, 2)}× / ${fmt(db.pgMerge.wall / pipe.wall, 2)}×`,
      ],
      [
        "peak RSS < 160 MiB (duckdb, parquet, postgres append, merge)",
        [db.duck, db.parquet, db.pgAppend, db.pgMerge].every((m) => m.rss < 160),
        [db.duck, db.parquet, db.pgAppend, db.pgMerge].map((m) => fmt(m.rss, 1)).join(" / ") + " MiB",
      ],
      [
        `duckdb peak RSS at ${BIG.toLocaleString("en-US")} within 15% of ${N.toLocaleString("en-US")}`,
        db.bigDuck.rss / db.duck.rss - 1 <= 0.15,
        `${db.bigDuck.rss >= db.duck.rss ? "+" : ""}${fmt((db.bigDuck.rss / db.duck.rss - 1) * 100, 1)}%`,
      ],
    );
  if (want("latency"))
    checks.push(
      [
        "offset at concurrency 8 ≥ 6× sequential, same output",
        lat.offset.speedup >= 6 && lat.offset.equal,
        `${fmt(lat.offset.speedup, 1)}×`,
      ],
      [
        "page at concurrency 8 ≥ 6× sequential, same output",
        lat.page.speedup >= 6 && lat.page.equal,
        `${fmt(lat.page.speedup, 1)}×`,
      ],
    );
  if (want("startup"))
    checks.push(
      ["--help < 300 ms", startup["pipelines --help"] < 0.3, `${fmt(startup["pipelines --help"] * 1000)} ms`],
      ["validate < 300 ms", startup[VALIDATE] < 0.3, `${fmt(startup[VALIDATE] * 1000)} ms`],
    );
  console.log("\ntargets");
  for (const [name, ok, value] of checks) console.log(`  ${ok ? "PASS" : "MISS"}  ${name}: ${value}`);
  console.log(`\nbench took ${fmt((Date.now() - t0) / 1000, 0)} s`);
  process.exitCode = checks.every((c) => c[1]) ? 0 : 1;
} finally {
  fast.stop();
  slow.stop();
  pgServer?.stop();
  rmSync(dir, { recursive: true, force: true });
}
