import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { outputTempFile, rejectedPath } from "../compile/layout.js";
import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { fileExists } from "./atomic-file.js";
import {
  castInto,
  type Engine,
  engine,
  engineSettings,
  q,
  refuseLossyCasts,
  stagedRows,
  withMemory,
} from "./duckdb-engine.js";
import { Stager } from "./duckdb-stager.js";
import { countDuplicates, jsonKeyFunction, type Key, noteKey, requireKeyForMerge } from "./merge.js";
import { releaseHeap } from "./release-heap.js";
import {
  DUCKDB_TYPES,
  LOADED_AT_COLUMN,
  RUN_ID_COLUMN,
  schemaColumnTypes,
  sqlString,
} from "./table-shape.js";
import type { RecordWriter, WriterContext } from "./writer.js";

/**
 * Rows per Parquet row group. DuckDB's default (122,880) buffers a whole row group beside the
 * staging reader, past the engine's 64 MB limit (it spills): 32,768 measured faster and about
 * 20 MiB (200,000 records) to 40 MiB (2,000,000) lower in peak memory, and is still a row group
 * of a size Parquet readers handle well. A row group ends at the end of a staging file's rows
 * (duckdb-stager.ts, STAGING_PART_CHARS) once it has this many: it may hold one file's rows more.
 */
export const PARQUET_ROW_GROUP_SIZE = 32_768;

/**
 * Parquet, written by DuckDB: one file per stream. Records are staged in an in-memory DuckDB
 * (spilling to `.<file>.<runId>.spill.tmp` beside the target when large), then `COPY … TO` a
 * temporary file `.<file>.<runId>.tmp` that is renamed over the target: a failed or killed run
 * leaves the previous file as it was. `append` and `merge` rewrite the file: the old rows (read
 * back from it) and the new ones, with the semantics of merge.ts (a merged key keeps its place).
 * Types and metadata columns as for DuckDB; an old column keeps its type (reported).
 */
export async function openParquetWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  const primaryKey = ctx.primaryKey?.length ? [...new Set(ctx.primaryKey)] : null;
  requireKeyForMerge(output, primaryKey);
  await mkdir(path.dirname(output.path), { recursive: true });
  const eng = await engine(":memory:", {
    ...engineSettings("parquet"),
    temp_directory: outputTempFile(output.path, ctx.runId, "spill"),
  });
  try {
    return new ParquetWriter(eng, await eng.connect(), output, ctx, primaryKey);
  } catch (err) {
    eng.release();
    throw err;
  }
}

class ParquetWriter implements RecordWriter {
  private readonly stager: Stager;
  private readonly keyOf: ((r: Row) => Key | null) | null;
  private readonly keys = new Set<Key>();
  private dups = 0;
  private readonly notes: string[] = [];
  private closed = false;
  private readonly meta: boolean;

  constructor(
    private readonly eng: Engine,
    private readonly conn: DuckDBConnection,
    private readonly output: OutputPlan,
    private readonly ctx: WriterContext,
    private readonly primaryKey: string[] | null,
  ) {
    this.meta = output.table?.metadataColumns ?? true;
    const kinds = schemaColumnTypes(ctx.schema);
    const planned = [...new Set([...(ctx.columns ?? []), ...(primaryKey ?? [])])].map((name) => ({
      name,
      kind: kinds.get(name) ?? null,
    }));
    this.stager = new Stager(
      conn,
      "staging",
      planned,
      this.meta ? [RUN_ID_COLUMN, LOADED_AT_COLUMN] : [],
      (row, n) => {
        if (primaryKey) {
          const parts = primaryKey.map((k) => row[k]);
          if (parts.every((p) => p !== undefined && p !== null)) return parts.map((p) => String(p)).join("/");
        }
        return `#${n} written`;
      },
      output.path,
      { near: output.path, runId: ctx.runId },
    );
    this.keyOf = primaryKey ? jsonKeyFunction(primaryKey) : null;
  }

  write(record: Row, json?: string): Promise<void> | undefined {
    if (this.keyOf) this.dups += noteKey(this.keys, this.keyOf(record));
    return this.stager.write(record, json);
  }

  seeRow(row: Row, suspect: boolean): void {
    this.stager.see(row, suspect);
  }

