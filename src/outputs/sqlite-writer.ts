import { mkdir } from "node:fs/promises";
import path from "node:path";
import Database from "better-sqlite3";
import { rejectedTable, stagingTable } from "../compile/layout.js";
import type { OutputPlan } from "../compile/plan.js";
import { jsonTextAt, scalarAt } from "../records/byte-check.js";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { isInheritedName, isWellFormed, LONE_SURROGATE, ownField } from "../shared/json-text.js";
import { T_ARRAY, T_OBJECT } from "../shared/json-types.js";
import { requireKeyForMerge } from "./merge.js";
import {
  binder,
  columnDef,
  inferType,
  JsonText,
  q,
  rowidName,
  type SqlType,
  schemaTypes,
} from "./sqlite-columns.js";
import { STATE_TABLE, stateValue } from "./table-shape.js";
import type { CommitState, RecordWriter, StreamState, WriterContext } from "./writer.js";

/** Rows per insert transaction: each batch blocks the event loop for a few milliseconds only. */
const BATCH = 1000;
/**
 * Rows per insert statement without a primary key (with one, each row's upsert says whether it
 * replaced an earlier row). 50 rows of 10 columns: 200,000 rows in 315–408 ms against 486–773 ms
 * one by one (a script, 3 rounds); 100 rows were no faster.
 */
const GROUP_ROWS = 50;
/** SQLite's limit on the parameters of one statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32). */
const MAX_VARIABLES = 32766;
const BUSY_TIMEOUT_MS = 30_000;

/**
 * SQLite: one database file per pipeline, one table per stream, named after the stream.
 *
 * Records are inserted, in batches of {@link BATCH} rows per transaction, into a staging table
 * `<stream>__staging_<runId>` in the same file; the table the stream commits to is only touched
 * by one transaction in `commit()`, so a failed stream leaves it exactly as it was:
 * - replace (or a target that does not exist yet): drop the old table, rename staging to it;
 * - append: `INSERT INTO target SELECT … FROM staging`;
 * - merge: upsert by primary key (`INSERT … ON CONFLICT(pk) DO UPDATE`, which needs a UNIQUE
 *   index on the key: created as `<stream>__pk` if missing). A new record replaces the old row
 *   whole (target columns it does not have become NULL), in place; new keys are appended.
 * `abort()` drops the staging table.
 *
 * Columns: the schema's properties (typed from `ctx.schema` when given: integer and boolean →
 * INTEGER (0/1), number → REAL, string → TEXT, anything else → TEXT holding JSON; a nullable type
 * uses its non-null type), the primary key, then other fields as they appear (`ALTER TABLE ADD
 * COLUMN`), typed from the first non-null value in the batch that brings them, or untyped if
 * that batch only has nulls. Arrays and objects are stored as JSON text, booleans as 0/1.
 *
 * With a primary key, the staging table has a UNIQUE index on it and rows are upserted: a
 * duplicate within the run replaces the earlier row in place (its position, the last content)
 * and is counted.
 *
 * Several streams of a pipeline share the file, each through its own connection: the file is
 * in WAL mode with a busy timeout. better-sqlite3 is synchronous, so every transaction runs
 * to its end within one call and never overlaps another in this process.
 */
export async function openSqliteWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  const primaryKey = ctx.primaryKey?.length ? [...new Set(ctx.primaryKey)] : null;
  requireKeyForMerge(output, primaryKey);
  await mkdir(path.dirname(output.path), { recursive: true });
  const db = new Database(output.path);
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    // Rename staging over the target without re-checking the schema: a user's view on the target
    // points at a dropped table for a moment inside the commit, and binds to the new one by name.
    db.pragma("legacy_alter_table = ON");
    return new SqliteWriter(db, output, ctx, primaryKey);
  } catch (err) {
    db.close();
    throw err;
  }
}

class SqliteWriter implements RecordWriter {
  private readonly table: string;
  private readonly staging: string;
  private readonly schemaTypes: Map<string, SqlType>;
  /** Columns created before any record: the schema's properties and the primary key. */
  private readonly planned: string[];
  /** The staging table's columns in order, with their declared types. */
  private readonly columns = new Map<string, SqlType>();
  /** Lower-cased name → column: SQLite column names ignore case. */
  private readonly folded = new Map<string, string>();
  private batch: Row[] = [];
  private created = false;
  private insert: Database.Statement | null = null;
  /** Without a key: the insert of GROUP_ROWS rows at once (flush), for the current columns. */
  private insertMany: Database.Statement | null = null;
  private maxRowid = 0;
  private dups = 0;
  /** Records given to the staging table so far (to name a refused one). */
  private flushed = 0;
  private closed = false;
  private readonly stream: string;
  private readonly runId: string;
  private readonly saved: StreamState | null;

