#!/usr/bin/env node
import { existsSync } from "node:fs";
import { loadBundle } from "../vendor/load-bundle.js";

// The build bundles the CLI into one file with a V8 code cache (scripts/bundle.mjs); from
// sources, or a build without it, the modules load one by one. Code in the bundle imports
// JavaScript project configs through this module's import() (see importModule).
(globalThis as Record<symbol, unknown>)[Symbol.for("pipelines.import")] = (url: string) => import(url);
const bundled = new URL("../app/pipelines.cjs", import.meta.url);
const { run } = (
  existsSync(bundled) ? loadBundle(bundled) : await import("./main.js")
) as typeof import("./main.js");

const controller = new AbortController();

// `pipelines list | head -1`: the reader went away. End quietly with 141, the status of a Unix
// tool killed by SIGPIPE, instead of a stack trace. A run in progress stops as on Ctrl-C (nothing
// more is committed), rather than exiting between committing an output and saving its cursor.
// Any other failed write (a full disk: ENOSPC, an I/O error) stops the run the same way, says so
// on standard error when it can, and ends with 1 — never a stack trace.
let outputGone = false;
let outputFailed = false;
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    const gone = err.code === "EPIPE" || err.code === "ERR_STREAM_DESTROYED";
    if (!outputGone && !outputFailed)
      controller.abort(
        new Error(gone ? "the output was closed" : `the output failed (${err.code ?? err.message})`),
      );
    if (gone) {
      outputGone = true;
      process.exitCode = 141; // also when the failed write is noticed after the command ended
      return;
    }
    if (!outputFailed && stream === process.stdout)
      process.stderr.write(`pipelines: cannot write to standard output: ${err.message}\n`);
    outputFailed = true;
    process.exitCode = 1;
  });
}

let interrupted = 0;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    process.stderr.write(
      `\n${sig}: stopping; nothing more is committed: streams that already committed keep their output, the others commit nothing (again to quit at once)\n`,
    );
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
process.exitCode = outputGone ? 141 : outputFailed ? 1 : interrupted ? 130 : code;
