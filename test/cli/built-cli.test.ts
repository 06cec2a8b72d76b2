/**
 * What only the build has: the CLI bundled by esbuild (dist/app/pipelines.cjs) and
 * loaded with V8 code caches trained at build time (scripts/train-code-cache.mjs). Tests from
 * sources never load them, so these run the built files in child processes.
 */
import { execFile, spawn } from "node:child_process";
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BIN, ensureBuilt, REPO } from "../built.js";
import { tempDir, writeFiles, yaml } from "../config/helpers.js";

const exec = promisify(execFile);

const PIPELINE = yaml`
  source: { base_url: "https://api.example.test" }
  streams:
    items: { path: /items, records: $.data, paginate: { type: cursor, cursor: $.next } }
`;

const withSchema = (schema: string) => yaml`
  source: { base_url: "https://api.example.test" }
  streams:
    items: { path: /items, records: $.data, schema: ${schema} }
`;

let dir: string;
let cleanup: () => void;
beforeAll(ensureBuilt, 300_000);
beforeEach(() => {
  ({ dir, cleanup } = tempDir("pipelines-built-"));
});
afterEach(() => cleanup());

/**
 * An ES module snippet's lines that run the built CLI in this process with `args` (bin.js runs
 * process.argv when imported), its standard output silenced, then close `server`.
 */
const runBuiltCli = (args: string[]) => `
      process.argv = [process.argv[0], "pipelines", ...${JSON.stringify(args)}];
      process.env.CI = "1";
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = () => true;
      await import(${JSON.stringify(pathToFileURL(BIN).href)});
      process.stdout.write = write;
      server.close();`;

/** Runs an ES module snippet in a fresh Node and returns what it printed as JSON. */
async function inNode<T = unknown>(code: string): Promise<T> {
  const { stdout } = await exec(process.execPath, ["--input-type=module", "-e", code], { cwd: dir });
  return JSON.parse(stdout);
}

