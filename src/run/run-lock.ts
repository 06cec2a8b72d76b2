import { mkdir, open, readdir, readFile, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import type { ExecutionPlan } from "../compile/plan.js";
import { rejectedPath } from "../outputs/writer.js";
import { quarantineFile } from "./run-stream.js";

/**
 * One run of a pipeline at a time, and the leftovers of a killed one removed by the next.
 *
 * `<state>/<pipeline>.lock` holds the pid, host and run id of the run in progress. Two runs of a
 * pipeline at once would write the same outputs and the same cursor; the second is refused
 * before it sends anything. A lock whose process is gone (killed, crashed) is stale: the next
 * run takes it over and removes what the killed run left: its temporary output files beside the
 * outputs, its partition scratch, temporary state and report files. (sqlite staging tables are
 * dropped by the sqlite writer, under the same lock.)
 */
export class PipelineLockedError extends Error {}

interface Holder {
  pid: number;
  host: string;
  run_id: string;
  started_at: string;
}

export interface RunLock {
  /** Leftovers of earlier runs that were removed, relative to the project root. */
  removed: string[];
  release(): Promise<void>;
}

/** A run id as newRunId makes them: 20261126T171158Z-b11aee. */
const RUN_ID = String.raw`\d{8}T\d{6}Z-[0-9a-f]{6}`;

export function lockFile(plan: ExecutionPlan): string {
  return path.join(plan.dirs.state, `${plan.pipeline}.lock`);
}

export async function lockPipeline(plan: ExecutionPlan, runId: string): Promise<RunLock> {
  const file = lockFile(plan);
  await mkdir(plan.dirs.state, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(file, "wx", 0o644);
      const holder: Holder = {
        pid: process.pid,
        host: hostname(),
        run_id: runId,
        started_at: new Date().toISOString(),
      };
      await fh.writeFile(`${JSON.stringify(holder)}\n`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      // On the second attempt, another run took the stale lock over between our two tries.
      const held = attempt > 0 ? "a run that started just now" : await holderOf(file);
      if (held) {
        throw new PipelineLockedError(
          `another run of \`${plan.pipeline}\` is in progress (${held}); two runs at once would write the same outputs and state. Nothing was sent. If that process is gone, delete ${path.relative(plan.dirs.root, file)}`,
        );
      }
      await rm(file, { force: true }); // stale: its process is gone
    }
  }
  const removed = await removeLeftovers(plan, runId);
  return {
    removed: removed.map((f) => path.relative(plan.dirs.root, f)),
    release: () => rm(file, { force: true }),
  };
}

/** Who holds the lock, when that process may still run; null when the lock is stale. */
async function holderOf(file: string): Promise<string | null> {
  let holder: Holder;
  try {
    holder = JSON.parse(await readFile(file, "utf8")) as Holder;
  } catch {
    // Unreadable: a run killed while writing it, or one writing it right now.
    const age = Date.now() - (await stat(file).catch(() => ({ mtimeMs: 0 }))).mtimeMs;
    return age < 10_000 ? "a run that is starting" : null;
  }
  const who = `pid ${holder.pid}${holder.host !== hostname() ? ` on ${holder.host}` : ""}, run ${holder.run_id}, started ${holder.started_at}`;
  if (holder.host !== hostname()) return who; // cannot tell from here
  try {
    process.kill(holder.pid, 0);
    return who;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM" ? who : null;
  }
}

async function removeLeftovers(plan: ExecutionPlan, runId: string): Promise<string[]> {
  const removed: string[] = [];
  const sweep = async (dir: string, stale: (name: string) => boolean) => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!stale(name)) continue;
      await rm(path.join(dir, name), { recursive: true, force: true });
      removed.push(path.join(dir, name));
    }
  };
  // Temporary output files: `.<target>.<run id>[.<tag>].tmp` (outputs/atomic-file.ts), for every
  // file a stream of this pipeline writes: output, quarantine, rejected records.
  const byDir = new Map<string, RegExp[]>();
  for (const s of plan.streams) {
    const targets = [s.output.path, quarantineFile(s)];
    for (const target of targets) {
      const base = escapeRegExp(path.basename(target));
      const rejected = escapeRegExp(path.basename(rejectedPath(target, "RUNID"))).replace("RUNID", RUN_ID);
      const list = byDir.get(path.dirname(target)) ?? [];
      list.push(new RegExp(`^\\.(?:${base}|${rejected})\\.(${RUN_ID})(?:\\.[a-z]+)?\\.tmp$`));
      byDir.set(path.dirname(target), list);
    }
  }
  for (const [dir, patterns] of byDir) {
    await sweep(dir, (name) =>
      patterns.some((re) => {
        const m = re.exec(name);
        return m !== null && m[1] !== runId;
      }),
    );
  }
  // Partition scratch of earlier runs of this pipeline (run/run-pipeline.ts).
  await sweep(path.join(plan.dirs.state, ".partitions", plan.pipeline), (name) => name !== runId);
  // Temporary state and report files (writeAtomic: `.<file>.<pid>.<time>.tmp`).
  const stateTmp = new RegExp(`^\\.${escapeRegExp(plan.pipeline)}\\.json\\.\\d+\\.\\d+\\.tmp$`);
  await sweep(plan.dirs.state, (name) => stateTmp.test(name));
  await sweep(path.join(plan.dirs.reports, plan.pipeline), (name) => /^\..+\.\d+\.\d+\.tmp$/.test(name));
  return removed;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
