// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${window.…}` templates
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * `append` → `replace` → `append` on a windowed stream: the committed length the first run saved
 * describes a file the `replace` run rewrote whole; the third run must not cut the new file back
 * to it (that cut a record in the middle and glued the next one to it: a corrupt JSON lines file).
 */
let server: SyncServer;
let project: TempProject;
/** Longer records from the second run on (the API's data changed). */
let long = false;

beforeAll(async () => {
  server = await startSyncServer((req) => ({
    body: [{ id: req.query.from, text: long ? "x".repeat(50) : "y" }],
  }));
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
  long = false;
});

const pipeline = (mode: string, end: string, key = "") => `
source: { base_url: ${server.url}, concurrency: 1 }
streams:
  ev:
    path: /e
    params: { from: "\${window.start}" }
    windows: { step: 1d, start: 2024-01-01, end: ${end}, format: date }${key}
output: { mode: ${mode} }
`;

const lines = () => readFileSync(project.file("out/test/ev.jsonl"), "utf8").trim().split("\n");

describe("a windowed stream switched from append to replace and back", () => {
  for (const mode of ["replace", "merge"])
    it(`${mode}: keeps a valid output, not cut back to the first run's length`, async () => {
      // A merge rewrites the whole file at each commit (no length saved): the same holds.
      const key = mode === "merge" ? "\n    primary_key: id" : "";
      project.pipeline("test", pipeline("append", "2024-01-03", key));
      expect((await runPipeline(project.dir, "test")).code).toBe(0);
      long = true;
      project.pipeline("test", pipeline(mode, "2024-01-03", key));
      expect((await runPipeline(project.dir, "test", mode === "merge" ? ["--full-refresh"] : [])).code).toBe(
        0,
      );
      expect(lines()).toHaveLength(2);
      project.pipeline("test", pipeline("append", "2024-01-05", key));
      const run = await runPipeline(project.dir, "test");
      expect(run.code, run.stderr).toBe(0);
      // Every line is a record: the rewritten two, then the two new windows.
      const ids = lines().map((l) => (JSON.parse(l) as { id: string }).id);
      expect(ids).toEqual(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]);
    });
});
