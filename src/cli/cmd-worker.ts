import { type Job, Worker } from "bullmq";
import type { Project } from "../config/project.js";
import { CancelWatch } from "../queue/cancel.js";
import { connect, type QueueConfig, shownRedis } from "../queue/connection.js";
import { UNITS_QUEUE, type UnitJob, type UnitOutcome } from "../queue/jobs.js";
import {
  type ScheduleChanges,
  type ScheduledOutcome,
  scheduledPipelines,
  startSchedules,
} from "../queue/schedules.js";
import { UnitRunner } from "../queue/worker.js";
import { databaseUrlSecrets } from "../shared/secrets.js";
import { runCommand } from "./cmd-run.js";
import { projectFor } from "./context.js";
import { CliError, type CliIO, EXIT, StillRunningError } from "./io.js";
import { projectQueue } from "./queue-run.js";

/** Milliseconds from an env setting (tests shorten BullMQ's stalled-job detection), else `fallback`. */
function msFrom(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const n = Number(env[name]);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/**
 * At most this many BullMQ workers per process (each with its own fetch loop and blocking
 * connection). Measured on the queue bench's burst (200 jobs, 4 processes of concurrency 64,
 * alternating runs): enqueue → start median 19 ms with 1 (14 runs), 16 with 4 (9), 12 with 8 (9).
 */
export const MAX_LANES = 8;

/**
 * The concurrency of each BullMQ worker a `pipelines worker` process runs: `concurrency` split in
 * up to MAX_LANES parts. BullMQ's worker fetches jobs one Redis round trip at a time and starts
 * none before its fetches end (bullmq 6.7 Worker.mainLoop), so a burst of jobs waits for one
 * worker's round trips in turn; several workers fetch side by side.
 */
export function lanes(jobs: number): number[] {
  const concurrency = Math.max(1, jobs);
  const n = Math.min(MAX_LANES, concurrency);
  return Array.from({ length: n }, (_, i) => Math.floor(concurrency / n) + (i < concurrency % n ? 1 : 0));
}

/**
 * `pipelines worker`: takes request sequences of queue runs from Redis until Ctrl-C; a job of a
 * worker that died is taken over by another one once its lock expires (BullMQ stalled jobs).
 */
export async function workerCommand(
  io: CliIO,
  opts: { concurrency: number; schedules?: boolean },
): Promise<number> {
  const project = await projectFor(io);
  const cfg = await projectQueue(
    io,
    project,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own `${env.…}` syntax, shown to the user
    "no queue configured: add `queue: { redis: ${env.REDIS_URL} }` to pipelines.config.yaml",
  );
  const budgets = connect(cfg);
  const runner = new UnitRunner(project, io.env, databaseUrlSecrets(cfg.url), {
    redis: budgets,
    prefix: cfg.prefix,
  });
  const lockDuration = msFrom(io.env, "PIPELINES_WORKER_LOCK_MS", 30_000);
  const connection = connect(cfg);
  const subscriber = connect(cfg);
  subscriber.on("error", () => {});
  const cancels = await CancelWatch.start(
    subscriber,
    budgets,
    cfg.prefix,
    (runId, n) =>
      io.stderr.write(`worker ${runner.id}: run ${runId} was cancelled: stopping its ${n} running job(s)\n`),
    (runId) =>
      io.stderr.write(
        `worker ${runner.id}: run ${runId} is no longer going (its submitter is gone): its queued jobs are dropped\n`,
      ),
  );
  // A job this worker no longer holds (it stalled past its lock): BullMQ will refuse its outcome.
  const handle = (job: Job<UnitJob, UnitOutcome>, token?: string) => {
    const held = token ? async () => (await job.extendLock(token, lockDuration)) === 1 : undefined;
    return cancels.run(job.data.runId, job.data.pipeline, (signal) => runner.process(job.data, signal, held));
  };
  await runner.warm();
  const redactor = cfg.redactor;
  // Every lane sees the shared connection's errors (and its own): each message is said once a second.
  const said = new Map<string, number>();
  const sayError = (err: Error) => {
    const text = `worker: ${redactor.text(err.message)}\n`;
    const now = performance.now();
    if (now - (said.get(text) ?? -Infinity) < 1000) return;
    if (said.size >= 100) said.clear();
    said.set(text, now);
    io.stderr.write(text);
  };
  const options = {
    connection,
    prefix: cfg.prefix,
    name: runner.id,
    lockDuration,
    stalledInterval: msFrom(io.env, "PIPELINES_WORKER_STALLED_MS", lockDuration),
    maxStalledCount: 5,
  };
  const workers = lanes(opts.concurrency).map((concurrency) => {
    const worker = new Worker<UnitJob, UnitOutcome>(UNITS_QUEUE, handle, { ...options, concurrency });
    worker.on("error", sayError);
    return worker;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const schedules = opts.schedules ? await startScheduled(io, project, cfg) : null;
  io.stderr.write(
    `worker ${runner.id}: taking jobs from the ${shownRedis(cfg)} (concurrency ${opts.concurrency}); Ctrl-C to stop\n`,
  );
  await new Promise<void>((resolve) => {
    if (!io.signal || io.signal.aborted) return resolve();
    io.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  io.stderr.write(
    `worker ${runner.id}: taking no more jobs; stopping after its running ones (again to quit at once: another worker then takes them over once their lock expires)\n`,
  );
  await schedules?.close();
  await Promise.all(workers.map((w) => w.close()));
  await runner.close();
  connection.disconnect();
  subscriber.disconnect();
  budgets.disconnect();
  return EXIT.ok;
}

/**
 * `--schedules`: the project's pipelines that have a `schedule` run as `run --queue` here, once
 * per due time. The schedules in Redis follow the files: synced at start and every
 * `PIPELINES_SCHEDULES_REFRESH_MS` (default 60 s), a deleted file or a removed `schedule` removes it.
 */
async function startScheduled(
  io: CliIO,
  project: Project,
  cfg: QueueConfig,
): Promise<{ close(): Promise<void> }> {
  let warned = new Set<string>();
  const read = () => {
    const now = new Set<string>();
    const found = scheduledPipelines(project, io.env, (m) => now.add(m));
    // Said once, not at every refresh.
    for (const m of now) if (!warned.has(m)) io.stderr.write(`schedules: ${m}\n`);
    warned = now;
    return found;
  };
  const say = (changes: ScheduleChanges) => {
    for (const s of changes.set) io.stderr.write(`schedules: ${s.pipeline} at \`${s.cron}\` (UTC)\n`);
    for (const name of changes.removed)
      io.stderr.write(`schedules: ${name} removed (its file is gone or has no \`schedule\`)\n`);
  };
  const conns = { queue: connect(cfg), worker: connect(cfg) };
  const first = read();
  const started = await startSchedules(conns, cfg.prefix, first, (pipeline) => runScheduled(io, pipeline));
  // At start every schedule is said; at a refresh, what changed.
  say({ set: first.list, removed: started.changes.removed });
  const every = msFrom(io.env, "PIPELINES_SCHEDULES_REFRESH_MS", 60_000);
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let refreshing: Promise<void> = Promise.resolve();
  const refresh = async () => {
    try {
      say(await started.refresh(read()));
    } catch (err) {
      io.stderr.write(`schedules: refresh failed: ${cfg.redactor.text((err as Error).message)}\n`);
    }
    if (!closed) timer = setTimeout(() => (refreshing = refresh()), every);
  };
  timer = setTimeout(() => (refreshing = refresh()), every);
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await refreshing;
      await started.close();
      conns.queue.disconnect();
      conns.worker.disconnect();
    },
  };
}

/** One scheduled run; a run of the pipeline still going (its lock held) makes this one skipped. */
async function runScheduled(io: CliIO, pipeline: string): Promise<ScheduledOutcome> {
  const tag = `[schedule ${pipeline}] `;
  const prefixed = { write: (text: string) => io.stderr.write(text.replace(/^(?=.)/gm, tag)) };
  const runIo: CliIO = { ...io, stdout: prefixed, stderr: prefixed };
  io.stderr.write(`${tag}due: starting a queue run\n`);
  try {
    const code = await runCommand(runIo, [pipeline], { queue: true });
    return { pipeline, code, skipped: null };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof StillRunningError) {
      io.stderr.write(`${tag}skipped: the previous run is still going (${message})\n`);
      return { pipeline, code: null, skipped: message };
    }
    io.stderr.write(`${tag}failed: ${message}\n`);
    return { pipeline, code: err instanceof CliError ? err.exitCode : EXIT.runFailed, skipped: null };
  }
}
