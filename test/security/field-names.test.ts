/**
 * Attack class "field names": keys chosen by the API. A megabyte-long key, or a new key in every
 * record (a map keyed by ids), must not blow up the report, the summary or the run's memory.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_TRACKED_FIELDS } from "../../src/records/quality.js";
import {
  closeServer,
  listenLocal,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "../run/helpers.js";

const LONG = `k${"x".repeat(1_000_000)}`;
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url?.startsWith("/long")) {
      res.end(
        JSON.stringify({
          items: [
            { id: 1, [LONG]: "v" },
            { id: 2, [LONG]: 5 },
          ],
        }),
      );
      return;
    }
    // 12,000 records, each with a key no other record has.
    const items = Array.from({ length: MAX_TRACKED_FIELDS + 2000 }, (_, i) => ({ id: i, [`u${i}`]: i }));
    res.end(JSON.stringify({ items }));
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
afterEach(() => p?.cleanup());

function project(path: string, schema: boolean): TempProject {
  const t = tempProject();
  t.pipeline(
    "f",
    `${sourceBlock(url)}\nstreams:\n  s:\n    path: ${path}\n    records: $.items\n${schema ? "    schema: s.json\n" : ""}`,
  );
  if (schema) {
    const s = { type: "object", properties: { id: { type: "integer" } }, additionalProperties: false };
    writeFileSync(t.file("schemas/s.json"), JSON.stringify(s));
  }
  return t;
}

describe("field names from the API", () => {
  it.each([false, true])("a 1 MB key is cut in the report and the output (schema: %s)", async (schema) => {
    p = project("/long", schema);
    const r = await runPipeline(p.dir, "f", [], {});
    expect(statSync(p.file("reports/f/latest.json")).size).toBeLessThan(100_000);
    expect(statSync(p.file("reports/f/latest.html")).size).toBeLessThan(200_000);
    expect(r.stdout.length + r.stderr.length).toBeLessThan(100_000);
    const report = readFileSync(p.file("reports/f/latest.json"), "utf8");
    expect(report).toContain("more characters)");
  });

  it("a new key in every record: statistics stay bounded and the stream says why", async () => {
    p = project("/map", false);
    const r = await runPipeline(p.dir, "f");
    expect(r.code).toBe(0);
    expect(r.stream("s").records.written).toBe(MAX_TRACKED_FIELDS + 2000);
    expect(r.stream("s").warnings.join("\n")).toMatch(/more than 10,000 distinct field names/);
    const report = JSON.parse(readFileSync(p.file("reports/f/latest.json"), "utf8"));
    const fields = report.streams[0].fields ?? report.streams[0].quality?.fields;
    expect(fields.length).toBeLessThanOrEqual(MAX_TRACKED_FIELDS);
  });

  it("unexpected keys under additionalProperties: false fold into bounded error groups", async () => {
    p = project("/map", true);
    const r = await runPipeline(p.dir, "f");
    const report = JSON.parse(readFileSync(p.file("reports/f/latest.json"), "utf8"));
    const groups = report.streams[0].errors ?? report.streams[0].quality?.errors;
    expect(groups.length).toBeLessThanOrEqual(MAX_TRACKED_FIELDS + 1);
    expect(groups.some((g: { field: string }) => g.field === "(other fields)")).toBe(true);
    expect(r.stream("s").records.invalid).toBe(MAX_TRACKED_FIELDS + 2000);
  });
});
