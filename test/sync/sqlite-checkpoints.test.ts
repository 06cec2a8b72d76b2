// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${window.…}` templates
import { rmSync } from "node:fs";
import Database from "better-sqlite3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/** A daily export: one event per day. */
let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer((req) => {
    if (req.rawPath !== "/export") return { status: 404, body: {} };
    return { body: { events: [{ id: `${req.query.day}-1` }] } };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

const pipeline = (end: string) => `
source:
  base_url: ${server.url}
streams:
  events:
    path: /export
    params: { day: "\${window.start}" }
    records: $.events
    windows: { step: 1d, start: 2024-01-01, end: ${end}, format: date }
output:
  format: sqlite
  mode: append
`;

function read(sql: string): unknown[] {
  const db = new Database(project.file("out/test.db"), { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

describe("sqlite append under checkpoints", () => {
  it("writes each window's position in the commit's transaction; the database's state wins", async () => {
    project.pipeline("test", pipeline("2024-01-04"));
    const first = await runPipeline(project.dir, "test");
    expect(first.code, first.stderr).toBe(0);
    const state = read(`SELECT state FROM _pipelines_state WHERE stream = 'events'`) as { state: string }[];
    expect(JSON.parse(state[0].state).cursor).toBe("2024-01-04T00:00:00Z");

    // A kill after the database committed but before the state file was written: the next run
    // resumes from the database's position, fetching and appending nothing twice.
    rmSync(project.file(".pipelines/state/test.json"));
    project.pipeline("test", pipeline("2024-01-06"));
    server.reset();
    const second = await runPipeline(project.dir, "test");
    expect(second.code, second.stderr).toBe(0);
    expect(server.requests.map((r) => r.query.day).sort()).toEqual(["2024-01-04", "2024-01-05"]);
    expect((read("SELECT id FROM events ORDER BY id") as { id: string }[]).map((r) => r.id)).toEqual([
      "2024-01-01-1",
      "2024-01-02-1",
      "2024-01-03-1",
      "2024-01-04-1",
      "2024-01-05-1",
    ]);
  });
});
