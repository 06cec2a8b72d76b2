import { existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, rm, stat, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { quarantineFile } from "../compile/layout.js";
import type { ExecutionPlan } from "../compile/plan.js";
import { rejectedPath } from "../outputs/writer.js";

/**
 * One run of a pipeline at a time, and the leftovers of a killed one removed by the next.
 *
 * `<state>/<pipeline>.lock` holds the pid, host and run id of the run in progress, and the run
 * touches it every 30 s. Two runs of a pipeline at once would write the same outputs and the same
 * cursor: the second is refused before it sends anything. A lock is stale when its process is
 * gone (same host), when it is this very pid (a container restarted as PID 1), or when it has not
 * been touched for 2 minutes (any host). The next run takes a stale lock over (one run only: a
 * `.takeover` file decides) and removes what that killed run left, found by its run id and pid:
 * temporary output files, partition scratch, temporary state and report files, sqlite and
 * duckdb staging tables. Nothing of another run is touched.
 */
export class PipelineLockedError extends Error {}

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

function lockFile(plan: ExecutionPlan): string {
  return path.join(plan.dirs.state, `${plan.pipeline}.lock`);
}

export async function lockPipeline(plan: ExecutionPlan, runId: string): Promise<RunLock> {
  const file = lockFile(plan);
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
    );
  let removed: string[] = [];
  if (!(await create(file, me))) {
    const { held, holder } = await inspect(file);
    if (held) throw refuse(held);
    // Stale. Only one run takes it over: the one that creates the takeover file.
    const takeover = `${file}.takeover`;
    const marker = await stat(takeover).catch(() => null);
    if (marker && Date.now() - marker.mtimeMs > 30_000) await rm(takeover, { force: true });
    if (!(await create(takeover, me))) throw refuse("a run that is starting");
    try {
      const again = await inspect(file);
      if (again.held || again.holder?.run_id !== holder?.run_id)
        throw refuse(again.held ?? "a run that is starting");
      await rm(file, { force: true });
      if (!(await create(file, me))) throw refuse("a run that is starting");
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
    removed: removed.map((f) => path.relative(plan.dirs.root, f)),
    release: async () => {
      clearInterval(beat);
      // Only our own lock: never one another run took over meanwhile.
      const current = await readHolder(file);
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

async function readHolder(file: string): Promise<Holder | null> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Holder;
  } catch {
    return null;
  }
}

/** Who holds the lock (`held`, for the message) or null when it is stale, and what it says. */
async function inspect(file: string): Promise<{ held: string | null; holder: Holder | null }> {
  const info = await stat(file).catch(() => null);
  if (!info) return { held: null, holder: null };
  const age = Date.now() - info.mtimeMs;
  const holder = await readHolder(file);
  if (!holder) {
    // Unreadable: a run killed while writing it, or one writing it right now.
    return { held: age < 10_000 ? "a run that is starting" : null, holder: null };
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
  const remove = async (file: string) => {
    if (!existsSync(file)) return;
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
      const names = [path.basename(target), path.basename(rejectedPath(target, run))].map(
        (b) => `.${b}.${run}`,
      );
      await sweep(path.dirname(target), (n) => names.some((b) => n.startsWith(b) && n.endsWith(".tmp")));
    }
  }
  await remove(path.join(plan.dirs.state, ".partitions", plan.pipeline, run));
  // Temporary state and report files: writeAtomic's `.<file>.<pid>.<time>.tmp`.
  const byPid = (n: string) => n.startsWith(".") && n.endsWith(".tmp") && n.includes(`.${holder.pid}.`);
  await sweep(plan.dirs.state, (n) => n.startsWith(`.${plan.pipeline}.json.`) && byPid(n));
  await sweep(path.join(plan.dirs.reports, plan.pipeline), byPid);
  // SQLite staging tables: `<stream>__staging_<run id>` (outputs/sqlite-writer.ts).
  const dbs = new Map<string, string[]>();
  for (const s of plan.streams) {
    if (s.output.format === "sqlite" && existsSync(s.output.path))
      dbs.set(s.output.path, [...(dbs.get(s.output.path) ?? []), `${s.name}__staging_${run}`]);
  }
  if (dbs.size) {
    const { dropTables } = await import("../outputs/sqlite-writer.js");
    for (const [file, tables] of dbs)
      for (const t of dropTables(file, tables)) removed.push(`${file} (table ${t})`);
  }
  // DuckDB staging tables: `<table>__staging_<run id>`, `<table>__invalid__staging_<run id>`
  // (outputs/duckdb-writer.ts). Parquet's scratch files match the temporary files above.
  const duck = new Set(
    plan.streams
      .filter((s) => s.output.format === "duckdb" && existsSync(s.output.path))
      .map((s) => s.output.path),
  );
  if (duck.size) {
    const { dropStagingTables } = await import("../outputs/duckdb-writer.js");
    for (const file of duck)
      for (const t of await dropStagingTables(file, run)) removed.push(`${file} (table ${t})`);
  }
  return removed;
}
