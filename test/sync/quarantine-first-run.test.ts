// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${window.…}` templates
import { appendFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * A first checkpointed run records the lengths its appended files start at before it writes a
 * byte — the output's and the quarantine's (appended at each commit too) — so that bytes a run
 * killed before its first state write appended are cut back at the next start.
 */
let server: SyncServer;
let project: TempProject;
let failing = new Set<string>();

beforeAll(async () => {
  server = await startSyncServer((req) => {
    const day = req.query.day;
    if (failing.has(day)) return { status: 500, body: { error: "boom" } };
    return {
      body: [
        { id: `${day}-ok`, amount: 1 },
        { id: `${day}-bad`, amount: "one" },
      ],
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

const PIPELINE = () => `
source: { base_url: ${server.url}, concurrency: 1, retry: { max_attempts: 1 } }
streams:
  events:
    path: /export
    params: { day: "\${window.start}" }
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-03, format: date }
    schema: { type: object, properties: { amount: { type: number } } }
validation: { invalid_records: skip, max_invalid_ratio: 0.9 }
output: { mode: append }
`;

const quarantine = () => project.file("out/test/events.invalid.jsonl");
const line = (id: string) => `${JSON.stringify({ record_id: null, errors: [], record: { id } })}\n`;
const quarantined = () => readJsonl(quarantine()).map((r) => (r as { record: { id: string } }).record.id);

describe("a first checkpointed run", () => {
  it("records the quarantine's start length: lines a killed run appended after it are cut at the next start", async () => {
    project.pipeline("test", PIPELINE());
    // A quarantine left by an earlier run (under `replace`).
    mkdirSync(project.file("out/test"), { recursive: true });
    writeFileSync(quarantine(), line("old-bad"));
    const length = statSync(quarantine()).size;
    // The first checkpointed run fails before its first commit: what it recorded at its start stays.
    failing = new Set(["2024-01-01"]);
    const failed = await runPipeline(project.dir, "test");
    expect(failed.code, failed.stderr).toBe(1);
    const state = JSON.parse(readFileSync(project.file(".pipelines/state/test.json"), "utf8"));
    expect(state.streams.events.files[quarantine()]).toBe(length);
    // What a run killed between a commit and its state write leaves: a line past that length.
    appendFileSync(quarantine(), line("killed-bad"));
    failing = new Set();
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(0);
    expect(quarantined()).toEqual(["old-bad", "2024-01-01-bad", "2024-01-02-bad"]);
  });
});
