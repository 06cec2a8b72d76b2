import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MAX_NESTING } from "../../src/shared/json-text.js";
import { type TempProject, tempProject } from "../run/helpers.js";
import { type BodyServer, bodyServer, expected, FORMATS, readRecords, runFormat } from "./helpers.js";

/**
 * Attack class: JSON bodies shaped to trip the reader — a UTF-8 byte order mark before the JSON,
 * and values nested thousands of levels deep (which overflowed the call stack of whatever walked
 * them: `internal: Maximum call stack size exceeded`).
 */

const nestedArrays = (levels: number) => `${"[".repeat(levels)}1${"]".repeat(levels)}`;
const nestedObjects = (levels: number) => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;

const SCHEMA = "schema: { type: object, properties: { id: { type: integer }, deep: {} } }";

let server: BodyServer;
let project: TempProject;
beforeAll(async () => {
  server = await bodyServer({
    "/bom": Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"data":[{"id":1,"s":"é"}]}')]),
    "/deep-arrays": `{"data":[{"id":1,"deep":${nestedArrays(6000)}}]}`,
    "/deep-objects": `{"data":[{"id":1,"deep":${nestedObjects(6000)}}]}`,
    "/deep-big": `{"data":[{"id":12345678901234567890,"deep":${nestedArrays(6000)}}]}`,
    "/shallow": `{"data":[{"id":1,"deep":${nestedArrays(MAX_NESTING - 1)}}]}`,
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project = tempProject("pipelines-bodies-");
});
afterEach(() => project.cleanup());

describe.each(FORMATS)("hostile JSON bodies, output %s", (format) => {
  it("a UTF-8 BOM before the JSON body is skipped", async () => {
    const r = await runFormat(project, server.url, format, { bom: ["path: /bom", "records: $.data"] });
    expect(r.stream("bom").error).toBeNull();
    expect(await readRecords(project, format, "bom")).toEqual(expected({ id: "1", s: "é" }));
  });

  const deep: [string, string[]][] = [
    ["arrays", ["path: /deep-arrays", "records: $.data"]],
    ["arrays, field in the schema", ["path: /deep-arrays", "records: $.data", SCHEMA]],
    ["objects, flattened", ["path: /deep-objects", "records: $.data", "flatten: true"]],
    ["objects, field in the schema", ["path: /deep-objects", "records: $.data", SCHEMA]],
    ["arrays, a page with a big integer", ["path: /deep-big", "records: $.data"]],
  ];
  it.each(deep)(
    "6,000 levels of nesting (%s) fail the stream with too_deep, naming the limit",
    async (_n, lines) => {
      const r = await runFormat(project, server.url, format, { deep: lines });
      const s = r.stream("deep");
      expect(s.status).toBe("failed");
      expect(s.error).toEqual({
        kind: "too_deep",
        message: expect.stringContaining(`nested more than ${MAX_NESTING} levels deep`),
      });
      expect(r.code).not.toBe(0);
    },
  );

  it(`${MAX_NESTING - 1} levels inside a record (${MAX_NESTING} with it) are written`, async () => {
    const r = await runFormat(project, server.url, format, {
      shallow: ["path: /shallow", "records: $.data"],
    });
    expect(r.stream("shallow").error).toBeNull();
    const [rec] = await readRecords(project, format, "shallow");
    expect(rec.deep).toBe(nestedArrays(MAX_NESTING - 1));
  });
});
