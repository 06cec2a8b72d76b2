import type pg from "pg";
import { describeDatabaseUrl } from "../compile/compile-output.js";
import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { type Key, requireKeyForMerge } from "./merge.js";
import { type CommitScope, commitInvalid, commitLoads, type Loaded } from "./postgres-commit.js";
import { connectClient, connectionError, loadError } from "./postgres-connection.js";
import { type ColumnDef, type CopyHost, dropLoads, InvalidRows, TableLoad } from "./postgres-copy.js";
import { safeJson } from "./postgres-encode.js";
import {
  arrayFields,
  type ChildRow,
  childColumns,
  childRowsOf,
  fieldColumns,
  newItemColumns,
} from "./postgres-nested.js";
import { checkMetadataNames, checkTableName, ignoreRace, qi, tableColumns } from "./postgres-sql.js";
import { ensureStateTable, readState, writeState } from "./postgres-state.js";
import {
  COPY_AHEAD,
  KeyCounter,
  openStreamed,
  rowKeyFunction,
  type StreamedMerge,
} from "./postgres-upsert.js";
import {
  type ColumnType,
  checkIdent,
  childTableName,
  existingChildFields,
  invalidTableName,
  nestedFields,
  schemaColumnTypes,
} from "./table-shape.js";
import type { CommitState, InvalidEntry, RecordWriter, StreamState, WriterContext } from "./writer.js";

/** How long a failed commit waits for its ROLLBACK before the connection is closed instead. */
const ROLLBACK_WAIT_MS = 5_000;

export { dropStaging } from "./postgres-connection.js";

/** Records buffered before they are encoded: new fields are typed from all the batch's values. */
const BATCH = 1000;

/**
 * PostgreSQL: one table per stream (`output.table`, default the stream's name) in `output.schema`.
 *
 * A run loads its records with `COPY … FROM STDIN` (text format) into a staging table
 * `_staging_<run id>_<hash of the table name>` in the same schema; `commit()` then changes the
 * target in ONE transaction, so readers never see a half-loaded table and a failed or killed run
 * leaves it exactly as it was:
 * - replace (or no target yet): the old table is dropped and the staging table renamed to it;
 * - append: `INSERT INTO target SELECT … FROM staging`;
 * - merge: `INSERT … ON CONFLICT (primary key) DO UPDATE`, on a PRIMARY KEY constraint created on
 *   the target when it has none. A new record replaces the old row whole.
 * Into a table that exists (without `nested: tables`), merge and append are streamed: one
 * transaction from the open, a batch upserted (inserted) while the next is fetched
 * (postgres-upsert.ts); the commit ends it.
 * Within a run the last record of a primary key wins (the staging rows carry a `_seq`).
 *
 * The same transaction replaces `<table>__invalid` (the run's invalid records) and child tables
 * (`nested: tables`), and writes the stream's incremental state into `_pipelines_state`.
 * A staging table a killed run left is dropped by the next run (run-lock.ts, {@link dropStaging}).
 *
 * Values are written from their JSON form: integers beyond 2^53 arrive as BigInt and are written
 * with all their digits; a string holding NUL (U+0000), which PostgreSQL text and jsonb cannot
 * store, fails the stream with an error naming the record and field (nothing is committed); a
 * value whose JSON type does not fit a typed column (a string in a bigint column) likewise.
 */
export async function openPostgresWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  const settings = output.postgres;
  const tablePlan = output.table;
  if (!settings || !tablePlan) throw new Error("postgres output without its settings");
  const primaryKey = ctx.primaryKey?.length ? [...new Set(ctx.primaryKey)] : null;
  requireKeyForMerge(output, primaryKey);
  const where = describeDatabaseUrl(settings.url);
  const redact = (s: string) => (ctx.redactor ? ctx.redactor.text(s) : s);
  checkTableName(settings.schema, tablePlan.name, `postgres output of stream ${ctx.stream}`, redact);
  let client: pg.Client;
  try {
    client = await connectClient(settings.url);
  } catch (err) {
    throw connectionError(err, where, redact);
  }
  const writer = new PostgresWriter(client, output, ctx, primaryKey, where, redact);
  try {
    await writer.open();
    return writer;
  } catch (err) {
    await writer.abort().catch(() => {});
    throw writer.fail(err);
  }
}

