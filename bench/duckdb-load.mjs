// DuckDB alone: the records of the jsonl run's file loaded into a new database file, as a user
// would load them by hand (the DuckDB CLI's `CREATE TABLE … ; INSERT … FROM read_json(…)`), with
// the duckdb output's engine settings (one thread, 48 MB: DuckDB's defaults, two threads and no
// limit, took more CPU time and as long). The same table as the duckdb output makes (the bench
// schema's column types and the two metadata columns), in one transaction. The bench shows its
// time beside the duckdb run's: what the duckdb output adds to a jsonl run cannot be much less.
//   node bench/duckdb-load.mjs <jsonl file> <database file>
import { rmSync } from "node:fs";
import { DuckDBInstance } from "@duckdb/node-api";

const [file, db] = process.argv.slice(2);
rmSync(db, { force: true });
rmSync(`${db}.wal`, { force: true });
const instance = await DuckDBInstance.create(db, {
  memory_limit: "48MB",
  threads: "1",
  allocator_bulk_deallocation_flush_threshold: "0MB",
});
const conn = await instance.connect();
const lit = (s) => `'${s.replaceAll("'", "''")}'`;
const columns = {
  id: "BIGINT",
  name: "VARCHAR",
  email: "VARCHAR",
  created_at: "VARCHAR",
  amount: "DOUBLE",
  active: "BOOLEAN",
  tags: "JSON",
  owner: "JSON",
};
const spec = Object.entries(columns)
  .map(([k, v]) => `${lit(k)}: ${lit(v)}`)
  .join(", ");
await conn.run("BEGIN");
await conn.run(
  "CREATE TABLE records (id BIGINT, name VARCHAR, email VARCHAR, created_at TIMESTAMP WITH TIME ZONE, amount DOUBLE, active BOOLEAN, tags JSON, owner JSON, _run_id VARCHAR, _loaded_at TIMESTAMP WITH TIME ZONE)",
);
await conn.run(
  `INSERT INTO records SELECT id, name, email, CAST(created_at AS TIMESTAMP WITH TIME ZONE), amount, active, tags, owner, 'by-hand', CAST(now() AS TIMESTAMP WITH TIME ZONE) FROM read_json(${lit(file)}, format = 'newline_delimited', columns = {${spec}})`,
);
await conn.run("COMMIT");
const rows = (await conn.runAndReadAll("SELECT count(*) FROM records")).getRows()[0][0];
conn.closeSync();
instance.closeSync();
rmSync(db, { force: true });
console.log(String(rows));
