// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${window.…}` and `${parent.…}` templates
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * A unit's position reaches the state file only with its commit. Here the first unit (a window,
 * or a partition) answers last, so the units after it are already fetched when it commits: the
 * state write of that commit is still in flight when the next unit is staged and the quality
 * gate stops the stream before committing it. That state write must not carry the position of
 * the unit that was never committed (its records would then never be fetched again).
 */
let server: SyncServer;
let project: TempProject;
/** The unit whose first 3 records of 5 are invalid (`n` is not an integer). */
const BAD = "2024-01-02";

beforeAll(async () => {
  server = await startSyncServer(async (req) => {
    const key = req.query.from ?? req.rawPath.split("/").pop() ?? "";
    // The first unit answers last.
    if (key === "2024-01-01") await new Promise((r) => setTimeout(r, 150));
    const records = Array.from({ length: 5 }, (_, i) => ({
      id: `${key}-${i}`,
      n: key === BAD && !req.query.fixed && i < 3 ? "x" : i,
      updated_at: "2024-03-01T00:00:00Z",
    }));
    return { body: records };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

const state = () => JSON.parse(readFileSync(project.file(".pipelines/state/test.json"), "utf8"));
const ids = (stream: string) =>
  (readJsonl(project.file(`out/test/${stream}.jsonl`)) as { id: string }[]).map((r) => r.id);
const idsOf = (keys: string[]) => keys.flatMap((k) => Array.from({ length: 5 }, (_, i) => `${k}-${i}`));
const DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"];

function pipeline(stream: string, fixed: boolean): string {
  const common = `
    schema: { type: object, properties: { n: { type: integer } } }`;
  const units =
    stream === "ev"
      ? `
  ev:
    path: /e
    params: { from: "\${window.start}"${fixed ? ", fixed: yes" : ""} }
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-05, format: date }${common}`
      : `
  days:
    values: [${DAYS.join(", ")}]
    write: false
  issues:
    parent: days
    path: /issues/\${parent.value}
    params: { ${fixed ? "fixed: yes" : ""} }
    incremental: { cursor_field: updated_at, param: since, initial: "2024-01-01T00:00:00Z" }${common}`;
  return `
source: { base_url: ${server.url}, concurrency: 4 }
streams:${units}
validation: { max_invalid_ratio: 0.2 }
output: { mode: append }
`;
}

describe("a quality gate stop while an earlier commit's state is being written", () => {
  it("windows: the state ends at the last committed window; the next run fetches the rest once", async () => {
    project.pipeline("test", pipeline("ev", false));
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(3);
    expect((run.stream("ev") as unknown as { units: unknown }).units).toMatchObject({ committed: 1 });
    expect(ids("ev")).toEqual(idsOf(["2024-01-01"]));
    expect(state().streams.ev.cursor).toBe("2024-01-02T00:00:00Z");

    project.pipeline("test", pipeline("ev", true));
    const again = await runPipeline(project.dir, "test");
    expect(again.code, again.stderr).toBe(0);
    expect(ids("ev")).toEqual(idsOf(DAYS));
  });

  it("partitions: only the committed partition has a position; the next run fetches the others", async () => {
    project.pipeline("test", pipeline("issues", false));
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(3);
    expect(ids("issues")).toEqual(idsOf(["2024-01-01"]));
    expect(state().streams.issues.partitions).toEqual({ "2024-01-01": "2024-03-01T00:00:00Z" });

    project.pipeline("test", pipeline("issues", true));
    server.reset();
    const again = await runPipeline(project.dir, "test");
    expect(again.code, again.stderr).toBe(0);
    const since = Object.fromEntries(server.requests.map((r) => [r.rawPath, r.query.since]));
    expect(since).toEqual({
      "/issues/2024-01-01": "2024-03-01T00:00:00Z",
      "/issues/2024-01-02": "2024-01-01T00:00:00Z",
      "/issues/2024-01-03": "2024-01-01T00:00:00Z",
      "/issues/2024-01-04": "2024-01-01T00:00:00Z",
    });
  });
});
