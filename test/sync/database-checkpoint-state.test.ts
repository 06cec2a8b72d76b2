// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${window.…}` templates
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { DuckDBInstance } from "@duckdb/node-api";
import Database from "better-sqlite3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freshDatabase, query } from "../pg/helpers.js";
import { runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * A windowed stream under `append`, across runs, commits each window (checkpoints).
 * - DuckDB and PostgreSQL outputs write each window's position in the commit's transaction, as
 *   SQLite does (sqlite-checkpoints.test.ts); the next run reads it there first. A kill after the
 *   database committed but before the state file was written (here: the state file removed) must
 *   not fetch and append the committed windows again.
 * - Only a file whose commits add bytes at its end (jsonl, csv) keeps a committed length in the
 *   state, cut back to at the next start: a DuckDB database, a Parquet or a SQLite file is replaced
 *   or changed in place by each commit, and was once cut back to its size before the first run
 *   (0 bytes), destroying it.
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

/** The ids of `events` in a DuckDB database, or (`parquet`) in a Parquet file. */
async function duckIds(file: string, parquet = false): Promise<string[]> {
  const db = await DuckDBInstance.create(parquet ? ":memory:" : file);
  const c = await db.connect();
  try {
    const from = parquet ? `read_parquet('${file.replaceAll("'", "''")}')` : "events";
    return (await c.runAndReadAll(`SELECT id FROM ${from} ORDER BY id`)).getRows().map((r) => String(r[0]));
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

/** The first `n` days' ids. */
const days = (n: number) => Array.from({ length: n }, (_, i) => `2024-01-0${i + 1}-1`);

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
    expect(await duckIds(project.file("out/test.duckdb"))).toEqual(days(5));
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
    expect(rows.map((r) => r.id)).toEqual(days(5));
  });
});

/** Each file output: its `output` lines, the file, and how its ids are read. */
const FILES = {
  duckdb: { output: "format: duckdb\n  path: out/w.duckdb", file: "out/w.duckdb" },
  parquet: { output: 'format: parquet\n  path: "out/${stream}.parquet"', file: "out/events.parquet" },
  sqlite: { output: "format: sqlite\n  path: out/w.db", file: "out/w.db" },
  jsonl: { output: 'format: jsonl\n  path: "out/${stream}.jsonl"', file: "out/events.jsonl" },
} as const;

async function ids(format: keyof typeof FILES): Promise<string[]> {
  const file = project.file(FILES[format].file);
  if (format === "jsonl")
    return readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).id)
      .sort();
  if (format !== "sqlite") return duckIds(file, format === "parquet");
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT id FROM events ORDER BY id").all() as { id: string }[]).map((r) => r.id);
  } finally {
    db.close();
  }
}

describe.each(Object.keys(FILES) as (keyof typeof FILES)[])("%s: the state file kept", (format) => {
  it("the second run adds its windows to the file the first committed; an old state's length for it cuts nothing", async () => {
    const { output } = FILES[format];
    project.pipeline("w", pipeline(output, "2024-01-04"));
    const first = await runPipeline(project.dir, "w");
    expect(first.code, first.stderr).toBe(0);
    expect(await ids(format)).toEqual(days(3));

    project.pipeline("w", pipeline(output, "2024-01-06"));
    server.reset();
    const second = await runPipeline(project.dir, "w");
    expect(second.code, second.stderr).toBe(0);
    expect(server.requests.map((r) => r.query.day).sort()).toEqual(["2024-01-04", "2024-01-05"]);
    expect(await ids(format)).toEqual(days(5));

    const stateFile = project.file(".pipelines/state/w.json");
    const state = JSON.parse(readFileSync(stateFile, "utf8"));
    const path = project.file(FILES[format].file);
    if (format === "jsonl") {
      // The file's committed length is kept, and is the file's.
      expect(state.streams.events.files[path]).toBe(statSync(path).size);
      return;
    }
    expect(state.streams.events.files?.[path]).toBeUndefined();
    // A state written by a version that saved the file's length before its first run (0 bytes):
    // the next run must not cut the file back to it.
    state.streams.events.files = { ...state.streams.events.files, [path]: 0 };
    writeFileSync(stateFile, JSON.stringify(state));
    project.pipeline("w", pipeline(output, "2024-01-07"));
    const third = await runPipeline(project.dir, "w");
    expect(third.code, third.stderr).toBe(0);
    expect(await ids(format)).toEqual(days(6));
    expect(JSON.parse(readFileSync(stateFile, "utf8")).streams.events.files?.[path]).toBeUndefined();
  });
});
