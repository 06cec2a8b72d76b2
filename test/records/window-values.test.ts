// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${window.…}` templates
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runCli } from "../cli/helpers.js";
import { readJsonl, runPipeline, sourceBlock, useLocalServer, useTempProject } from "../run/helpers.js";

/**
 * Format 1.1 "Records": a `{ value }` field may use `${window.start}`, `${window.end}` and
 * `${window.last}` on a windowed stream ("Templates: where each namespace works": `window` in
 * field values, windowed streams). Each record carries the bounds of the window it came from.
 */
let hits = 0;
const urls: string[] = [];
const server = useLocalServer((req, res) => {
  hits++;
  urls.push(req.url ?? "");
  const u = new URL(req.url ?? "/", "http://x.test");
  const from = u.searchParams.get("from") ?? "";
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify([{ id: `${from}-1` }, { id: `${from}-2` }]));
});
const api = {
  get url() {
    return server.url;
  },
  get hits() {
    return hits;
  },
};
const project = useTempProject("pipelines-window-values-");

describe("window templates in field values", () => {
  it("each record gets its own window's bounds, in the window format", async () => {
    project.pipeline(
      "w",
      `${sourceBlock(api.url, "concurrency: 2")}
streams:
  events:
    path: /events
    params: { from: "\${window.start}" }
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-03, format: date }
    fields:
      id: $.id
      window: { value: "\${window.start}..\${window.last}" }
      until: { value: "\${window.end}" }
`,
    );
    const r = await runPipeline(project.dir, "w");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(project.file("out/w/events.jsonl"))).toEqual([
      { id: "2024-01-01-1", window: "2024-01-01..2024-01-01", until: "2024-01-02" },
      { id: "2024-01-01-2", window: "2024-01-01..2024-01-01", until: "2024-01-02" },
      { id: "2024-01-02-1", window: "2024-01-02..2024-01-02", until: "2024-01-03" },
      { id: "2024-01-02-2", window: "2024-01-02..2024-01-02", until: "2024-01-03" },
    ]);
  });

  it("a stream without windows: `${window.start}` in a field value is a config error (exit 2, nothing sent)", async () => {
    project.pipeline(
      "nw",
      `${sourceBlock(api.url)}
streams:
  events:
    path: /events
    fields:
      day: { value: "\${window.start}" }
`,
    );
    const hits = api.hits;
    const r = await runCli(["run", "nw"], project.dir);
    expect(r.code).toBe(2);
    expect(api.hits).toBe(hits);
    expect(r.stderr).toContain("pipelines/nw.yaml:9:22");
    expect(r.stderr).toContain("`${window.…}` needs `windows` on the stream");
  });
});

describe("infer on a windowed stream", () => {
  it("asks for the last window of the range, with its bounds filled (not the templates)", async () => {
    project.pipeline(
      "inf",
      `${sourceBlock(api.url)}
streams:
  events:
    path: /events
    params: { from: "\${window.start}", to: "\${window.end}" }
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-04, format: date }
    fields:
      id: $.id
      day: { value: "\${window.start}" }
`,
    );
    urls.length = 0;
    const r = await runCli(["infer", "inf"], project.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(urls).toEqual(["/events?from=2024-01-03&to=2024-01-04"]);
    const schema = JSON.parse(readFileSync(project.file("schemas/inf.events.schema.json"), "utf8"));
    expect(Object.keys(schema.properties)).toEqual(["id", "day"]);
  });
});
