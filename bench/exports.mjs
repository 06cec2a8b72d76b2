// npm run bench:exports (also run by `npm run bench`): one-response exports read as they arrive.
// A 2,000,000-line JSONL export and a 1,000,000-row gzip CSV export (served as
// application/octet-stream, no Content-Encoding), each in one response, from files on a loopback
// server in another process. Side by side with a floor script that only splits lines and parses
// them (and the floor that also writes JSON lines, the pipeline's whole job), the pipeline with its
// defaults (the bench's streams have no schema and no shaping: nothing reads their records, so
// their lines go out raw, unparsed: src/run/raw-lines.ts), and for the record (not checked) the same
// with records parsed (PIPELINES_RAW_LINES=off), parsed on a record worker thread (`workers: 2`),
// and validated against a schema. The checks apply to the defaults. Runs alternate; medians of
// --runs each. GNU time measures wall, CPU (user + sys) and peak RSS.
// `--bin <other dist/cli/bin.js>` (A/B: e.g. a build of the base branch copied beside a
// node_modules) adds that build's `workers: 1` runs, alternating with the others, and the ratio of
// its wall time to this build's, run by run.
//   node bench/exports.mjs [--lines 2000000] [--rows 1000000] [--runs 5] [--bin path]
import { spawn, spawnSync } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createGzip } from "node:zlib";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = path.join(root, "dist/cli/bin.js");
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const LINES = opt("lines", 2_000_000);
const ROWS = opt("rows", 1_000_000);
const RUNS = opt("runs", 5);
const OTHER = argv.includes("--bin") ? path.resolve(argv[argv.indexOf("--bin") + 1]) : null;
if (OTHER && !existsSync(OTHER)) throw new Error(`--bin ${OTHER} does not exist`);
if (!existsSync(bin)) throw new Error("dist/cli/bin.js is missing: run `npm run build` first");
if (!existsSync("/usr/bin/time")) throw new Error("GNU time is missing: apt-get install -y time");

const dir = mkdtempSync(path.join(os.tmpdir(), "pipelines-bench-exports-"));

async function writeFile(file, n, line, gzip) {
  const out = createWriteStream(file);
  const sink = gzip ? createGzip({ level: 6 }) : out;
  if (gzip) sink.pipe(out);
  const done = new Promise((r) => out.on("finish", r));
  let buf = "";
  for (let i = 0; i < n; i++) {
    buf += line(i);
    if (buf.length > 1 << 20) {
      if (!sink.write(buf)) await new Promise((r) => sink.once("drain", r));
      buf = "";
    }
  }
  sink.end(buf);
  await done;
}

const jsonlFile = path.join(dir, "export.jsonl");
const csvFile = path.join(dir, "report.csv.gz");
await writeFile(
  jsonlFile,
  LINES,
  (i) =>
    `{"event":"${i % 5 ? "click" : "view"}","distinct_id":"u${i % 99991}","time":${1704067200 + i},"properties":{"n":${i},"price":${(i % 1000) / 10}}}\n`,
  false,
);
await writeFile(
  csvFile,
  ROWS + 1,
  (i) =>
    i === 0
      ? "id,campaign,clicks,cost,day\r\n"
      : `${i},campaign-${i % 311},${i % 97},${(i % 10000) / 100},2024-01-${String(1 + (i % 28)).padStart(2, "0")}\r\n`,
  true,
);

const server = spawn(
  process.execPath,
  [
    "-e",
    `const http=require("node:http"),fs=require("node:fs");
     const s=http.createServer((q,r)=>{const f=q.url.startsWith("/export")?${JSON.stringify(jsonlFile)}:${JSON.stringify(csvFile)};
       r.writeHead(200,{"content-type":q.url.startsWith("/export")?"application/x-ndjson":"application/octet-stream","content-length":fs.statSync(f).size});
       fs.createReadStream(f,{highWaterMark:1<<16}).pipe(r);});
     s.listen(0,"127.0.0.1",()=>console.log(JSON.stringify({url:"http://127.0.0.1:"+s.address().port})));`,
  ],
  { stdio: ["ignore", "pipe", "inherit"] },
);
const base = await new Promise((r) => server.stdout.once("data", (d) => r(JSON.parse(String(d)).url)));

