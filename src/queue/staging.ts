import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Row } from "../records/shape.js";
import { parseJson, stringifyJson } from "../shared/json-text.js";

/**
 * A unit's shaped records travel from the worker to the submitter through Redis (no folder is
 * shared between machines): a list of text chunks of JSON lines under one key per unit. The
 * worker fills a key of its own attempt and renames it onto the unit's key only when its pull
 * ended, so a worker killed mid-job leaves nothing the submitter reads (its key expires).
 */

/** A chunk pushed at once: a few hundred records, one round trip. */
const CHUNK_CHARS = 256 * 1024;
/** Chunks read at once by the submitter. */
const READ_CHUNKS = 8;
/** Keys nobody read (a submitter that died) expire. */
const TTL_MS = 24 * 3600 * 1000;

/** The key of one unit of one run. */
export function stagedKey(prefix: string, runId: string, n: number): string {
  return `${prefix}:staged:${runId}:${n}`;
}

/** The worker's side: `write` every row, then `finish` (or `discard` on failure). */
export class StagedWriter {
  private readonly tmp: string;
  private chunk = "";
  private pushed = false;
  rows = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    attempt: string,
  ) {
    this.tmp = `${key}:tmp:${attempt}:${randomBytes(6).toString("hex")}`;
  }

  write(row: Row): Promise<void> | undefined {
    this.rows++;
    this.chunk += `${stringifyJson(row)}\n`;
    return this.chunk.length >= CHUNK_CHARS ? this.flush() : undefined;
  }

  private async flush(): Promise<void> {
    if (!this.chunk) return;
    const text = this.chunk;
    this.chunk = "";
    await this.redis.multi().rpush(this.tmp, text).pexpire(this.tmp, TTL_MS).exec();
    this.pushed = true;
  }

  /** Publishes the rows under the unit's key (replacing what an earlier attempt left). */
  async finish(): Promise<void> {
    if (this.pushed) {
      await this.flush();
      await this.redis.rename(this.tmp, this.key);
    } else if (this.chunk) {
      // Everything in one chunk: one atomic round trip, no key of its own needed.
      const text = this.chunk;
      this.chunk = "";
      await this.redis.multi().del(this.key).rpush(this.key, text).pexpire(this.key, TTL_MS).exec();
    } else await this.redis.del(this.key);
  }

  async discard(): Promise<void> {
    this.chunk = "";
    await this.redis.del(this.tmp);
  }
}

/** The submitter's side: every row of a unit, in order; the key is gone afterwards. */
export async function readStaged(
  redis: Redis,
  key: string,
  write: (row: Row) => Promise<void> | undefined,
): Promise<void> {
  let done = false;
  try {
    for (;;) {
      const chunks = await redis.lpop(key, READ_CHUNKS);
      // Fewer than asked: the list is empty now, and Redis removed the key.
      if (!chunks || chunks.length < READ_CHUNKS) done = true;
      for (const chunk of chunks ?? []) {
        let from = 0;
        for (let at = chunk.indexOf("\n"); at !== -1; at = chunk.indexOf("\n", from)) {
          if (at > from) {
            const p = write(parseJson(chunk.slice(from, at)) as Row);
            if (p) await p;
          }
          from = at + 1;
        }
      }
      if (done) return;
    }
  } finally {
    if (!done) await redis.del(key).catch(() => {});
  }
}

/** Removes what is left of a run's units (an interrupted run), attempts of workers included. */
export async function dropStaged(redis: Redis, prefix: string, runId: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:staged:${runId}:*`, "COUNT", 500);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== "0");
}