class PostgresWriter implements RecordWriter, CopyHost {
  readonly qs: string;
  readonly runId: string;
  private readonly table: string;
  private readonly main: TableLoad;
  private readonly children = new Map<string, TableLoad>();
  private readonly childSchemas: Map<string, Record<string, unknown> | null>;
  private readonly invalidRows: InvalidRows;
  private active: TableLoad | null = null;
  private readonly schemaTypes: Map<string, ColumnType>;
  private readonly planned: string[];
  private batch: Row[] = [];
  private seq = 0;
  private readonly keyOf: ((r: Row) => Key | null) | null;
  private keys = new KeyCounter();
  private saved: StreamState | null = null;
  private readonly notes: string[] = [];
  private readonly typeChanges: string[] = [];
  private closed = false;
  private streamed: StreamedMerge | null = null;
  /**
   * Staging tables are UNLOGGED when the run appends or merges (they are only read by the commit:
   * no WAL for them, half the writes); with replace the staging table becomes the target, so it
   * is logged from the start.
   */
  readonly unloggedStaging: boolean;
  private readonly nestedMode: boolean;
  /** Fields seen that are not child tables (so a later array of objects stays a JSON column). */
  private readonly plainFields = new Set<string>();

  constructor(
    readonly client: pg.Client,
    private readonly output: OutputPlan,
    private readonly ctx: WriterContext,
    private readonly primaryKey: string[] | null,
    private readonly where: string,
    readonly redact: (s: string) => string,
  ) {
    this.qs = qi(output.postgres!.schema);
    this.runId = ctx.runId;
    this.unloggedStaging = output.mode !== "replace";
    this.table = output.table!.name;
    const meta = output.table!.metadataColumns;
    this.main = new TableLoad(this.table, ctx.runId, [["_seq", "bigint"]], meta, this);
    this.invalidRows = new InvalidRows(this.table, this);
    this.schemaTypes = schemaColumnTypes(ctx.schema);
    this.nestedMode = output.table!.nested === "tables";
    this.childSchemas = this.nestedMode ? nestedFields(ctx.schema) : new Map();
    this.planned = [...new Set([...(ctx.columns ?? []), ...(primaryKey ?? [])])].filter(
      (c) => !this.childSchemas.has(c),
    );
    this.keyOf = primaryKey ? rowKeyFunction(primaryKey) : null;
  }

