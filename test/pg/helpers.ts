import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { createDatabase } from "./pg-cluster.mjs";

/** A fresh database on the test run's cluster (one per test file, in its beforeAll); its URL. */
export async function freshDatabase(prefix: string): Promise<string> {
  return createDatabase(inject("pgAdminUrl"), `${prefix}_${randomBytes(4).toString("hex")}`);
}

/** Runs one query on `url` and returns its rows. */
export async function query<T = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** The tables of a schema, sorted. */
export async function tables(url: string, schema = "public"): Promise<string[]> {
  const rows = await query<{ tablename: string }>(
    url,
    "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
    [schema],
  );
  return rows.map((r) => r.tablename);
}
