// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${window.…}` templates
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freshDatabase, query, tables } from "../pg/helpers.js";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * A daily export: each day has one valid event and one with a string amount (invalid by the
 * schema). Days in `failing` answer 500.
 */
let failing = new Set<string>();
let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer((req) => {
    if (req.rawPath !== "/export") return { status: 404, body: {} };
    const day = req.query.day;
    if (failing.has(day)) return { status: 500, body: { error: "boom" } };
    return {
      body: {
        events: [
          { id: `${day}-ok`, amount: 1 },
          { id: `${day}-bad`, amount: "one" },
        ],
      },
    };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
  failing = new Set();
});

const pipeline = (end: string) => `
source:
  base_url: ${server.url}
  retry: { max_attempts: 1 }
  concurrency: 1
streams:
  events:
    path: /export
    params: { day: "\${window.start}" }
    records: $.events
    windows: { step: 1d, start: 2024-01-01, end: ${end}, format: date }
    schema:
      type: object
      properties: { id: { type: string }, amount: { type: number } }
validation:
  invalid_records: skip
  max_invalid_ratio: 0.9
output:
  mode: append
`;

const quarantine = () => {
  const file = project.file("out/test/events.invalid.jsonl");
  return existsSync(file) ? (readJsonl(file) as { record: { id: string } }[]).map((r) => r.record.id) : [];
};

describe("the quarantine under checkpoints", () => {
  it("is appended at each commit: a stream that fails later keeps the committed windows' invalid records", async () => {
    project.pipeline("test", pipeline("2024-01-04"));
    failing = new Set(["2024-01-03"]);
    const run = await runPipeline(project.dir, "test");
    expect(run.code).toBe(1);
    // The windows committed before the failure: their invalid records stay quarantined with them.
    const written = (readJsonl(project.file("out/test/events.jsonl")) as { id: string }[]).map((r) => r.id);
    expect(written.length).toBeGreaterThan(0);
    expect(quarantine()).toEqual(written.map((id) => id.replace("-ok", "-bad")));
  });

  it("is not replaced by the next run: later windows' invalid records are added", async () => {
    project.pipeline("test", pipeline("2024-01-03"));
    expect((await runPipeline(project.dir, "test")).code).toBe(0);
    expect(quarantine()).toEqual(["2024-01-01-bad", "2024-01-02-bad"]);
    project.pipeline("test", pipeline("2024-01-05"));
    const again = await runPipeline(project.dir, "test");
    expect(again.code, again.stderr).toBe(0);
    expect(quarantine()).toEqual(["2024-01-01-bad", "2024-01-02-bad", "2024-01-03-bad", "2024-01-04-bad"]);
    // Its committed length is in the state, like the output's.
    const state = JSON.parse(readFileSync(project.file(".pipelines/state/test.json"), "utf8"));
    const files = state.streams.events.files as Record<string, number>;
    expect(Object.entries(files).find(([p]) => p.endsWith("events.invalid.jsonl"))?.[1]).toBe(
      readFileSync(project.file("out/test/events.invalid.jsonl")).length,
    );
  });

  it("with a database output, holds the invalid records too (no `<table>__invalid` table under checkpoints)", async () => {
    const url = await freshDatabase("qcheck");
    const pg = pipeline("2024-01-04").replace(
      "output:\n  mode: append\n",
      "output:\n  format: postgres\n  url: ${env.DATABASE_URL}\n  mode: append\n",
    );
    expect(pg).toContain("format: postgres");
    project.pipeline("test", pg);
    failing = new Set(["2024-01-03"]);
    const run = await runPipeline(project.dir, "test", [], { DATABASE_URL: url });
    expect(run.code).toBe(1);
    const rows = await query<{ id: string }>(url, `SELECT id FROM "events" ORDER BY id`);
    // The windows committed before the failure (as with a file output): their rows, and their
    // invalid records in the quarantine file.
    const ids = rows.map((r) => r.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids).not.toContain("2024-01-03-ok");
    expect(quarantine()).toEqual(ids.map((id) => id.replace("-ok", "-bad")));
    expect(await tables(url)).not.toContain("events__invalid");
  });
});
