/**
 * What only the build has: third-party libraries bundled by esbuild (dist/vendor/*.cjs) and
 * loaded with V8 code caches trained at build time (scripts/train-code-cache.mjs). Tests from
 * sources never load them, so these run the built files in child processes.
 */
import { execFile, spawn } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BIN, ensureBuilt, REPO } from "../built.js";
import { tempDir, writeFiles, yaml } from "../config/helpers.js";

const VENDOR = path.join(REPO, "dist", "vendor");
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

/** Runs an ES module snippet in a fresh Node and returns what it printed as JSON. */
async function inNode(code: string): Promise<any> {
  const { stdout } = await exec(process.execPath, ["--input-type=module", "-e", code], { cwd: dir });
  return JSON.parse(stdout);
}

describe("the vendor bundles of the build", () => {
  it("validate and run load every bundle and validator with its code cache, and V8 accepts it", async () => {
    writeFiles(dir, {
      "pipelines/seven.yaml": withSchema("r.schema.json"),
      "pipelines/twenty.yaml": withSchema("r2020.schema.json"),
      "schemas/r.schema.json": JSON.stringify({ type: "object", properties: { id: { type: "integer" } } }),
      "schemas/r2020.schema.json": JSON.stringify({
        $schema: "https://json-schema.org/draft/2020-12/schema",
        type: "object",
      }),
    });
    const url = (f: string) => JSON.stringify(pathToFileURL(path.join(REPO, "dist", f)).href);
    const loads = await inNode(`
      const { run } = await import(${url("cli/main.js")});
      let out = "";
      const code = await run(["validate"], { stdout: { write: (s) => (out += s) }, stderr: process.stderr, cwd: process.cwd(), env: {} });
      if (code !== 0) throw new Error("validate: " + code + " " + out);
      await import(${url("vendor/http-libs.js")}); // what \`run\` adds
      const { bundleLoads } = await import(${url("vendor/load-bundle.js")});
      console.log(JSON.stringify(bundleLoads));
    `);
    expect(loads.map((l: { file: string }) => path.relative(path.join(REPO, "dist"), l.file)).sort()).toEqual(
      [
        "config/pipeline-validator.cjs",
        "records/meta-2020-12.cjs",
        "records/meta-draft-07.cjs",
        "vendor/cli-libs.cjs",
        "vendor/config-libs.cjs",
        "vendor/http-libs.cjs",
      ],
    );
    for (const l of loads) expect(l, l.file).toMatchObject({ cached: true, rejected: false });
  });

  it("a cache made from another source of the same length is not used, and the bundle still works", async () => {
    // V8 checks only the source's length: the SHA-256 header is what catches this.
    for (const f of ["load-bundle.js", "cli-libs.cjs", "cli-libs.v8cache"])
      copyFileSync(path.join(VENDOR, f), path.join(dir, f));
    const file = path.join(dir, "cli-libs.cjs");
    const source = readFileSync(file, "latin1");
    const at = source.indexOf("too many arguments");
    expect(at).toBeGreaterThan(0);
    const changed = `${source.slice(0, at)}TOO many arguments${source.slice(at + "TOO many arguments".length)}`;
    expect(changed.length).toBe(source.length);
    writeFileSync(file, changed, "latin1");

    const here = `${pathToFileURL(dir).href}/`;
    const r = await inNode(`
      const { loadBundle, bundleLoads } = await import(${JSON.stringify(`${here}load-bundle.js`)});
      const lib = loadBundle(new URL(${JSON.stringify(`${here}cli-libs.cjs`)}));
      const cmd = new lib.Command("x").exitOverride().configureOutput({ writeErr() {} }).argument("<a>").action(() => {});
      let message = "";
      try { cmd.parse(["node", "x", "1", "2"]); } catch (e) { message = e.message; }
      console.log(JSON.stringify({ load: bundleLoads[0], message }));
    `);
    expect(r.load).toMatchObject({ cached: false, rejected: false });
    expect(r.message).toContain("TOO many arguments");
  });

  it("project configs load through the bundled cosmiconfig: .mjs, .cjs and .yaml", async () => {
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
});
