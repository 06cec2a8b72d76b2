// npm run bench: pipelines vs a floor script, side by side in the same run.
// Needs a build (npm ci does it) and GNU time (/usr/bin/time, Debian package `time`).
//   node bench/run.mjs [--records 200000] [--big 2000000] [--runs 5] [--big-runs 3] [--quick]
//                      [--only core,shapes,db,duck,postgres,latency,startup]
// Every comparison runs its commands alternately in the same loop and takes the median of the
// runs; the end prints one table: every target, its measured value, PASS or MISS.
// `db` (duckdb, parquet, postgres) starts a throwaway PostgreSQL cluster (test/pg/pg-cluster.mjs);
// `duck` is `db` without PostgreSQL (duckdb and parquet beside jsonl: no cluster started);
// `postgres` is the db group's postgres rows only (append and merge beside jsonl and beside their
// own baselines: the same pipelines writing JSONL, issue 16's measure; their targets).
// `shapes`: the jsonl run beside six variants of its stream, one change each (what real
// pipelines and APIs add): a primary key, an incremental cursor, a schema listing five of the
// eight fields, a schema bounding the values (enum, lengths, pattern, ranges, closed objects), the
// same records written with `", "` and `": "`, and with `\u` escapes.
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
const RUNS = opt("runs", quick ? 3 : 5);
const BIG_RUNS = opt("big-runs", quick ? 1 : 3);
const onlyAt = argv.indexOf("--only");
const groups = new Set(
  onlyAt >= 0 ? argv[onlyAt + 1].split(",") : ["core", "shapes", "db", "latency", "startup"],
);
const want = (g) => groups.has(g);
/** The DuckDB and Parquet runs (`db` or `duck`); PostgreSQL's only with `db`. */
const wantDuck = want("db") || want("duck");
/** The postgres runs: in the db group, or alone (`--only postgres`). */
const wantPg = want("db") || want("postgres");

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

