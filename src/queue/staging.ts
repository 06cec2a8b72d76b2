import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { parseJson, stringifyJson } from "../shared/json-text.js";

/**
 * A unit's shaped records travel from the worker to the submitter through Redis (no folder is
 * shared between machines): a list of text chunks of JSON lines. Every attempt of a unit stages
 * under a key of its own (worker id + random suffix), never renamed onto a shared key: the job's
 * outcome (recorded by BullMQ for the one attempt that completed it) names that key and its row
 * count, and the submitter reads exactly that key and checks the count. A stalled worker that
 * finishes late (its job taken over) thus never touches what the submitter reads, and a worker
 * killed mid-job leaves a key nobody reads (it expires).
 */

/** A chunk pushed at once: a few hundred records, one round trip. */
const CHUNK_CHARS = 256 * 1024;
/** Chunks read at once by the submitter. */
const READ_CHUNKS = 8;
/** Keys nobody read (a submitter that died, an attempt that lost its job) expire. */
const TTL_MS = 24 * 3600 * 1000;

/** The key of one unit of one run: the attempts' keys start with it. */
export function stagedKey(prefix: string, runId: string, n: number): string {
  return `${prefix}:staged:${runId}:${n}`;
}

/** One attempt's side: `write` every row, then `finish` (or `discard` on failure). */
export class StagedWriter {
  /** This attempt's own key, named in the job's outcome. */
  readonly key: string;
  private chunk = "";
  rows = 0;

  constructor(
    private readonly redis: Redis,
    unitKey: string,
    attempt: string,
  ) {
    this.key = `${unitKey}:${attempt}:${randomBytes(6).toString("hex")}`;
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
    await this.redis.multi().rpush(this.key, text).pexpire(this.key, TTL_MS).exec();
  }

  /** Pushes the last chunk (a unit of one chunk: its only round trip). */
  async finish(): Promise<void> {
    await this.flush();
  }

  async discard(): Promise<void> {
    this.chunk = "";
    await this.redis.del(this.key);
  }
}

/**
 * The submitter's side: every row staged under `key`, in order; the key is gone afterwards.
 * Fails (RunError `queue`) unless exactly `rows` rows were read: a key evicted or expired
 * (Redis under `maxmemory`) or changed never passes for a unit with fewer or more records.
 */
export async function readStaged(
  redis: Redis,
  key: string,
  write: (row: Row) => Promise<void> | undefined,
  rows: number,
): Promise<void> {
  let done = false;
  let read = 0;
  try {
    for (;;) {
      const chunks = await redis.lpop(key, READ_CHUNKS);
      // Fewer than asked: the list is empty now, and Redis removed the key.
      if (!chunks || chunks.length < READ_CHUNKS) done = true;
      for (const chunk of chunks ?? []) {
        let from = 0;
        for (let at = chunk.indexOf("\n"); at !== -1; at = chunk.indexOf("\n", from)) {
          if (at > from) {
            if (++read > rows) throw mismatch(key, rows, "more");
            const p = write(parseJson(chunk.slice(from, at)) as Row);
            if (p) await p;
          }
          from = at + 1;
        }
      }
      if (done) break;
    }
  } finally {
    if (!done) await redis.del(key).catch(() => {});
  }
  if (read !== rows) throw mismatch(key, rows, `only ${read}`);
}

function mismatch(key: string, rows: number, read: string): RunError {
  return new RunError(
    "queue",
    `the worker staged ${rows} records for this unit in Redis but ${read} were read back from \`${key}\` (evicted or expired under maxmemory, or changed): the unit failed`,
    { key, staged: rows },
  );
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
