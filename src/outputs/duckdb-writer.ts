import { stat } from "node:fs/promises";
import type { DuckDBConnection } from "@duckdb/node-api";
import { rejectedTable, stagingTable } from "../compile/layout.js";
import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { escapesLoneSurrogate, setOwn } from "../shared/json-text.js";
import { type ChildLoad, DuckdbCommit, PARENT_SEQ } from "./duckdb-commit.js";
import { type Engine, engine, engineSettings, q, withMemory } from "./duckdb-engine.js";
import { Stager } from "./duckdb-stager.js";
import { readDuckdbState, saveDuckdbState } from "./duckdb-state.js";
import { countDuplicates, jsonKeyFunction, type Key, noteKey, requireKeyForMerge } from "./merge.js";
import {
  type ColumnType,
  childTableName,
  describeValue,
  existingChildFields,
  INDEX_COLUMN,
  isArrayOfObjects,
  LOADED_AT_COLUMN,
  nestedFields,
  RUN_ID_COLUMN,
  schemaColumnTypes,
} from "./table-shape.js";
import type { CommitState, InvalidEntry, RecordWriter, StreamState, WriterContext } from "./writer.js";

/**
 * DuckDB: one database file per pipeline (several streams, and pipelines, may share it), one
 * table per stream (`output.table`, default the stream's name).
 *
 * Records are appended during the run into a staging table `<table>__staging_<runId>` (see
 * Stager in duckdb-engine.ts); the target is touched only by one transaction in `commit()`, so a
 * failed or killed stream leaves it exactly as it was:
 * - replace (or no target yet): drop the target, create it with the run's columns and types,
 *   insert the staged rows;
 * - append: add the run's new columns (nullable), insert;
 * - merge: add new columns, make sure the primary-key constraint exists (created on the key),
 *   then `INSERT … ON CONFLICT (key) DO UPDATE`: a row is replaced whole (columns the run does
 *   not have become NULL).
 * With a primary key, a key repeated within the run keeps its last record. Rows get `_run_id`
 * and `_loaded_at` (the commit's time) unless `metadata_columns: false`. A column whose type in
 * the existing table differs from the run's is never altered: the report says so (and
 * `drift: fail` refuses the commit); values are cast to the table's type, or the commit fails.
 * Invalid records go to `<table>__invalid`, replaced on each commit.
 */
export async function openDuckdbWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  const primaryKey = ctx.primaryKey?.length ? [...new Set(ctx.primaryKey)] : null;
  requireKeyForMerge(output, primaryKey);
  const eng = await engine(output.path, engineSettings());
  try {
    const conn = await eng.connect();
    let writer: DuckdbWriter;
    try {
      writer = new DuckdbWriter(eng, conn, output, ctx, primaryKey);
    } catch (err) {
      conn.closeSync();
      throw err;
    }
    try {
      await writer.readState();
      await writer.openExistingChildren();
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return writer;
  } catch (err) {
    eng.release();
    throw err;
  }
}

class DuckdbWriter implements RecordWriter {
  private readonly table: string;
  private readonly stager: Stager;
  /** `nested: tables` (with a primary key): array-of-objects fields become child tables. */
  private readonly nested: boolean;
  private readonly children = new Map<string, ChildLoad>();
  /** Fields seen that are columns of the parent (a later array of objects stays JSON). */
  private readonly plainFields = new Set<string>();
  private readonly kinds: Map<string, ColumnType>;
  private seq = 0;
  /** nested: the position of the last record of each key, and those a later record replaced. */
  private readonly lastSeq = new Map<Key, number>();
  private readonly staleSeqs: number[] = [];
  private readonly invalid: Stager | null;
  private readonly keys: Set<Key> | null;
  private readonly keyOf: ((r: Row) => Key | null) | null;
  private dups = 0;
  private readonly notes: string[] = [];
  private closed = false;
  private readonly meta: boolean;
  private saved: StreamState | null = null;
  /** RecordWriter.seeRow and writeLines; not under `nested: tables` (records are split there). */
  readonly seeRow?: (row: Row, suspect: boolean) => void;
  readonly seeMembers?: (names: readonly string[], types: Uint8Array, n: number) => boolean;
  /** Its invalid-record table refuses what escapes a lone surrogate (Stager.write). */
  readonly refusesInvalid = (entryJson: string): boolean => escapesLoneSurrogate(entryJson);
  readonly writeLines?: (
    text: Uint8Array | string,
    count: number,
    keys: readonly (Key | null)[] | null,
  ) => Promise<void> | undefined;

