/**
 * An empty `replace` into a DuckDB table that has rows is refused (exit 3) and the table kept. A
 * run without a schema and without a record has no column: no table of its rows is kept beside,
 * and the message names none (it named `<table>__rejected_<run>`, a table never made).
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type SyncServer, startSyncServer } from "../sync/sync-server.js";
import { runPipeline, type TempProject, tempProject } from "./helpers.js";

let server: SyncServer;
let project: TempProject;
let body: unknown[] = [];

beforeAll(async () => {
  server = await startSyncServer(() => ({ body }));
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
});

async function tables(): Promise<string[]> {
  const instance = await DuckDBInstance.create(project.file("out/e.duckdb"));
  const conn = await instance.connect();
  try {
    const r = await conn.runAndReadAll("SELECT table_name FROM duckdb_tables() ORDER BY 1");
    return r.getRows().map((row) => String(row[0]));
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

describe("duckdb: an empty replace without a schema", () => {
  it("is refused with exit 3, keeps the table, and names no table kept beside", async () => {
    project.pipeline(
      "e",
      `source: { base_url: ${server.url} }\nstreams:\n  pages: { path: /p }\noutput: { format: duckdb }\n`,
    );
    body = [{ id: 1 }, { id: 2 }];
    expect((await runPipeline(project.dir, "e")).code).toBe(0);
    body = [];
    const r = await runPipeline(project.dir, "e");
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("this run wrote no record and would replace an output that has records");
    expect(r.stderr).not.toContain("__rejected");
    expect(r.stderr).not.toContain("this run's output is in");
    expect(await tables()).toEqual(["pages"]);
  });
});
