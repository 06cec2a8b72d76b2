import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type * as Api from "@duckdb/node-api";
import { loadBundle } from "./load-bundle.js";

let api: typeof Api | null = null;

/**
 * @duckdb/node-api: the build's bundled copy (dist/app/duckdb-api.cjs, scripts/bundle.mjs) with
 * its code cache when it was made from the installed version of the package, else the package
 * (from sources; or after the package was updated without a build).
 */
export function duckdbApi(): typeof Api {
  if (api) return api;
  const req = createRequire(import.meta.url);
  const entry = req.resolve("@duckdb/node-api");
  const bundled = new URL("../app/duckdb-api.cjs", import.meta.url);
  api = bundleFits(fileURLToPath(new URL("../app/duckdb-api.json", import.meta.url)), entry)
    ? (loadBundle(bundled, createRequire(entry)) as unknown as typeof Api)
    : (req("@duckdb/node-api") as typeof Api);
  return api;
}

/**
 * Whether the bundle's recorded version (`versionFile`, `{"version": …}`) is the installed
 * package's (`entry`: its main file, in `lib/`); false when either cannot be read.
 */
export function bundleFits(versionFile: string, entry: string): boolean {
  try {
    const made = JSON.parse(readFileSync(versionFile, "utf8")) as { version?: unknown };
    const installed = JSON.parse(
      readFileSync(path.join(path.dirname(entry), "..", "package.json"), "utf8"),
    ) as {
      name?: unknown;
      version?: unknown;
    };
    return (
      installed.name === "@duckdb/node-api" &&
      typeof made.version === "string" &&
      made.version === installed.version
    );
  } catch {
    return false;
  }
}
