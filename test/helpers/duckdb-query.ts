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

/**
 * Stream `s`'s table as a DuckDB or Parquet output holds it: its rows (metadata columns left out,
 * in `order`), column types, and `s__invalid` (DuckDB, when the run made it; else null).
 */
export async function readStreamTable(out: string, format: "duckdb" | "parquet", order = "") {
  const from = format === "duckdb" ? "s" : `read_parquet('${out}')`;
  const hasInvalid =
    format === "duckdb" &&
    (await queryDuckdb(out, "SELECT 1 FROM duckdb_tables() WHERE table_name = 's__invalid'")).length > 0;
  return {
    rows: await queryDuckdb(out, `SELECT * EXCLUDE (_run_id, _loaded_at) FROM ${from}${order}`),
    types: await queryDuckdb(out, `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM ${from})`),
    invalid: hasInvalid
      ? await queryDuckdb(out, "SELECT record_id, errors, record FROM s__invalid ORDER BY record_id")
      : null,
  };
}