  /** Reads the target's columns and the saved state, creates the staging table. */
  async open(): Promise<void> {
    const { client } = this;
    const schema = this.output.postgres!.schema;
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.qs}`).catch(ignoreRace);
    await ensureStateTable(client, this.qs);
    if (this.output.stateKey)
      this.saved = await readState(client, this.qs, this.output.stateKey, this.ctx.stream);
    const keepTarget = this.output.mode !== "replace";
    if (keepTarget) this.main.targetColumns = await tableColumns(client, schema, this.table);
    if (this.main.meta) checkMetadataNames([...this.planned, ...this.schemaTypes.keys()], this.table);
    const fresh: ColumnDef[] = [];
    // Fields the schema types (or the table has) get their column now; others when values come.
    for (const name of this.planned)
      if (this.schemaTypes.has(name) || this.main.targetColumns?.has(name))
        fresh.push(this.main.columnFor(name, this.schemaTypes.get(name) ?? null, this.typeChanges));
    for (const [field, items] of this.childSchemas) await this.openChild(field, items);
    // The child tables an earlier run made are children from the start (existingChildFields).
    if (this.nestedMode && this.primaryKey) {
      const r = await client.query<{ table_name: string; columns: string[] }>(
        "SELECT table_name, array_agg(column_name::text) AS columns FROM information_schema.columns WHERE table_schema = $1 AND left(table_name, length($2)) = $2 GROUP BY table_name ORDER BY table_name",
        [schema, `${this.table}__`],
      );
      const tables = r.rows.map((t): [string, string[]] => [t.table_name, t.columns]);
      for (const field of existingChildFields(this.table, tables, this.primaryKey, this.ctx.schema))
        if (!this.children.has(field)) await this.openChild(field, null);
    }
    if (this.typeChanges.length && this.ctx.drift === "fail")
      throw new RunError(
        "drift",
        `drift: fail — ${this.typeChanges.join("; ")}. Nothing was loaded; the table is unchanged.`,
      );
    const { mode } = this.output;
    this.streamed = await openStreamed(this.scope(), this.main, mode, this.primaryKey, this.nestedMode);
    if (this.streamed?.mode === "append") this.keys = new KeyCounter(true);
    await this.main.addColumns(fresh);
  }

  get copyAhead(): number {
    return this.streamed ? COPY_AHEAD : 0;
  }

  busy(): Promise<void> | null {
    return this.streamed?.busy ?? null;
  }

  private scope(): CommitScope {
    const { client, unloggedStaging, notes, redact } = this;
    return { client, schema: this.output.postgres!.schema, unloggedStaging, notes, redact };
  }

  private loaded(): Loaded {
    const { table, main, primaryKey } = this;
    const dups = this.keys.dups;
    const invalid = this.invalidRows.load;
    return { table, main, children: [...this.children.values()], invalid, primaryKey, dups };
  }

  private async openChild(field: string, items: Record<string, unknown> | null): Promise<TableLoad> {
    const name = childTableName(this.table, field);
    try {
      checkIdent(name, undefined, "child table");
    } catch (err) {
      throw new RunError("output", (err as Error).message);
    }
    const load = new TableLoad(name, this.runId, [["_parent_seq", "bigint"]], this.main.meta, this);
    if (this.output.mode !== "replace")
      load.targetColumns = await tableColumns(this.client, this.output.postgres!.schema, name);
    const keyType = (k: string) => this.schemaTypes.get(k) ?? this.main.columns.get(k)?.type ?? null;
    const cols = childColumns(load, field, items, this.primaryKey!, keyType, this.typeChanges);
    await load.addColumns(cols);
    this.children.set(field, load);
    return load;
  }

  write(record: Row): Promise<void> | undefined {
    this.batch.push(record);
    if (this.batch.length < BATCH) return undefined;
    const streamed = this.streamed;
    // A failed upsert makes the next statements fail: its error is the one to report.
    return this.flush().catch((err) => Promise.reject(this.fail(streamed ? streamed.cause(err) : err)));
  }

  duplicates(): number {
    return this.keys.dups;
  }

  savedState(): StreamState | null {
    return this.saved;
  }

  warnings(): string[] {
    return [...this.typeChanges, ...this.notes];
  }

  invalidTarget(): string {
    return `table "${this.output.postgres!.schema}"."${invalidTableName(this.table)}"`;
  }

  async endActive(): Promise<void> {
    const active = this.active;
    this.active = null;
    if (active) await active.endCopy();
  }

  /** Ends the COPY in progress without waiting for the server (a streamed merge's batch). */
  private endQueued(): Promise<void> {
    const active = this.active;
    this.active = null;
    return active ? active.endCopyQueued() : Promise.resolve();
  }

  /** Ends the COPY of the table loaded before `load`. */
  async activate(load: TableLoad): Promise<void> {
    if (this.active && this.active !== load) await this.active.endCopy();
    this.active = load;
  }

  /** Invalid records are gathered and sent after the batch (one COPY at a time). */
  async writeInvalid(entry: InvalidEntry): Promise<void> {
    await this.invalidRows.add(entry);
  }

  /** Encodes the buffered records: new fields become columns first. */
  private async flush(): Promise<void> {
    const rows = this.batch;
    await this.invalidRows.flush();
    if (!rows.length) return;
    this.batch = [];
    await this.discover(rows);
    /** Child rows of the batch, sent after the parent rows (one COPY at a time). */
    const childRows = new Map<TableLoad, ChildRow[]>();
    for (const load of this.children.values()) childRows.set(load, []);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      const seq = ++this.seq;
      if (this.keyOf) {
        const key = this.keyOf(row);
        if (key === null) {
          if (this.output.mode === "merge" || this.nestedMode)
            throw new RunError(
              "output",
              this.redact(
                `record ${this.describe(row, seq)} has no value for the primary key (${this.primaryKey!.join(", ")}): it cannot be merged into table ${this.table}`,
              ),
            );
        } else if (this.keys.note(key, this.streamed?.batch) && this.streamed)
          this.streamed.duplicate(this.keys.previous);
      }
      const fixed = String(seq);
      const sent = this.main.put(fixed, row, this.describe, seq);
      if (sent) await sent;
      if (this.children.size === 0) continue;
      const id = () => this.describe(row, seq);
      for (const [field, load] of this.children) {
        childRowsOf(row, field, load, this.primaryKey!, fixed, id, this.redact, childRows.get(load)!);
      }
    }
    for (const [load, list] of childRows)
      for (const [seq, child, id] of list) {
        const sent = load.put(seq, child, id);
        if (sent) await sent;
      }
    const streamed = this.streamed;
    if (streamed && (streamed.rows += rows.length) >= streamed.batchRows)
      await streamed.send(() => this.endQueued());
  }

  /** Fields `rows` bring that have no column yet: child tables (nested: tables), or columns. */
  private async discover(rows: Row[]): Promise<void> {
    const fresh = new Set<string>();
    for (const row of rows)
      for (const name in row)
        if (!this.main.columns.has(name) && !this.children.has(name) && !fresh.has(name)) fresh.add(name);
    const newChildren =
      this.nestedMode && this.primaryKey ? arrayFields(rows, fresh, this.plainFields, this.primaryKey) : [];
    if (fresh.size)
      await this.main.addColumns(fieldColumns(rows, fresh, this.main, this.schemaTypes, this.typeChanges));
    for (const name of fresh) this.plainFields.add(name);
    // After the parent's columns: a child's key columns take their types.
    for (const name of newChildren) await this.openChild(name, null);
    for (const [field, load] of this.children) {
      const cols = newItemColumns(rows, field, load, this.typeChanges);
      if (cols.length) await load.addColumns(cols);
    }
  }

  /** How a record is named in errors: its place in the run and its primary key. */
  private readonly describe = (row: Row, n: number): string =>
    this.primaryKey
      ? `#${n} (${this.primaryKey.map((k) => `${k}=${safeJson(row[k])}`).join(", ")})`
      : `#${n}`;

