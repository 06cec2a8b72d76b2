/**
 * better-sqlite3 is a native module that `npm ci` compiles when no prebuilt binary fits: commands
 * that do not write SQLite must work without it (issue 19, point 1). The built CLI runs with a
 * require hook that records, and refuses, every load of it — as on a machine where it did not build.
 */
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ensureBuilt } from "../built.js";
import { tempDir, writeFiles, yaml } from "../config/helpers.js";
import { closeServer, listenLocal } from "../run/helpers.js";

const exec = promisify(execFile);
const HOOK = `
const Module = require("node:module");
const load = Module._load;
Module._load = function (request, ...rest) {
  if (/better-sqlite3/.test(request)) {
    process.stderr.write("HOOK: better-sqlite3 requested\\n");
    throw new Error("Could not locate the bindings file (simulated: better-sqlite3 did not compile)");
  }
  return load.call(this, request, ...rest);
};
`;

let dir: string;
let cleanup: () => void;
let server: Server;
let base: string;
beforeAll(async () => {
  await ensureBuilt();
  ({ dir, cleanup } = tempDir("pipelines-nosqlite-"));
  server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end('{"data":[{"id":1},{"id":2}]}');
  });
  base = await listenLocal(server);
  writeFiles(dir, {
    "hook.cjs": HOOK,
    "pipelines/plain.yaml": yaml`
      source: { base_url: "${base}" }
      streams:
        items: { path: /items, records: $.data }
    `,
    "pipelines/db.yaml": yaml`
      source: { base_url: "${base}" }
      streams:
        items: { path: /items, records: $.data }
      output: { format: sqlite, path: out/db.sqlite }
    `,
  });
}, 300_000);
afterAll(async () => {
  await closeServer(server);
  cleanup();
});

async function cli(...args: string[]) {
  return exec(process.execPath, ["-r", path.join(dir, "hook.cjs"), BIN, ...args], { cwd: dir }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

describe("without better-sqlite3", () => {
  it("validate, plan, list and a jsonl run never load it", async () => {
    for (const args of [["validate"], ["plan", "db"], ["list"], ["run", "plain"]]) {
      const r = await cli(...args);
      expect(r.stderr, args.join(" ")).not.toContain("HOOK");
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
    }
  });

  it("a sqlite output says what is missing and how to build it", async () => {
    const r = await cli("run", "db");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the sqlite output needs the better-sqlite3 package, which did not load");
    expect(r.stderr).toContain("npm rebuild better-sqlite3");
  });
});
