import type { DuckDBConnection } from "@duckdb/node-api";
import type { OutputPlan } from "../compile/plan.js";
import { RunError } from "../shared/errors.js";
import { castInto, q, refuseLossyCasts, stagedRows } from "./duckdb-engine.js";
import type { StagedColumn, Stager } from "./duckdb-stager.js";
import { releaseHeap } from "./release-heap.js";
import { type ColumnType, DUCKDB_TYPES, LOADED_AT_COLUMN, RUN_ID_COLUMN, sqlString } from "./table-shape.js";
import type { WriterContext } from "./writer.js";

/** Child staging rows carry the position of their parent record (dropped at commit). */
export const PARENT_SEQ = "__pl_parent";

/** A child table of `nested: tables`: one array-of-objects field's items, staged apart. */
export interface ChildLoad {
  field: string;
  /** `<table>__<field>` */
  name: string;
  stager: Stager;
}

/** What a DuckDB stream staged, as its commit sees it. */
export interface Staged {
  readonly conn: DuckDBConnection;
  readonly output: OutputPlan;
  readonly ctx: WriterContext;
  readonly table: string;
  readonly meta: boolean;
  readonly primaryKey: string[] | null;
  readonly stager: Stager;
  readonly invalid: Stager | null;
  /** Notes for the report (columns added, types kept). */
  readonly notes: string[];
  /** nested: the parent positions a later record of the same key replaced. */
  readonly staleSeqs: number[];
  readonly dups: number;
}

type Existing = { name: string; type: string }[];

/**
 * The commit of the DuckDB output, inside the transaction the writer opens: the staged rows go
 * into the target by mode (replace: recreate; append: add columns, insert; merge: add columns,
 * make sure of the primary key, upsert); child tables and `<table>__invalid` beside them.
 */
export class DuckdbCommit {
  private readonly conn: DuckDBConnection;
  private readonly output: OutputPlan;
  private readonly ctx: WriterContext;
  private readonly table: string;
  private readonly meta: boolean;
  private readonly primaryKey: string[] | null;
  private readonly stager: Stager;
  private readonly invalid: Stager | null;
  private readonly notes: string[];
  private readonly staleSeqs: number[];
  private readonly dups: number;
  /**
   * Columns of an existing table whose type differs from the run's: table → lower-cased column
   * name → its type (a child table's column of a name the parent has too is another column).
   */
  private readonly kept = new Map<string, Map<string, string>>();

  constructor(s: Staged) {
    this.conn = s.conn;
    this.output = s.output;
    this.ctx = s.ctx;
    this.table = s.table;
    this.meta = s.meta;
    this.primaryKey = s.primaryKey;
    this.stager = s.stager;
    this.invalid = s.invalid;
    this.notes = s.notes;
    this.staleSeqs = s.staleSeqs;
    this.dups = s.dups;
  }