  async commit(state?: CommitState | null): Promise<void> {
    if (this.streamed) return this.commitStreamed(this.streamed, state);
    const { client } = this;
    try {
      await this.flush();
      if (!this.main.created) await this.main.addColumns([]);
      for (const load of this.loads()) await load.endCopy();
    } catch (err) {
      throw this.fail(err);
    }
    try {
      await client.query("BEGIN");
      await commitLoads(this.scope(), this.loaded(), this.output.mode);
      await this.finish(state);
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw this.fail(err);
    }
    await this.close();
  }

  /** A streamed merge: the last batch, invalid records and state, in the transaction open since open(). */
  private async commitStreamed(streamed: StreamedMerge, state?: CommitState | null): Promise<void> {
    try {
      await this.flush();
      await streamed.send(() => this.endQueued(), true);
      await streamed.settle();
      for (const load of this.loads()) await load.endCopy();
      await this.client.query(`DROP TABLE ${this.main.q(this.main.staging)}`);
      await commitInvalid(this.scope(), this.loaded());
      await this.finish(state);
    } catch (err) {
      // A record refused while its COPY was open (the last batch's): the COPY is failed first, or
      // the ROLLBACK would wait behind it forever (the run hung, its transaction open).
      for (const load of this.loads()) load.dropCopy();
      await this.rollback();
      throw this.fail(streamed.cause(err));
    }
    await this.close();
  }

  /**
   * ROLLBACK, not waited for longer than ROLLBACK_WAIT_MS: a connection that does not answer is
   * closed by abort(), and the server rolls the transaction back when it goes.
   */
  private async rollback(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.client.query("ROLLBACK").catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ROLLBACK_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  private async finish(state?: CommitState | null): Promise<void> {
    if (state && this.output.stateKey)
      await writeState(this.client, this.qs, this.output.stateKey, this.ctx.stream, state);
    await this.client.query("COMMIT");
  }

  private *loads(): Iterable<TableLoad> {
    yield this.main;
    yield* this.children.values();
    if (this.invalidRows.load) yield this.invalidRows.load;
  }

  /** The stream failed: the staging tables go, the target is untouched. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.batch = [];
    for (const load of this.loads()) load.dropCopy();
    await this.client.end().catch(() => {});
    this.closed = true;
    await dropLoads(this.output.postgres!.url, [...this.loads()]);
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.end().catch(() => {});
  }

  /** Any error as a RunError with a clear, redacted message. */
  fail(err: unknown): RunError {
    return loadError(err, this.where, this.table, this.redact, this.client);
  }
}
