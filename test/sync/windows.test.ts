// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${window.…}` templates
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * An export API like Mixpanel's: `from_date` and `to_date` are inclusive dates, a range wider
 * than 7 days is refused (400), events are paged by a cursor. One event per day per hour 0, 12.
 */
const DAY = 86_400_000;
const T0 = Date.UTC(2024, 0, 1);
function eventsOn(day: string): { id: string; day: string; hour: number }[] {
  return [0, 12].map((hour) => ({ id: `${day}-${hour}`, day, hour }));
}

let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer((req) => {
    if (req.rawPath === "/export") {
      const from = Date.parse(`${req.query.from_date}T00:00:00Z`);
      const to = Date.parse(`${req.query.to_date}T00:00:00Z`);
      if (Number.isNaN(from) || Number.isNaN(to) || to < from)
        return { status: 400, body: { error: "bad range" } };
      if ((to - from) / DAY + 1 > 7) return { status: 400, body: { error: "range wider than 7 days" } };
      const all: unknown[] = [];
      for (let t = from; t <= to; t += DAY) all.push(...eventsOn(new Date(t).toISOString().slice(0, 10)));
      // One page of 3 at a time, cursor = offset.
      const at = Number(req.query.cursor ?? 0);
      const page = all.slice(at, at + 3);
      return { body: { events: page, next: at + 3 < all.length ? String(at + 3) : null } };
    }
    return { status: 404, body: {} };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

function exportPipeline(windows: string, mode = "append"): string {
  return `
source:
  base_url: ${server.url}
  retry: { max_attempts: 2, initial_delay: 10ms, max_delay: 1s }
  concurrency: 4
streams:
  events:
    path: /export
    params: { from_date: "\${window.start}", to_date: "\${window.last}" }
    records: $.events
    paginate: { type: cursor, cursor: $.next }
    windows: ${windows}
output:
  mode: ${mode}
`;
}

function expected(fromDay: number, toDay: number): string[] {
  const ids: string[] = [];
  for (let d = fromDay; d < toDay; d++) {
    const day = new Date(T0 + d * DAY).toISOString().slice(0, 10);
    ids.push(`${day}-0`, `${day}-12`);
  }
  return ids;
}

const out = () => project.file("out/test/events.jsonl");
const ids = () => (readJsonl(out()) as { id: string }[]).map((r) => r.id);
const state = () => JSON.parse(readFileSync(project.file(".pipelines/state/test.json"), "utf8"));

describe("date windows against a 7-day export API", () => {
  it("cuts the range into 7-day windows (last one cut at end), written in order, inclusive dates", async () => {
    project.pipeline(
      "test",
      exportPipeline("{ step: 7d, start: 2024-01-01, end: 2024-01-31, format: date }"),
    );
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(0);
    expect(ids()).toEqual(expected(0, 30));
    // 5 windows: 4 of 7 days, the last of 2 days (Jan 29–30, end Jan 31 exclusive).
    const ranges = server.requests
      .filter((r) => !r.query.cursor)
      .map((r) => `${r.query.from_date}..${r.query.to_date}`)
      .sort();
    expect(ranges).toEqual([
      "2024-01-01..2024-01-07",
      "2024-01-08..2024-01-14",
      "2024-01-15..2024-01-21",
      "2024-01-22..2024-01-28",
      "2024-01-29..2024-01-30",
    ]);
    expect(state().streams.events.cursor).toBe("2024-01-31T00:00:00Z");
    const units = (run.summary.streams[0] as unknown as { units: Record<string, unknown> }).units;
    expect(units).toMatchObject({ kind: "windows", total: 5, done: 5, committed: 5 });
    // The report carries them too, and its page shows them.
    const report = JSON.parse(readFileSync(project.file("reports/test/latest.json"), "utf8"));
    expect(report.streams[0].units).toMatchObject({
      kind: "windows",
      total: 5,
      done: 5,
      windows: { first: "window 2024-01-01…2024-01-08", last: "window 2024-01-29…2024-01-31", step: "7d" },
    });
    expect(readFileSync(project.file("reports/test/latest.html"), "utf8")).toContain(
      "<dt>Windows</dt><dd>5 of 5 done",
    );
  });

  it("a later run starts at the saved end minus lookback; the empty range is a success", async () => {
    project.pipeline(
      "test",
      exportPipeline("{ step: 7d, start: 2024-01-01, end: 2024-01-15, format: date }"),
    );
    expect((await runPipeline(project.dir, "test")).code).toBe(0);
    // Same end: nothing left to fetch.
    server.reset();
    const again = await runPipeline(project.dir, "test");
    expect(again.code).toBe(0);
    expect(server.requests).toHaveLength(0);
    expect(again.stream("events").warnings.join(" ") + again.stream("events").stop_reason?.message).toContain(
      "already empty",
    );
    // Later end and a 2-day lookback: starts Jan 13 (append: the overlap is appended again).
    project.pipeline(
      "test",
      exportPipeline("{ step: 7d, start: 2024-01-01, end: 2024-01-22, format: date, lookback: 2d }"),
    );
    server.reset();
    expect((await runPipeline(project.dir, "test")).code).toBe(0);
    const firsts = server.requests.filter((r) => !r.query.cursor).map((r) => r.query.from_date);
    expect(firsts.sort()).toEqual(["2024-01-13", "2024-01-20"]);
    expect(ids()).toEqual([...expected(0, 14), ...expected(12, 21)]);
    // --full-refresh starts again at `start`.
    server.reset();
    expect((await runPipeline(project.dir, "test", ["--full-refresh"])).code).toBe(0);
    expect(
      server.requests
        .filter((r) => !r.query.cursor)
        .map((r) => r.query.from_date)
        .sort()[0],
    ).toBe("2024-01-01");
  });

  it("renders bounds in each format, in UTC", async () => {
    const seen: Record<string, string>[] = [];
    for (const format of ["iso8601", "epoch", "epoch_ms"]) {
      project.pipeline(
        "test",
        `
source: { base_url: ${server.url} }
streams:
  w:
    path: /probe
    params: { s: "\${window.start}", e: "\${window.end}", l: "\${window.last}" }
    windows: { step: 12h, start: "2024-03-10T00:00:00+02:00", end: 2024-03-10T10:00:00Z, format: ${format} }
`,
      );
      server.reset();
      await runPipeline(project.dir, "test");
      seen.push(...server.requests.map((r) => ({ format, ...r.query })));
    }
    expect(seen).toEqual([
      { format: "iso8601", s: "2024-03-09T22:00:00Z", e: "2024-03-10T10:00:00Z", l: "2024-03-10T09:59:59Z" },
      { format: "epoch", s: "1710021600", e: "1710064800", l: "1710064799" },
      { format: "epoch_ms", s: "1710021600000", e: "1710064800000", l: "1710064799999" },
    ]);
  });

  it("a v1 state file (one cursor) seeds the windows", async () => {
    project.pipeline(
      "test",
      exportPipeline("{ step: 7d, start: 2024-01-01, end: 2024-01-15, format: date }"),
    );
    const dir = project.file(".pipelines/state");
    await import("node:fs").then((fs) => fs.mkdirSync(dir, { recursive: true }));
    writeFileSync(
      `${dir}/test.json`,
      JSON.stringify({ version: 1, streams: { events: { cursor: "2024-01-08", updated_at: "x" } } }),
    );
    expect((await runPipeline(project.dir, "test")).code).toBe(0);
    expect(ids()).toEqual(expected(7, 14));
  });
});
