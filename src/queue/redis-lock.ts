import type { Redis } from "ioredis";

/** Deletes the lock only when it still holds this holder's id. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Extends the lock only when it still holds this holder's id. */
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

const TTL_MS = 30_000;

export class QueueLockedError extends Error {}

/**
 * Holds `key` in Redis with the value `id` (SET NX), kept alive every third of `ttlMs` while held
 * (a holder that dies frees it within `ttlMs`); null when another holds it. Release deletes it
 * only while it still holds `id`, and never waits on a Redis that is gone more than 2 s.
 */
export async function holdKey(
  redis: Redis,
  key: string,
  id: string,
  ttlMs: number,
): Promise<{ release(): Promise<void> } | null> {
  if ((await redis.set(key, id, "PX", ttlMs, "NX")) !== "OK") return null;
  const timer = setInterval(() => {
    redis.eval(EXTEND, 1, key, id, String(ttlMs)).catch(() => {});
  }, ttlMs / 3);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      // Redis gone: the key expires by itself (TTL); never wait on it here.
      const released = redis.eval(RELEASE, 1, key, id).catch(() => {});
      await Promise.race([released, new Promise((r) => setTimeout(r, 2000).unref())]);
    },
  };
}

/** The key of a pipeline's run lock (it holds the run id while the run goes). */
export const lockKey = (prefix: string, pipeline: string): string => `${prefix}:lock:${pipeline}`;

/**
 * One queue run of a pipeline at a time, on any machine: a key in Redis holding the run id,
 * kept alive while the run goes (a submitter that dies frees it within 30 s).
 */
export async function lockInRedis(
  redis: Redis,
  prefix: string,
  pipeline: string,
  runId: string,
): Promise<{ release(): Promise<void> }> {
  const key = lockKey(prefix, pipeline);
  const held = await holdKey(redis, key, runId, TTL_MS);
  if (held) return held;
  const holder = await redis.get(key);
  throw new QueueLockedError(
    `pipeline \`${pipeline}\` is already running${holder ? ` (run ${holder})` : ""} on the queue; wait for it to end`,
  );
}
