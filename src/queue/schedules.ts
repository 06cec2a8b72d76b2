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

/** This project's pipelines that have a `schedule` (a file that does not load is left out, and said). */
export function scheduledPipelines(
  project: Project,
  env: Record<string, string | undefined>,
  warn: (message: string) => void,
): { pipeline: string; cron: string }[] {
  const out: { pipeline: string; cron: string }[] = [];
  for (const name of listPipelineNames(project)) {
    try {
      const cron = loadPipeline(project, name, readEnv(project, env)).config.schedule;
      if (cron) out.push({ pipeline: name, cron });
    } catch {
      warn(
        `pipeline \`${name}\` does not load (see \`pipelines validate ${name}\`): its schedule is not started`,
      );
    }
  }
  return out;
}

/**
 * Starts the schedules: every worker started with `--schedules` declares the same job
 * schedulers (idempotent), and BullMQ makes one job per due time, taken by one worker.
 */
export async function startSchedules(
  connection: { queue: Redis; worker: Redis },
  prefix: string,
  schedules: { pipeline: string; cron: string }[],
  runOne: (pipeline: string) => Promise<ScheduledOutcome>,
): Promise<{ close(): Promise<void> }> {
  const queue = new Queue<ScheduledRun>(SCHEDULES_QUEUE, { connection: connection.queue, prefix });
  queue.on("error", () => {});
  for (const s of schedules)
    await queue.upsertJobScheduler(
      s.pipeline,
      { pattern: s.cron, tz: "UTC" },
      {
        name: s.pipeline,
        data: { pipeline: s.pipeline },
        opts: { removeOnComplete: 100, removeOnFail: 100 },
      },
    );
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
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}