  constructor(
    private readonly eng: Engine,
    private readonly conn: DuckDBConnection,
    private readonly output: OutputPlan,
    private readonly ctx: WriterContext,
    private readonly primaryKey: string[] | null,
  ) {
    this.table = output.table?.name ?? ctx.stream;
    this.meta = output.table?.metadataColumns ?? true;
    const kinds = schemaColumnTypes(ctx.schema);
    this.kinds = kinds;
    this.nested = output.table?.nested === "tables" && primaryKey !== null;
    const childSchemas: Map<string, Record<string, unknown> | null> = this.nested
      ? nestedFields(ctx.schema)
      : new Map();
    const planned = [...new Set([...(ctx.columns ?? []), ...(primaryKey ?? [])])]
      .filter((name) => !childSchemas.has(name))
      .map((name) => ({
        name,
        kind: kinds.get(name) ?? null,
      }));
    const what = `table \`${this.table}\` of ${output.path}`;
    const recordId = (row: Row, n: number): string => {
      if (primaryKey) {
        const parts = primaryKey.map((k) => row[k]);
        if (parts.every((p) => p !== undefined && p !== null)) return parts.map((p) => String(p)).join("/");
      }
      return `#${n} written`;
    };
    this.stager = new Stager(
      conn,
      stagingTable(this.table, ctx.runId),
      planned,
      this.meta ? [RUN_ID_COLUMN, LOADED_AT_COLUMN] : [],
      recordId,
      what,
      { near: this.output.path, runId: this.ctx.runId },
    );
    this.invalid = new Stager(
      conn,
      stagingTable(`${this.table}__invalid`, ctx.runId),
      [
        { name: "record_id", kind: "text" },
        { name: "errors", kind: "json" },
        { name: "record", kind: "json" },
      ],
      [],
      (_r, n) => `#${n}`,
      `table \`${this.table}__invalid\``,
      { near: this.output.path, runId: this.ctx.runId },
    );
    this.keyOf = primaryKey ? jsonKeyFunction(primaryKey) : null;
    this.keys = primaryKey ? new Set() : null;
    for (const [field, items] of childSchemas) this.openChild(field, items);
    if (!this.nested) {
      this.seeRow = (row, suspect) => this.stager.see(row, suspect);
      this.seeMembers = (names, types, n) => this.stager.seeMembers(names, types, n);
      this.writeLines = (text, count, keys) => {
        if (keys) this.dups += countDuplicates(this.keys!, keys);
        return this.stager.writeLines(text, count);
      };
    }
  }

  /** A child table for `field`; its columns: the parent's key, `_index`, the items' fields. */
  private openChild(field: string, items: Record<string, unknown> | null): ChildLoad {
    const name = childTableName(this.table, field);
    const pk = this.primaryKey!;
    const itemKinds = schemaColumnTypes(items);
    const planned = [
      ...pk.map((k) => ({ name: k, kind: this.kinds.get(k) ?? null })),
      { name: INDEX_COLUMN, kind: "bigint" as const },
      { name: PARENT_SEQ, kind: "bigint" as const },
      ...[...itemKinds].filter(([k]) => !pk.includes(k)).map(([k, kind]) => ({ name: k, kind })),
    ];
    const child: ChildLoad = {
      field,
      name,
      stager: new Stager(
        this.conn,
        stagingTable(name, this.ctx.runId),
        planned,
        this.meta ? [RUN_ID_COLUMN, LOADED_AT_COLUMN] : [],
        (row) => `${pk.map((k) => String(row[k])).join("/")} item ${String(row[INDEX_COLUMN])}`,
        `child table \`${name}\` of ${this.output.path}`,
        { near: this.output.path, runId: this.ctx.runId },
      ),
    };
    this.children.set(field, child);
    return child;
  }

