import { existsSync } from "node:fs";
import Database from "better-sqlite3";

/**
 * Reads of a stream's SQLite table for the commit guard and the report's preview, read-only.
 * Loaded when used (`await import("./sqlite-peek.js")`), as the sqlite writer is: better-sqlite3
 * is a native module and costs start-up time for every run.
 */
const quoted = (table: string): string => `"${table.replace(/"/g, '""')}"`;

function withDb<T>(file: string, use: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return use(db);
  } finally {
    db.close();
  }
}

function tableExists(db: Database.Database, table: string): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE").get(table) !==
    undefined
  );
}

/** The stream's state a commit wrote into `_pipelines_state`, or null (no file, no table, no row). */
export function sqliteState(file: string, stateKey: string, stream: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  return withDb(file, (db) => {
    if (!tableExists(db, "_pipelines_state")) return null;
    const text = db
      .prepare(`SELECT state FROM "_pipelines_state" WHERE pipeline = ? AND stream = ?`)
      .pluck()
      .get(stateKey, stream);
    return typeof text === "string" ? (JSON.parse(text) as Record<string, unknown>) : null;
  });
}

export function sqliteHasRows(file: string, table: string): boolean {
  return withDb(
    file,
    (db) =>
      tableExists(db, table) && db.prepare(`SELECT 1 FROM ${quoted(table)} LIMIT 1`).get() !== undefined,
  );
}

export function sqliteFirstRows(file: string, table: string, n: number): Record<string, unknown>[] {
  return withDb(file, (db) =>
    tableExists(db, table)
      ? (db.prepare(`SELECT * FROM ${quoted(table)} LIMIT ${Math.floor(n)}`).all() as Record<
          string,
          unknown
        >[])
      : [],
  );
}
