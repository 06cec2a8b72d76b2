// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${window.…}` templates
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * Format 1.1: `${window.start}`, `${window.end}`, `${window.last}` work in a windowed stream's
 * computed fields (`{ value: }`), each record getting the bounds of the window it came from.
 */
let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer((req) => ({
    body: [{ id: `${req.rawPath.split("/").pop()}-${req.query.from}` }],
  }));
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

describe("window bounds in computed fields", () => {
  it("each record carries its window's bounds (a windowed stream, and a windowed child stream)", async () => {
    project.pipeline(
      "test",
      `
source: { base_url: ${server.url}, concurrency: 3 }
streams:
  ev:
    path: /e/all
    params: { from: "\${window.start}" }
    windows: { step: 2d, start: 2024-01-01, end: 2024-01-04, format: date }
    fields:
      id: $.id
      window: { value: "\${window.start}..\${window.last}" }
      until: { value: "\${window.end}" }
  repos:
    values: [a, b]
    write: false
  per_repo:
    parent: repos
    path: /e/\${parent.value}
    params: { from: "\${window.start}" }
    windows: { step: 1d, start: "2024-01-01T00:00:00Z", end: "2024-01-02T12:00:00Z" }
    fields:
      id: $.id
      from: { value: "\${window.start}" }
      repo: { value: "\${parent.value}" }
output: { mode: append }
`,
    );
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(0);
    expect(readJsonl(project.file("out/test/ev.jsonl"))).toEqual([
      { id: "all-2024-01-01", window: "2024-01-01..2024-01-02", until: "2024-01-03" },
      { id: "all-2024-01-03", window: "2024-01-03..2024-01-03", until: "2024-01-04" },
    ]);
    expect(readJsonl(project.file("out/test/per_repo.jsonl"))).toEqual([
      { id: "a-2024-01-01T00:00:00Z", from: "2024-01-01T00:00:00Z", repo: "a" },
      { id: "a-2024-01-02T00:00:00Z", from: "2024-01-02T00:00:00Z", repo: "a" },
      { id: "b-2024-01-01T00:00:00Z", from: "2024-01-01T00:00:00Z", repo: "b" },
      { id: "b-2024-01-02T00:00:00Z", from: "2024-01-02T00:00:00Z", repo: "b" },
    ]);
  });
});