  async commitBody(): Promise<void> {
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
    if (existing) this.checkTypes(this.table, existing, cols);
    if (existing && output.mode !== "replace") await this.refuseLossyCasts(this.stager, cols, this.table);
    if (output.mode === "merge") await this.refuseNullKeys();
    const names = cols.map((c) => q(c.name));
    const select = this.selectSql();
    const insertCols = [...names, ...(this.meta ? [q(RUN_ID_COLUMN), q(LOADED_AT_COLUMN)] : [])].join(", ");
    if (output.mode === "replace" || !existing) {
      if (existing) await conn.run(`DROP TABLE ${target}`);
      const pk = output.mode === "merge" ? [`PRIMARY KEY (${this.primaryKey!.map(q).join(", ")})`] : [];
      await this.createTable(this.table, cols, pk);
      await this.insert(`INSERT INTO ${target} (${insertCols}) ${select}`);
      return;
    }
    const present = await this.addColumns(this.table, existing, cols);
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
  async commitChild(child: ChildLoad): Promise<void> {
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
    if (existing) this.checkTypes(child.name, existing, cols);
    if (existing && mode !== "replace") await this.refuseLossyCasts(st, cols, child.name);
    const meta = this.meta ? [q(RUN_ID_COLUMN), q(LOADED_AT_COLUMN)] : [];
    const insertCols = [...cols.map((c) => q(c.name)), ...meta].join(", ");
    const exprs = this.selectExprs(child.name, cols);
    const stale = this.staleSeqs.length ? `WHERE ${q(PARENT_SEQ)} NOT IN (${this.staleSeqs.join(", ")})` : "";
    const select = `SELECT ${exprs.join(", ")} FROM ${q(st.table)} ${stale}`;
    if (mode === "replace" || !existing) {
      if (existing) await conn.run(`DROP TABLE ${target}`);
      await this.createTable(child.name, cols);
    } else await this.addColumns(child.name, existing, cols);
    await this.insert(`INSERT INTO ${target} (${insertCols}) ${select}`);
  }

  /** The staged columns cast to their final types, then the metadata values. */
  private selectExprs(table: string, cols: StagedColumn[]): string[] {
    const kept = this.output.mode === "replace" ? undefined : this.kept.get(table);
    const exprs = cols.map((c) => {
      const e = runExpr(c);
      const to = kept?.get(c.name.toLowerCase());
      return to === undefined ? e : castInto(e, DUCKDB_TYPES[c.kind], to);
    });
    if (this.meta) exprs.push(sqlString(this.ctx.runId), "CAST(now() AS TIMESTAMP WITH TIME ZONE)");
    return exprs;
  }

  /** Creates table `name` with `cols`, the metadata columns, then `extra` definitions. */
  private async createTable(name: string, cols: StagedColumn[], extra: string[] = []): Promise<void> {
    const defs = cols.map((c) => `${q(c.name)} ${DUCKDB_TYPES[c.kind]}`);
    if (this.meta)
      defs.push(`${q(RUN_ID_COLUMN)} VARCHAR`, `${q(LOADED_AT_COLUMN)} TIMESTAMP WITH TIME ZONE`);
    defs.push(...extra);
    await this.conn.run(`CREATE TABLE ${q(name)} (${defs.join(", ")})`);
  }

  /** Adds the columns of `cols` (and metadata) table `name` lacks; its lower-cased names before. */
  private async addColumns(name: string, existing: Existing, cols: StagedColumn[]): Promise<Set<string>> {
    const target = q(name);
    const present = new Set(existing.map((c) => c.name.toLowerCase()));
    for (const c of cols) {
      if (present.has(c.name.toLowerCase())) continue;
      await this.conn.run(`ALTER TABLE ${target} ADD COLUMN ${q(c.name)} ${DUCKDB_TYPES[c.kind]}`);
      this.notes.push(`column \`${c.name}\` (${DUCKDB_TYPES[c.kind]}) added to table \`${name}\``);
    }
    if (this.meta)
      for (const [column, type] of [
        [RUN_ID_COLUMN, "VARCHAR"],
        [LOADED_AT_COLUMN, "TIMESTAMP WITH TIME ZONE"],
      ])
        if (!present.has(column))
          await this.conn.run(`ALTER TABLE ${target} ADD COLUMN ${q(column)} ${type}`);
    return present;
  }

  /** The staged rows with their final types, the last record of each key, in first-seen order. */
  private selectSql(): string {
    const exprs = this.selectExprs(this.table, this.stager.columns);
    // Without a repeated key, the file's order is the run's: a streaming read, no sort (a sort of
    // a big run would need more than DuckDB's memory limit beside read_json's buffers).
    if (!this.primaryKey || this.dups === 0) return `SELECT ${exprs.join(", ")} FROM ${q(this.stager.table)}`;
    return `SELECT ${exprs.join(", ")} FROM ${stagedRows(this.stager.table, this.primaryKey)} ORDER BY __pl_ord`;
  }

  /** Runs an insert from staging; a value DuckDB cannot cast is reported with its record. */
  private async insert(sql: string): Promise<void> {
    try {
      const load = this.conn.run(sql);
      // While DuckDB loads on its thread: the heap's garbage goes back before DuckDB's peak.
      releaseHeap(this.stager.stagedChars);
      await load;
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
        `SELECT __pl_row FROM ${q(this.stager.table)} WHERE ${q(c.name)} IS NOT NULL AND TRY_CAST(${q(c.name)} AS ${DUCKDB_TYPES[c.kind]}) IS NULL ORDER BY __pl_row LIMIT 1`,
      );
      const row = r.getRows()[0];
      if (row)
        return `record #${Number(row[0]) + 1} written: field \`${c.name}\` is not a valid ${c.kind === "date" ? "date" : "date-time"} (${DUCKDB_TYPES[c.kind]})`;
    }
    return null;
  }

