import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import { type Key, keyFunction } from "./merge.js";
import {
  appendStatements,
  type CommitScope,
  ensurePrimaryKey,
  hasPrimaryKey,
  hasUniqueIndex,
  missingTargetColumns,
  upsertStatements,
} from "./postgres-commit.js";
import type { TableLoad } from "./postgres-copy.js";

/**
 * The streamed load, when the run merges or appends into a table that exists (without
 * `nested: tables`; append: a table without a primary key or unique index, whose conflicts the
 * commit resolves; with a `primary_key`, only with metadata columns, by which the commit finds
 * the rows the run inserted) on a server that does not limit how long a transaction lasts or
 * idles: opens the transaction it runs in. Null: the commit loads the staging table.
 */
export async function openStreamed(
  s: CommitScope,
  load: TableLoad,
  mode: OutputPlan["mode"],
  pk: string[] | null,
  nested: boolean,
): Promise<StreamedMerge | null> {
  const batch = upsertRows();
  if (batch <= 0 || nested || !load.targetColumns || mode === "replace") return null;
  if (mode === "append" && ((pk && !load.meta) || (await hasUniqueIndex(s, load)))) return null;
  if (await limitsTransactions(s)) return null;
  // The staging table, every statement and the commit: one transaction.
  await s.client.query("BEGIN");
  return new StreamedMerge(s, load, pk, batch, mode);
}

/**
 * Whether the session has a timeout that would end a streamed load's transaction, idle while the
 * next records are fetched: `idle_in_transaction_session_timeout`, or `transaction_timeout`
 * (PostgreSQL 17). The database's or role's setting is kept: such a run is not streamed.
 */
async function limitsTransactions(s: CommitScope): Promise<boolean> {
  const r = await s.client.query(
    "SELECT 1 FROM pg_settings WHERE name IN ('idle_in_transaction_session_timeout', 'transaction_timeout') AND setting <> '0'",
  );
  return r.rows.length > 0;
}

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
 * concurrent writer of the same keys waits). A batch that needs DDL on the target (a column the
 * table lacks, or its primary key) stops the streaming: that batch and the rest stay in the
 * staging table and are upserted by the commit, so the ACCESS EXCLUSIVE lock of `ALTER TABLE`
 * blocks the table's readers only while the commit runs, never during the fetch.
 *
 * `append` is streamed the same way (`INSERT … SELECT` per batch, same locks). A key whose
 * earlier record was already inserted (a duplicate across batches, see {@link KeyCounter})
 * stops the streaming like DDL does: the commit deletes the rows this transaction inserted for
 * the keys still in the staging table (by `_run_id` and `_loaded_at`: one scan of the target),
 * then inserts them.
 */
export class StreamedMerge {
  /** Rows in the staging table not yet sent. */
  rows = 0;
  /** Batches sent. */
  batch = 0;
  /** The current batch has a key twice (its older rows are deleted before the upsert). */
  dupInBatch = false;
  /** The last statement sent: the connection runs them in order, so every earlier one is done. */
  private last: Promise<void> | null = null;
  /**
   * Settles when the connection is free: after the last statement or COPY end sent. Anything else
   * waits for it, so pg never queues a query (deprecated: pg@9 drops its queue).
   */
  busy: Promise<void> | null = null;
  /** The target has the primary key (checked at the first batch). */
  private keyed = false;
  /** A batch needed DDL: everything from it on waits in the staging table for the commit. */
  held = false;
  /** Append: a key came again after its earlier record was inserted (the commit deletes that one). */
  private sentDup = false;
  private error: unknown = null;

  constructor(
    private readonly s: CommitScope,
    private readonly load: TableLoad,
    private readonly pk: string[] | null,
    /** Records per upsert (upsertRows(), read once at the open). */
    readonly batchRows: number,
    readonly mode: "merge" | "append" = "merge",
  ) {}

  /** A record's key came before, last in batch `previous` (sent when below `batch`). */
  duplicate(previous: number): void {
    this.dupInBatch = true;
    if (this.mode === "append" && previous < this.batch) this.held = this.sentDup = true;
  }

