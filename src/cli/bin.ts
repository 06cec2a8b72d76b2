#!/usr/bin/env node
import { run } from "./main.js";

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