mkdirSync(path.join(dir, "pipelines"));
mkdirSync(path.join(dir, "schemas"));
// `-1`: the defaults on one thread (records nothing reads: their lines go as they came, unparsed,
// src/run/raw-lines.ts); `-2`: a record worker thread; `-schema`: records validated against a
// schema (parsed and checked: what an analyst with a schema gets). `-1` with PIPELINES_RAW_LINES=off
// is the parsed path without a schema.
writeFileSync(
  path.join(dir, "schemas/events.json"),
  JSON.stringify({
    type: "object",
    required: ["event", "distinct_id", "time"],
    properties: {
      event: { type: "string" },
      distinct_id: { type: "string" },
      time: { type: "integer" },
      properties: { type: "object" },
    },
  }),
);
writeFileSync(
  path.join(dir, "schemas/report.json"),
  JSON.stringify({
    type: "object",
    required: ["id", "campaign"],
    properties: {
      id: { type: "string" },
      campaign: { type: "string" },
      clicks: { type: "string" },
      cost: { type: "string" },
      day: { type: "string", format: "date" },
    },
  }),
);
for (const variant of ["1", "2", "schema"]) {
  const workers = variant === "2" ? "2" : "1";
  const suffix = `-${variant}`;
  const schema = (name) => (variant === "schema" ? `\n    schema: ${name}.json` : "");
  writeFileSync(
    path.join(dir, `pipelines/jsonl-export${suffix}.yaml`),
    `source: { base_url: "${base}", timeout: 60s, workers: ${workers} }
streams:
  events:
    path: /export
    response: { format: jsonl }${schema("events")}
`,
  );
  writeFileSync(
    path.join(dir, `pipelines/csv-export${suffix}.yaml`),
    `source: { base_url: "${base}", timeout: 60s, workers: ${workers} }
streams:
  report:
    path: /report.csv.gz
    response: { format: csv, compression: gzip }${schema("report")}
`,
  );
}

