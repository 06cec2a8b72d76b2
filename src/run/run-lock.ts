import { existsSync, type Stats } from "node:fs";
import { lstat, mkdir, open, readdir, rm, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import {
  lockFile,
  outputTempPrefix,
  partitionScratchDir,
  quarantineFile,
  rejectedPath,
  reportDir,
  stagingTable,
  stateFile,
  takeoverFile,
} from "../compile/layout.js";
import type { ExecutionPlan } from "../compile/plan.js";
import { FileReadError, MAX_BYTES, readText } from "../config/read-bounded.js";
import { RUN_ID } from "./run-id.js";

/**
 * One run of a pipeline at a time, and the leftovers of a killed one removed by the next.
 *
 * `<state>/<pipeline>.lock` holds the pid, host and run id of the run in progress, and the run
 * touches it every 30 s. Two runs of a pipeline at once would write the same outputs and the same
 * cursor: the second is refused before it sends anything. A lock is stale when its process is
 * gone (same host), when it is this very pid (a container restarted as PID 1), or when it has not
 * been touched for 2 minutes (any host). The next run takes a stale lock over (one run only: a
 * `.takeover` file decides) and removes what that killed run left, found by its run id and pid:
 * temporary output files, partition scratch, temporary state and report files, sqlite, duckdb
 * and postgres staging tables. Nothing of another run is touched.
 *
 * The lock is input like any file of the state folder: a lock that is not a regular file is
 * refused (never followed, never read from a FIFO); one that does not have the shape we write
 * (pid, host, run id as newRunId makes them) is treated as unreadable: held while it is younger
 * than 10 s (a run writing it), stale after, and never used to find leftovers. Every leftover
 * removed is inside the folder it was looked for in.
 */
/** The run lock is held (`held`: by a run still going) or cannot be used (a file that is not a lock). */
export class PipelineLockedError extends Error {
  constructor(
    message: string,
    readonly held: boolean,
  ) {
    super(message);
  }
}

interface Holder {
  pid: number;
  host: string;
  run_id: string;
  started_at: string;
}

export interface RunLock {
  /** Leftovers of a killed run that were removed, relative to the project root. */
  removed: string[];
  release(): Promise<void>;
}

const HEARTBEAT_MS = 30_000;
const STALE_AFTER_MS = 120_000;
/** Who holds a lock being written or taken over (its holder cannot be named yet). */
const STARTING = "a run that is starting";

function lockFileOf(plan: ExecutionPlan): string {
  return lockFile(plan.dirs.state, plan.pipeline);
}

export async function lockPipeline(plan: ExecutionPlan, runId: string): Promise<RunLock> {
  const file = lockFileOf(plan);
  await mkdir(plan.dirs.state, { recursive: true });
  const me: Holder = {
    pid: process.pid,
    host: hostname(),
    run_id: runId,
    started_at: new Date().toISOString(),
  };
  const refuse = (who: string) =>
    new PipelineLockedError(
      `another run of \`${plan.pipeline}\` is in progress (${who}); two runs at once would write the same outputs and state. Nothing was sent. If that process is gone, delete ${path.relative(plan.dirs.root, file)}`,
      true,
    );
  const notALock = (f: string, kind: string) =>
    new PipelineLockedError(
      `${path.relative(plan.dirs.root, f)} is not a lock file (${kind}); nothing was sent. If no run of \`${plan.pipeline}\` is in progress, remove it`,
      false,
    );
  let removed: string[] = [];
  if (!(await create(file, me))) {
    const { held, holder } = await inspect(file, notALock);
    if (held) throw refuse(held);
    // Stale. Only one run takes it over: the one that creates the takeover file.
    const takeover = takeoverFile(file);
    const marker = await lstat(takeover).catch(() => undefined);
    if (marker && !marker.isFile()) throw notALock(takeover, kindOf(marker));
    if (marker && Date.now() - marker.mtimeMs > 30_000) await rm(takeover, { force: true });
    if (!(await create(takeover, me))) throw refuse(STARTING);
    try {
      const again = await inspect(file, notALock);
      if (again.held || again.holder?.run_id !== holder?.run_id) throw refuse(again.held ?? STARTING);
      await rm(file, { force: true });
      if (!(await create(file, me))) throw refuse(STARTING);
    } finally {
      await rm(takeover, { force: true });
    }
    if (holder) removed = await removeLeftovers(plan, holder);
  }
  const beat = setInterval(() => {
    const now = new Date();
    utimes(file, now, now).catch(() => {});
  }, HEARTBEAT_MS);
  beat.unref();
  return {
    // Files relative to the project; a PostgreSQL table is named as it is (it is not a path).
    removed: removed.map((f) => (path.isAbsolute(f) ? path.relative(plan.dirs.root, f) : f)),
    release: async () => {
      clearInterval(beat);
      // Only our own lock: never one another run took over meanwhile.
      const current = await readHolder(file).catch(() => undefined);
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: race only: force matters when the lock is removed between this read and the rm
      if (current?.run_id === runId) await rm(file, { force: true });
    },
  };
}

/** Creates `file` with the holder in it; false when it exists. */
async function create(file: string, holder: Holder): Promise<boolean> {
  try {
    const fh = await open(file, "wx", 0o644);
    await fh.writeFile(`${JSON.stringify(holder)}\n`);
    await fh.close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

/** A regular file's holder; null when it is unreadable or not of the shape we write. */
async function readHolder(file: string): Promise<Holder | null> {
  let text: string;
  try {
    // Stryker disable next-line StringLiteral: `what` names the file only in a too-large error, which is read as null here
    text = await readText(file, { maxBytes: MAX_BYTES.lock, what: "a lock file", noFollow: true });
  } catch (err) {
    if (err instanceof FileReadError && err.problem !== "missing" && err.problem !== "too_large") throw err;
    return null;
  }
  try {
    return parseHolder(JSON.parse(text));
  } catch {
    return null;
  }
}

/** No control characters (the host and start time are shown in messages). */
const PRINTABLE = /^[^\u0000-\u001f\u007f-\u009f]{1,255}$/;

/** The holder when `v` has the shape `create` writes, else null. */
function parseHolder(v: unknown): Holder | null {
  // null has no fields; a primitive or a list has no `pid` of ours: no holder either way.
  const h = (v ?? {}) as Record<string, unknown>;
  if (!Number.isSafeInteger(h.pid) || (h.pid as number) <= 0) return null;
  if (typeof h.host !== "string" || !PRINTABLE.test(h.host)) return null;
  if (typeof h.run_id !== "string" || !RUN_ID.test(h.run_id)) return null;
  if (typeof h.started_at !== "string" || !PRINTABLE.test(h.started_at)) return null;
  return { pid: h.pid as number, host: h.host, run_id: h.run_id, started_at: h.started_at };
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return "a folder";
  if (info.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

/** Who holds the lock (`held`, for the message) or null when it is stale, and what it says. */
async function inspect(
  file: string,
  notALock: (file: string, kind: string) => Error,
): Promise<{ held: string | null; holder: Holder | null }> {
  const info = await lstat(file).catch(() => undefined);
  if (!info) return { held: null, holder: null };
  if (!info.isFile()) throw notALock(file, kindOf(info));
  const age = Date.now() - info.mtimeMs;
  const holder = await readHolder(file).catch((err: FileReadError) => {
    throw notALock(file, err.problem === "folder" ? "a folder" : "not a regular file");
  });
  if (!holder) {
    // Unreadable or not of our shape: a run killed while writing it, one writing it right now,
    // or not a lock of ours. Never used to find leftovers.
    return { held: age < 10_000 ? STARTING : null, holder: null };
  }
  const sameHost = holder.host === hostname();
  const who = `pid ${holder.pid}${sameHost ? "" : ` on ${holder.host}`}, run ${holder.run_id}, started ${holder.started_at}`;
  if (age > STALE_AFTER_MS) return { held: null, holder }; // no heartbeat for 2 minutes
  if (!sameHost) return { held: who, holder }; // its process cannot be checked from here
  if (holder.pid === process.pid) return { held: null, holder }; // an earlier life of this pid
  try {
    process.kill(holder.pid, 0);
    return { held: who, holder };
  } catch (err) {
    return { held: (err as NodeJS.ErrnoException).code === "EPERM" ? who : null, holder };
  }
}

/** What the killed run `holder` left: found by its run id and pid, nothing of another run. */
async function removeLeftovers(plan: ExecutionPlan, holder: Holder): Promise<string[]> {
  const removed: string[] = [];
  // parseHolder checked it; a run id that names a path would remove what it names.
  // Stryker disable next-line ConditionalExpression: unreachable: parseHolder already refused such a run id (defence in depth)
  if (!RUN_ID.test(holder.run_id)) return removed;
  const folders = [
    plan.dirs.state,
    plan.dirs.reports,
    ...plan.streams.flatMap((s) => [path.dirname(s.output.path), path.dirname(quarantineFile(s))]),
  ];
  const remove = async (file: string) => {
    // Only inside the folders leftovers are looked for in, and never one of them.
    // Stryker disable next-line ConditionalExpression: unreachable: every path swept is built inside its folder (defence in depth; isInside has its own test)
    if (!folders.some((dir) => isInside(dir, file))) return;
    if (!existsSync(file)) return;
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: race only: force matters when another process removes the leftover between the check and the rm (the takeover then carries on)
    await rm(file, { recursive: true, force: true });
    removed.push(file);
  };
  const sweep = async (dir: string, stale: (name: string) => boolean) => {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) if (stale(name)) await remove(path.join(dir, name));
  };
  const run = holder.run_id;
  // Temporary output files: `.<target>.<run id>[.<tag>].tmp` (outputs/atomic-file.ts), for every
  // file a stream writes: output, quarantine, rejected records.
  for (const s of plan.streams) {
    for (const target of [s.output.path, quarantineFile(s)]) {
      const names = [target, rejectedPath(target, run)].map((t) => outputTempPrefix(t, run));
      await sweep(path.dirname(target), (n) => names.some((b) => n.startsWith(b) && n.endsWith(".tmp")));
    }
  }
  await remove(partitionScratchDir(plan.dirs.state, plan.pipeline, run));
  // Temporary state and report files: writeAtomic's `.<file>.<pid>.<time>.tmp`.
  const byPid = (n: string) => n.startsWith(".") && n.endsWith(".tmp") && n.includes(`.${holder.pid}.`);
  const stateName = `.${path.basename(stateFile(plan.dirs.state, plan.pipeline))}.`;
  await sweep(plan.dirs.state, (n) => n.startsWith(stateName) && byPid(n));
  await sweep(reportDir(plan.dirs.reports, plan.pipeline), byPid);
  // SQLite staging tables: `<stream>__staging_<run id>` (outputs/sqlite-writer.ts).
  const dbs = new Map<string, string[]>();
  for (const s of plan.streams) {
    if (s.output.format !== "sqlite" || !existsSync(s.output.path)) continue;
    // Stryker disable next-line ArrayDeclaration: equivalent: dropTables ignores a table that does not exist
    const tables = dbs.get(s.output.path) ?? [];
    dbs.set(s.output.path, [...tables, stagingTable(s.name, run)]);
  }
  // Each writer's module is loaded only when one of its outputs is there.
  for (const [file, tables] of dbs) {
    const { dropTables } = await import("../outputs/sqlite-writer.js");
    for (const t of dropTables(file, tables)) removed.push(`${file} (table ${t})`);
  }
  // PostgreSQL staging tables: `_staging_<run id>_…` in each postgres output's schema.
  const pgTargets = new Map<string, { url: string; schema: string }>();
  // Only a postgres output has `postgres` settings.
  for (const s of plan.streams)
    if (s.output.postgres)
      pgTargets.set(`${s.output.postgres.url}\0${s.output.postgres.schema}`, s.output.postgres);
  for (const t of pgTargets.values()) {
    const { dropStaging } = await import("../outputs/postgres-writer.js");
    const dropped = await dropStaging(t.url, t.schema, run).catch(() => [] as string[]);
    for (const name of dropped) removed.push(`postgres table "${t.schema}"."${name}"`);
  }
  // DuckDB staging tables: `<table>__staging_<run id>`, `<table>__invalid__staging_<run id>`
  // (outputs/duckdb-writer.ts). Parquet's scratch files match the temporary files above.
  const duck = new Set(
    plan.streams
      .filter((s) => s.output.format === "duckdb" && existsSync(s.output.path))
      .map((s) => s.output.path),
  );
  for (const file of duck) {
    const { dropStagingTables } = await import("../outputs/duckdb-engine.js");
    for (const t of await dropStagingTables(file, run)) removed.push(`${file} (table ${t})`);
  }
  return removed;
}

/** True when `file` is strictly inside `dir` (not `dir` itself, not through `..`). */
export function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}
