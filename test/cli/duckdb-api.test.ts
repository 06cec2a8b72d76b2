/**
 * src/vendor/duckdb-api.ts: the build's bundle of @duckdb/node-api is used only when it was made
 * from the installed version of the package (test/cli/built-cli.test.ts checks that a run loads it).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bundleFits, duckdbApi } from "../../src/vendor/duckdb-api.js";
import { tempDir } from "../config/helpers.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir("pipelines-duckdb-api-"));
});
afterEach(() => cleanup());

/** A package folder with `package.json` and `lib/index.js`, as @duckdb/node-api is laid out. */
function pkg(name: string, version: string): string {
  mkdirSync(path.join(dir, "pkg", "lib"), { recursive: true });
  writeFileSync(path.join(dir, "pkg", "package.json"), JSON.stringify({ name, version }));
  return path.join(dir, "pkg", "lib", "index.js");
}

describe("the bundled @duckdb/node-api", () => {
  it("fits only the version it was made from", () => {
    const made = path.join(dir, "duckdb-api.json");
    writeFileSync(made, JSON.stringify({ version: "1.5.6-r.1" }));
    expect(bundleFits(made, pkg("@duckdb/node-api", "1.5.6-r.1"))).toBe(true);
    expect(bundleFits(made, pkg("@duckdb/node-api", "1.5.7"))).toBe(false);
    expect(bundleFits(made, pkg("other", "1.5.6-r.1"))).toBe(false);
    expect(bundleFits(path.join(dir, "missing.json"), pkg("@duckdb/node-api", "1.5.6-r.1"))).toBe(false);
    writeFileSync(made, "not json");
    expect(bundleFits(made, pkg("@duckdb/node-api", "1.5.6-r.1"))).toBe(false);
  });

  it("from sources, the package itself", () => {
    const req = createRequire(import.meta.url);
    expect(duckdbApi().DuckDBInstance).toBe(req("@duckdb/node-api").DuckDBInstance);
  });
});
