import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type * as Api from "@duckdb/node-api";
import { loadBundle } from "./load-bundle.js";

let api: typeof Api | null = null;

/** @duckdb/node-api: the build's bundled copy with its code cache (dist/app/duckdb-api.cjs), else the package. */
export function duckdbApi(): typeof Api {
  if (api) return api;
  const bundled = new URL("../app/duckdb-api.cjs", import.meta.url);
  const req = createRequire(import.meta.url);
  api = existsSync(fileURLToPath(bundled))
    ? (loadBundle(bundled, createRequire(req.resolve("@duckdb/node-api"))) as unknown as typeof Api)
    : (req("@duckdb/node-api") as typeof Api);
  return api;
}
