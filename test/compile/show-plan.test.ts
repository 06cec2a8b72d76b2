// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${…}` templates
import { afterAll, describe, expect, it } from "vitest";
import { compilePlan } from "../../src/compile/compile-plan.js";
import { formatPlan, redactPlan } from "../../src/compile/show-plan.js";
import { previewPlan } from "../../src/run/plan-preview.js";
import { runCli } from "../cli/helpers.js";
import { loadOk, tempProject, writeFiles, yaml } from "../config/helpers.js";

const { dir, project, cleanup } = tempProject();
afterAll(cleanup);

const WINDOWED = yaml`
  source:
    base_url: https://x.test/v1
  streams:
    repos:
      values: [{ owner: acme, repo: widgets }, { owner: acme, repo: gears }, { owner: acme, repo: gone }]
      write: false
    issues:
      parent: repos
      path: /repos/\${parent.owner}/\${parent.repo}/issues
    events:
      path: /export
      params: { from: "\${window.start}", to: "\${window.last}" }
      records: $.events
      windows: { step: 7d, start: 2024-01-01, end: 2024-01-31, format: date, lookback: 1d }
  output:
    mode: append
`;

const RULES = yaml`
  source:
    base_url: https://x.test/v1
    on_response:
      - { status: 503, action: retry }
  streams:
    report:
      path: /report.csv
      response: { format: csv, csv: { delimiter: ";", header: false }, compression: gzip }
      on_response:
        - { status: 404, action: ignore }
        - { status: 200, match: $.error, equals: ratelimited, action: retry, wait: 30s }
        - { status: 4xx, body_contains: "range too large", action: fail, message: shorten the windows }
      fields:
        id: { path: $.c1, type: integer }
        at: { path: $.c2, type: date-time, from: epoch, default: 0 }
        source: { value: "\${stream}" }
        name: $.c3
      exclude: [raw.body, big]
      filter: "@.id > 0"
`;

function shown(text: string, name: string): string {
  const loaded = loadOk(project, text, {}, name);
  const plan = redactPlan(compilePlan(loaded), loaded.redactor);
  return formatPlan(plan, previewPlan(plan, Date.parse("2026-06-01T00:00:00Z")));
}

describe("pipelines plan: partitions, windows and the 1.1 record keys", () => {
  it("shows the windows (count, first, last, step) and where each stream's partitions come from", () => {
    const text = shown(WINDOWED, "win");
    expect(text).toContain("partitions  none: its records are listed in the file (3)");
    expect(text).toContain("records     3 listed in the file (values: no request)");
    expect(text).toContain("write       no (records are validated and kept for child streams only)");
    expect(text).toContain("partitions  one per record of repos (3)");
    expect(text).toContain("partitions  one per window (5)");
    expect(text).toContain(
      "windows     5 of 7d (date) from 2024-01-01 to 2024-01-31, window 2024-01-01…2024-01-08 to window 2024-01-29…2024-01-31; later runs resume at the saved end minus 1d",
    );
  });

  it("shows response rules, field specs, exclude, filter and the response format", () => {
    const text = shown(RULES, "rules");
    expect(text).toContain('response    csv, delimiter ";", no header (c1, c2, …), compression gzip');
    expect(text).toContain("on response status 404 → ignore [streams.report.on_response[0]]");
    expect(text).toContain('on response status 200, $.error = "ratelimited" → retry after 30s');
    expect(text).toContain(
      'on response status 4xx, body contains "range too large" → fail ("shorten the windows")',
    );
    expect(text).toContain("on response status 503 → retry [source.on_response[0]]");
    expect(text).toContain("records     every row");
    expect(text).toContain(
      'fields      id ← $.c1 (as integer), at ← $.c2 (as date-time, from epoch, default 0), source = "${stream}", name ← $.c3',
    );
    expect(text).toContain("exclude     raw.body, big");
    expect(text).toContain("filter      @.id > 0 (other records are dropped, counted as filtered)");
  });

  it("plan --json carries each stream's partition source and windows", async () => {
    writeFiles(dir, { "pipelines/win.yaml": WINDOWED });
    const r = await runCli(["plan", "win", "--json"], dir, {});
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as { streams: { name: string; preview: unknown }[] };
    const by = Object.fromEntries(plan.streams.map((s) => [s.name, s.preview]));
    expect(by.repos).toEqual({ partitions: { from: "values", parent: null, count: 3 }, windows: null });
    expect(by.issues).toEqual({ partitions: { from: "parent", parent: "repos", count: 3 }, windows: null });
    expect(by.events).toEqual({
      partitions: { from: "windows", parent: null, count: 5 },
      windows: {
        count: 5,
        first: "window 2024-01-01…2024-01-08",
        last: "window 2024-01-29…2024-01-31",
        step: "7d",
        start: "2024-01-01T00:00:00.000Z",
        end: "2024-01-31T00:00:00.000Z",
      },
    });
  });
});