  /**
   * Append and merge keep a column's type: a run's value that type cannot hold exactly fails the
   * commit, naming the record (DuckDB's cast rounded 1.5 into a BIGINT column to 2, silently, or
   * failed naming none).
   */
  private async refuseLossyCasts(st: Stager, cols: StagedColumn[], table: string): Promise<void> {
    const kept = this.kept.get(table);
    const checks = cols.flatMap((c) => {
      const to = kept?.get(c.name.toLowerCase());
      return to === undefined ? [] : [{ field: c.name, expr: runExpr(c), from: DUCKDB_TYPES[c.kind], to }];
    });
    if (!checks.length) return;
    // The rows the commit writes: a record a later one of its key replaces is not looked at.
    const rows =
      st === this.stager && this.primaryKey && this.dups > 0
        ? stagedRows(st.table, this.primaryKey)
        : q(st.table);
    await refuseLossyCasts(
      this.conn,
      rows,
      checks,
      `table \`${table}\` of ${this.output.path}`,
      "the table is recreated with the run's types",
    );
  }

  /**
   * `merge` keys every row by the primary key, a constraint whose columns cannot hold NULL: the
   * first staged record with a missing or null key part fails the commit, named (DuckDB's own
   * "NOT NULL constraint failed" named no record).
   */
  private async refuseNullKeys(): Promise<void> {
    const pk = this.primaryKey!;
    const names = new Set(this.stager.columns.map((c) => c.name));
    const missing = pk.find((k) => !names.has(k));
    const where = missing ? "true" : pk.map((k) => `${q(k)} IS NULL`).join(" OR ");
    const r = await this.conn.runAndReadAll(
      `SELECT __pl_row FROM ${q(this.stager.table)} WHERE ${where} ORDER BY __pl_row LIMIT 1`,
    );
    const row = r.getRows()[0];
    if (!row) return;
    throw new RunError(
      "output",
      `record #${Number(row[0]) + 1} written has no value for the primary key (${pk.join(", ")}): mode merge upserts each row of table \`${this.table}\` of ${this.output.path} by it, and its columns cannot hold NULL; leave such records out with \`filter\`, or write with mode append or replace`,
    );
  }

  /** Type changes are reported, never applied; `drift: fail` refuses the commit. */
  private checkTypes(
    table: string,
    existing: Existing,
    cols: { name: string; kind: ColumnType; pending?: boolean }[],
  ): void {
    const kept = new Map<string, string>();
    this.kept.set(table, kept);
    const types = new Map(existing.map((c) => [c.name.toLowerCase(), c]));
    const changed: string[] = [];
    for (const c of cols) {
      const old = types.get(c.name.toLowerCase());
      // A column of nulls only (or no value at all: a child table without items) has no type of
      // its own: its NULLs take the table's.
      if (c.pending) continue;
      if (old && old.type !== DUCKDB_TYPES[c.kind]) {
        changed.push(`\`${c.name}\` is ${old.type}, this run's is ${DUCKDB_TYPES[c.kind]}`);
        kept.set(c.name.toLowerCase(), old.type);
      }
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
  async replaceInvalid(): Promise<void> {
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

/** A staged column with its final type (date-times, dates and JSON are staged as text). */
function runExpr(c: StagedColumn): string {
  return needsCast(c.kind) ? `CAST(${q(c.name)} AS ${DUCKDB_TYPES[c.kind]})` : q(c.name);
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
