#!/usr/bin/env node
import { existsSync } from "node:fs";
import { loadBundle } from "../vendor/load-bundle.js";

// The build bundles the CLI into one file with a V8 code cache (scripts/bundle.mjs); from
// sources, or a build without it, the modules load one by one. Code in the bundle imports
// JavaScript project configs through this module's import() (see importModule).
(globalThis as any)[Symbol.for("pipelines.import")] = (url: string) => import(url);
const bundled = new URL("../app/pipelines.cjs", import.meta.url);
const { run } = (
  existsSync(bundled) ? loadBundle(bundled) : await import("./main.js")
) as typeof import("./main.js");

// `pipelines list | head -1`: the reader went away. Stop quietly with 141, the status of a Unix
// tool killed by SIGPIPE, instead of a stack trace. A run stopped so commits nothing: outputs
// are renamed into place only at the end.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(141);
    throw err;
  });
}

const controller = new AbortController();
let interrupted = 0;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    process.stderr.write(`\n${sig}: stopping; nothing of this run is committed (again to quit at once)\n`);
    controller.abort(new Error(`interrupted by ${sig}`));
  });
}

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
  env: process.env,
  signal: controller.signal,
});
process.exitCode = interrupted ? 130 : code;