describe("the bundled CLI of the build", () => {
  it("bin.js runs the bundle; it and every validator load with their code caches, and V8 accepts them", async () => {
    writeFiles(dir, {
      "pipelines/seven.yaml": withSchema("r.schema.json"),
      "pipelines/twenty.yaml": withSchema("r2020.schema.json"),
      "schemas/r.schema.json": JSON.stringify({ type: "object", properties: { id: { type: "integer" } } }),
      "schemas/r2020.schema.json": JSON.stringify({
        $schema: "https://json-schema.org/draft/2020-12/schema",
        type: "object",
      }),
    });
    // bin.js runs the command in process.argv when imported, as it does when started.
    const loads = await inNode<{ file: string; cached: boolean; rejected: boolean }[]>(`
      process.argv = [process.argv[0], "pipelines", "validate"];
      const write = process.stdout.write.bind(process.stdout);
      let out = "";
      process.stdout.write = (s) => ((out += s), true);
      await import(${JSON.stringify(pathToFileURL(BIN).href)});
      process.stdout.write = write;
      if (process.exitCode !== 0 || !out.includes("ok   twenty")) throw new Error("validate: " + process.exitCode + " " + out);
      console.log(JSON.stringify(globalThis[Symbol.for("pipelines.bundleLoads")]));
    `);
    expect(loads.map((l: { file: string }) => path.relative(path.join(REPO, "dist"), l.file)).sort()).toEqual(
      [
        "app/pipelines.cjs",
        "config/pipeline-validator.cjs",
        "lang/meta-2020-12.cjs",
        "lang/meta-draft-07.cjs",
      ],
    );
    for (const l of loads) expect(l, l.file).toMatchObject({ cached: true, rejected: false });
  });

  it("the bundles hold no import() of a module by name (it fails in the vm.Script that runs them)", () => {
    // A dynamic `import("node:fs")` in the sources is left as it is by esbuild; in the bundle it
    // threw "A dynamic import callback was not specified" (a Singer file's commit guard). The one
    // left is cosmiconfig's TypeScript loader, which no search place of ours reaches.
    for (const file of ["pipelines.cjs", "record-worker.cjs"]) {
      const text = readFileSync(path.join(REPO, "dist", "app", file), "utf8");
      const named = [...text.matchAll(/\bimport\(\s*["'`]([^"'`]+)["'`]\s*\)/g)].map((m) => m[1]);
      expect(
        named.filter((m) => m !== "typescript"),
        file,
      ).toEqual([]);
    }
  });

  it("a Singer file output commits over the file a run before wrote (its guard reads the file)", async () => {
    const out = await inNode<{ codes: number[]; text: string }>(`
      import http from "node:http";
      import fs from "node:fs";
      const server = http.createServer((req, res) => res.end(JSON.stringify({ data: [{ id: 1 }, { id: 2 }] })));
      await new Promise((r) => server.listen(0, "127.0.0.1", r));
      fs.mkdirSync("pipelines");
      fs.writeFileSync("pipelines/sg.yaml", 'source: { base_url: "http://127.0.0.1:' + server.address().port + '" }\\nstreams:\\n  a: { path: /a, records: $.data }\\n  b: { path: /b, records: $.data }\\noutput: { format: singer, path: out/sg.singer.jsonl }\\n');
      const codes = [];
      const bin = ${JSON.stringify(pathToFileURL(BIN).href)};
      process.env.CI = "1";
      const write = process.stdout.write.bind(process.stdout);
      for (const i of [1, 2]) {
        process.argv = [process.argv[0], "pipelines", "run", "sg"];
        process.stdout.write = () => true;
        await import(bin + "?run=" + i);
        process.stdout.write = write;
        codes.push(process.exitCode);
        process.exitCode = undefined;
      }
      server.close();
      console.log(JSON.stringify({ codes, text: fs.readFileSync("out/sg.singer.jsonl", "utf8") }));
    `);
    expect(out.codes).toEqual([0, 0]);
    const messages = out.text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(messages.filter((m) => m.type === "RECORD").map((m) => [m.stream, m.record.id])).toEqual([
      ["a", 1],
      ["a", 2],
      ["b", 1],
      ["b", 2],
    ]);
  });

  it("a run into DuckDB loads @duckdb/node-api's bundle with its code cache, not the package's files", async () => {
    const loaded = await inNode<{
      code: number;
      loads: { file: string; cached: boolean; rejected: boolean }[];
      packageFiles: string[];
    }>(`
      import http from "node:http";
      import fs from "node:fs";
      import Module from "node:module";
      const server = http.createServer((req, res) => res.end(JSON.stringify({ data: [{ id: 1 }, { id: 2 }] })));
      await new Promise((r) => server.listen(0, "127.0.0.1", r));
      fs.mkdirSync("pipelines");
      fs.writeFileSync("pipelines/duck.yaml", 'source: { base_url: "http://127.0.0.1:' + server.address().port + '" }\\nstreams:\\n  items: { path: /items, records: $.data }\\noutput: { format: duckdb }\\n');
      ${runBuiltCli(["run", "duck"])}
      const packageFiles = Object.keys(Module._cache).filter((k) => /node_modules[\\\\/]@duckdb[\\\\/]node-api[\\\\/]/.test(k));
      console.log(JSON.stringify({ code: process.exitCode, loads: globalThis[Symbol.for("pipelines.bundleLoads")], packageFiles }));
    `);
    expect(loaded.code).toBe(0);
    expect(loaded.packageFiles).toEqual([]);
    const duck = loaded.loads.find((l) => l.file === path.join(REPO, "dist", "app", "duckdb-api.cjs"));
    expect(duck).toMatchObject({ cached: true, rejected: false });
    // The run wrote through it.
    const inst = await DuckDBInstance.create(path.join(dir, "out", "duck.duckdb"));
    try {
      const conn = await inst.connect();
      const r = await conn.runAndReadAll("SELECT CAST(id AS INTEGER) FROM items ORDER BY id");
      conn.closeSync();
      expect(r.getRows()).toEqual([[1], [2]]);
    } finally {
      inst.closeSync();
    }
  });

  it("a run of a project without a queue loads neither BullMQ nor ioredis (about 70 ms of start-up), nor ICU's number formats (9 ms)", async () => {
    const loaded = await inNode<{ code: number; queueModules: string[]; numberFormats: number }>(`
      import http from "node:http";
      import fs from "node:fs";
      import Module from "node:module";
      const server = http.createServer((req, res) => res.end(JSON.stringify({ data: [{ id: 1 }, { id: 2 }] })));
      await new Promise((r) => server.listen(0, "127.0.0.1", r));
      fs.mkdirSync("pipelines");
      fs.writeFileSync("pipelines/local.yaml", 'source: { base_url: "http://127.0.0.1:' + server.address().port + '" }\\nstreams:\\n  items: { path: /items, records: $.data }\\n');
      let numberFormats = 0;
      const NF = Intl.NumberFormat;
      Intl.NumberFormat = function (...a) { numberFormats++; return new NF(...a); };
      const toLocale = Number.prototype.toLocaleString;
      Number.prototype.toLocaleString = function (...a) { numberFormats++; return toLocale.apply(this, a); };
      ${runBuiltCli(["run", "local"])}
      const queueModules = Object.keys(Module._cache).filter((k) => /node_modules[\\\\/](bullmq|ioredis)[\\\\/]/.test(k));
      console.log(JSON.stringify({ code: process.exitCode, queueModules, numberFormats }));
    `);
    expect(loaded).toEqual({ code: 0, queueModules: [], numberFormats: 0 });
    expect(readFileSync(path.join(dir, "out/local/items.jsonl"), "utf8")).toBe('{"id":1}\n{"id":2}\n');
  });

  it("a cache made from another source of the same length is not used, and the file still works", async () => {
    // V8 checks only the source's length: the SHA-256 header is what catches this.
    copyFileSync(path.join(REPO, "dist", "vendor", "load-bundle.js"), path.join(dir, "load-bundle.js"));
    const file = path.join(dir, "lib.cjs");
    writeFileSync(file, 'exports.greet = () => "hello, " + "world";\n');
    const here = `${pathToFileURL(dir).href}/`;
    const load = `
      const { loadBundle, bundleLoads } = await import(${JSON.stringify(`${here}load-bundle.js`)});
      const lib = loadBundle(new URL(${JSON.stringify(`${here}lib.cjs`)}));
      console.log(JSON.stringify({ load: bundleLoads[0], greeting: lib.greet() }));
    `;
    // A training run writes the cache at exit, as the build does.
    await exec(process.execPath, ["--input-type=module", "-e", load], {
      cwd: dir,
      env: { ...process.env, PIPELINES_WRITE_CODE_CACHE: "1" },
    });
    expect(existsSync(path.join(dir, "lib.v8cache"))).toBe(true);
    expect(await inNode(load)).toEqual({
      load: { file, cached: true, rejected: false },
      greeting: "hello, world",
    });

    const source = readFileSync(file, "latin1");
    const changed = source.replace("hello", "HOWDY");
    expect(changed.length).toBe(source.length);
    writeFileSync(file, changed, "latin1");
    expect(await inNode(load)).toEqual({
      load: { file, cached: false, rejected: false },
      greeting: "HOWDY, world",
    });
  });

  it("project configs load in the bundled CLI: .mjs (imported by bin.js), .cjs and .yaml", async () => {
    writeFiles(dir, {
      "a/pipelines.config.mjs": "export default { pipelinesDir: 'flows' };\n",
      "a/flows/from-mjs.yaml": PIPELINE,
      "b/.pipelinesrc.yaml": "pipelinesDir: flows\n",
      "b/flows/from-yaml.yaml": PIPELINE,
      "c/.pipelinesrc.cjs": "module.exports = { pipelinesDir: 'flows' };\n",
      "c/flows/from-cjs.yaml": PIPELINE,
    });
    for (const [sub, name] of [
      ["a", "from-mjs"],
      ["b", "from-yaml"],
      ["c", "from-cjs"],
    ]) {
      const r = await exec(process.execPath, [BIN, "validate"], { cwd: path.join(dir, sub) });
      expect(r.stdout).toBe(`ok   ${name} (1 stream: items)\n`);
    }
  });
});

describe("the built CLI's output streams", () => {
  it("a reader that goes away ends the command with 141 and no stack trace", async () => {
    writeFiles(dir, { "pipelines/one.yaml": PIPELINE });
    const child = spawn(process.execPath, [BIN, "list"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    // Closed before Node has even started: the first write of `list` meets EPIPE.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise((resolve) => child.on("exit", resolve));
    expect(stderr).not.toContain("EPIPE");
    expect(code).toBe(141);
  });

  it.skipIf(!existsSync("/dev/full"))(
    "standard output on a full disk ends the command with 1, said in one line, no stack trace",
    async () => {
      writeFiles(dir, { "pipelines/one.yaml": PIPELINE });
      const full = openSync("/dev/full", "w");
      try {
        const child = spawn(process.execPath, [BIN, "list"], { cwd: dir, stdio: ["ignore", full, "pipe"] });
        let stderr = "";
        child.stderr?.on("data", (d) => (stderr += d));
        const code = await new Promise((resolve) => child.on("exit", resolve));
        expect(stderr).toContain("pipelines: cannot write to standard output: ENOSPC");
        expect(stderr).not.toMatch(/\n\s+at /);
        expect(code).toBe(1);
      } finally {
        closeSync(full);
      }
    },
  );
});
