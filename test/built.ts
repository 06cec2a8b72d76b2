/**
 * Tests of the built CLI (dist/) share this: a dist older than the sources or build scripts is
 * rebuilt with the real build (tsc, the bundle, validators, code caches), one worker at a time. In CI
 * `npm ci` has just built it, so this only checks.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const REPO = fileURLToPath(new URL("../", import.meta.url));
export const BIN = path.join(REPO, "dist", "cli", "bin.js");
/** Written by the build after tsc (the bundled CLI); the validators and caches follow it. */
const BUILT = path.join(REPO, "dist", "app", "pipelines.cjs");

function newest(dir: string): number {
  return Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true }).map((e) =>
      e.isDirectory() ? newest(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs,
    ),
  );
}

function fresh(): boolean {
  if (!existsSync(BIN) || !existsSync(BUILT)) return false;
  const sources = Math.max(newest(path.join(REPO, "src")), newest(path.join(REPO, "scripts")));
  return statSync(BUILT).mtimeMs >= sources;
}

export async function ensureBuilt(): Promise<void> {
  if (fresh()) return;
  const lock = path.join(REPO, "dist.build-lock");
  const since = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test file is building; a lock older than 3 minutes is from a killed run.
      if (Date.now() - since > 180_000) rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (!fresh()) await promisify(execFile)("npm", ["run", "build"], { cwd: REPO });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  if (!fresh()) throw new Error("dist/ is missing or older than src/: `npm run build` failed");
}
