/**
 * The reviewer's scenario through the submitter (QueueSubmitter.pull, a real BullMQ job): the job
 * is completed by the attempt that took it over, while the attempt that stalled is still at work
 * and finishes in the middle of the submitter's read. The submitter reads the winner's key named
 * in the outcome: every record once, in order. An outcome whose rows are not in Redis any more
 * (a key evicted) fails the unit with a `queue` error.
 */
import { type Job, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ExecutionPlan, StreamPlan } from "../../src/compile/plan.js";
import { UNITS_QUEUE, type UnitJob, type UnitOutcome } from "../../src/queue/jobs.js";
import { StagedWriter } from "../../src/queue/staging.js";
import { QueueSubmitter } from "../../src/queue/submit.js";
import type { Row } from "../../src/records/shape.js";
import type { StreamRunOptions } from "../../src/run/stream-options.js";
import { newStreamResult } from "../../src/run/stream-result.js";
import { RunError } from "../../src/shared/errors.js";
import { Redactor } from "../../src/shared/secrets.js";
import { redisUrl } from "./helpers.js";

const PREFIX = "t-submit-attempts";
const ROWS = 20_000;
let redis: Redis;
let worker: Worker<UnitJob, UnitOutcome>;
/** What the fake worker does with a job (the test sets it). */
let handler: (job: UnitJob) => Promise<UnitOutcome>;
let connection: Redis;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  connection = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  worker = new Worker<UnitJob, UnitOutcome>(UNITS_QUEUE, (job: Job<UnitJob>) => handler(job.data), {
    connection,
    prefix: PREFIX,
  });
  await worker.waitUntilReady();
});
afterAll(async () => {
  await worker.close();
  connection.disconnect();
  redis.disconnect();
});

const outcome = (w: StagedWriter): UnitOutcome => ({
  worker: "fake",
  stop: null,
  error: null,
  pages: 1,
  filtered: 0,
  rows: w.rows,
  staged: w.key,
  requests: null,
  suspicions: [],
});

async function stage(w: StagedWriter): Promise<void> {
  for (let i = 0; i < ROWS; i++) await w.write({ id: i, text: `${"x".repeat(200)} ${i}` });
}

function submitter(runId: string): QueueSubmitter {
  const cfg = { url: redisUrl(), prefix: PREFIX, redactor: new Redactor([]) };
  return new QueueSubmitter(cfg, { pipeline: "p" } as ExecutionPlan, { runId, fileHash: "x" });
}

const opts = { runStartedAt: new Date().toISOString(), maxPages: null } as StreamRunOptions;
const stream = { name: "items" } as StreamPlan;

it("a stalled attempt finishing late, while the submitter reads the winner's records: each once, in order", async () => {
  let late: StagedWriter | null = null;
  handler = async (job) => {
    late = new StagedWriter(redis, job.staged, "host-a:1");
    const winner = new StagedWriter(redis, job.staged, "host-b:2");
    await stage(late);
    await stage(winner);
    await winner.finish();
    return outcome(winner);
  };
  const s = submitter("late");
  try {
    await s.ready();
    const ids: number[] = [];
    const write = (row: Row) => {
      ids.push(row.id as number);
      return ids.length === 1000 ? late?.finish() : undefined;
    };
    await s.pull(opts, stream, null, null, write, newStreamResult("items"));
    expect(ids.length).toBe(ROWS);
    expect(ids).toEqual(Array.from({ length: ROWS }, (_, i) => i));
  } finally {
    await s.close();
  }
  // The run's leftovers (the late attempt's list) are gone with the submitter.
  expect(await redis.keys(`${PREFIX}:staged:*`)).toEqual([]);
}, 60_000);

it("an outcome whose records are gone from Redis (evicted) fails the unit with a queue error", async () => {
  handler = async (job) => {
    const w = new StagedWriter(redis, job.staged, "host:1");
    for (let i = 0; i < 5; i++) await w.write({ id: i });
    await w.finish();
    await redis.del(w.key);
    return outcome(w);
  };
  const s = submitter("evicted");
  try {
    await s.ready();
    let written = 0;
    const err = await s
      .pull(opts, stream, null, null, () => void written++, newStreamResult("items"))
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(RunError);
    expect((err as RunError).kind).toBe("queue");
    expect((err as RunError).message).toContain("staged 5 records");
    expect(written).toBe(0);
  } finally {
    await s.close();
  }
});
