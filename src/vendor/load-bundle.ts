import { isAscii } from "node:buffer";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

/**
 * Loads a CommonJS file of the build with V8's code cache from <name>.v8cache beside it: the
 * bundled CLI (dist/app/pipelines.cjs, made by scripts/bundle.mjs) and the precompiled
 * validators (scripts/gen-validator.mjs).
 *
 * Node 20 has no compile cache of its own (module.enableCompileCache is Node 22), so parsing
 * and compiling the CLI with yaml, ajv, cosmiconfig and undici took half of every start. The
 * cache is written at build time by a training run (scripts/train-code-cache.mjs) and used only
 * when it was made from this very file: its first 32 bytes are the SHA-256 of the source. V8
 * itself rejects a cache from another Node version or other flags; the file then compiles as
 * usual.
 */
export interface BundleLoad {
  file: string;
  /** A cache made from this source was found. */
  cached: boolean;
  /** V8 refused it (another Node version, other flags). */
  rejected: boolean;
}
/** Every load of the process (the bundled CLI has its own copy of this module: one list). */
export const bundleLoads: BundleLoad[] = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("pipelines.bundleLoads")
] ??= []) as BundleLoad[];

export function loadBundle(url: URL, req?: NodeJS.Require): Record<string, unknown> {
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
    // No import() in here: Node 20 allows it in a vm.Script only behind an experimental flag
    // (see importModule).
    { filename: file, cachedData },
  );
  const module = { exports: {} as Record<string, unknown> };
  script.runInThisContext()(module.exports, req ?? createRequire(file), module, file, path.dirname(file));
  bundleLoads.push({ file, cached: cachedData !== undefined, rejected: script.cachedDataRejected === true });
  if (process.env.PIPELINES_WRITE_CODE_CACHE === "1") {
    // After the training run, the cache holds every function that run compiled.
    process.once("exit", () => writeFileSync(cacheFile, Buffer.concat([hash, script.createCachedData()])));
  }
  return module.exports;
}

/**
 * `import(url)`, also from code loaded by loadBundle: bin.ts, a real ES module, registers its
 * own import() here before it loads the bundled CLI. (For JavaScript project configs.)
 */
export function importModule(url: string): Promise<Record<string, unknown>> {
  const registered = (globalThis as Record<symbol, unknown>)[Symbol.for("pipelines.import")] as
    | ((u: string) => Promise<Record<string, unknown>>)
    | undefined;
  return registered ? registered(url) : import(url);
}
