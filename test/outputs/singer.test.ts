/**
 * Singer output through the CLI: `format: singer` (to a file, or to standard output) and
 * `run <name> --singer`. Messages are checked against the Singer specification
 * (https://github.com/singer-io/getting-started/blob/master/docs/SPEC.md): every line a JSON
 * object with a `type`; SCHEMA has `stream`, `schema` (a JSON Schema), `key_properties` (a list
 * of field names) and optionally `bookmark_properties`; a stream's SCHEMA comes before its
 * RECORDs; RECORD has `stream` and `record` (conforming to the schema); STATE has `value`.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { compileRecordSchema } from "../../src/lang/ajv.js";
import { runCli } from "../cli/helpers.js";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import {
  changedSince,
  type Item,
  isoAt,
  makeItems,
  pageOf,
  type SyncServer,
  startSyncServer,
} from "../sync/sync-server.js";

type Message = Record<string, unknown> & { type: string };

let items: Item[] = [];
let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer((req) => {
    if (req.rawPath === "/items")
      return { body: { items: pageOf(changedSince(items, req.query.since), req.query) } };
    if (req.rawPath === "/tags") return { body: [{ tag: "a" }, { tag: "b" }] };
    if (req.rawPath === "/none") return { body: [] };
    return { status: 404, body: { error: "not_found" } };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  items = makeItems(7);
  server.requests.length = 0;
  project = tempProject("pipelines-singer-");
  writeFileSync(
    project.file("schemas/items.json"),
    JSON.stringify({
      type: "object",
      required: ["id", "name"],
      properties: {
        id: { type: "integer" },
        name: { type: "string", pattern: "^item-" },
        value: { type: "integer" },
        updated_at: { type: "string", format: "date-time" },
      },
    }),
  );
});
afterEach(() => project.cleanup());

/** Pipeline `p`: `items` (incremental on updated_at, key id, schema) and `tags` (no key, no schema). */
function pipeline(output: string[], extra: string[] = []): void {
  project.pipeline(
    "p",
    [
      "source:",
      `  base_url: ${server.url}`,
      "  retry: { max_attempts: 1 }",
      "streams:",
      "  items:",
      "    path: /items",
      "    records: $.items",
      "    paginate: { type: page, size_param: per_page, size: 5 }",
      "    primary_key: id",
      "    schema: items.json",
      '    incremental: { cursor_field: updated_at, param: since, initial: "2024-01-01T00:00:00Z" }',
      "  tags:",
      "    path: /tags",
      "output:",
      ...output.map((l) => `  ${l}`),
      ...extra,
      "",
    ].join("\n"),
  );
}

/** `pipelines …` in-process; stdout and stderr apart. */
const cli = (args: string[]) => runCli(args, project.dir);

const isStringList = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");

/** Parses Singer messages and checks them against the spec; returns them. */
function conformingMessages(text: string): Message[] {
  expect(text.endsWith("\n")).toBe(true);
  const messages = text
    .slice(0, -1)
    .split("\n")
    .map((line) => JSON.parse(line) as Message);
  const schemas = new Map<string, ReturnType<typeof compileRecordSchema>>();
  for (const m of messages) {
    expect(["SCHEMA", "RECORD", "STATE"]).toContain(m.type);
    if (m.type === "SCHEMA") {
      expect(typeof m.stream).toBe("string");
      expect(typeof m.schema).toBe("object");
      expect(isStringList(m.key_properties)).toBe(true);
      if (m.bookmark_properties !== undefined) expect(isStringList(m.bookmark_properties)).toBe(true);
      schemas.set(m.stream as string, compileRecordSchema(m.schema));
    } else if (m.type === "RECORD") {
      const validate = schemas.get(m.stream as string);
      expect(validate, `RECORD of ${m.stream} before its SCHEMA`).toBeDefined();
      expect(typeof m.record).toBe("object");
      expect(validate!(m.record), JSON.stringify(validate!.errors)).toBe(true);
    } else {
      expect(typeof m.value).toBe("object");
    }
  }
  return messages;
}

const ofType = (messages: Message[], type: string, stream?: string) =>
  messages.filter((m) => m.type === type && (stream === undefined || m.stream === stream));

function checkPipelineMessages(messages: Message[]): void {
  const [itemsSchema] = ofType(messages, "SCHEMA", "items");
  expect(itemsSchema).toMatchObject({
    key_properties: ["id"],
    bookmark_properties: ["updated_at"],
    schema: { properties: { id: { type: "integer" } } },
  });
  expect(ofType(messages, "SCHEMA", "tags")[0]).toMatchObject({ key_properties: [] });
  expect(ofType(messages, "SCHEMA", "tags")[0].bookmark_properties).toBeUndefined();
  expect(ofType(messages, "RECORD", "items").map((m) => m.record)).toEqual(items);
  expect(ofType(messages, "RECORD", "tags").map((m) => m.record)).toEqual([{ tag: "a" }, { tag: "b" }]);
  const last = messages[messages.length - 1];
  expect(last).toEqual({ type: "STATE", value: { bookmarks: { items: { updated_at: isoAt(7) } } } });
}

