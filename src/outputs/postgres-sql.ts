import type pg from "pg";
import { RunError } from "../shared/errors.js";
import { type ColumnType, checkIdent, METADATA_COLUMNS } from "./table-shape.js";

/** SQL helpers of the PostgreSQL output: quoting, and what the catalog says about a table. */

export function qi(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export function checkName(name: string, table: string): void {
  try {
    checkIdent(name, undefined, "field");
  } catch (err) {
    throw new RunError("output", `${(err as Error).message} (table ${table})`);
  }
}

/** The output's schema and table: names PostgreSQL keeps as they are (`what` names the output). */
export function checkTableName(
  schema: string,
  table: string,
  what: string,
  redact: (s: string) => string,
): void {
  try {
    checkIdent(schema, undefined, "schema");
    checkIdent(table, undefined, "table");
  } catch (err) {
    throw new RunError("output", redact(`${what}: ${(err as Error).message}`));
  }
}

/** Fields (`names`) may not be named like the metadata columns of `table`. */
export function checkMetadataNames(names: string[], table: string): void {
  for (const m of METADATA_COLUMNS)
    if (names.includes(m))
      throw new RunError(
        "output",
        `field \`${m}\` has the name of a metadata column of table ${table}: rename it with \`fields\`, or set \`metadata_columns: false\``,
      );
}

export function ignoreRace(err: { code?: string }): void {
  // Two streams creating the same schema or table at once: one wins, the other sees it exist.
  if (err?.code !== "23505" && err?.code !== "42P07" && err?.code !== "42P06") throw err;
}

export async function tableExists(client: pg.Client, schema: string, table: string): Promise<boolean> {
  const r = await client.query("SELECT to_regclass($1) AS t", [`${qi(schema)}.${qi(table)}`]);
  return r.rows[0].t !== null;
}

/** The table's columns and their SQL types, in order; null when it does not exist. */
export async function tableColumns(
  client: pg.Client,
  schema: string,
  table: string,
): Promise<Map<string, string> | null> {
  if (!(await tableExists(client, schema, table))) return null;
  const r = await client.query(
    "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    [`${qi(schema)}.${qi(table)}`],
  );
  return new Map(r.rows.map((x: { attname: string; type: string }) => [x.attname, x.type]));
}

export async function primaryKeyName(
  client: pg.Client,
  schema: string,
  table: string,
): Promise<string | null> {
  const r = await client.query(
    "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'",
    [`${qi(schema)}.${qi(table)}`],
  );
  return r.rows[0]?.conname ?? null;
}

const SQL_TYPES: Record<string, ColumnType> = {
  text: "text",
  "timestamp with time zone": "timestamptz",
  date: "date",
  bigint: "bigint",
  "double precision": "double",
  boolean: "boolean",
  jsonb: "json",
};

export function typeOfSql(sql: string): ColumnType | null {
  return SQL_TYPES[sql] ?? null;
}
