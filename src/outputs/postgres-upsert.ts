import type { Key } from "./merge.js";
import { type CommitScope, ensurePrimaryKey, upsertStatements } from "./postgres-commit.js";
import type { TableLoad } from "./postgres-copy.js";

/**
 * `merge` into a table that exists, streamed: the run opens ONE transaction when the writer
 * opens, and every `upsertRows()` records the staging table is upserted into the target and
 * emptied — while the next records are still being fetched: the upsert is sent without waiting
 * for it (the server works on it in its own process, on another core), and the next batch's COPY
 * text is kept (up to {@link COPY_AHEAD} characters) until the connection is free again. The
 * commit upserts the last batch, writes `<table>__invalid` and the state, and commits; a failed
 * or killed run (or a failed quality gate: the writer is aborted) rolls the whole transaction
 * back, so the previous table stays exactly as it was.
 *
 * Duplicate keys keep the last record: across batches the later upsert wins; within a batch the
 * older rows are deleted from the staging table first (only when the batch has one).
 *
 * Locks, held until the commit (i.e. during the fetch): ROW EXCLUSIVE on the target (readers
 * are not blocked and see the previous rows; DDL waits), and a row lock on every row upserted (a
 * concurrent writer of the same keys waits). A run that adds a column, or the primary key of a
 * table that has none, takes an ACCESS EXCLUSIVE lock at its first batch: then readers of the
 * target wait until the commit too.
 */
export class StreamedMerge {
  /** Rows in the staging table not yet sent. */
  rows = 0;
  /** Batches sent; a key seen in the current batch before is a duplicate within it. */
  batch = 0;
  dupInBatch = false;
  private pending: Promise<void> | null = null;
  private error: unknown = null;

  constructor(
    private readonly s: CommitScope,
    private readonly load: TableLoad,
    private readonly pk: string[],
  ) {}

  /**
   * Sends the staged batch (after `endCopy` ended its COPY) without waiting for the server. The
   * first batch also sends nothing-but-checks when empty: the target's primary key, its columns.
   */
  async send(endCopy: () => Promise<void>): Promise<void> {
    await this.settle();
    await endCopy();
    if (!this.rows && this.batch > 0) return;
    const sql = await this.statements();
    this.rows = 0;
    this.dupInBatch = false;
    this.batch++;
    this.pending = this.s.client.query(sql).then(
      () => {},
      (err: unknown) => {
        this.error ??= err;
      },
    );
  }

  /** Waits for the upsert in flight; throws its error. */
  async settle(): Promise<void> {
    const p = this.pending;
    this.pending = null;
    if (p) await p;
    if (this.error) throw this.error;
  }

  /** The upsert's error when one failed (later statements then fail for that reason), else `err`. */
  cause(err: unknown): unknown {
    return this.error ?? err;
  }

  private async statements(): Promise<string> {
    const first = this.batch === 0;
    // Awaited: DDL on the target (new columns; the primary key on the first batch) is rare.
    if (first) await ensurePrimaryKey(this.s, this.load, this.pk);
    const sql = await upsertStatements(this.s, this.load, this.pk, this.dupInBatch);
    return `${sql}; TRUNCATE ${this.load.q(this.load.staging)}`;
  }
}

/** Records per upsert of a streamed merge; `PIPELINES_PG_UPSERT_ROWS=0`: one upsert at the commit. */
export function upsertRows(): number {
  const env = process.env.PIPELINES_PG_UPSERT_ROWS;
  const n = env === undefined || env === "" ? Number.NaN : Number(env);
  return Number.isInteger(n) && n >= 0 ? n : UPSERT_ROWS;
}

const UPSERT_ROWS = 10_000;

/** COPY text (characters) a streamed merge keeps while an upsert runs on the connection. */
export const COPY_AHEAD = 2 * 1024 * 1024;

/** The run's primary keys: duplicates counted, and noted when within a streamed merge's batch. */
export class RunKeys {
  private readonly seen = new Set<Key>();
  /** A streamed merge's keys of the current batch (`batch` is the batch they belong to). */
  private readonly inBatch = new Set<Key>();
  private batch = 0;
  dups = 0;

  note(key: Key, streamed: StreamedMerge | null): void {
    if (this.seen.has(key)) this.dups++;
    else this.seen.add(key);
    if (!streamed) return;
    if (streamed.batch !== this.batch) {
      this.inBatch.clear();
      this.batch = streamed.batch;
    }
    if (this.inBatch.has(key)) streamed.dupInBatch = true;
    else this.inBatch.add(key);
  }
}
