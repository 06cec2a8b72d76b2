// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${parent.…}` templates
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * A child stream under `replace` whose run the commit guard keeps beside (a `--limit` run over a
 * full output: not committed, exit 0) saves no position, as a stream without partitions keeps
 * its cursor: the partitions it fetched are in the preview, not in the output.
 */
let server: SyncServer;
let project: TempProject;
/** The `updated_at` of every record: later in the second run. */
let stamp = "2024-02-01T00:00:00Z";

beforeAll(async () => {
  server = await startSyncServer((req) => {
    const repo = req.rawPath.split("/").pop();
    const n = repo === "a" ? 1 : 5;
    return { body: Array.from({ length: n }, (_, i) => ({ id: `${repo}-${i}`, updated_at: stamp })) };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

const PIPELINE = () => `
source: { base_url: ${server.url}, concurrency: 1 }
streams:
  repos:
    values: [a, b]
    write: false
  issues:
    parent: repos
    path: /r/\${parent.value}
    incremental: { cursor_field: updated_at, param: since, initial: "2024-01-01T00:00:00Z" }
output: { mode: replace }
`;

const state = () => JSON.parse(readFileSync(project.file(".pipelines/state/test.json"), "utf8"));

describe("a child stream whose run the commit guard keeps beside", () => {
  it("keeps the positions of the last committed run", async () => {
    project.pipeline("test", PIPELINE());
    expect((await runPipeline(project.dir, "test")).code).toBe(0);
    const before = state().streams.issues.partitions;
    expect(before).toEqual({ a: "2024-02-01T00:00:00Z", b: "2024-02-01T00:00:00Z" });
    // Partition a (one record) ends on its own before the limit; b is cut by it.
    stamp = "2024-03-01T00:00:00Z";
    const run = await runPipeline(project.dir, "test", ["--limit", "3"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stream("issues").warnings.join(" ")).toContain("not committed: a run made with --limit 3");
    expect(readJsonl(project.file("out/test/issues.jsonl"))).toHaveLength(6);
    expect(state().streams.issues.partitions).toEqual(before);
  });
});
