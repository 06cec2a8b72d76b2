// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${window.…}` and `${parent.…}` templates
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * Format 1.1 ("Checkpoints, positions and exactly-once"): a window or partition that an `ignore`
 * rule ends after its first page commits its records but not its position — the pages after it
 * were never fetched, so the next run fetches it again (and nothing after it moves the position
 * of its partition past it). An `ignore` on the first page is an empty unit: complete.
 */
let server: SyncServer;
let project: TempProject;
/** Units (`from` or repo) whose 2nd page answers 503 once. */
let flaky = new Set<string>();

beforeAll(async () => {
  server = await startSyncServer((req) => {
    const unit = req.query.from ?? req.rawPath.split("/").pop() ?? "";
    const page = Number(req.query.page ?? 1);
    if (unit === "gone") return { status: 404, body: { message: "Not Found" } };
    if (page === 2 && flaky.has(unit)) {
      flaky.delete(unit);
      return { status: 503, body: { error: "busy" } };
    }
    const items = [1, 2].map((i) => ({
      id: `${unit}-p${page}-${i}`,
      updated_at: `2024-02-0${page}T00:00:00Z`,
    }));
    return { body: { items, next: page < 2 ? "2" : null } };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

const PAGED = `
    records: $.items
    paginate: { type: cursor, cursor: $.next, param: page }
    on_response: [{ status: [404, 503], action: ignore }]`;

const state = () => {
  const file = project.file(".pipelines/state/test.json");
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { streams: {} };
};
const ids = (s: string) =>
  (readJsonl(project.file(`out/test/${s}.jsonl`)) as { id: string }[]).map((r) => r.id);

describe("an `ignore` rule after a unit's first page", () => {
  it("windows: the window commits its records, not its position; the next run fetches it again", async () => {
    project.pipeline(
      "test",
      `
source: { base_url: ${server.url}, concurrency: 1 }
streams:
  ev:
    path: /e
    params: { from: "\${window.start}" }${PAGED}
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-03, format: date }
    primary_key: id
output: { mode: merge }
`,
    );
    flaky = new Set(["2024-01-01"]);
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(0);
    expect((run.stream("ev") as unknown as { units: unknown }).units).toMatchObject({ incomplete: 1 });
    expect(ids("ev")).toEqual([
      "2024-01-01-p1-1",
      "2024-01-01-p1-2",
      ...["2024-01-02-p1-1", "2024-01-02-p1-2", "2024-01-02-p2-1", "2024-01-02-p2-2"],
    ]);
    // Not past the first window: its page 2 was never fetched.
    expect(state().streams.ev.cursor).toBeUndefined();
    server.reset();
    const again = await runPipeline(project.dir, "test");
    expect(again.code, again.stderr).toBe(0);
    expect(ids("ev")).toContain("2024-01-01-p2-1");
    expect(state().streams.ev.cursor).toBe("2024-01-03T00:00:00Z");
  });

  it("partitions: the partition keeps its old position; a partition ignored on its first page is complete", async () => {
    project.pipeline(
      "test",
      `
source: { base_url: ${server.url}, concurrency: 1 }
streams:
  repos:
    values: [a, gone, b]
    write: false
  issues:
    parent: repos
    path: /r/\${parent.value}${PAGED}
    incremental: { cursor_field: updated_at, param: since, initial: "2024-01-01T00:00:00Z" }
output: { mode: append }
`,
    );
    flaky = new Set(["a"]);
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(0);
    expect(state().streams.issues.partitions).toEqual({ b: "2024-02-02T00:00:00Z" });
  });
});
