// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${window.…}` templates
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * `records_path_matched_nothing` on a windowed stream: it decides (exit 3, not committed) only
 * when the stream has no record, as for a stream without windows — not when one window's body
 * lacks the records member while the others have records. Under checkpoints it is judged at each
 * commit on the windows so far, so a wrong path stops the stream before its first commit: no
 * window is committed and no position saved (the next run, path fixed, fetches the whole range).
 */
let server: SyncServer;
let project: TempProject;
/** Windows (their `from`) whose body has no `events` member, only `links`. */
let bare = new Set<string>();

beforeAll(async () => {
  server = await startSyncServer((req) => {
    const from = req.query.from;
    if (bare.has(from)) return { body: { data: { links: [{ rel: "self", href: "/e" }] } } };
    return { body: { data: { events: [{ id: `${from}-a` }, { id: `${from}-b` }] } } };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
  bare = new Set();
});

function pipeline(records: string, mode: string): string {
  return `
source: { base_url: ${server.url}, concurrency: 3 }
streams:
  ev:
    path: /e
    params: { from: "\${window.start}" }
    records: ${records}
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-04, format: date }
output: { mode: ${mode} }
`;
}

const out = () => project.file("out/test/ev.jsonl");
const ids = () => (existsSync(out()) ? (readJsonl(out()) as { id: string }[]).map((r) => r.id) : []);
const state = () => JSON.parse(readFileSync(project.file(".pipelines/state/test.json"), "utf8"));
const ALL = ["2024-01-01", "2024-01-02", "2024-01-03"].flatMap((d) => [`${d}-a`, `${d}-b`]);

describe("a `records` path that matched nothing, on a windowed stream", () => {
  it("a wrong path (append): nothing committed, no position saved; the fixed path then fetches every window", async () => {
    project.pipeline("test", pipeline("$.data.event", "append"));
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(3);
    const ev = run.stream("ev") as unknown as {
      status: string;
      suspicions: { code: string; decides: boolean; message: string }[];
      units: { committed: number };
    };
    expect(ev.status).toBe("rejected");
    expect(ev.units.committed).toBe(0);
    expect(ev.suspicions[0]).toMatchObject({ code: "records_path_matched_nothing", decides: true });
    expect(ev.suspicions[0].message).toContain("window 2024-01-01…2024-01-02");
    expect(state().streams.ev.cursor).toBeUndefined();
    expect(ids()).toEqual([]);

    project.pipeline("test", pipeline("$.data.events", "append"));
    const fixed = await runPipeline(project.dir, "test");
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(ids()).toEqual(ALL);
    expect(state().streams.ev.cursor).toBe("2024-01-04T00:00:00Z");
  });

  for (const mode of ["append", "replace"])
    it(`${mode}: one window without the records member among windows with records is a warning, and everything commits`, async () => {
      // The middle window under append (earlier windows had records); the first under replace
      // (judged on the whole stream).
      bare = new Set([mode === "append" ? "2024-01-02" : "2024-01-01"]);
      project.pipeline("test", pipeline("$.data.events", mode));
      const run = await runPipeline(project.dir, "test");
      expect(run.code, run.stderr).toBe(0);
      const ev = run.stream("ev") as unknown as {
        status: string;
        suspicions: { code: string; decides: boolean; message: string }[];
      };
      expect(ev.status).toBe("ok");
      expect(ev.suspicions).toHaveLength(1);
      expect(ev.suspicions[0]).toMatchObject({ code: "records_path_matched_nothing", decides: false });
      expect(ev.suspicions[0].message).toContain(`window ${[...bare][0]}…`);
      expect(ids()).toEqual(ALL.filter((id) => !id.startsWith([...bare][0])));
    });
});
