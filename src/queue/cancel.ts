import type { Redis } from "ioredis";
import { lockKey } from "./redis-lock.js";

/**
 * Ctrl-C of `run --queue`: the submitter marks its run cancelled in Redis (a key, so a job that
 * a worker takes later is refused at once) and publishes it (so the workers running a job of
 * that run stop it before its next page). Nothing of the run is committed after the signal:
 * the submitter, which alone commits, has stopped reading the jobs' records.
 */
const cancelKey = (prefix: string, runId: string) => `${prefix}:cancel:${runId}`;
const channel = (prefix: string) => `${prefix}:cancel`;
/** A cancelled run's mark outlives any job of it that is still queued somewhere. */
const MARK_MS = 24 * 3600 * 1000;

export async function cancelRun(redis: Redis, prefix: string, runId: string): Promise<void> {
  await redis
    .multi()
    .set(cancelKey(prefix, runId), "1", "PX", MARK_MS)
    .publish(channel(prefix), runId)
    .exec();
}

/** A worker's running jobs by run, each with the controller that stops it. */
export class CancelWatch {
  private readonly running = new Map<string, Set<AbortController>>();
  /** The last runs found without their submitter (each said once). */
  private readonly gone: string[] = [];

  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly said: (runId: string, jobs: number) => void,
    private readonly saidGone: (runId: string) => void,
  ) {}

  /** Listens on `subscriber` (a connection of its own: a subscribed connection takes no commands). */
  static async start(
    subscriber: Redis,
    redis: Redis,
    prefix: string,
    said: (runId: string, jobs: number) => void,
    saidGone: (runId: string) => void,
  ): Promise<CancelWatch> {
    const watch = new CancelWatch(redis, prefix, said, saidGone);
    subscriber.on("message", (_channel: string, runId: string) => watch.stop(runId));
    await subscriber.subscribe(channel(prefix));
    return watch;
  }

  private stop(runId: string): void {
    const jobs = this.running.get(runId);
    if (!jobs?.size) return;
    for (const c of jobs) c.abort(new Error("the run was cancelled"));
    this.said(runId, jobs.size);
  }

  /**
   * Why the job's run no longer goes, or null: cancelled, or its submitter gone. A submitter
   * holds the pipeline's lock with its run id while it runs; one killed without a Ctrl-C loses
   * it within 30 s, and the jobs it left queued are then dropped, not fetched for no one.
   */
  private async stopped(runId: string, pipeline: string): Promise<string | null> {
    const replies =
      (await this.redis
        .pipeline()
        .exists(cancelKey(this.prefix, runId))
        .get(lockKey(this.prefix, pipeline))
        .exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    const [cancelled, holder] = replies.map(([, value]) => value);
    if (cancelled) return "the run was cancelled";
    if (holder === runId) return null;
    if (!this.gone.includes(runId)) {
      this.gone.push(runId);
      if (this.gone.length > 16) this.gone.shift();
      this.saidGone(runId);
    }
    return "the run is no longer going: its submitter is gone";
  }

  /** Runs one job of `runId` with a signal that stops it when the run is cancelled (or already was, or its submitter is gone). */
  async run<T>(runId: string, pipeline: string, job: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let jobs = this.running.get(runId);
    if (!jobs) this.running.set(runId, (jobs = new Set()));
    jobs.add(controller);
    try {
      const stopped = await this.stopped(runId, pipeline);
      if (stopped) controller.abort(new Error(stopped));
      return await job(controller.signal);
    } finally {
      jobs.delete(controller);
      if (!jobs.size) this.running.delete(runId);
    }
  }
}
