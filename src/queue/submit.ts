import { setMaxListeners } from "node:events";
import { type Job, type JobType, Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import type { ExecutionPlan, StreamPlan } from "../compile/plan.js";
import type { StopReason } from "../http/paginators/paginator.js";
import type { Row } from "../records/shape.js";
import type { Unit } from "../run/partition-source.js";
import type { RemotePull, StreamRunOptions } from "../run/stream-options.js";
import type { StreamResult } from "../run/stream-result.js";
import { interrupted, RunError } from "../shared/errors.js";
import { stringifyJson } from "../shared/json-text.js";
import { sleep, untilAbort } from "../shared/sleep.js";
import { VERSION } from "../shared/version.js";
import { cancelRun } from "./cancel.js";
import { connect, lostAfterMs, type QueueConfig, shownRedis } from "./connection.js";
import { UNITS_QUEUE, type UnitJob, type UnitOutcome } from "./jobs.js";
import { mergeOutcome } from "./merge-stats.js";
import { dropStaged, readStaged, stagedKey } from "./staging.js";

/** Units a queue run keeps in the queue at once (the workers take them as they can). */
const IN_FLIGHT = 256;

/**
 * The submitter's side of `run --queue`: each request sequence becomes a job; a worker fetches
 * and shapes its records into a staged list in Redis (staging.ts); this process reads it back in
 * unit order, so validation, writing, checkpoints and state stay exactly as in a local run.
 */
export class QueueSubmitter implements RemotePull {
  readonly slots = IN_FLIGHT;
  private seq = 0;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly prefix: string;
  private readonly connections: Redis[];
  /** Rejects every wait once Redis has been unreachable for `LOST_AFTER_MS` (see watchLoss). */
  private lost: Promise<never>;

  constructor(
    cfg: QueueConfig,
    private readonly plan: ExecutionPlan,
    private readonly run: { runId: string; fileHash: string },
    private readonly signal?: AbortSignal,
  ) {
    // BullMQ never closes a connection it was given: close() ends both.
    this.connections = [connect(cfg), connect(cfg)];
    this.queue = new Queue(UNITS_QUEUE, { connection: this.connections[0], prefix: cfg.prefix });
    this.events = new QueueEvents(UNITS_QUEUE, { connection: this.connections[1], prefix: cfg.prefix });
    this.events.setMaxListeners(0);
    this.queue.setMaxListeners(0);
    if (signal) setMaxListeners(0, signal);
    this.queue.on("error", () => {});
    this.events.on("error", () => {});
    this.prefix = cfg.prefix;
    this.lost = watchLoss(this.connections, cfg);
    this.lost.catch(() => {});
  }

  async ready(): Promise<void> {
    await Promise.all([this.queue.waitUntilReady(), this.events.waitUntilReady()]);
  }

  /** Whether a `pipelines worker` takes jobs from this queue now (unsure: true). */
  async hasWorkers(): Promise<boolean> {
    return (await this.queue.getWorkersCount().catch(() => 1)) > 0;
  }

  async pull(
    opts: StreamRunOptions,
    stream: StreamPlan,
    unit: Unit | null,
    since: string | number | null,
    write: (row: Row) => Promise<void> | undefined,
    result: StreamResult,
  ): Promise<StopReason> {
    const n = this.seq++;
    const staged = stagedKey(this.prefix, this.run.runId, n);
    const data: UnitJob = {
      pipeline: this.plan.pipeline,
      fileHash: this.run.fileHash,
      version: VERSION,
      runId: this.run.runId,
      runStartedAt: opts.runStartedAt ?? new Date().toISOString(),
      stream: stream.name,
      unit: unit
        ? { label: unit.label, parent: unit.parent ? stringifyJson(unit.parent) : null, window: unit.window }
        : null,
      since,
      maxPages: opts.maxPages,
      staged,
    };
    const outcome = await this.wait(async () => {
      const job = await this.queue.add(stream.name, data, {
        jobId: `${this.run.runId}-${n}`,
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 24 * 3600 },
      });
      return (await job.waitUntilFinished(this.events)) as UnitOutcome;
    });
    if (outcome.error) {
      // What the failed pull did counts, as in a local run (its records are not read).
      mergeOutcome(result, outcome);
      throw new RunError(outcome.error.kind, outcome.error.message, outcome.error.details);
    }
    // Exactly the key of the attempt BullMQ recorded as completing the job, and its row count.
    if (outcome.rows > 0 && !outcome.staged)
      throw new RunError("queue", `worker ${outcome.worker} staged ${outcome.rows} records under no key`);
    if (outcome.staged) await readStaged(this.connections[0], outcome.staged, write, outcome.rows);
    mergeOutcome(result, outcome);
    return outcome.stop ?? { code: "single_page", message: "done" };
  }

  /** Enqueues and waits, unless the run is interrupted or Redis is lost first. */
  private async wait(finished: () => Promise<UnitOutcome>): Promise<UnitOutcome> {
    const signal = this.signal;
    if (!signal) return Promise.race([finished(), this.lost]);
    // Interrupted: no new job is queued.
    if (signal.aborted) throw interrupted();
    return untilAbort(Promise.race([finished(), this.lost]), signal);
  }

  /** This run's jobs in `states`. */
  private async jobsOfRun(states: JobType[]): Promise<Job[]> {
    const jobs = await this.queue.getJobs(states);
    return jobs.filter((j) => j.id?.startsWith(`${this.run.runId}-`));
  }

  /**
   * Ctrl-C: the run is marked cancelled (cancel.ts), its queued jobs are removed, and its running
   * ones are told to stop; this waits (at most `PIPELINES_QUEUE_LOST_MS`) until none runs.
   */
  async cancel(): Promise<void> {
    await cancelRun(this.connections[0], this.prefix, this.run.runId);
    const waiting = await this.jobsOfRun(["waiting", "delayed", "prioritized"]);
    await Promise.all(waiting.map((j) => j.remove().catch(() => {})));
    const deadline = Date.now() + lostAfterMs();
    while ((await this.jobsOfRun(["active"])).length > 0 && Date.now() < deadline) await sleep(100);
  }

  async close(): Promise<void> {
    const reachable = this.connections.every((c) => c.status === "ready");
    if (this.signal?.aborted && reachable) await this.cancel().catch(() => {});
    if (reachable) await dropStaged(this.connections[0], this.prefix, this.run.runId).catch(() => {});
    if (!reachable) for (const c of this.connections) c.disconnect();
    // Never wait on a lost Redis here.
    const closed = Promise.allSettled([this.queue.close(), this.events.close()]);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const c of this.connections) c.disconnect();
  }
}

/**
 * Redis lost mid-run: ioredis reconnects on its own, but a run must not wait forever. After
 * `PIPELINES_QUEUE_LOST_MS` (default 15 s) without a connection, every wait fails: the stream
 * stops with a clear error, and only the units committed before stay committed.
 */
function watchLoss(connections: Redis[], cfg: QueueConfig): Promise<never> {
  const after = lostAfterMs();
  return new Promise<never>((_, reject) => {
    for (const c of connections) {
      let timer: NodeJS.Timeout | null = null;
      c.on("close", () => {
        if (c.status === "end" || timer) return;
        timer = setTimeout(
          () =>
            reject(
              new RunError(
                "queue",
                `lost the connection to the queue's ${shownRedis(cfg)} for ${after / 1000} s: the run stopped (units committed before stay committed)`,
              ),
            ),
          after,
        );
        timer.unref();
      });
      c.on("ready", () => {
        if (timer) clearTimeout(timer);
        timer = null;
      });
      c.on("error", () => {});
    }
  });
}