  constructor(
    private readonly db: Database.Database,
    private readonly output: OutputPlan,
    ctx: WriterContext,
    private readonly primaryKey: string[] | null,
  ) {
    this.table = ctx.stream;
    this.runId = ctx.runId;
    this.staging = stagingTable(ctx.stream, ctx.runId);
    this.schemaTypes = schemaTypes(ctx.schema);
    this.planned = [...new Set([...(ctx.columns ?? []), ...(primaryKey ?? [])])];
    db.exec(`DROP TABLE IF EXISTS ${q(this.staging)}`);
    this.stream = ctx.stream;
    this.saved = this.readState();
  }

  write(record: Row): undefined {
    this.batch.push(record);
    if (this.batch.length >= BATCH) this.flush();
    return undefined;
  }

  /**
   * Paged JSON (src/run/page-work/): each record to write comes here first, in order — parsed
   * (`seeRow`) or checked from its bytes (`seeMembers`) — and goes into the batch as `write` puts
   * it (a refusal is thrown here, naming the record); `writeLines` then only checks that as many
   * came (the JSON lines it is given are not read).
   */
  private seen = 0;

  readonly seeRow = (row: Row, _suspect: boolean): void => {
    this.write(row);
    this.seen++;
  };

  /**
   * A checked record (canonical JSON, numbers of at most 15 digits, no lone surrogate on the page)
   * made a row from its bytes: strings decoded, numbers read, arrays and objects kept as their
   * JSON text (JsonText). A member named `__proto__` leaves the record to the parse (`seeRow`).
   */
  readonly seeMembers: NonNullable<RecordWriter["seeMembers"]> = (names, types, n, values, src) => {
    const row: Row = {};
    for (let k = 0; k < n; k++) {
      const name = names[k];
      if (name === "__proto__") return false;
      const s = values[2 * k];
      const e = values[2 * k + 1];
      const type = types[k];
      row[name] =
        type === T_ARRAY || type === T_OBJECT
          ? new JsonText(jsonTextAt(src, s, e))
          : scalarAt(src, type, s, e);
    }
    this.write(row);
    this.seen++;
    return true;
  };

  writeLines(_json: Uint8Array | string, count: number): undefined {
    if (count !== this.seen) throw new Error(`sqlite: ${count} records to write, ${this.seen} given`);
    this.seen = 0;
    return undefined;
  }

  duplicates(): number {
    this.flush(); // the rows still buffered count too (the run asks before commit)
    return this.dups;
  }

  savedState(): StreamState | null {
    return this.saved;
  }

  /** The stream's state the last commit wrote into `_pipelines_state` of this file. */
  private readState(): StreamState | null {
    if (!this.output.stateKey || !this.tableExists(STATE_TABLE)) return null;
    const text = this.db
      .prepare(`SELECT state FROM ${q(STATE_TABLE)} WHERE pipeline = ? AND stream = ?`)
      .pluck()
      .get(this.output.stateKey, this.stream);
    return typeof text === "string" ? (JSON.parse(text) as StreamState) : null;
  }

