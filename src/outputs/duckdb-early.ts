import type { DuckDBConnection } from "@duckdb/node-api";
import { type DuckdbCommit, tableColumns, typeChanges } from "./duckdb-commit.js";
import { type Engine, q } from "./duckdb-engine.js";
import type { Stager } from "./duckdb-stager.js";
import { LOADED_AT_COLUMN, RUN_ID_COLUMN } from "./table-shape.js";

/**
 * Full staged files (of about 1 MiB, STAGING_PART_CHARS) inserted by one statement: each
 * statement has a cost of its own (read_json's buffers taken and given back); measured on the
 * bench's 200,000 records, one file per statement was slower than the commit's single load.
 */
export const EARLY_BATCH_FILES = 4;

let committed = 0;
/** Commits whose rows were all loaded by an early load, in this process (tests). */
export const earlyLoadCommits = (): number => committed;

/** Whether DuckDB outputs load during the fetch (off with PIPELINES_DUCKDB_EARLY=off). */
export function earlyLoadOn(): boolean {
  return process.env.PIPELINES_DUCKDB_EARLY !== "off";
}

/** What an early load needs of its DuckDB writer. */
export interface EarlyTarget {
  readonly engine: Engine;
  readonly conn: DuckDBConnection;
  readonly table: string;
  readonly mode: "replace" | "append" | "merge";
  readonly primaryKey: string[] | null;
  readonly meta: boolean;
  readonly stager: Stager;
  /** Records so far whose key an earlier record had. */
  dups(): number;
  committer(): DuckdbCommit;
  /** Before the load's transaction begins: what it must find made (the state table). */
  prepare(): Promise<void>;
}

/**
 * DuckDB's load overlapped with the fetch: each staged file, once full, is inserted into the
 * target inside one transaction on the writer's connection, opened at the first full file and
 * committed by DuckdbWriter.commit — DuckDB parses and stores the rows on its thread while Node
 * fetches the next pages, instead of reading every file after the last page.
 *
 * Only where the result is the one the commit's own load would give, in the same order: no
 * `nested: tables`, mode `replace` or a table that does not exist yet, a replaced table whose
 * columns keep their types, no column still without a type (only nulls so far), and, to the end,
 * no new column, no widened type and no repeated key. Anything else — a value DuckDB cannot cast,
 * or any error — rolls the transaction back and leaves the whole load to the commit, as without
 * it: the early load changes when the work is done, never what is written. Nothing is visible
 * before the commit, and a killed run's transaction is never committed. `_loaded_at` is the
 * transaction's start (DuckDB's `now()`), as for the commit's own load.
 */
export class EarlyLoad {
  private chain: Promise<void> = Promise.resolve();
  /** Files full and not yet inserted, in order. */
  private readonly waiting: string[] = [];
  /** Settle when the waiting files are closed. */
  private closing: Promise<void>[] = [];
  private loaded = 0;
  private open = false;
  private off = false;
  /** The columns and types the table was made with. */
  private shape = "";

  constructor(private readonly t: EarlyTarget) {}

  /** Stager.onFilled: the file at `path` is full; inserted once `closed` settles. */
  filled(path: string, closed: Promise<void>): void {
    if (this.off) return;
    this.waiting.push(path);
    this.closing.push(closed);
    if (this.waiting.length < EARLY_BATCH_FILES) return;
    const closes = this.closing.splice(0);
    this.chain = this.chain
      .then(async () => {
        await Promise.all(closes);
        await this.load();
      })
      .catch(() => this.stop());
  }

  /** Waits for the loads under way (before anything else uses the connection). */
  async settle(): Promise<void> {
    await this.chain;
  }

  /**
   * At the commit, after the stager's `finish`: loads the files not loaded yet. True when the
   * target now holds every staged row, in the open transaction the commit ends; false when the
   * commit must load everything itself (the transaction, if any, rolled back).
   */
  async complete(): Promise<boolean> {
    await this.chain;
    if (this.off || !this.open) {
      await this.stop();
      return false;
    }
    this.waiting.push(...this.t.stager.files.slice(this.loaded + this.waiting.length));
    try {
      // finish() closed the last file and waited for the others.
      this.closing = [];
      await this.load();
    } catch {
      await this.stop();
    }
    return this.open && !this.off;
  }

  /** The writer committed the transaction. */
  committedIt(): void {
    this.open = false;
    this.release();
    committed++;
  }

  /** Gives up: rolls the transaction back; the commit loads everything. */
  async stop(): Promise<void> {
    this.off = true;
    this.waiting.length = 0;
    this.closing = [];
    if (this.open) {
      this.open = false;
      await this.t.conn.run("ROLLBACK").catch(() => {});
    }
    this.release();
  }

  private release(): void {
    const shared = this.t.engine.shared;
    if (shared.early === this) shared.early = null;
  }

  /** Stops after the loads under way (abort, keepRejected). */
  async cancel(): Promise<void> {
    this.off = true;
    await this.chain;
    await this.stop();
  }

  private async load(): Promise<void> {
    if (this.off || !this.waiting.length) return;
    const { conn, stager, table } = this.t;
    const cols = stager.columns;
    const shape = cols.map((c) => `${c.name}\0${c.kind}`).join("\0");
    if (this.t.dups() > 0 || (this.open && shape !== this.shape)) return this.stop();
    const commit = this.t.committer();
    if (!this.open) {
      // A column without a type yet may still take one: wait for the next file.
      if (!cols.length || cols.some((c) => c.pending)) return;
      // One early load per file: its transaction holds rows in memory until the commit, beside
      // the other streams' loads.
      const shared = this.t.engine.shared;
      if (shared.early) return this.stop();
      shared.early = this;
      const existing = await tableColumns(conn, table);
      if (existing && (this.t.mode !== "replace" || typeChanges(existing, cols).length)) return this.stop();
      await this.t.prepare();
      await conn.run("BEGIN TRANSACTION");
      this.open = true;
      this.shape = shape;
      if (existing) await conn.run(`DROP TABLE ${q(table)}`);
      const pk = this.t.mode === "merge" ? [`PRIMARY KEY (${this.t.primaryKey!.map(q).join(", ")})`] : [];
      await commit.createTable(table, cols, pk);
    }
    const paths = this.waiting.splice(0);
    const names = [
      ...cols.map((c) => q(c.name)),
      ...(this.t.meta ? [q(RUN_ID_COLUMN), q(LOADED_AT_COLUMN)] : []),
    ];
    // One load at a time per file, as the commits' (read_json's buffers within the memory limit).
    await this.t.engine.exclusive(() =>
      conn.run(
        `INSERT INTO ${q(table)} (${names.join(", ")}) SELECT ${commit.selectExprs(cols).join(", ")} FROM ${stager.source(paths)}`,
      ),
    );
    this.loaded += paths.length;
  }
}
