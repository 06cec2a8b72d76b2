// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${window.…}` templates
import { rmSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freshDatabase, query } from "../pg/helpers.js";
import { runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * DuckDB and PostgreSQL outputs under checkpoints write each window's position in the commit's
 * transaction, as SQLite does (sqlite-checkpoints.test.ts); the next run reads it there first.
 * A kill after the database committed but before the state file was written (here: the state
 * file removed) must not fetch and append the committed windows again.
 */
let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer((req) => ({ body: { events: [{ id: `${req.query.day}-1` }] } }));
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

const pipeline = (output: string, end: string) => `
source:
  base_url: ${server.url}
streams:
  events:
    path: /export
    params: { day: "\${window.start}" }
    records: $.events
    windows: { step: 1d, start: 2024-01-01, end: ${end}, format: date }
output:
  ${output}
  mode: append
`;

async function duckIds(file: string): Promise<string[]> {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const db = await DuckDBInstance.create(file);
  const c = await db.connect();
  try {
    return (await c.runAndReadAll("SELECT id FROM events ORDER BY id")).getRows().map((r) => String(r[0]));
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

const ALL = ["2024-01-01-1", "2024-01-02-1", "2024-01-03-1", "2024-01-04-1", "2024-01-05-1"];

describe("the position a database output committed wins over a lost state file", () => {
  it("duckdb", async () => {
    project.pipeline("test", pipeline("format: duckdb", "2024-01-04"));
    const first = await runPipeline(project.dir, "test");
    expect(first.code, first.stderr).toBe(0);
    rmSync(project.file(".pipelines/state/test.json"));
    project.pipeline("test", pipeline("format: duckdb", "2024-01-06"));
    server.reset();
    const second = await runPipeline(project.dir, "test");
    expect(second.code, second.stderr).toBe(0);
    expect(server.requests.map((r) => r.query.day).sort()).toEqual(["2024-01-04", "2024-01-05"]);
    expect(await duckIds(project.file("out/test.duckdb"))).toEqual(ALL);
  });

  it("postgres", async () => {
    const db = await freshDatabase("cpstate");
    const output = "format: postgres\n  url: ${env.DATABASE_URL}";
    const env = { DATABASE_URL: db };
    project.pipeline("test", pipeline(output, "2024-01-04"));
    const first = await runPipeline(project.dir, "test", [], env);
    expect(first.code, first.stderr).toBe(0);
    rmSync(project.file(".pipelines/state/test.json"));
    project.pipeline("test", pipeline(output, "2024-01-06"));
    server.reset();
    const second = await runPipeline(project.dir, "test", [], env);
    expect(second.code, second.stderr).toBe(0);
    expect(server.requests.map((r) => r.query.day).sort()).toEqual(["2024-01-04", "2024-01-05"]);
    const rows = await query<{ id: string }>(db, "SELECT id FROM events ORDER BY id");
    expect(rows.map((r) => r.id)).toEqual(ALL);
  });
});