/** SCHEMA with the bounds hand-written schemas give values; every bench record is within them. */
const BOUNDED = {
  ...SCHEMA,
  additionalProperties: false,
  properties: {
    ...SCHEMA.properties,
    id: { type: "integer", minimum: 0 },
    name: { type: "string", minLength: 1, maxLength: 64, pattern: "^record-" },
    email: { type: "string", format: "email", maxLength: 254 },
    amount: { type: "number", minimum: 0, maximum: 100 },
    tags: {
      type: "array",
      maxItems: 10,
      items: { type: "string", enum: Array.from({ length: 11 }, (_, k) => `t${k}`) },
    },
    owner: {
      type: "object",
      required: ["id"],
      additionalProperties: false,
      properties: { id: { type: "integer", minimum: 0 } },
    },
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
    workers = "auto",
  ) => `source: { base_url: "${base}", retry: { max_attempts: 3, initial_delay: 50ms }, workers: ${workers} }
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
output: { format: postgres, url: "${url}", mode: ${mode}, table: records_${mode} }
`;
  if (pgUrl) {
    writeFileSync(path.join(dir, "pipelines/pg-append.yaml"), pgPipeline("append", pgUrl));
    writeFileSync(path.join(dir, "pipelines/pg-merge.yaml"), pgPipeline("merge", pgUrl));
    // Issue 16's baseline: "the same pipeline writing JSONL" — the same stream (its primary key)
    // and mode, its output a JSONL file instead of the table.
    for (const mode of ["append", "merge"])
      writeFileSync(
        path.join(dir, `pipelines/pg-${mode}-jsonl.yaml`),
        pgPipeline(mode, pgUrl).replace(/^output: .*$/m, `output: { format: jsonl, mode: ${mode} }`),
      );
  }
  writeFileSync(path.join(dir, "pipelines/jsonl.yaml"), cursor("jsonl", N));
  // The shapes group: the same stream as real pipelines write it.
  const shaped = (extra, schema = "record.schema.json") =>
    cursor("jsonl", N).replace("    schema: record.schema.json\n", `    schema: ${schema}\n${extra}`);
  writeFileSync(path.join(dir, "pipelines/jsonl-pk.yaml"), shaped("    primary_key: id\n"));
  writeFileSync(
    path.join(dir, "pipelines/jsonl-inc.yaml"),
    shaped("    incremental: { cursor_field: created_at, param: since }\n"),
  );
  const listed = ["id", "name", "email", "created_at", "amount"];
  const part = { ...SCHEMA, properties: Object.fromEntries(listed.map((k) => [k, SCHEMA.properties[k]])) };
  writeFileSync(path.join(dir, "schemas/part.schema.json"), JSON.stringify(part, null, 2));
  writeFileSync(path.join(dir, "pipelines/jsonl-part.yaml"), shaped("", "part.schema.json"));
  // A schema that bounds the values, as schemas written by hand do (every record within them).
  writeFileSync(path.join(dir, "schemas/bounded.schema.json"), JSON.stringify(BOUNDED, null, 2));
  writeFileSync(path.join(dir, "pipelines/jsonl-bounded.yaml"), shaped("", "bounded.schema.json"));
  // The same records as other APIs write them (bench/server.mjs `style`).
  for (const style of ["spaced", "escaped"])
    writeFileSync(
      path.join(dir, `pipelines/jsonl-${style}.yaml`),
      cursor("jsonl", N).replace(`params: { n: ${N} }`, `params: { n: ${N}, style: ${style} }`),
    );
  writeFileSync(path.join(dir, "pipelines/csv.yaml"), cursor("csv", N));
  writeFileSync(path.join(dir, "pipelines/sqlite.yaml"), cursor("sqlite", N));
  writeFileSync(path.join(dir, "pipelines/duckdb.yaml"), cursor("duckdb", N));
  writeFileSync(path.join(dir, "pipelines/parquet.yaml"), cursor("parquet", N));
  writeFileSync(path.join(dir, "pipelines/bigduck.yaml"), cursor("duckdb", BIG));
  writeFileSync(path.join(dir, "pipelines/big.yaml"), cursor("jsonl", BIG));
  // Issue 20: the same runs with one worker thread for the pages (`workers: 2`), beside the
  // default (`auto`: paged JSON stays on the main thread).
  writeFileSync(path.join(dir, "pipelines/jsonl-2.yaml"), cursor("jsonl", N, 2));
  writeFileSync(path.join(dir, "pipelines/big-2.yaml"), cursor("jsonl", BIG, 2));
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

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** The run with the median wall time (its cpu and RSS come with it). */
const medianRun = (runs) => [...runs].sort((a, b) => a.wall - b.wall)[Math.floor(runs.length / 2)];
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const rows = [];
const row = (name, n, m) => rows.push({ name, n, ...m, rate: n / m.wall });

const fast = await startServer(0);
const slow = await startServer(50);
const cluster = wantPg ? await import("../test/pg/pg-cluster.mjs") : null;
const pgServer = cluster ? await cluster.startCluster() : null;
const pgUrl = pgServer ? await cluster.createDatabase(pgServer.adminUrl, "bench") : null;
const dir = project(fast.url, slow.url, pgUrl);
const VALIDATE = `pipelines validate (${readdirSync(path.join(dir, "pipelines")).length} pipelines)`;
const t0 = Date.now();
try {
  console.log(
    `pipelines bench · node ${process.version} · ${os.cpus().length} cpus (${os.cpus()[0]?.model.trim()}) · ${N.toLocaleString("en-US")} records (big: ${BIG.toLocaleString("en-US")}) · medians of ${RUNS} alternating runs`,
  );
  console.log(`load average at the start (1, 5, 15 min): ${load()}`);
  // Side by side, alternating, median of RUNS: the machine is shared and noisy.
  const run = (name) => measure(process.execPath, [bin, "run", name], dir);
  const floorRun = (n, file, mode = "") =>
    measure(
      process.execPath,
      [path.join(root, "bench/floor.mjs"), fast.url, String(n), path.join(dir, file), mode],
      dir,
    );
  const floorRuns = [];
  const pipeRuns = [];
  const oneRuns = [];
  const csvRuns = [];
  const sqliteRuns = [];
  /** The shapes group: name → runs, each beside the jsonl run of its round. */
  const shapeRuns = {
    "jsonl-pk": [],
    "jsonl-inc": [],
    "jsonl-part": [],
    "jsonl-bounded": [],
    "jsonl-spaced": [],
    "jsonl-escaped": [],
  };
  // The database outputs run in the same loop as jsonl, each beside the jsonl run of its round.
  const dbRuns = { duck: [], parquet: [], byHand: [], pgAppend: [], pgMerge: [] };
  /** The PostgreSQL runs' own baselines: the same pipelines writing JSONL, each run just before. */
  const twinRuns = { pgAppend: [], pgMerge: [] };
  if (wantPg) {
    // Every timed PostgreSQL run writes into a table that exists: append inserts 200,000 more
    // rows, merge upserts every row (the first merge made the table and its primary key). Their
    // JSONL twins likewise: the merge merges into the file the first one wrote (200,000 records,
    // every key again); the append writes a new file each time (a JSONL append rewrites the file
    // it appends to: its time would grow run by run, a table's append does not).
    run("pg-append");
    run("pg-merge");
    run("pg-merge-jsonl");
  }
  for (let i = 0; i < (want("core") || want("shapes") || wantDuck || wantPg ? RUNS : 1); i++) {
    floorRuns.push(floorRun(N, "floor.jsonl"));
    pipeRuns.push(run("jsonl"));
    // Right after the jsonl run of the round, each (the ratio is taken run by run).
    if (want("shapes"))
      for (const [name, runs] of Object.entries(shapeRuns))
        runs.push(measure(process.execPath, [bin, "run", name, "--full-refresh"], dir));
    if (wantDuck) {
      dbRuns.duck.push(run("duckdb"));
      dbRuns.parquet.push(run("parquet"));
      // DuckDB alone, loading the file of this round's jsonl run (bench/duckdb-load.mjs).
      const loaded = measure(
        process.execPath,
        [
          path.join(root, "bench/duckdb-load.mjs"),
          path.join(dir, "out/jsonl/records.jsonl"),
          path.join(dir, "by-hand.duckdb"),
        ],
        dir,
      );
      if (loaded.stdout.trim() !== String(N))
        throw new Error(`duckdb-load.mjs loaded ${loaded.stdout.trim()} rows`);
      dbRuns.byHand.push(loaded);
    }
    if (wantPg) {
      rmSync(path.join(dir, "out/pg-append-jsonl"), { recursive: true, force: true });
      twinRuns.pgAppend.push(run("pg-append-jsonl"));
      dbRuns.pgAppend.push(run("pg-append"));
      twinRuns.pgMerge.push(run("pg-merge-jsonl"));
      dbRuns.pgMerge.push(run("pg-merge"));
    }
    if (!want("core")) continue;
    oneRuns.push(run("jsonl-2"));
    csvRuns.push(run("csv"));
    sqliteRuns.push(run("sqlite"));
  }
  const floor = medianRun(floorRuns);
  const pipe = medianRun(pipeRuns);
  row("floor (fetch + JSON.parse + write)", N, floor);
  row("pipelines run → jsonl (+ validate)", N, pipe);
  const one = want("core") ? medianRun(oneRuns) : null;
  if (one) row("  same, workers: 2 (a page worker)", N, one);
  const same =
    (await sha(path.join(dir, "floor.jsonl"))) === (await sha(path.join(dir, "out/jsonl/records.jsonl")));
  let csv;
  let sqlite;
  let big;
  let bigOne;
  let bigFloor;
  if (want("core")) {
    csv = medianRun(csvRuns);
    row("pipelines run → csv", N, csv);
    sqlite = medianRun(sqliteRuns);
    row("pipelines run → sqlite", N, sqlite);
  }
  let db;
  if (wantDuck || wantPg) {
    db = {};
    // A run's time over the jsonl run of its round, median of the rounds.
    db.ratio = Object.fromEntries(
      Object.entries(dbRuns)
        .filter(([, runs]) => runs.length)
        .map(([k, runs]) => [k, median(runs.map((m, i) => m.wall / pipeRuns[i].wall))]),
    );
    // A PostgreSQL run over its JSONL twin of the same round, median of the rounds.
    db.twinRatio = Object.fromEntries(
      Object.entries(twinRuns)
        .filter(([, runs]) => runs.length)
        .map(([k, runs]) => [k, median(runs.map((m, i) => dbRuns[k][i].wall / m.wall))]),
    );
  }
  if (wantDuck) {
    db.duck = medianRun(dbRuns.duck);
    row("pipelines run → duckdb", N, db.duck);
    db.parquet = medianRun(dbRuns.parquet);
    row("pipelines run → parquet", N, db.parquet);
    db.byHand = medianRun(dbRuns.byHand);
    row("  DuckDB alone loads the jsonl file", N, db.byHand);
    // What the duckdb run adds to the jsonl run of its round, over DuckDB's own load that round.
    db.addedOverLoad = median(dbRuns.duck.map((m, i) => (m.wall - pipeRuns[i].wall) / dbRuns.byHand[i].wall));
  }
  if (wantPg) {
    db.pgAppend = medianRun(dbRuns.pgAppend);
    row("pipelines run → postgres append", N, db.pgAppend);
    row("  same pipeline → jsonl (append)", N, medianRun(twinRuns.pgAppend));
    db.pgMerge = medianRun(dbRuns.pgMerge);
    row("pipelines run → postgres merge (upsert)", N, db.pgMerge);
    row("  same pipeline → jsonl (merge)", N, medianRun(twinRuns.pgMerge));
  }
  if (wantDuck) {
    db.bigDuck = run("bigduck");
    row("pipelines run → duckdb (big)", BIG, db.bigDuck);
  }
  if (want("core")) {
    const bigFloorRuns = [];
    const bigRuns = [];
    const bigOneRuns = [];
    const fetchRuns = [];
    for (let i = 0; i < BIG_RUNS; i++) {
      fetchRuns.push(floorRun(BIG, "fetch-only.jsonl", "fetch-only"));
      bigFloorRuns.push(floorRun(BIG, "floor-big.jsonl"));
      bigRuns.push(run("big"));
      bigOneRuns.push(run("big-2"));
      rmSync(path.join(dir, "out/big-2"), { recursive: true, force: true });
    }
    rmSync(path.join(dir, "floor-big.jsonl"), { force: true });
    rmSync(path.join(dir, "fetch-only.jsonl"), { force: true });
    bigFloor = medianRun(bigFloorRuns);
    row("floor (big)", BIG, bigFloor);
    big = medianRun(bigRuns);
    row("pipelines run → jsonl (big)", BIG, big);
    bigOne = medianRun(bigOneRuns);
    row("  same, workers: 2 (a page worker)", BIG, bigOne);
    // What no client of this API can beat: the same pages fetched one after the other, unread.
    row("fetch only (the API's pace; big)", BIG, medianRun(fetchRuns));
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
  // Each run's ratio to the floor run beside it: less noisy than a ratio of medians.
  const pairRatios = pipeRuns.map((p, i) => p.wall / floorRuns[i].wall);
  console.log(`  pipelines / floor, run by run: ${pairRatios.map((r) => fmt(r, 2)).join(", ")}`);
  const onePairs = oneRuns.map((p, i) => p.wall / floorRuns[i].wall);
  if (one) console.log(`  workers: 2 / floor, run by run: ${onePairs.map((r) => fmt(r, 2)).join(", ")}`);
  const ratio = median(pairRatios);
  if (want("shapes")) {
    console.log(
      "\nthe same stream as real pipelines write it (jsonl, median of each run over the jsonl run beside it)",
    );
    const what = {
      "jsonl-pk": "primary_key: id (keys kept; none repeats)",
      "jsonl-inc": "incremental: { cursor_field: created_at }",
      "jsonl-part": "a schema listing 5 of the 8 fields",
      "jsonl-bounded": "a schema with enum, pattern, min/max",
      "jsonl-spaced": 'the API writes ", " and ": " (Python)',
      "jsonl-escaped": "the API writes \\u escapes (Python)",
    };
    const plain = await sha(path.join(dir, "out/jsonl/records.jsonl"));
    for (const [name, runs] of Object.entries(shapeRuns)) {
      const m = medianRun(runs);
      const r = median(runs.map((x, i) => x.wall / pipeRuns[i].wall));
      // The same records come out whatever the shape (no key repeats; every record is valid).
      const same = (await sha(path.join(dir, `out/${name}/records.jsonl`))) === plain;
      console.log(
        `  ${what[name].padEnd(42)} ${fmt(m.wall, 2).padStart(6)} s  ${fmt(r, 2)}× jsonl  peak RSS ${fmt(m.rss, 1)} MiB  output ${same ? "identical" : "DIFFERENT"}`,
      );
    }
  }
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
    console.log("\nstart-up (median of 7, the three commands alternating)");
    const commands = [
      ["pipelines --help", ["--help"]],
      [VALIDATE, ["validate"]],
      ["node -e '' (the floor)", null],
    ];
    const walls = Object.fromEntries(commands.map(([name]) => [name, []]));
    for (let i = 0; i < 7; i++)
      for (const [name, args] of commands)
        walls[name].push(measure(process.execPath, args ? [bin, ...args] : ["-e", ""], dir).wall);
    for (const [name] of commands) {
      startup[name] = median(walls[name]);
      console.log(`  ${name.padEnd(34)} ${fmt(startup[name] * 1000)} ms`);
    }
  }

  const checks = [];
  if (want("core"))
    checks.push(
      [
        `jsonl wall time ≤ 1.3× the floor (${N.toLocaleString("en-US")} records)`,
        ratio <= 1.3,
        `${fmt(ratio, 2)}×`,
      ],
      [
        `jsonl wall time ≤ 1.0× the floor (${N.toLocaleString("en-US")} records, issue 20)`,
        ratio <= 1.0,
        `${fmt(ratio, 2)}×`,
      ],
      [
        `throughput ≥ 1.4× the floor's (${BIG.toLocaleString("en-US")} records, issue 20)`,
        bigFloor.wall / big.wall >= 1.4,
        `${fmt(bigFloor.wall / big.wall, 2)}× (${fmt(BIG / big.wall)} vs ${fmt(BIG / bigFloor.wall)} rec/s)`,
      ],
      [
        `workers: 2 ≤ 1.0× the floor (${N.toLocaleString("en-US")} records, issue 20)`,
        median(onePairs) <= 1.0,
        `${fmt(median(onePairs), 2)}×`,
      ],
      [
        `workers: 2 throughput ≥ 1.4× the floor's (${BIG.toLocaleString("en-US")} records, issue 20)`,
        bigFloor.wall / bigOne.wall >= 1.4,
        `${fmt(bigFloor.wall / bigOne.wall, 2)}× (RSS ${fmt(bigOne.rss, 1)} MiB)`,
      ],
      [
        `peak RSS < 200 MiB (${BIG.toLocaleString("en-US")} records)`,
        big.rss < 200,
        `${fmt(big.rss, 1)} MiB`,
      ],
      [
        "csv ≤ 1.5× and sqlite ≤ 1.9× jsonl's wall time (their ratios before issue 20: 1.4×, 1.8×)",
        csv.wall <= 1.5 * pipe.wall && sqlite.wall <= 1.9 * pipe.wall,
        `${fmt(csv.wall / pipe.wall, 2)}× / ${fmt(sqlite.wall / pipe.wall, 2)}×`,
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
  if (db) {
    // With `duck` or `postgres` alone, the other group's runs are not there (and not checked).
    const rssRuns = [db.duck, db.parquet, db.pgAppend, db.pgMerge].filter(Boolean);
    const rssNames = [db.duck && "duckdb, parquet", db.pgAppend && "postgres append, merge"].filter(Boolean);
    if (db.duck)
      checks.push([
        "duckdb and parquet ≤ 1.4× jsonl",
        db.ratio.duck <= 1.4 && db.ratio.parquet <= 1.4,
        `${fmt(db.ratio.duck, 2)}× / ${fmt(db.ratio.parquet, 2)}× (DuckDB alone loading the jsonl file: ${fmt(db.ratio.byHand, 2)}× the jsonl run; the duckdb run adds ${fmt(db.addedOverLoad, 2)}× that load to it)`,
      ]);
    if (db.pgAppend)
      checks.push([
        "postgres append ≤ 1.6×, merge ≤ 2× the same pipeline writing jsonl (over plain jsonl)",
        db.twinRatio.pgAppend <= 1.6 && db.twinRatio.pgMerge <= 2,
        `${fmt(db.twinRatio.pgAppend, 2)}× / ${fmt(db.twinRatio.pgMerge, 2)}× (${fmt(db.ratio.pgAppend, 2)}× / ${fmt(db.ratio.pgMerge, 2)}×)`,
      ]);
    checks.push([
      `peak RSS < 160 MiB (${rssNames.join(", ")}; the median runs)`,
      rssRuns.every((m) => m.rss < 160),
      rssRuns.map((m) => fmt(m.rss, 1)).join(" / ") + " MiB",
    ]);
    if (db.duck)
      checks.push([
        `duckdb peak RSS at ${BIG.toLocaleString("en-US")} within 15% of ${N.toLocaleString("en-US")}`,
        db.bigDuck.rss / db.duck.rss - 1 <= 0.15,
        `${db.bigDuck.rss >= db.duck.rss ? "+" : ""}${fmt((db.bigDuck.rss / db.duck.rss - 1) * 100, 1)}%`,
      ]);
  }
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
  // A start-up time with node's own beside it, and the difference (the part that is ours).
  const beside = (name) => {
    const [ms, node] = [startup[name] * 1000, startup["node -e '' (the floor)"] * 1000];
    return `${fmt(ms)} ms (node ${fmt(node)} ms, ${ms >= node ? "+" : "−"}${fmt(Math.abs(ms - node))})`;
  };
  if (want("startup"))
    checks.push(
      ["--help < 200 ms (beside node -e '')", startup["pipelines --help"] < 0.2, beside("pipelines --help")],
      [`${VALIDATE.replace("pipelines ", "")} < 300 ms`, startup[VALIDATE] < 0.3, beside(VALIDATE)],
    );
  console.log(`\ntargets (load average at the end: ${load()})`);
  const width = Math.max(...checks.map(([name]) => name.length));
  console.log(`  ${"target".padEnd(width)}  ${"measured".padEnd(34)}  result`);
  for (const [name, ok, value] of checks)
    console.log(`  ${name.padEnd(width)}  ${value.padEnd(34)}  ${ok ? "PASS" : "MISS"}`);
  console.log(`\nbench took ${fmt((Date.now() - t0) / 1000, 0)} s`);
  process.exitCode = checks.every((c) => c[1]) ? 0 : 1;
} finally {
  fast.stop();
  slow.stop();
  pgServer?.stop();
  rmSync(dir, { recursive: true, force: true });
}