describe("singer output", () => {
  it("format: singer with a path: one file of conforming messages, the state file as usual", async () => {
    pipeline(["format: singer", "path: out/p.singer"]);
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    checkPipelineMessages(conformingMessages(readFileSync(project.file("out/p.singer"), "utf8")));
    expect(
      JSON.parse(readFileSync(project.file(".pipelines/state/p.json"), "utf8")).streams.items.cursor,
    ).toBe(isoAt(7));
  });

  it("a stream that never has a record commits into a Singer file other streams fill (each guards its own records)", async () => {
    pipeline(["format: singer", "path: out/p.singer"]);
    const text = readFileSync(project.file("pipelines/p.yaml"), "utf8");
    project.pipeline("p", text.replace("output:", "  none:\n    path: /none\noutput:"));
    for (const round of [1, 2]) {
      const r = await runPipeline(project.dir, "p");
      expect(r.code, `run ${round}: ${r.stderr}`).toBe(0);
      const messages = conformingMessages(readFileSync(project.file("out/p.singer"), "utf8"));
      expect(
        ofType(messages, "SCHEMA")
          .map((m) => m.stream)
          .sort(),
      ).toEqual(["items", "none", "tags"]);
      expect(ofType(messages, "RECORD", "tags")).toHaveLength(2);
      expect(ofType(messages, "RECORD", "none")).toHaveLength(0);
    }
  });

  it("format: singer without a path: messages on stdout, summary on stderr; --json is refused", async () => {
    pipeline(["format: singer"]);
    const r = await cli(["run", "p"]);
    expect(r.code, r.stderr).toBe(0);
    checkPipelineMessages(conformingMessages(r.stdout));
    expect(r.stderr).toMatch(/items: wrote standard output \(Singer\)/);
    const refused = await cli(["run", "p", "--json"]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe("");
    // Two pipelines' messages cannot share standard output (one target reads one run's STATEs).
    project.pipeline("q", readFileSync(project.file("pipelines/p.yaml"), "utf8"));
    const two = await cli(["run", "p", "q"]);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain("pipelines p, q all send Singer messages to standard output");
    expect(two.stdout).toBe("");
  });

  it("run --singer --preview is refused before any request (both would print on standard output)", async () => {
    pipeline(["format: jsonl"]);
    const before = server.requests.length;
    const r = await cli(["run", "p", "--singer", "--preview"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("--preview prints records on standard output");
    expect(server.requests.length).toBe(before);
  });

  it("run --singer: any output becomes Singer on stdout; the output and the state file are not written", async () => {
    pipeline(["format: jsonl"]);
    const r = await cli(["run", "p", "--singer"]);
    expect(r.code, r.stderr).toBe(0);
    checkPipelineMessages(conformingMessages(r.stdout));
    expect(existsSync(project.file("out/p/items.jsonl"))).toBe(false);
    expect(existsSync(project.file(".pipelines/state/p.json"))).toBe(false);
    // Progress and summary on stderr only.
    expect(r.stderr).toMatch(/items/);
  });

  it("run --singer starts from the saved state, or from --state FILE (a Singer state)", async () => {
    pipeline(["format: jsonl"]);
    expect((await runPipeline(project.dir, "p")).code).toBe(0);
    const stateFile = project.file(".pipelines/state/p.json");
    const saved = readFileSync(stateFile, "utf8");
    items.push({ id: 8, name: "item-8", value: 80, updated_at: isoAt(20) });

    server.requests.length = 0;
    const fromSaved = await cli(["run", "p", "--singer"]);
    expect(fromSaved.code, fromSaved.stderr).toBe(0);
    expect(new Set(server.requests.filter((q) => q.rawPath === "/items").map((q) => q.query.since))).toEqual(
      new Set([isoAt(7)]),
    );
    const messages = conformingMessages(fromSaved.stdout);
    expect(ofType(messages, "RECORD", "items").map((m) => (m.record as Item).id)).toEqual([7, 8]);
    expect(messages[messages.length - 1]).toEqual({
      type: "STATE",
      value: { bookmarks: { items: { updated_at: isoAt(20) } } },
    });
    expect(readFileSync(stateFile, "utf8")).toBe(saved);

    writeFileSync(
      project.file("singer-state.json"),
      JSON.stringify({ bookmarks: { items: { updated_at: isoAt(6) }, other: { x: 1 } } }),
    );
    server.requests.length = 0;
    const fromFile = await cli(["run", "p", "--singer", "--state", "singer-state.json"]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(new Set(server.requests.filter((q) => q.rawPath === "/items").map((q) => q.query.since))).toEqual(
      new Set([isoAt(6)]),
    );
    const last = conformingMessages(fromFile.stdout).pop();
    // Bookmarks of streams this run does not know are passed on.
    expect(last).toEqual({
      type: "STATE",
      value: { bookmarks: { items: { updated_at: isoAt(20) }, other: { x: 1 } } },
    });
    expect(readFileSync(stateFile, "utf8")).toBe(saved);

    writeFileSync(project.file("bad-state.json"), "[1, 2]");
    const bad = await cli(["run", "p", "--singer", "--state", "bad-state.json"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not a Singer state/);
    expect(await cli(["run", "p", "--state", "singer-state.json"])).toMatchObject({ code: 2 });
  });

  it("run --singer quarantines invalid records to out/<pipeline>/<stream>.invalid.jsonl", async () => {
    pipeline(
      ["format: postgres", "url: postgres://nobody@127.0.0.1:1/none"],
      ["validation: { max_invalid_ratio: 0.5 }"],
    );
    items[2] = { ...items[2], name: "bad" };
    const r = await cli(["run", "p", "--singer"]);
    expect(r.code, r.stderr).toBe(0);
    const messages = conformingMessages(r.stdout);
    expect(ofType(messages, "RECORD", "items")).toHaveLength(6);
    const quarantined = readJsonl(project.file("out/p/items.invalid.jsonl")) as { record: Item }[];
    expect(quarantined.map((q) => q.record.id)).toEqual([3]);
  });
});
