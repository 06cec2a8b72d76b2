import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { listPipelineNames, loadPipeline, readEnv } from "../config/load-pipeline.js";
import type { Project } from "../config/project.js";

/** The queue of scheduled runs: one BullMQ job scheduler per pipeline that has a `schedule`. */
export const SCHEDULES_QUEUE = "schedules";

export interface ScheduledRun {
  pipeline: string;
}

/** What a scheduled run came to: its exit code, or skipped (the previous run still going). */
export interface ScheduledOutcome {
  pipeline: string;
  code: number | null;
  skipped: string | null;
}

/** The schedules of a project's pipeline files; `unloadable`: files that do not load now. */
export interface ProjectSchedules {
  list: { pipeline: string; cron: string }[];
  unloadable: string[];
}

/** This project's pipelines that have a `schedule` (a file that does not load is left out, and said). */
export function scheduledPipelines(
  project: Project,
  env: Record<string, string | undefined>,
  warn: (message: string) => void,
): ProjectSchedules {
  const out: ProjectSchedules = { list: [], unloadable: [] };
  for (const name of listPipelineNames(project)) {
    try {
      const cron = loadPipeline(project, name, readEnv(project, env)).config.schedule;
      if (cron) out.list.push({ pipeline: name, cron });
    } catch {
      out.unloadable.push(name);
      warn(
        `pipeline \`${name}\` does not load (see \`pipelines validate ${name}\`): its schedule is not started (one already in the queue is kept)`,
      );
    }
  }
  return out;
}

/** What a sync changed: schedules added or changed (with their cron), and removed. */
export interface ScheduleChanges {
  set: { pipeline: string; cron: string }[];
  removed: string[];
}

/**
 * Makes the queue's schedules those of the project's files: every worker started with
 * `--schedules` declares the same job schedulers (idempotent; a changed cron replaces the old
 * one), and a schedule whose file was deleted or no longer has a `schedule` is removed. A file
 * that does not load keeps the schedule it had.
 */
async function syncSchedules(
  queue: Queue<ScheduledRun>,
  project: ProjectSchedules,
): Promise<ScheduleChanges> {
  const existing = new Map((await queue.getJobSchedulers()).map((s) => [s.key, s.pattern ?? null]));
  const changes: ScheduleChanges = { set: [], removed: [] };
  for (const s of project.list) {
    if (existing.get(s.pipeline) === s.cron) continue;
    await queue.upsertJobScheduler(
      s.pipeline,
      { pattern: s.cron, tz: "UTC" },
      {
        name: s.pipeline,
        data: { pipeline: s.pipeline },
        opts: { removeOnComplete: 100, removeOnFail: 100 },
      },
    );
    changes.set.push(s);
  }
  const keep = new Set([...project.list.map((s) => s.pipeline), ...project.unloadable]);
  for (const key of existing.keys()) {
    if (keep.has(key)) continue;
    await queue.removeJobScheduler(key);
    changes.removed.push(key);
  }
  return changes;
}

/**
 * Starts the schedules: syncs them (syncSchedules) and runs each due time on one worker (BullMQ
 * makes one job per due time). `refresh` syncs again from the files as they are now.
 */
export async function startSchedules(
  connection: { queue: Redis; worker: Redis },
  prefix: string,
  project: ProjectSchedules,
  runOne: (pipeline: string) => Promise<ScheduledOutcome>,
): Promise<{
  changes: ScheduleChanges;
  refresh(now: ProjectSchedules): Promise<ScheduleChanges>;
  close(): Promise<void>;
}> {
  const queue = new Queue<ScheduledRun>(SCHEDULES_QUEUE, { connection: connection.queue, prefix });
  queue.on("error", () => {});
  const changes = await syncSchedules(queue, project);
  // Scheduled runs of different pipelines go on at once; units run on the unit workers.
  const worker = new Worker<ScheduledRun, ScheduledOutcome>(
    SCHEDULES_QUEUE,
    (job) => runOne(job.data.pipeline),
    {
      connection: connection.worker,
      prefix,
      concurrency: 16,
    },
  );
  worker.on("error", () => {});
  await worker.waitUntilReady();
  return {
    changes,
    refresh: (now) => syncSchedules(queue, now),
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}
