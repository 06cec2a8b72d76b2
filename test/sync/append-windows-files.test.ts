// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${window.…}` templates
/**
 * A windowed stream under `append` checkpoints each window. Only a file whose commits add bytes
 * at its end (jsonl, csv) keeps a committed length in the state, cut back to at the next start:
 * a DuckDB database, a Parquet or a SQLite file is replaced or changed in place by each commit,
 * and was once cut back to its size before the first run (0 bytes), destroying it.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { DuckDBInstance } from "@duckdb/node-api";
import Database from "better-sqlite3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer((req) => {
    if (req.rawPath.split("?")[0] !== "/export") return { status: 404, body: {} };
    return { body: { events: [{ id: `${req.query.day}-1` }, { id: `${req.query.day}-2` }] } };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

const OUTPUTS = {
  duckdb: "{ format: duckdb, path: out/w.duckdb, mode: append }",
  parquet: '{ format: parquet, path: "out/${stream}.parquet", mode: append }',
  sqlite: "{ format: sqlite, path: out/w.db, mode: append }",
  jsonl: '{ format: jsonl, path: "out/${stream}.jsonl", mode: append }',
} as const;
const FILES = {
  duckdb: "out/w.duckdb",
  parquet: "out/events.parquet",
  sqlite: "out/w.db",
  jsonl: "out/events.jsonl",
};

const pipeline = (format: keyof typeof OUTPUTS, end: string) => `
source:
  base_url: ${server.url}
streams:
  events:
    path: /export
    params: { day: "\${window.start}" }
    records: $.events
    schema: { type: object, properties: { id: { type: string } } }
    windows: { step: 1d, start: 2024-01-01, end: ${end}, format: date }
output: ${OUTPUTS[format]}
`;

async function ids(format: keyof typeof OUTPUTS): Promise<string[]> {
  const file = project.file(FILES[format]);
  if (format === "jsonl")
    return readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).id)
      .sort();
  if (format === "sqlite") {
    const db = new Database(file, { readonly: true });
    try {
      return (db.prepare("SELECT id FROM events ORDER BY id").all() as { id: string }[]).map((r) => r.id);
    } finally {
      db.close();
    }
  }
  const instance = await DuckDBInstance.create(format === "duckdb" ? file : ":memory:");
  const conn = await instance.connect();
  try {
    const from = format === "duckdb" ? "events" : `read_parquet('${file.replaceAll("'", "''")}')`;
    return (await conn.runAndReadAll(`SELECT id FROM ${from} ORDER BY id`))
      .getRows()
      .map((r) => String(r[0]));
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

const days = (n: number) =>
  Array.from({ length: n }, (_, i) => `2024-01-0${i + 1}`).flatMap((d) => [`${d}-1`, `${d}-2`]);

describe.each(Object.keys(OUTPUTS) as (keyof typeof OUTPUTS)[])(
  "%s: windowed append across runs",
  (format) => {
    it("the second run adds its windows to the file the first committed; an old state's length for it cuts nothing", async () => {
      project.pipeline("w", pipeline(format, "2024-01-04"));
      const first = await runPipeline(project.dir, "w");
      expect(first.code, first.stderr).toBe(0);
      expect(await ids(format)).toEqual(days(3));

      project.pipeline("w", pipeline(format, "2024-01-06"));
      server.reset();
      const second = await runPipeline(project.dir, "w");
      expect(second.code, second.stderr).toBe(0);
      expect(server.requests.map((r) => r.query.day).sort()).toEqual(["2024-01-04", "2024-01-05"]);
      expect(await ids(format)).toEqual(days(5));

      const stateFile = project.file(".pipelines/state/w.json");
      const state = JSON.parse(readFileSync(stateFile, "utf8"));
      const path = project.file(FILES[format]);
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
      project.pipeline("w", pipeline(format, "2024-01-07"));
      const third = await runPipeline(project.dir, "w");
      expect(third.code, third.stderr).toBe(0);
      expect(await ids(format)).toEqual(days(6));
      expect(JSON.parse(readFileSync(stateFile, "utf8")).streams.events.files?.[path]).toBeUndefined();
    });
  },
);
