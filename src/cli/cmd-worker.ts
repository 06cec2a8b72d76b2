import { Worker } from "bullmq";
import { readEnv } from "../config/load-pipeline.js";
import { checkReachable, connect, QueueConfigError, queueConfig, shownRedis } from "../queue/connection.js";
import { UNITS_QUEUE, type UnitJob, type UnitOutcome } from "../queue/jobs.js";
import { UnitRunner } from "../queue/worker.js";
import { databaseUrlSecrets } from "../shared/secrets.js";
import { projectFor } from "./context.js";
import { CliError, type CliIO, EXIT } from "./io.js";

/** Milliseconds from an env setting (tests shorten BullMQ's stalled-job detection), else `fallback`. */
function msFrom(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const n = Number(env[name]);
  return Number.isInteger(n) && n > 0 ? n : fallback;
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
  let cfg: ReturnType<typeof queueConfig>;
  try {
    cfg = queueConfig(project, readEnv(project, io.env));
    if (!cfg)
      throw new CliError(
        "no queue configured: add `queue: { redis: ${env.REDIS_URL} }` to pipelines.config.yaml",
        EXIT.config,
      );
    await checkReachable(cfg);
  } catch (err) {
    if (err instanceof QueueConfigError) throw new CliError(err.message, EXIT.runFailed);
    throw err;
  }
  const budgets = connect(cfg);
  const runner = new UnitRunner(project, io.env, databaseUrlSecrets(cfg.url), {
    redis: budgets,
    prefix: cfg.prefix,
  });
  const lockDuration = msFrom(io.env, "PIPELINES_WORKER_LOCK_MS", 30_000);
  const connection = connect(cfg);
  const worker = new Worker<UnitJob, UnitOutcome>(UNITS_QUEUE, (job) => runner.process(job.data), {
    connection,
    prefix: cfg.prefix,
    concurrency: opts.concurrency,
    name: runner.id,
    lockDuration,
    stalledInterval: msFrom(io.env, "PIPELINES_WORKER_STALLED_MS", lockDuration),
    maxStalledCount: 5,
  });
  const redactor = cfg.redactor;
  worker.on("error", (err) => io.stderr.write(`worker: ${redactor.text(err.message)}\n`));
  await worker.waitUntilReady();
  io.stderr.write(
    `worker ${runner.id}: taking jobs from the ${shownRedis(cfg)} (concurrency ${opts.concurrency}); Ctrl-C to stop\n`,
  );
  await new Promise<void>((resolve) => {
    if (!io.signal || io.signal.aborted) return resolve();
    io.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  io.stderr.write(`worker ${runner.id}: stopping after its running jobs\n`);
  await worker.close();
  await runner.close();
  connection.disconnect();
  budgets.disconnect();
  return EXIT.ok;
}