function measure(args, env = {}) {
  const r = spawnSync("/usr/bin/time", ["-f", "BENCH %e %U %S %M", process.execPath, ...args], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, CI: "1", ...env },
  });
  const line = r.stderr.split("\n").find((l) => l.startsWith("BENCH "));
  if (r.status !== 0 || !line)
    throw new Error(`${args.join(" ")} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const [, wall, user, sys, rssKb] = line.split(" ");
  return { wall: +wall, cpu: +user + +sys, rss: +rssKb / 1024 };
}
const median = (runs) => {
  const pick = (k) => {
    const v = runs.map((r) => r[k]).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)];
  };
  return { wall: pick("wall"), cpu: pick("cpu"), rss: pick("rss") };
};
const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

const results = [];
try {
  console.log(
    `exports bench · node ${process.version} · ${os.cpus().length} cpus · JSONL ${fmt(LINES)} lines (${fmt(statSync(jsonlFile).size / 2 ** 20, 0)} MiB) · gzip CSV ${fmt(ROWS)} rows (${fmt(statSync(csvFile).size / 2 ** 20, 0)} MiB gzip)`,
  );
  for (const [name, url, format, pipeline, n] of [
    ["jsonl", `${base}/export`, "jsonl", "jsonl-export", LINES],
    ["csv.gz", `${base}/report.csv.gz`, "csv", "csv-export", ROWS],
  ]) {
    const runs = { floor: [], floorW: [], pipe1: [], pipe: [], parsed: [], schema: [], other: [] };
    const ratios = { pipe1: [], pipe: [], other: [] };
    const floorScript = path.join(root, "bench/exports-floor.mjs");
    // Alternating, medians: the machine is shared and noisy. Ratios are taken run by run too.
    for (let i = 0; i < RUNS; i++) {
      const f = measure([floorScript, url, format]);
      runs.floor.push(f);
      runs.floorW.push(measure([floorScript, url, format, path.join(dir, "floor.jsonl")]));
      const one = measure([bin, "run", `${pipeline}-1`]);
      const auto = measure([bin, "run", `${pipeline}-2`], { PIPELINES_RAW_LINES: "off" });
      runs.pipe1.push(one);
      runs.pipe.push(auto);
      runs.parsed.push(measure([bin, "run", `${pipeline}-1`], { PIPELINES_RAW_LINES: "off" }));
      runs.schema.push(measure([bin, "run", `${pipeline}-schema`]));
      if (OTHER) {
        const other = measure([OTHER, "run", `${pipeline}-1`]);
        runs.other.push(other);
        ratios.other.push(other.wall / one.wall);
      }
      ratios.pipe1.push(one.wall / f.wall);
      ratios.pipe.push(auto.wall / f.wall);
    }
    const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    results.push({
      name,
      n,
      floor: median(runs.floor),
      floorW: median(runs.floorW),
      pipe1: median(runs.pipe1),
      pipe: median(runs.pipe),
      parsed: median(runs.parsed),
      schema: median(runs.schema),
      other: OTHER ? median(runs.other) : null,
      ratioOther: OTHER ? med(ratios.other) : null,
      ratio1: med(ratios.pipe1),
      ratio: med(ratios.pipe),
      maxRss1: Math.max(...runs.pipe1.map((r) => r.rss)),
      maxRss: Math.max(...runs.pipe.map((r) => r.rss)),
    });
  }
  console.log(
    `\n  ${"export".padEnd(8)} ${"run".padEnd(38)} ${"records".padStart(10)} ${"rec/s".padStart(10)} ${"wall s".padStart(7)} ${"cpu s".padStart(7)} ${"peak RSS MiB".padStart(13)}`,
  );
  for (const r of results)
    for (const [label, m] of [
      ["floor (split + parse)", r.floor],
      ["floor (split + parse + write)", r.floorW],
      ["pipelines run (raw lines)", r.pipe1],
      ["  records parsed (RAW_LINES=off)", r.parsed],
      ["  records parsed, worker thread", r.pipe],
      ["  with a schema (parsed, validated)", r.schema],
      ...(r.other ? [["--bin run, workers: 1", r.other]] : []),
    ])
      console.log(
        `  ${r.name.padEnd(8)} ${label.padEnd(38)} ${fmt(r.n).padStart(10)} ${fmt(r.n / m.wall).padStart(10)} ${fmt(m.wall, 2).padStart(7)} ${fmt(m.cpu, 2).padStart(7)} ${fmt(m.rss, 1).padStart(13)}`,
      );
  if (OTHER)
    for (const r of results)
      console.log(
        `\n  ${r.name}: --bin ${OTHER} wall / this build's (workers: 1), median run by run: ${fmt(r.ratioOther, 2)}×`,
      );
  console.log(
    `\n  medians of ${RUNS} alternating runs; load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}\n`,
  );
  let ok = true;
  for (const r of results) {
    // The defaults: records nothing reads go out as raw lines whatever `workers` is (raw-lines.ts).
    const wall = (m) => fmt(m.wall / r.floor.wall, 2);
    const checks = [
      [
        `${r.name}: wall ≤ 1.3× the split+parse floor (the defaults: raw lines)`,
        r.ratio1 <= 1.3,
        `${fmt(r.ratio1, 2)}× (median of run-by-run ratios; CPU s ${fmt(r.pipe1.cpu, 2)}, floor ${fmt(r.floor.cpu, 2)}. For the record, not checked: parsed ${wall(r.parsed)}×, parsed on a worker thread ${wall(r.pipe)}×, with a schema ${wall(r.schema)}×)`,
      ],
      [
        `${r.name}: peak RSS < 150 MiB (every run of the defaults)`,
        r.maxRss1 < 150,
        `${fmt(r.maxRss1, 1)} MiB (parsed on a worker thread ${fmt(r.maxRss, 1)})`,
      ],
    ];
    for (const [what, pass, value] of checks) {
      ok &&= pass;
      console.log(`  ${pass ? "PASS" : "FAIL"}  ${what}: ${value}`);
    }
  }
  process.exitCode = ok ? 0 : 1;
} finally {
  server.kill();
  rmSync(dir, { recursive: true, force: true });
}
