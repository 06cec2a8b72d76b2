// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${window.…}` and `${parent.…}` templates
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * `--limit N` on a stream fetched in units (windows, partitions) run concurrently: N records,
 * not N plus everything the units beside the first one fetched while it was slow (their records
 * wait in the ordered sink, unwritten, so they did not count).
 */
let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer(async (req) => {
    const unit = req.query.from ?? req.rawPath.split("/").pop() ?? "";
    const at = Number(req.query.cursor ?? 0);
    // The first unit answers last: the others run ahead of it.
    if (unit === "2024-01-01" || unit === "a") await new Promise((r) => setTimeout(r, 100));
    const items = Array.from({ length: 50 }, (_, i) => ({ id: `${unit}-${at + i}` }));
    return { body: { items, next: at < 450 ? String(at + 50) : null } };
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
    paginate: { type: cursor, cursor: $.next }`;

const STREAMS: Record<string, string> = {
  windows: `
  ev:
    path: /e
    params: { from: "\${window.start}" }${PAGED}
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-05, format: date }`,
  partitions: `
  r:
    values: [a, b, c, d]
    write: false
  ev:
    parent: r
    path: /p/\${parent.value}${PAGED}`,
};

function pipeline(kind: string, mode: string): string {
  return `
source: { base_url: ${server.url}, concurrency: 4 }
streams:${STREAMS[kind]}
output: { mode: ${mode} }
`;
}

const out = () => project.file("out/test/ev.jsonl");

describe("--limit on a stream in units", () => {
  for (const kind of ["windows", "partitions"]) {
    it(`${kind}, append: writes exactly the limit, and says the limit stopped it`, async () => {
      project.pipeline("test", pipeline(kind, "append"));
      const run = await runPipeline(project.dir, "test", ["--limit", "10"]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stream("ev").records.written).toBe(10);
      expect(run.stream("ev").stop_reason?.code).toBe("limit");
      expect(readJsonl(out())).toHaveLength(10);
    });

    it(`${kind}, replace: a --limit run over a full output does not replace it: kept beside as the preview`, async () => {
      project.pipeline("test", pipeline(kind, "replace"));
      expect((await runPipeline(project.dir, "test")).code).toBe(0);
      expect(readJsonl(out())).toHaveLength(2000);
      const run = await runPipeline(project.dir, "test", ["--limit", "10"]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stream("ev").records.written).toBe(10);
      expect(run.stream("ev").warnings.join(" ")).toContain("not committed: a run made with --limit 10");
      expect(readJsonl(out())).toHaveLength(2000);
      // The run's records are kept beside, as for a stream without units.
      const preview = project.file("out/test/ev.preview.jsonl");
      expect((run.stream("ev") as unknown as { preview: string | null }).preview).toBe(preview);
      expect(readJsonl(preview)).toHaveLength(10);
    });
  }
});

describe("--max-pages on a stream in units", () => {
  for (const kind of ["windows", "partitions"]) {
    it(`${kind}: the stream stops with max_pages and says how many units it cut; a replace run is kept beside`, async () => {
      project.pipeline("test", pipeline(kind, "replace"));
      expect((await runPipeline(project.dir, "test")).code).toBe(0);
      expect(readJsonl(out())).toHaveLength(2000);
      const run = await runPipeline(project.dir, "test", ["--max-pages", "1"]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stream("ev").stop_reason?.code).toBe("max_pages");
      const warnings = run.stream("ev").warnings.join("\n");
      expect(warnings).toContain(`4 of 4 ${kind} stopped early: max_pages 1 reached`);
      expect(warnings).toContain("not committed: a run made with --max-pages 1");
      // The full output stays; the cut run (one page of each unit) is beside it.
      expect(readJsonl(out())).toHaveLength(2000);
      expect(readJsonl(project.file("out/test/ev.preview.jsonl"))).toHaveLength(200);
    });
  }
});
