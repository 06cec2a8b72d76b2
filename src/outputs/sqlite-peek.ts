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
