import { DuckDBInstance } from "@duckdb/node-api";

/**
 * Rows of `sql` read back with DuckDB itself, as plain JSON data (a BIGINT as the text `"<n>n"`):
 * from a DuckDB file, or from `:memory:` for anything else (a Parquet file named in the query).
 */
export async function queryDuckdb(file: string, sql: string): Promise<unknown[]> {
  const inst = await DuckDBInstance.create(file.endsWith(".duckdb") ? file : ":memory:");
  try {
    const conn = await inst.connect();
    const r = await conn.runAndReadAll(sql);
    conn.closeSync();
    return JSON.parse(JSON.stringify(r.getRowObjectsJS(), (_k, v) => (typeof v === "bigint" ? `${v}n` : v)));
  } finally {
    inst.closeSync();
  }
}