  /**
   * `nested: tables`: the record without its child fields goes to the parent's staging table,
   * each item of a child field to the child's, with the parent's key and `_index`.
   */
  private writeNested(record: Row): Promise<void> | undefined {
    const pk = this.primaryKey!;
    const seq = ++this.seq;
    const key = this.keyOf!(record);
    const id = () => `${seq} written`;
    if (key === null)
      throw new RunError(
        "output",
        `record #${id()} has no value for the primary key (${pk.join(", ")}): nested: tables links child rows by it (table \`${this.table}\` of ${this.output.path})`,
      );
    const prev = this.lastSeq.get(key);
    if (prev !== undefined) {
      this.dups++;
      this.staleSeqs.push(prev);
    }
    this.lastSeq.set(key, seq);
    const parent: Row = {};
    const rows: [Stager, Row][] = [[this.stager, parent]];
    for (const name of Object.keys(record)) {
      const v = record[name];
      let child = this.children.get(name);
      if (!child && !this.plainFields.has(name)) {
        // Undecided until a value says: an array of objects makes a child table.
        if (v === null || v === undefined) continue;
        if (isArrayOfObjects(v) && !pk.includes(name)) child = this.openChild(name, null);
        else this.plainFields.add(name);
      }
      if (!child) {
        setOwn(parent, name, v);
        continue;
      }
      if (v === null || v === undefined) continue;
      if (!Array.isArray(v))
        throw new RunError(
          "output",
          `record #${id()}: field \`${name}\` is a child table (nested: tables) but holds ${describeValue(v)}`,
        );
      for (let j = 0; j < v.length; j++) {
        const item = v[j];
        if (!item || typeof item !== "object" || Array.isArray(item))
          throw new RunError(
            "output",
            `record #${id()}: item ${j} of \`${name}\` is ${describeValue(item)}, so it cannot be a row of child table \`${child.name}\``,
          );
        for (const k of [...pk, INDEX_COLUMN, PARENT_SEQ])
          if (Object.hasOwn(item, k))
            throw new RunError(
              "output",
              `record #${id()}: the items of \`${name}\` have a field \`${k}\`, a column child table \`${child.name}\` sets itself (the parent's primary key, \`${INDEX_COLUMN}\`); rename it with \`fields\``,
            );
        const row: Row = { ...(item as Row) };
        for (const k of pk) row[k] = record[k];
        row[INDEX_COLUMN] = j;
        row[PARENT_SEQ] = seq;
        rows.push([child.stager, row]);
      }
    }
    return writeAll(rows, 0);
  }

  write(record: Row, json?: string): Promise<void> | undefined {
    if (this.nested) return this.writeNested(record);
    if (this.keyOf) this.dups += noteKey(this.keys!, this.keyOf(record));
    return this.stager.write(record, json);
  }

  duplicates(): number {
    return this.dups;
  }

  warnings(): string[] {
    return this.notes;
  }

  writeInvalid(entry: InvalidEntry): Promise<void> | undefined {
    return this.invalid!.write(entry as unknown as Row);
  }

  invalidTarget(): string {
    return `${this.output.path} (table ${this.table}__invalid)`;
  }

  savedState(): StreamState | null {
    return this.saved;
  }

  /** `nested: tables`: the child tables an earlier run made are children from the start (existingChildFields). */
  async openExistingChildren(): Promise<void> {
    if (!this.nested) return;
    const r = await this.conn.runAndReadAll(
      "SELECT table_name, list(column_name) FROM duckdb_columns() WHERE schema_name = 'main' AND database_name = current_database() AND starts_with(table_name, $1) GROUP BY table_name ORDER BY table_name",
      [`${this.table}__`],
    );
    const tables = r
      .getRowsJS()
      .map(([name, cols]): [string, string[]] => [String(name), (cols as unknown[]).map(String)]);
    for (const field of existingChildFields(this.table, tables, this.primaryKey!, this.ctx.schema))
      if (!this.children.has(field)) this.openChild(field, null);
  }

  /** The stream's state the last commit wrote into `_pipelines_state` of this database. */
  async readState(): Promise<void> {
    const key = this.output.stateKey;
    if (key) this.saved = await readDuckdbState(this.conn, key, this.ctx.stream);
  }

