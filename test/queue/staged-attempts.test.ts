/**
 * Two attempts of one unit (a worker that stalled past its BullMQ lock, and the worker that took
 * the job over and completed it): the submitter reads exactly the winner's key, so the late one
 * finishing mid-read changes nothing (it used to RENAME its list onto the unit's key, and the
 * reader started over on it: 29,501 rows read for 20,000 staged). A row count that does not match
 * the outcome's (a key evicted under maxmemory, a list changed) fails the unit with a clear error.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { readStaged, StagedWriter, stagedKey } from "../../src/queue/staging.js";
import type { Row } from "../../src/records/shape.js";
import { RunError } from "../../src/shared/errors.js";
import { redisUrl } from "./helpers.js";

const PREFIX = "t-attempts";
let redis: Redis;

beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(() => redis.disconnect());

async function stage(w: StagedWriter, n: number): Promise<void> {
  // About 4 MB: many chunks, read in several rounds.
  for (let i = 0; i < n; i++) await w.write({ id: i, text: `${"x".repeat(200)} ${i}` });
}

it("a late attempt finishing while the submitter reads the winner's rows: every row exactly once, in order", async () => {
  const unit = stagedKey(PREFIX, "late", 0);
  const late = new StagedWriter(redis, unit, "host-a:1");
  const winner = new StagedWriter(redis, unit, "host-b:2");
  await stage(late, 20_000);
  await stage(winner, 20_000);
  // The winner's outcome is what BullMQ records; the stalled worker is still at work.
  await winner.finish();
  const ids: number[] = [];
  let lateFinished = false;
  const write = (row: Row) => {
    ids.push(row.id as number);
    if (ids.length !== 1000) return undefined;
    return late.finish().then(() => {
      lateFinished = true;
    });
  };
  await readStaged(redis, winner.key, write, winner.rows);
  expect(lateFinished).toBe(true);
  expect(ids.length).toBe(20_000);
  expect(ids).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
  expect(await redis.exists(winner.key)).toBe(0);
  // The loser's rows were never read: its key expires (its worker also deletes it, worker.ts).
  expect(late.key).not.toBe(winner.key);
  expect(await redis.pttl(late.key)).toBeGreaterThan(0);
  await redis.del(late.key);
}, 60_000);

it("a unit of one chunk is staged under the attempt's key in one push and read whole", async () => {
  const w = new StagedWriter(redis, stagedKey(PREFIX, "one", 0), "host:1");
  for (let i = 0; i < 3; i++) await w.write({ id: i });
  await w.finish();
  expect(await redis.llen(w.key)).toBe(1);
  const ids: unknown[] = [];
  await readStaged(redis, w.key, (r) => void ids.push(r.id), w.rows);
  expect(ids).toEqual([0, 1, 2]);
});

async function failure(p: Promise<void>): Promise<RunError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RunError);
  return err as RunError;
}

it("a staged key gone (evicted under maxmemory) fails the unit instead of reading as no records", async () => {
  const w = new StagedWriter(redis, stagedKey(PREFIX, "evicted", 0), "host:1");
  await stage(w, 10);
  await w.finish();
  await redis.del(w.key);
  const written: Row[] = [];
  const err = await failure(readStaged(redis, w.key, (r) => void written.push(r), w.rows));
  expect(err.kind).toBe("queue");
  expect(err.message).toContain("staged 10 records");
  expect(err.message).toContain("only 0 were read back");
  expect(written).toEqual([]);
});

it("more rows than the outcome says fail the unit before the extra one is written", async () => {
  const w = new StagedWriter(redis, stagedKey(PREFIX, "extra", 0), "host:1");
  await stage(w, 3);
  await w.finish();
  await redis.rpush(w.key, '{"id":99}\n');
  const written: Row[] = [];
  const err = await failure(readStaged(redis, w.key, (r) => void written.push(r), w.rows));
  expect(err.kind).toBe("queue");
  expect(err.message).toContain("staged 3 records");
  expect(written.map((r) => r.id)).toEqual([0, 1, 2]);
  expect(await redis.exists(w.key)).toBe(0);
});

it("a unit of no records stages nothing and reads as none", async () => {
  const w = new StagedWriter(redis, stagedKey(PREFIX, "empty", 0), "host:1");
  await w.finish();
  expect(await redis.exists(w.key)).toBe(0);
  let n = 0;
  await readStaged(redis, w.key, () => void n++, w.rows);
  expect(n).toBe(0);
});
