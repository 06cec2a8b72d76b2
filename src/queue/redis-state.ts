import type { Redis } from "ioredis";
import { checkState, type PipelineState, StateFileError, StateStore } from "../state/state-store.js";

/** Saved state in Redis that cannot be used (never quoted: it may hold a refresh token). */
export class RedisStateError extends StateFileError {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`redis key ${key}`, problem);
    this.message = `the saved state in Redis (key ${key}) ${problem}`;
  }
}

/**
 * A pipeline's saved state (cursors, partition positions, committed file lengths; never a
 * refresh token, which the sealed token share keeps) kept in Redis when the project has a queue: every machine that runs the
 * pipeline — `run`, `run --queue`, a scheduled run on any worker — starts from the same
 * positions. The first time, when Redis has none, the state folder's file is read (a project
 * that adds a queue keeps its positions); from then on the state folder's file is left alone.
 * Updates are serialized like the file's; the run lock in Redis keeps other writers away.
 */
export class RedisStateStore extends StateStore {
  readonly key: string;

  constructor(
    stateDir: string,
    pipeline: string,
    private readonly redis: Redis,
    prefix: string,
  ) {
    super(stateDir, pipeline);
    this.key = `${prefix}:state:${pipeline}`;
  }

  override async read(): Promise<PipelineState> {
    const text = await this.redis.get(this.key);
    if (text === null) return super.read();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new RedisStateError(this.key, "is not valid JSON");
    }
    const problem = checkState(parsed);
    if (problem) throw new RedisStateError(this.key, `has an unexpected shape: ${problem}`);
    return { version: 1, ...(parsed as Partial<PipelineState>) };
  }

  /** Updates are serialized as the file's (StateStore.update); they go to the key. */
  protected override async store(updated: PipelineState): Promise<void> {
    // A refresh token never goes to Redis in clear: the sealed token share keeps it
    // (redis-tokens.ts; seedTokenShare hands it over from a state file that had one).
    const { auth: _secret, ...stored } = updated;
    await this.redis.set(this.key, JSON.stringify(stored));
  }
}
