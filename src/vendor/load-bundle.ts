import { isAscii } from "node:buffer";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

/**
 * Loads a CommonJS file of the build with V8's code cache from <name>.v8cache beside it: the
 * bundles of third-party libraries (dist/vendor/<name>.cjs, made by scripts/bundle-vendor.mjs)
 * and the precompiled validators (scripts/gen-validator.mjs).
 *
 * Node 20 has no compile cache of its own (module.enableCompileCache is Node 22), so parsing
 * and compiling yaml, ajv, cosmiconfig and undici again took a third of every start. The cache
 * is written at build time by a training run (scripts/train-code-cache.mjs) and used only when
 * it was made from this very file: its first 32 bytes are the SHA-256 of the source. V8 itself
 * rejects a cache from another Node version or other flags; the bundle then compiles normally.
 */
export interface BundleLoad {
  file: string;
  /** A cache made from this source was found. */
  cached: boolean;
  /** V8 refused it (another Node version, other flags). */
  rejected: boolean;
}
export const bundleLoads: BundleLoad[] = [];

export function loadBundle(url: URL): Record<string, unknown> {
  const file = fileURLToPath(url);
  const bytes = readFileSync(file);
  const hash = createHash("sha256").update(bytes).digest();
  // esbuild writes ASCII only (its default `charset`): latin1 decodes that three times faster
  // than utf8, and gives the same text.
  const source = bytes.toString(isAscii(bytes) ? "latin1" : "utf8");
  const cacheFile = file.replace(/\.cjs$/, ".v8cache");
  let cachedData: Buffer | undefined;
  try {
    const buf = readFileSync(cacheFile);
    if (buf.subarray(0, 32).equals(hash)) cachedData = buf.subarray(32);
  } catch {
    // No cache: compile as usual.
  }
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname) {${source}\n})`,
    // No import() inside a bundle: Node 20 allows it only behind an experimental flag (project.ts
    // gives cosmiconfig its own loader for JavaScript configs).
    { filename: file, cachedData },
  );
  const module = { exports: {} as Record<string, unknown> };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));
  bundleLoads.push({ file, cached: cachedData !== undefined, rejected: script.cachedDataRejected === true });
  if (process.env.PIPELINES_WRITE_CODE_CACHE === "1") {
    // After the training run, the cache holds every function that run compiled.
    process.once("exit", () => writeFileSync(cacheFile, Buffer.concat([hash, script.createCachedData()])));
  }
  return module.exports;
}
