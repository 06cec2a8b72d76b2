// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${window.…}` templates
import { mkdirSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * A pipeline upgraded from a v1 `incremental` to `windows` does not fetch its history again: the
 * v1 cursor seeds the windows — an ISO date, or epoch seconds as a number or as a numeric string
 * (what a CSV export's column gives).
 */
let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer(() => ({ body: [] }));
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

describe("a v1 cursor seeds the windows", () => {
  for (const cursor of [1704672000, "1704672000", "2024-01-08T00:00:00Z"])
    it(`${JSON.stringify(cursor)}`, async () => {
      project.pipeline(
        "test",
        `
source: { base_url: ${server.url}, concurrency: 1 }
streams:
  ev:
    path: /e
    params: { from: "\${window.start}" }
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-10, format: epoch }
output: { mode: append }
`,
      );
      mkdirSync(project.file(".pipelines/state"), { recursive: true });
      writeFileSync(
        project.file(".pipelines/state/test.json"),
        JSON.stringify({ version: 1, streams: { ev: { cursor, updated_at: "x" } } }),
      );
      const run = await runPipeline(project.dir, "test");
      expect(run.code, run.stderr).toBe(0);
      // 2024-01-08 and 2024-01-09 only.
      expect(server.requests.map((r) => r.query.from)).toEqual(["1704672000", "1704758400"]);
    });
});
