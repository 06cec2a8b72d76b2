// Bundles the whole CLI (tsc's dist/cli/main.js and every module and package it imports, except
// better-sqlite3, a native addon) into one CommonJS file, dist/app/pipelines.cjs, which
// dist/cli/bin.js loads with a V8 code cache (src/vendor/load-bundle.ts, trained by
// scripts/train-code-cache.mjs). Node then reads and compiles one file instead of about 300:
// `pipelines validate` starts in about half the time. Commands stay lazy: esbuild turns our
// `await import("./cmd-run.js")` into code that runs a module's body only when first used.
// Run by `npm run build` after tsc.
import { readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const out = `${dist}app/pipelines.cjs`;

const options = {
  bundle: true,
  platform: "node",
  target: "node20.18",
  format: "cjs",
  external: [
    "better-sqlite3",
    // DuckDB: a native addon too (and loaded only by runs that write duckdb or parquet).
    "@duckdb/node-api",
    // cosmiconfig loads TypeScript configs with `typescript` when present; we do not support them.
    "typescript",
    // The queue (`run --queue`, `worker`): BullMQ resolves its own files at run time.
    "bullmq",
    "ioredis",
  ],
  // Our modules find files beside the build with `new URL("../../package.json", import.meta.url)`.
  // Every one of them sits one folder deep in dist/, as the bundle does in dist/app/, so the same
  // relative paths hold (src/ keeps them so: ../config/…, ../records/…, ../../schemas/…).
  define: { "import.meta.url": "__pipelinesModuleUrl" },
  banner: { js: 'const __pipelinesModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  // Drops comments (some are not ASCII, see below) and a third of the bytes; names stay readable.
  minifyWhitespace: true,
  // The packages' license comments go to pipelines.cjs.LEGAL.txt beside the bundle.
  legalComments: "linked",
  logLevel: "warning",
};
await build({ ...options, entryPoints: [`${dist}cli/main.js`], outfile: out });
// The record workers' thread (src/run/record-workers/worker.ts): its own, smaller bundle beside the
// CLI's, which the pool in pipelines.cjs starts (pool.ts: workerEntry).
await build({
  ...options,
  entryPoints: [`${dist}run/record-workers/worker.js`],
  outfile: `${dist}app/record-worker.cjs`,
  legalComments: "none",
});
// @duckdb/node-api's JavaScript, loaded with a code cache by src/vendor/duckdb-api.ts (its native
// addon, @duckdb/node-bindings, stays a package), with the version it was made from beside it:
// another installed version loads as the package.
const duckdbEntry = createRequire(import.meta.url).resolve("@duckdb/node-api");
await build({
  ...options,
  entryPoints: [duckdbEntry],
  outfile: `${dist}app/duckdb-api.cjs`,
  external: ["@duckdb/node-bindings"],
  // The package is CommonJS with no import.meta: the CLI's define and banner are not needed.
  define: {},
  banner: {},
  legalComments: "none",
});
const duckdbPackage = JSON.parse(
  await readFile(path.join(path.dirname(duckdbEntry), "..", "package.json"), "utf8"),
);
await writeFile(`${dist}app/duckdb-api.json`, `${JSON.stringify({ version: duckdbPackage.version })}\n`);
await rm(`${dist}app/duckdb-api.v8cache`, { force: true });
// load-bundle.ts decodes an ASCII file as latin1, three times faster than utf8.
if (/[^\x00-\x7f]/.test(await readFile(out, "latin1")))
  console.warn("note: dist/app/pipelines.cjs is not ASCII");
await rm(`${dist}app/pipelines.v8cache`, { force: true });
console.log("bundled dist/app/pipelines.cjs and dist/app/record-worker.cjs");