  async commit(state?: CommitState | null): Promise<void> {
    await this.stager.finish();
    await this.invalid?.finish();
    for (const c of this.children.values()) await c.stager.finish();
    try {
      await this.eng.exclusive(async () =>
        withMemory(this.conn, "database", await this.longBytes(), this.notes, () =>
          this.transaction(async () => {
            // Children first: a merge finds the parent keys it replaces in the parent's staging table.
            const c = this.committer();
            for (const child of this.children.values()) await c.commitChild(child);
            await c.commitBody();
            const key = this.output.stateKey;
            if (state && key) await saveDuckdbState(this.conn, key, this.ctx.stream, state);
          }),
        ),
      );
    } finally {
      await this.dropStaging().catch(() => {});
      this.close();
    }
  }

  /** The long strings the load holds in memory: those staged, and those the file holds already. */
  private async longBytes(): Promise<number> {
    const stagers = [this.stager, ...(this.invalid ? [this.invalid] : [])];
    for (const c of this.children.values()) stagers.push(c.stager);
    return stagers.reduce((n, st) => n + st.longBytes, 0) + (await this.storedLongBytes());
  }

  /**
   * The long strings the database file already holds, as far as its size tells: the commit's
   * checkpoint holds a changed table's long strings in memory too (appending 100 short records to
   * a table of 60 strings of 1 MB failed at the base limit). Long strings are stored as they are,
   * short values compressed: a file (with its WAL) of more than 16 MiB with over 4 KiB per row is
   * counted whole.
   */
  private async storedLongBytes(): Promise<number> {
    const sizeOf = (file: string) =>
      stat(file).then(
        (st) => st.size,
        () => 0,
      );
    // The file and its WAL (records committed and not yet checkpointed into the file).
    const size = (await sizeOf(this.output.path)) + (await sizeOf(`${this.output.path}.wal`));
    if (size < 16 * 1024 * 1024) return 0;
    const r = await this.conn.runAndReadAll(
      "SELECT coalesce(sum(estimated_size), 0) AS n FROM duckdb_tables() WHERE database_name = current_database()",
    );
    const rows = Number(r.getRowObjectsJS()[0]?.n ?? 0);
    return size > 4096 * Math.max(rows, 1) ? size : 0;
  }

  /** The refused run's rows as a table beside the target; null when it had no column to keep. */
  async keepRejected(): Promise<string | null> {
    await this.stager.finish();
    await this.invalid?.finish();
    const name = rejectedTable(this.table, this.ctx.runId);
    const kept = this.stager.hasTable;
    try {
      await this.eng.exclusive(async () =>
        withMemory(this.conn, "database", await this.longBytes(), this.notes, async () => {
          if (this.stager.hasTable)
            await this.conn.run(
              // OR REPLACE: a try that ran out of memory after it is run again (withMemory).
              `CREATE OR REPLACE TABLE ${q(name)} AS SELECT * EXCLUDE (__pl_row) FROM ${q(this.stager.table)}`,
            );
          await this.transaction(() => this.committer().replaceInvalid());
        }),
      );
    } finally {
      await this.dropStaging().catch(() => {});
      this.close();
    }
    return kept ? `${this.output.path} (table ${name})` : null;
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    try {
      await this.dropStaging();
    } finally {
      this.close();
    }
  }

  private async dropStaging(): Promise<void> {
    await this.stager.drop();
    await this.invalid?.drop();
    for (const c of this.children.values()) await c.stager.drop();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn.closeSync();
    this.eng.release();
  }

  private async transaction(body: () => Promise<void>): Promise<void> {
    await this.conn.run("BEGIN TRANSACTION");
    try {
      await body();
      await this.conn.run("COMMIT");
    } catch (err) {
      await this.conn.run("ROLLBACK").catch(() => {});
      throw err;
    }
  }

  /** The commit of what this stream staged so far. */
  private committer(): DuckdbCommit {
    return new DuckdbCommit({
      conn: this.conn,
      output: this.output,
      ctx: this.ctx,
      table: this.table,
      meta: this.meta,
      primaryKey: this.primaryKey,
      stager: this.stager,
      invalid: this.invalid,
      notes: this.notes,
      staleSeqs: this.staleSeqs,
      dups: this.dups,
    });
  }
}

/** Writes rows to their stagers one after the other, waiting where one wants the producer to. */
function writeAll(rows: [Stager, Row][], from: number): Promise<void> | undefined {
  for (let i = from; i < rows.length; i++) {
    const p = rows[i][0].write(rows[i][1]);
    if (p) return p.then(() => writeAll(rows, i + 1));
  }
  return undefined;
}
