/**
 * The built CLI (dist/app/pipelines.cjs) processes JSON pages in the record workers' own bundle,
 * dist/app/record-worker.cjs, started only when a stream has enough pages: `--help` and
 * `validate` never load it. Runs the built files in child processes.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BIN, ensureBuilt } from "../built.js";
import { tempDir, writeFiles } from "../config/helpers.js";
import { closeServer, listenLocal } from "../run/helpers.js";

const exec = promisify(execFile);

let server: Server;
let url: string;
let dir: string;
let cleanup: () => void;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    const c = Number(new URL(req.url ?? "/", "http://x").searchParams.get("cursor") ?? 0);
    const data = Array.from({ length: 50 }, (_, k) => `{"id":${c * 50 + k},"big":${10n ** 19n + BigInt(k)}}`);
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(`{"data":[${data.join(",")}],"next":${c < 7 ? `"${c + 1}"` : "null"}}`);
  });
  url = await listenLocal(server);
}, 300_000);
afterAll(() => closeServer(server));
beforeEach(() => {
  ({ dir, cleanup } = tempDir("pipelines-built-pages-"));
});
afterEach(() => cleanup());

/**
 * Runs the built CLI in a fresh Node whose worker_threads.Worker notes the files threads start
 * from (the bundle requires node:worker_threads and reads `Worker` at each use).
 */
async function runBuilt(args: string[]): Promise<{ code: number; threads: string[] }> {
  const code = `
    import { createRequire } from "node:module";
    const wt = createRequire(import.meta.url)("node:worker_threads");
    const Real = wt.Worker;
    const threads = [];
    wt.Worker = class extends Real {
      constructor(file, opts) { threads.push(String(file)); super(file, opts); }
    };
    process.on("exit", (code) => process.stderr.write("\\nTHREADS " + JSON.stringify({ code, threads }) + "\\n"));
    process.argv = [process.argv[0], "pipelines", ...${JSON.stringify(args)}];
    await import(${JSON.stringify(pathToFileURL(BIN).href)});
  `;
  // Small test pages: the worker takes over after two pages, not after 1 MiB of bodies.
  const env = { ...process.env, PIPELINES_PAGE_WORKER_AFTER: "0" };
  const r = await exec(process.execPath, ["--input-type=module", "-e", code], { cwd: dir, env }).catch(
    (e) => e,
  );
  const line = String(r.stderr)
    .split("\n")
    .find((l) => l.startsWith("THREADS "));
  if (!line) throw new Error(`no THREADS line:\n${r.stderr}`);
  return JSON.parse(line.slice(8));
}

const pipeline = (workers: number) => `source: { base_url: "${url}", workers: ${workers} }
streams:
  items: { path: /items, records: $.data, paginate: { type: cursor, cursor: $.next }, primary_key: id }
`;

describe("pages in the built CLI's worker bundle", () => {
  it("workers 2 starts dist/app/record-worker.cjs and writes what workers 1 writes", async () => {
    writeFiles(dir, { "pipelines/one.yaml": pipeline(1), "pipelines/two.yaml": pipeline(2) });
    const one = await runBuilt(["run", "one"]);
    const two = await runBuilt(["run", "two"]);
    expect(one).toEqual({ code: 0, threads: [] });
    expect(two.code).toBe(0);
    expect(two.threads.map((f) => path.basename(f))).toEqual(["record-worker.cjs"]);
    const read = (p: string) => readFileSync(path.join(dir, "out", p, "items.jsonl"), "utf8");
    expect(read("two") === read("one")).toBe(true);
    expect(read("one").split("\n").length).toBe(401);
  });

  it("--help and validate start no thread", async () => {
    writeFiles(dir, { "pipelines/two.yaml": pipeline(2) });
    expect(await runBuilt(["--help"])).toEqual({ code: 0, threads: [] });
    expect(await runBuilt(["validate"])).toEqual({ code: 0, threads: [] });
  });
});