  seeMembers(names: readonly string[], types: Uint8Array, n: number): boolean {
    return this.stager.seeMembers(names, types, n);
  }

  writeLines(
    text: Uint8Array | string,
    count: number,
    keys: readonly (Key | null)[] | null,
  ): Promise<void> | undefined {
    if (keys) this.dups += countDuplicates(this.keys, keys);
    return this.stager.writeLines(text, count);
  }

  duplicates(): number {
    return this.dups;
  }

  warnings(): string[] {
    return this.notes;
  }

  async commit(): Promise<void> {
    const tmp = outputTempFile(this.output.path, this.ctx.runId);
    try {
      await this.writeTo(tmp, this.output.mode);
      await rename(tmp, this.output.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    } finally {
      await this.close();
    }
  }

  async keepRejected(): Promise<string> {
    const target = rejectedPath(this.output.path, this.ctx.runId);
    const tmp = outputTempFile(this.output.path, this.ctx.runId, "rejected");
    try {
      await this.writeTo(tmp, "replace");
      await rename(tmp, target);
    } finally {
      await rm(tmp, { force: true });
      await this.close();
    }
    return target;
  }

  async abort(): Promise<void> {
    await this.close();
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stager.drop().catch(() => {});
    this.conn.closeSync();
    this.eng.release();
    await rm(outputTempFile(this.output.path, this.ctx.runId, "spill"), { recursive: true, force: true });
  }

  /** Writes the file's new content to `file`: the staged rows, with the old ones unless replacing. */
  private async writeTo(file: string, mode: OutputPlan["mode"]): Promise<void> {
    await this.stager.finish();
    const cols = this.stager.columns;
    const typeOf = new Map<string, string>(cols.map((c) => [c.name, DUCKDB_TYPES[c.kind]]));
    const runExpr = new Map<string, string>(
      cols.map((c) => [
        c.name,
        c.kind === "timestamptz" || c.kind === "date" || c.kind === "json"
          ? `CAST(${q(c.name)} AS ${DUCKDB_TYPES[c.kind]})`
          : q(c.name),
      ]),
    );
    if (this.meta) {
      typeOf.set(RUN_ID_COLUMN, "VARCHAR").set(LOADED_AT_COLUMN, "TIMESTAMP WITH TIME ZONE");
      runExpr
        .set(RUN_ID_COLUMN, sqlString(this.ctx.runId))
        .set(LOADED_AT_COLUMN, "CAST(now() AS TIMESTAMP WITH TIME ZONE)");
    }
    const old = mode !== "replace" && (await fileExists(this.output.path)) ? await this.oldColumns() : null;
    // The file's columns: the old ones in their order and types, then the run's new ones.
    const out: { name: string; type: string }[] = old ? [...old] : [];
    const oldLower = new Map(out.map((c) => [c.name.toLowerCase(), c]));
    const changed: string[] = [];
    /** The run's columns the file keeps with another type: name → [the run's type, the file's]. */
    const kept = new Map<string, [string, string]>();
    // A column of nulls only has no type of its own: its NULLs take the file's.
    const pending = new Set(cols.filter((c) => c.pending).map((c) => c.name));
    for (const [name, type] of typeOf) {
      const o = oldLower.get(name.toLowerCase());
      if (!o) out.push({ name, type });
      else if (o.type !== type && name !== RUN_ID_COLUMN && name !== LOADED_AT_COLUMN && !pending.has(name)) {
        changed.push(`\`${name}\` is ${o.type}, this run's is ${type}`);
        kept.set(name.toLowerCase(), [type, o.type]);
      }
    }
    if (changed.length) {
      const text = `${this.output.path}: column type changed (${changed.join("; ")})`;
      if (this.ctx.drift === "fail")
        throw new RunError(
          "drift",
          `${text}; drift: fail stops the stream before commit. The file is unchanged.`,
        );
      this.notes.push(`${text}: the columns keep their type (values are cast to it)`);
    }
    const runLower = new Map([...runExpr].map(([n, e]) => [n.toLowerCase(), e]));
    // A value the file's column type cannot hold exactly fails the write, naming its record.
    const staged = this.primaryKey && this.dups > 0 ? stagedRows("staging", this.primaryKey) : q("staging");
    const checks = [...kept].map(([lower, [from, to]]) => ({
      field: cols.find((c) => c.name.toLowerCase() === lower)?.name ?? lower,
      expr: runLower.get(lower)!,
      from,
      to,
    }));
    await refuseLossyCasts(
      this.conn,
      staged,
      checks,
      this.output.path,
      "the file is rewritten with the run's types",
    );
    const fromRun = out.map((c) => {
      const e = runLower.get(c.name.toLowerCase());
      const k = kept.get(c.name.toLowerCase());
      const value = e === undefined ? "NULL" : k ? castInto(e, k[0], c.type) : `CAST(${e} AS ${c.type})`;
      return `${value} AS ${q(c.name)}`;
    });
    const n = `(SELECT ${fromRun.join(", ")}, __pl_ord FROM ${this.stager.hasTable ? stagedRows("staging", this.primaryKey) : "(SELECT 0 AS __pl_ord WHERE false)"})`;
    const names = out.map((c) => q(c.name)).join(", ");
    let query: string;
    if (!old && (!this.primaryKey || this.dups === 0)) {
      // The staged file's order is the run's: a streaming read, no sort.
      query = `SELECT ${fromRun.join(", ")} FROM ${this.stager.hasTable ? q("staging") : "(SELECT 0 WHERE false)"}`;
    } else if (!old) {
      query = `SELECT ${names} FROM ${n} ORDER BY __pl_ord`;
    } else {
      const oldNames = new Set(old.map((c) => c.name));
      const fromOld = out.map((c) =>
        oldNames.has(c.name) ? q(c.name) : `CAST(NULL AS ${c.type}) AS ${q(c.name)}`,
      );
      const o = `(SELECT ${fromOld.join(", ")}, row_number() OVER () AS __pl_o FROM read_parquet(${sqlString(this.output.path)}))`;
      const big = "(SELECT count(*) FROM o)";
      if (mode === "append" || !this.primaryKey) {
        query = `WITH o AS ${o}, n AS ${n} SELECT ${names} FROM (SELECT *, __pl_o AS __pl_k FROM o UNION ALL BY NAME SELECT *, ${big} + 1 + __pl_ord AS __pl_k FROM n) ORDER BY __pl_k`;
      } else {
        const match = this.primaryKey.map((k) => `o.${q(k)} = n.${q(k)}`).join(" AND ");
        query =
          `WITH o AS ${o}, n AS ${n} SELECT ${names} FROM (` +
          `SELECT * EXCLUDE (__pl_o), __pl_o AS __pl_k FROM o WHERE NOT EXISTS (SELECT 1 FROM n WHERE ${match}) ` +
          `UNION ALL BY NAME SELECT * EXCLUDE (__pl_ord), coalesce((SELECT min(o.__pl_o) FROM o WHERE ${match}), ${big} + 1 + __pl_ord) AS __pl_k FROM n` +
          `) ORDER BY __pl_k`;
      }
    }
    await this.copyTo(query, file);
  }

  /** Writes the rows of `query` to `file` (replaced) as Parquet. */
  private async copyTo(query: string, file: string): Promise<void> {
    try {
      // Long strings are held in memory by the copy too (duckdb-engine.ts withMemory); a copy that
      // ran out of memory is tried again at a higher limit, from an empty file.
      await withMemory(this.conn, "parquet", this.stager.longBytes, this.notes, async () => {
        await rm(file, { force: true });
        const copy = this.conn.run(
          `COPY (${query}) TO ${sqlString(file)} (FORMAT parquet, ROW_GROUP_SIZE ${PARQUET_ROW_GROUP_SIZE})`,
        );
        // While DuckDB writes on its thread: the heap's garbage goes back before DuckDB's peak.
        releaseHeap(this.stager.stagedChars);
        await copy;
      });
    } catch (err) {
      throw new RunError("output", `cannot write ${this.output.path}: ${(err as Error).message}`);
    }
  }

  private async oldColumns(): Promise<{ name: string; type: string }[]> {
    try {
      const r = await this.conn.runAndReadAll(
        `DESCRIBE SELECT * FROM read_parquet(${sqlString(this.output.path)})`,
      );
      return r.getRows().map((row) => ({ name: String(row[0]), type: String(row[1]) }));
    } catch (err) {
      throw new RunError(
        "output",
        `cannot read ${this.output.path} to ${this.output.mode} to it: ${(err as Error).message}`,
      );
    }
  }
}