  /** Upserts the stream's state into `_pipelines_state`; called inside the commit transaction. */
  private saveState(state: CommitState | null | undefined): void {
    if (!state || !this.output.stateKey) return;
    const value = stateValue(state);
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS ${q(STATE_TABLE)} (pipeline TEXT NOT NULL, stream TEXT NOT NULL, state TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (pipeline, stream))`,
    );
    this.db
      .prepare(
        `INSERT INTO ${q(STATE_TABLE)} VALUES (?, ?, ?, ?) ON CONFLICT (pipeline, stream) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
      )
      .run(this.output.stateKey, this.stream, JSON.stringify(value), value.updated_at);
  }

  async commit(state?: CommitState | null): Promise<void> {
    this.flush();
    if (!this.created) this.addColumns([]);
    const { db, output } = this;
    const target = q(this.table);
    const staging = q(this.staging);
    db.transaction(() => {
      // The state first: it commits, or not, with the rows (one transaction).
      this.saveState(state);
      const exists = this.tableExists(this.table);
      if (!this.created) {
        // No column at all (no schema, no record): an empty replace empties the table.
        if (exists && output.mode === "replace") db.exec(`DELETE FROM ${target}`);
        return;
      }
      if (output.mode === "replace" || !exists) {
        if (this.primaryKey) db.exec(`DROP INDEX ${q(`${this.staging}__pk`)}`);
        db.exec(`DROP TABLE IF EXISTS ${target}`);
        db.exec(`ALTER TABLE ${staging} RENAME TO ${target}`);
        if (output.mode === "merge") db.exec(this.uniqueIndexSql());
        return;
      }
      const targetColumns = this.tableColumns(this.table);
      const present = new Set(targetColumns.map((c) => c.toLowerCase()));
      for (const [name, type] of this.columns) {
        if (!present.has(name.toLowerCase()))
          db.exec(`ALTER TABLE ${target} ADD COLUMN ${columnDef(name, type)}`);
      }
      const names = [...this.columns.keys()].map(q).join(", ");
      const order = rowidName([...this.columns.keys()]);
      if (output.mode === "append") {
        const insert = db.transaction(() => {
          db.exec(`INSERT INTO ${target} (${names}) SELECT ${names} FROM ${staging} ORDER BY ${order}`);
        });
        try {
          insert(); // a savepoint inside the commit transaction
        } catch (err) {
          // Append keeps every row: the unique index an earlier merge created (ours, by its name)
          // gives way; a later merge recreates it, or says why it cannot.
          const ours = `${this.table}__pk`;
          if ((err as { code?: string }).code !== "SQLITE_CONSTRAINT_UNIQUE" || !this.indexExists(ours))
            throw err;
          db.exec(`DROP INDEX ${q(ours)}`);
          insert();
        }
      } else {
        try {
          db.exec(this.uniqueIndexSql());
        } catch (err) {
          throw new Error(
            `cannot merge into table \`${this.table}\` of ${output.path}: its rows are not unique by the primary key ` +
              `(${this.primaryKey!.join(", ")}), so they cannot be upserted (was it written with mode append?): ` +
              (err as Error).message,
          );
        }
        const set = [
          ...targetColumns,
          ...[...this.columns.keys()].filter((c) => !present.has(c.toLowerCase())),
        ]
          .map(
            (c) =>
              `${q(c)} = ${this.folded.has(c.toLowerCase()) ? `excluded.${q(this.folded.get(c.toLowerCase())!)}` : "NULL"}`,
          )
          .join(", ");
        db.exec(
          `INSERT INTO ${target} (${names}) SELECT ${names} FROM ${staging} WHERE true ORDER BY ${order} ` +
            `ON CONFLICT (${this.primaryKey!.map(q).join(", ")}) DO UPDATE SET ${set}`,
        );
      }
      db.exec(`DROP TABLE ${staging}`);
    }).immediate();
    this.close();
  }

  /** A rejected run: its staging table is kept as `<stream>__rejected_<runId>`; the target is untouched. */
  async keepRejected(): Promise<string> {
    this.flush();
    if (!this.created) this.addColumns([]);
    const name = rejectedTable(this.table, this.runId);
    if (this.created) this.db.exec(`ALTER TABLE ${q(this.staging)} RENAME TO ${q(name)}`);
    this.close();
    return `${this.output.path} (table ${name})`;
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.batch = [];
    try {
      this.db.exec(`DROP TABLE IF EXISTS ${q(this.staging)}`);
    } finally {
      this.close();
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.insert = null;
    this.db.close();
  }

  private uniqueIndexSql(): string {
    const pk = this.primaryKey!.map(q).join(", ");
    return `CREATE UNIQUE INDEX IF NOT EXISTS ${q(`${this.table}__pk`)} ON ${q(this.table)} (${pk})`;
  }

  /** Inserts the buffered rows in one transaction. */
  private flush(): void {
    if (!this.batch.length) return;
    const rows = this.batch;
    this.batch = [];
    this.addColumns(rows);
    if (!this.created) return; // records without any field, and no schema: nothing to store
    const insert = (this.insert ??= this.prepareInsert());
    const names = [...this.columns.keys()];
    const binders = [...this.columns].map(([name, type]) => binder(type, name));
    const inherited = names.map(isInheritedName);
    const width = names.length;
    // Without a key, rows go GROUP at a time through one statement (a third less time than a
    // statement per row: fewer calls into SQLite); the rest of the batch one by one.
    const group = this.primaryKey ? 1 : Math.max(1, Math.min(GROUP_ROWS, Math.floor(MAX_VARIABLES / width)));
    const many = group > 1 && rows.length >= group ? (this.insertMany ??= this.prepareInsert(group)) : null;
    const values = new Array<unknown>(width * group);
    const one = group > 1 ? new Array<unknown>(width) : values;
    const first = this.flushed + 1;
    this.flushed += rows.length;
    const bind = (into: unknown[], at: number, r: number): void => {
      const row = rows[r];
      try {
        for (let i = 0; i < width; i++)
          into[at + i] = binders[i](inherited[i] ? ownField(row, names[i]) : row[names[i]]);
      } catch (err) {
        if (err instanceof RunError) throw err; // nested too deep
        throw new RunError("output", `record #${first + r}, ${(err as Error).message} (table ${this.table})`);
      }
    };
    this.db
      .transaction(() => {
        let r = 0;
        if (many)
          for (; r + group <= rows.length; r += group) {
            for (let k = 0; k < group; k++) bind(values, k * width, r + k);
            many.run(values);
          }
        for (; r < rows.length; r++) {
          bind(one, 0, r);
          if (!this.primaryKey) {
            insert.run(one);
            continue;
          }
          const rowid = insert.get(one) as number;
          if (rowid <= this.maxRowid) this.dups++;
          else this.maxRowid = rowid;
        }
      })
      .immediate();
  }

  /** Creates the staging table, or adds the columns `rows` bring. */
  private addColumns(rows: Row[]): void {
    const fresh: string[] = [];
    const add = (name: string): void => {
      if (this.columns.has(name) || fresh.includes(name)) return;
      // SQLite reads SQL text up to a NUL: no quoting can put one in a column name.
      if (name.includes("\0")) {
        throw new RunError(
          "output",
          `field ${JSON.stringify(name)} holds a NUL character, which an SQLite column name cannot hold (table ${this.table}); select the fields to keep with \`fields\`, or write jsonl, json or csv`,
        );
      }
      if (!isWellFormed(name))
        throw new RunError(
          "output",
          `field ${JSON.stringify(name)}: its name ${LONE_SURROGATE} (table ${this.table})`,
        );
      const other =
        this.folded.get(name.toLowerCase()) ?? fresh.find((f) => f.toLowerCase() === name.toLowerCase());
      if (other !== undefined) {
        throw new Error(
          `fields \`${other}\` and \`${name}\` differ only in case: SQLite column names ignore case (table ${this.table})`,
        );
      }
      fresh.push(name);
    };
    if (!this.created) for (const name of this.planned) add(name);
    for (const row of rows) for (const name in row) if (!this.columns.has(name)) add(name);
    if (!fresh.length) return;
    const defs: string[] = [];
    for (const name of fresh) {
      const type = this.schemaTypes.get(name) ?? inferType(rows, name);
      this.columns.set(name, type);
      this.folded.set(name.toLowerCase(), name);
      defs.push(columnDef(name, type));
    }
    const staging = q(this.staging);
    if (!this.created) {
      this.db.exec(`CREATE TABLE ${staging} (${defs.join(", ")})`);
      if (this.primaryKey) {
        const pk = this.primaryKey.map(q).join(", ");
        this.db.exec(`CREATE UNIQUE INDEX ${q(`${this.staging}__pk`)} ON ${staging} (${pk})`);
      }
      this.created = true;
    } else {
      this.db.transaction(() => {
        for (const def of defs) this.db.exec(`ALTER TABLE ${staging} ADD COLUMN ${def}`);
      })();
    }
    this.insert = null;
    this.insertMany = null;
  }

  /** The insert of one row (upserting on the key), or of `rows` rows (no key). */
  private prepareInsert(rows = 1): Database.Statement {
    const names = [...this.columns.keys()];
    const cols = names.map(q).join(", ");
    const row = `(${names.map(() => "?").join(", ")})`;
    let sql = `INSERT INTO ${q(this.staging)} (${cols}) VALUES ${Array<string>(rows).fill(row).join(", ")}`;
    if (!this.primaryKey) return this.db.prepare(sql);
    const set = names.map((n) => `${q(n)} = excluded.${q(n)}`).join(", ");
    sql += ` ON CONFLICT (${this.primaryKey.map(q).join(", ")}) DO UPDATE SET ${set} RETURNING ${rowidName(names)}`;
    return this.db.prepare(sql).pluck();
  }

  private tableExists(name: string): boolean {
    return (
      this.db
        .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE")
        .get(name) !== undefined
    );
  }

  private indexExists(name: string): boolean {
    return (
      this.db
        .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ? COLLATE NOCASE")
        .get(name) !== undefined
    );
  }

  private tableColumns(name: string): string[] {
    return (this.db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(name) as string[]) ?? [];
  }
}

/** Drops those of `tables` that exist in the database `file` (a killed run's staging tables); the dropped. */
export function dropTables(file: string, tables: string[]): string[] {
  const db = new Database(file);
  try {
    const dropped: string[] = [];
    for (const t of tables) {
      if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t)) continue;
      db.exec(`DROP TABLE ${q(t)}`);
      dropped.push(t);
    }
    return dropped;
  } finally {
    db.close();
  }
}