  /**
   * Ends the batch's COPY and sends its upsert without waiting for them (after the previous
   * batch's upsert is done): the records that follow are encoded meanwhile, and their COPY,
   * queued behind the upsert, keeps up to COPY_AHEAD of their text until it runs. The first
   * batch also waits for the target's primary key (and a batch with a new column, for it).
   */
  async send(endCopy: () => Promise<void>, final = false): Promise<void> {
    if (this.error) throw this.error;
    // The batch's COPY has ended, and whatever was sent before it (there may be no COPY to end).
    const ended = Promise.all([this.busy, this.track(endCopy())]).then(() => {});
    this.busy = ended;
    // One upsert at a time on the server, the next batch's COPY waiting behind it: memory stays
    // bounded (COPY_AHEAD) when the server is slower than the fetch.
    const previous = this.last;
    if (previous) await previous;
    if (this.error) throw this.error;
    if (!final && (this.held || (await this.needsDdl(ended)))) {
      this.held = true;
      this.rows = 0; // counted again toward the next call, which only ends its COPY
      return;
    }
    if (!this.rows && this.batch > 0 && !this.held) return;
    if (final) await ended; // the statements may change the target first (DDL, awaited)
    if (this.error) throw this.error;
    const sql = await this.statements();
    this.rows = 0;
    this.dupInBatch = false;
    this.batch++;
    const { client } = this.s;
    this.last = this.track(ended.then(() => (this.error ? undefined : client.query(sql))));
    this.busy = this.last;
  }

  /** Waits for every statement sent; throws the first error. */
  async settle(): Promise<void> {
    const busy = this.busy;
    this.last = this.busy = null;
    if (busy) await busy;
    if (this.error) throw this.error;
  }

  /** The first error of a statement sent (later ones then fail for that reason), else `err`. */
  cause(err: unknown): unknown {
    return this.error ?? err;
  }

  private track(p: Promise<unknown>): Promise<void> {
    return p.then(
      () => {},
      (err: unknown) => {
        this.error ??= err;
      },
    );
  }

  /** The batch would change the target's definition: a column it lacks, or its primary key. */
  private async needsDdl(ended: Promise<void>): Promise<boolean> {
    if (this.mode === "append") return missingTargetColumns(this.load);
    if (!this.keyed) {
      await ended;
      this.keyed = await hasPrimaryKey(this.s, this.load, this.pk!);
    }
    return !this.keyed || missingTargetColumns(this.load);
  }

  private async statements(): Promise<string> {
    const { s, load, pk } = this;
    // Only the commit's batch gets here with DDL to do (needsDdl): awaited.
    if (this.mode === "append") {
      const sql = await appendStatements(s, load, pk, this.dupInBatch, this.sentDup);
      return `${sql}; TRUNCATE ${load.q(load.staging)}`;
    }
    if (!this.keyed) await ensurePrimaryKey(s, load, pk!);
    this.keyed = true;
    const sql = await upsertStatements(s, load, pk!, this.dupInBatch);
    return `${sql}; TRUNCATE ${this.load.q(this.load.staging)}`;
  }
}

/**
 * Records per statement of a streamed merge or append; `PIPELINES_PG_UPSERT_ROWS=0`: one
 * statement at the commit.
 */
function upsertRows(): number {
  const env = process.env.PIPELINES_PG_UPSERT_ROWS;
  const n = env === undefined || env === "" ? Number.NaN : Number(env);
  return Number.isInteger(n) && n >= 0 ? n : UPSERT_ROWS;
}

const UPSERT_ROWS = 10_000;

/** COPY text (characters) a streamed load keeps while a statement runs on the connection. */
export const COPY_AHEAD = 2 * 1024 * 1024;

/** A row's primary key as the run's key set holds it (a big integer with all its digits). */
export function rowKeyFunction(primaryKey: string[]): (row: Row) => Key | null {
  return keyFunction(primaryKey, (v) =>
    v === null || v === undefined ? undefined : typeof v === "bigint" ? { big: String(v) } : v,
  );
}

/**
 * The run's primary keys, duplicates counted (merge.ts's RunKeys also keeps file offsets: not
 * needed here). The writer marks a streamed merge's batch with a duplicate for the removal of
 * older rows of a key (a key seen in an earlier batch too: the removal finds none, at
 * the cost of one cheap DELETE). No second set of the batch's keys: each set's tables grow in
 * the large-object space, whose garbage stays until a full collection (measured: +10 MiB peak).
 * A streamed append also needs the batch each key came in last (a Map: 8 bytes more a key).
 */
export class KeyCounter {
  private readonly seen: Set<Key> | null;
  private readonly batchOf: Map<Key, number> | null;
  dups = 0;
  /** The batch the duplicate just noted came in before (with batches kept), else -1. */
  previous = -1;

  constructor(keepBatches = false) {
    this.seen = keepBatches ? null : new Set();
    this.batchOf = keepBatches ? new Map() : null;
  }

  /** True when `key` was seen before in the run (a duplicate); `batch`: the current batch. */
  note(key: Key, batch = 0): boolean {
    const { seen, batchOf } = this;
    if (seen) {
      if (!seen.has(key)) {
        seen.add(key);
        return false;
      }
    } else {
      const before = batchOf!.get(key);
      batchOf!.set(key, batch);
      if (before === undefined) return false;
      this.previous = before;
    }
    this.dups++;
    return true;
  }
}
