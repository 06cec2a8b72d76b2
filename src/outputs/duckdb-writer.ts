import type { DuckDBConnection } from "@duckdb/node-api";
import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { setOwn } from "../shared/json-text.js";
import { type Engine, engine, q, Stager, stagedRows } from "./duckdb-engine.js";
import { jsonKeyFunction, type Key, requireKeyForMerge } from "./merge.js";
import {
  type ColumnType,
  childTableName,
  DUCKDB_TYPES,
  describeValue,
  INDEX_COLUMN,
  isArrayOfObjects,
  LOADED_AT_COLUMN,
  nestedFields,
  RUN_ID_COLUMN,
  STATE_TABLE,
  schemaColumnTypes,
  sqlString,
} from "./table-shape.js";
import type { CommitState, InvalidEntry, RecordWriter, StreamState, WriterContext } from "./writer.js";

/** DuckDB settings: modest memory, spilling beside the database. */
export function duckdbOptions(): Record<string, string> {
  return { memory_limit: "64MB", threads: "1" };
}

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
  const eng = await engine(output.path, duckdbOptions());
  try {
    const conn = await eng.connect();
    const writer = new DuckdbWriter(eng, conn, output, ctx, primaryKey);
    try {
      await writer.readState();
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

/** A child table of `nested: tables`: one array-of-objects field's items, staged apart. */
interface ChildLoad {
  field: string;
  /** `<table>__<field>` */
  name: string;
  stager: Stager;
}

/** Child staging rows carry the position of their parent record (dropped at commit). */
const PARENT_SEQ = "__pl_parent";

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
      `${this.table}__staging_${ctx.runId}`,
      planned,
      this.meta ? [RUN_ID_COLUMN, LOADED_AT_COLUMN] : [],
      recordId,
      what,
      { near: this.output.path, runId: this.ctx.runId },
    );
    this.invalid = new Stager(
      conn,
      `${this.table}__invalid__staging_${ctx.runId}`,
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
        `${name}__staging_${this.ctx.runId}`,
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

  write(record: Row): Promise<void> | undefined {
    if (this.nested) return this.writeNested(record);
    if (this.keyOf) {
      const k = this.keyOf(record);
      if (k !== null) {
        if (this.keys!.has(k)) this.dups++;
        else this.keys!.add(k);
      }
    }
    return this.stager.write(record);
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

  /** The stream's state the last commit wrote into `_pipelines_state` of this database. */
  async readState(): Promise<void> {
    const key = this.output.stateKey;
    if (!key) return;
    const r = await this.conn.runAndReadAll(
      "SELECT count(*) FROM duckdb_tables() WHERE table_name = $1 AND schema_name = 'main' AND database_name = current_database()",
      [STATE_TABLE],
    );
    if (!Number(r.getRows()[0][0])) return;
    const rows = (
      await this.conn.runAndReadAll(
        `SELECT CAST(state AS VARCHAR) FROM ${q(STATE_TABLE)} WHERE pipeline = $1 AND stream = $2`,
        [key, this.ctx.stream],
      )
    ).getRows();
    this.saved = rows.length ? (JSON.parse(String(rows[0][0])) as StreamState) : null;
  }

  async commit(state?: CommitState | null): Promise<void> {
    await this.stager.finish();
    await this.invalid?.finish();
    for (const c of this.children.values()) await c.stager.finish();
    try {
      await this.eng.exclusive(() =>
        this.transaction(async () => {
          // Children first: a merge finds the parent keys it replaces in the parent's staging table.
          for (const c of this.children.values()) await this.commitChild(c);
          await this.commitBody();
          await this.saveState(state);
        }),
      );
    } finally {
      await this.dropStaging().catch(() => {});
      this.close();
    }
  }

  async keepRejected(): Promise<string> {
    await this.stager.finish();
    await this.invalid?.finish();
    const name = `${this.table}__rejected_${this.ctx.runId}`;
    try {
      await this.eng.exclusive(async () => {
        if (this.stager.hasTable)
          await this.conn.run(
            `CREATE TABLE ${q(name)} AS SELECT * EXCLUDE (rowid) FROM ${q(this.stager.table)}`,
          );
      });
      await this.eng.exclusive(() => this.transaction(() => this.replaceInvalid()));
    } finally {
      await this.dropStaging().catch(() => {});
      this.close();
    }
    return `${this.output.path} (table ${name})`;
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

  /** Upserts the stream's state into `_pipelines_state`, in the commit's transaction. */
  private async saveState(state: CommitState | null | undefined): Promise<void> {
    const key = this.output.stateKey;
    if (!state || !key) return;
    const value: StreamState = { cursor: state.cursor, updated_at: new Date().toISOString() };
    await this.conn.run(
      `CREATE TABLE IF NOT EXISTS ${q(STATE_TABLE)} (pipeline VARCHAR NOT NULL, stream VARCHAR NOT NULL, state JSON NOT NULL, updated_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (pipeline, stream))`,
    );
    await this.conn.run(
      `INSERT INTO ${q(STATE_TABLE)} VALUES ($1, $2, $3, now()) ON CONFLICT (pipeline, stream) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
      [key, this.ctx.stream, JSON.stringify(value)],
    );
  }

  private async commitBody(): Promise<void> {
    const { output, conn } = this;
    const target = q(this.table);
    const existing = await tableColumns(conn, this.table);
    await this.replaceInvalid();
    if (!this.stager.hasTable) {
      // No column at all (no schema, no record): an empty replace empties the table.
      if (existing && output.mode === "replace") await conn.run(`DELETE FROM ${target}`);
      return;
    }
    const cols = this.stager.columns;
    if (existing) this.checkTypes(existing, cols);
    const names = cols.map((c) => q(c.name));
    const select = this.selectSql();
    const insertCols = [...names, ...(this.meta ? [q(RUN_ID_COLUMN), q(LOADED_AT_COLUMN)] : [])].join(", ");
    if (output.mode === "replace" || !existing) {
      if (existing) await conn.run(`DROP TABLE ${target}`);
      const defs = cols.map((c) => `${q(c.name)} ${DUCKDB_TYPES[c.kind]}`);
      if (this.meta)
        defs.push(`${q(RUN_ID_COLUMN)} VARCHAR`, `${q(LOADED_AT_COLUMN)} TIMESTAMP WITH TIME ZONE`);
      if (output.mode === "merge") defs.push(`PRIMARY KEY (${this.primaryKey!.map(q).join(", ")})`);
      await conn.run(`CREATE TABLE ${target} (${defs.join(", ")})`);
      await this.insert(`INSERT INTO ${target} (${insertCols}) ${select}`);
      return;
    }
    const present = new Set(existing.map((c) => c.name.toLowerCase()));
    for (const c of cols) {
      if (present.has(c.name.toLowerCase())) continue;
      await conn.run(`ALTER TABLE ${target} ADD COLUMN ${q(c.name)} ${DUCKDB_TYPES[c.kind]}`);
      this.notes.push(`column \`${c.name}\` (${DUCKDB_TYPES[c.kind]}) added to table \`${this.table}\``);
    }
    if (this.meta) {
      for (const [name, type] of [
        [RUN_ID_COLUMN, "VARCHAR"],
        [LOADED_AT_COLUMN, "TIMESTAMP WITH TIME ZONE"],
      ])
        if (!present.has(name)) await conn.run(`ALTER TABLE ${target} ADD COLUMN ${q(name)} ${type}`);
    }
    if (output.mode === "append") {
      await this.insert(`INSERT INTO ${target} (${insertCols}) ${select}`);
      return;
    }
    await this.ensurePrimaryKey();
    const pk = new Set(this.primaryKey!.map((k) => k.toLowerCase()));
    const run = new Map(cols.map((c) => [c.name.toLowerCase(), c.name]));
    const all = [
      ...existing.map((c) => c.name),
      ...cols.map((c) => c.name).filter((n) => !present.has(n.toLowerCase())),
    ];
    const set = all
      .filter((n) => !pk.has(n.toLowerCase()))
      .map((n) => {
        const lower = n.toLowerCase();
        const from =
          run.get(lower) ?? (this.meta && (lower === RUN_ID_COLUMN || lower === LOADED_AT_COLUMN) ? n : null);
        return `${q(n)} = ${from === null ? "NULL" : `excluded.${q(from)}`}`;
      });
    const conflict = `ON CONFLICT (${this.primaryKey!.map(q).join(", ")}) DO ${set.length ? `UPDATE SET ${set.join(", ")}` : "NOTHING"}`;
    await this.insert(`INSERT INTO ${target} (${insertCols}) ${select} ${conflict}`);
  }

  /**
   * A child table (`nested: tables`), in the commit's transaction: replace recreates it; append
   * inserts; merge first deletes the child rows of every parent key this run writes, then
   * inserts. Child rows of a record a later one of the same key replaced are left out.
   */
  private async commitChild(child: ChildLoad): Promise<void> {
    const { conn } = this;
    const mode = this.output.mode;
    const target = q(child.name);
    const existing = await tableColumns(conn, child.name);
    if (existing && mode === "merge" && this.stager.hasTable) {
      const same = this.primaryKey!.map((k) => `p.${q(k)} = ${target}.${q(k)}`).join(" AND ");
      await conn.run(
        `DELETE FROM ${target} WHERE EXISTS (SELECT 1 FROM ${q(this.stager.table)} p WHERE ${same})`,
      );
    }
    const st = child.stager;
    if (!st.hasTable) {
      if (existing && mode === "replace") await conn.run(`DELETE FROM ${target}`);
      return;
    }
    const cols = st.columns.filter((c) => c.name !== PARENT_SEQ);
    if (existing) this.checkTypes(existing, cols);
    const meta = this.meta ? [q(RUN_ID_COLUMN), q(LOADED_AT_COLUMN)] : [];
    const insertCols = [...cols.map((c) => q(c.name)), ...meta].join(", ");
    const exprs = cols.map((c) =>
      needsCast(c.kind) ? `CAST(${q(c.name)} AS ${DUCKDB_TYPES[c.kind]})` : q(c.name),
    );
    if (this.meta) exprs.push(sqlString(this.ctx.runId), "CAST(now() AS TIMESTAMP WITH TIME ZONE)");
    const stale = this.staleSeqs.length ? `WHERE ${q(PARENT_SEQ)} NOT IN (${this.staleSeqs.join(", ")})` : "";
    const select = `SELECT ${exprs.join(", ")} FROM ${q(st.table)} ${stale}`;
    if (mode === "replace" || !existing) {
      if (existing) await conn.run(`DROP TABLE ${target}`);
      const defs = cols.map((c) => `${q(c.name)} ${DUCKDB_TYPES[c.kind]}`);
      if (this.meta)
        defs.push(`${q(RUN_ID_COLUMN)} VARCHAR`, `${q(LOADED_AT_COLUMN)} TIMESTAMP WITH TIME ZONE`);
      await conn.run(`CREATE TABLE ${target} (${defs.join(", ")})`);
    } else {
      const present = new Set(existing.map((c) => c.name.toLowerCase()));
      for (const c of cols) {
        if (present.has(c.name.toLowerCase())) continue;
        await conn.run(`ALTER TABLE ${target} ADD COLUMN ${q(c.name)} ${DUCKDB_TYPES[c.kind]}`);
        this.notes.push(`column \`${c.name}\` (${DUCKDB_TYPES[c.kind]}) added to table \`${child.name}\``);
      }
      if (this.meta)
        for (const [name, type] of [
          [RUN_ID_COLUMN, "VARCHAR"],
          [LOADED_AT_COLUMN, "TIMESTAMP WITH TIME ZONE"],
        ])
          if (!present.has(name)) await conn.run(`ALTER TABLE ${target} ADD COLUMN ${q(name)} ${type}`);
    }
    await this.insert(`INSERT INTO ${target} (${insertCols}) ${select}`);
  }

  /** The staged rows with their final types, the last record of each key, in first-seen order. */
  private selectSql(): string {
    const cols = this.stager.columns;
    const exprs = cols.map((c) =>
      needsCast(c.kind) ? `CAST(${q(c.name)} AS ${DUCKDB_TYPES[c.kind]})` : q(c.name),
    );
    if (this.meta) exprs.push(`${sqlString(this.ctx.runId)}`, "CAST(now() AS TIMESTAMP WITH TIME ZONE)");
    // Without a repeated key, the file's order is the run's: a streaming read, no sort (a sort of
    // a big run would need more than DuckDB's memory limit beside read_json's buffers).
    if (!this.primaryKey || this.dups === 0) return `SELECT ${exprs.join(", ")} FROM ${q(this.stager.table)}`;
    return `SELECT ${exprs.join(", ")} FROM ${stagedRows(this.stager.table, this.primaryKey)} ORDER BY __pl_ord`;
  }

  /** Runs an insert from staging; a value DuckDB cannot cast is reported with its record. */
  private async insert(sql: string): Promise<void> {
    try {
      await this.conn.run(sql);
    } catch (err) {
      const message = (err as Error).message;
      await this.conn.run("ROLLBACK").catch(() => {});
      if (/duplicate key|primary key|unique/i.test(message) && this.output.mode === "append") {
        throw new RunError(
          "output",
          `cannot append to table \`${this.table}\` of ${this.output.path}: it has a primary key (made by mode merge) that this run's records repeat; use mode merge, or replace: ${message}`,
        );
      }
      throw new RunError(
        "output",
        `cannot write table \`${this.table}\` of ${this.output.path}: ${(await this.badValue()) ?? message}`,
      );
    }
  }

  /** The first staged value that cannot take its column's final type, described. */
  private async badValue(): Promise<string | null> {
    for (const c of this.stager.columns) {
      if (!needsCast(c.kind)) continue;
      const r = await this.conn.runAndReadAll(
        `SELECT rowid FROM ${q(this.stager.table)} WHERE ${q(c.name)} IS NOT NULL AND TRY_CAST(${q(c.name)} AS ${DUCKDB_TYPES[c.kind]}) IS NULL ORDER BY rowid LIMIT 1`,
      );
      const row = r.getRows()[0];
      if (row)
        return `record #${Number(row[0]) + 1} written: field \`${c.name}\` is not a valid ${c.kind === "date" ? "date" : "date-time"} (${DUCKDB_TYPES[c.kind]})`;
    }
    return null;
  }

  /** Type changes are reported, never applied; `drift: fail` refuses the commit. */
  private checkTypes(
    existing: { name: string; type: string }[],
    cols: { name: string; kind: ColumnType }[],
  ): void {
    const types = new Map(existing.map((c) => [c.name.toLowerCase(), c]));
    const changed: string[] = [];
    for (const c of cols) {
      const old = types.get(c.name.toLowerCase());
      if (old && old.type !== DUCKDB_TYPES[c.kind])
        changed.push(`\`${c.name}\` is ${old.type}, this run's is ${DUCKDB_TYPES[c.kind]}`);
    }
    if (!changed.length) return;
    const replacing = this.output.mode === "replace";
    const text = `table \`${this.table}\`: column type changed (${changed.join("; ")})`;
    if (this.ctx.drift === "fail")
      throw new RunError(
        "drift",
        `${text}; drift: fail stops the stream before commit. The table is unchanged.`,
      );
    this.notes.push(
      replacing
        ? `${text}: mode replace recreated the table with this run's types`
        : `${text}: the columns keep their type (values are cast to it)`,
    );
  }

  private async ensurePrimaryKey(): Promise<void> {
    const r = await this.conn.runAndReadAll(
      "SELECT constraint_column_names FROM duckdb_constraints() WHERE lower(table_name) = lower($1) AND schema_name = 'main' AND database_name = current_database() AND constraint_type = 'PRIMARY KEY'",
      [this.table],
    );
    const rows = r.getRowsJS();
    const want = this.primaryKey!.map((k) => k.toLowerCase());
    if (rows.length) {
      const have = (rows[0][0] as string[]).map((k) => k.toLowerCase());
      if (have.join("\0") !== want.join("\0"))
        throw new RunError(
          "output",
          `cannot merge into table \`${this.table}\` of ${this.output.path}: its primary key is (${have.join(", ")}), not (${this.primaryKey!.join(", ")})`,
        );
      return;
    }
    try {
      await this.conn.run(
        `ALTER TABLE ${q(this.table)} ADD PRIMARY KEY (${this.primaryKey!.map(q).join(", ")})`,
      );
    } catch (err) {
      throw new RunError(
        "output",
        `cannot merge into table \`${this.table}\` of ${this.output.path}: its rows are not unique by the primary key (${this.primaryKey!.join(", ")}) or it is missing, so they cannot be upserted (was it written with mode append?): ${(err as Error).message}`,
      );
    }
  }

  /** `<table>__invalid` holds this run's invalid records (and none when there are none). */
  private async replaceInvalid(): Promise<void> {
    const inv = this.invalid;
    if (!inv) return;
    const name = q(`${this.table}__invalid`);
    await this.conn.run(`DROP TABLE IF EXISTS ${name}`);
    if (!inv.rows) return;
    const meta = this.meta
      ? `, ${sqlString(this.ctx.runId)} AS ${q(RUN_ID_COLUMN)}, CAST(now() AS TIMESTAMP WITH TIME ZONE) AS ${q(LOADED_AT_COLUMN)}`
      : "";
    await this.conn.run(
      `CREATE TABLE ${name} AS SELECT record_id, CAST(record AS JSON) AS record, CAST(errors AS JSON) AS errors${meta} FROM ${q(inv.table)}`,
    );
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

function needsCast(kind: ColumnType): boolean {
  return kind === "timestamptz" || kind === "date" || kind === "json";
}

/** The columns of a table of the main schema, or null when there is no such table. */
async function tableColumns(
  conn: DuckDBConnection,
  table: string,
): Promise<{ name: string; type: string }[] | null> {
  const r = await conn.runAndReadAll(
    "SELECT column_name, data_type FROM duckdb_columns() WHERE lower(table_name) = lower($1) AND schema_name = 'main' AND database_name = current_database() ORDER BY column_index",
    [table],
  );
  const rows = r.getRows();
  if (!rows.length) return null;
  return rows.map((row) => ({ name: String(row[0]), type: String(row[1]) }));
}

/** Drops the staging tables a killed run left (`…__staging_<runId>`) in `file`; the dropped. */
export async function dropStagingTables(file: string, runId: string): Promise<string[]> {
  const eng = await engine(file, duckdbOptions());
  const conn = await eng.connect();
  try {
    const suffix = `__staging_${runId}`;
    const r = await conn.runAndReadAll(
      "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND database_name = current_database() AND suffix(table_name, $1)",
      [suffix],
    );
    const dropped: string[] = [];
    for (const [name] of r.getRows()) {
      await conn.run(`DROP TABLE IF EXISTS ${q(String(name))}`);
      dropped.push(String(name));
    }
    return dropped;
  } finally {
    conn.closeSync();
    eng.release();
  }
}
