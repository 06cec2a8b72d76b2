import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesCheckedRecords } from "../../src/run/record-sink.js";
import { recordWorkerUnits } from "../../src/run/record-workers/pool.js";
import {
  closeServer,
  listenLocal,
  normalizeRun,
  normalizeStderr,
  runPipelineWith,
  sourceBlock,
  tempProject,
} from "./helpers.js";

/**
 * Paged JSON written as JSON lines has its canonical records checked from their bytes
 * (src/run/page-work/checked-lines.ts, src/records/byte-check.ts): the same output, quarantine,
 * counts, statistics, drift, report and exit code as parsing every page (PIPELINES_BYTE_CHECK=off)
 * and as the record-by-record path (PIPELINES_PAGE_WORK=off).
 */
const TOTAL = 1500;
const SIZE = 100;

function recordText(i: number): string {
  const parts = [
    `"id":${i}`,
    `"name":"r${i}${i % 13 === 0 ? ' 😀 \\" é\\n' : ""}"`,
    `"email":${i % 89 === 7 ? '"not an email"' : i % 11 === 0 ? "null" : `"u${i}@example.com"`}`,
    `"when":"2024-01-${String(1 + (i % 28)).padStart(2, "0")}T0${i % 10}:00:00${i % 3 ? "Z" : ".5+02:00"}"`,
    `"amount":${i % 97 === 5 ? '"NaN"' : i % 2 ? i / 4 : i}`,
    `"tags":[${i % 53 === 1 ? "1" : `"t${i % 4}"`}]`,
    `"owner":${i % 71 === 2 ? "{}" : `{"id":${i % 9}}`}`,
  ];
  if (i % 37 === 0) parts.push(`"big":${10n ** 20n + BigInt(i)}`); // beyond 2^53: parsed, exact
  if (i % 31 === 0) parts.push(`"__proto__":{"p":${i}}`);
  if (i >= 900) parts.push(`"extra":"drift ${i % 5}"`);
  if (i % 41 === 0) parts.push(`"lone":"\\ud800"`);
  return `{${parts.join(",")}}`;
}

let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const from = Number(u.searchParams.get("cursor") ?? 0);
    const texts: string[] = [];
    const page = from / SIZE;
    // Page 5: one record in ten written with spaces (not canonical: parsed and serialized).
    for (let i = from; i < Math.min(from + SIZE, TOTAL); i++)
      texts.push(page === 5 && i % 10 === 0 ? recordText(i).replaceAll(",", ", ") : recordText(i));
    // Page 4 pretty-printed (its records are not canonical: parsed); page 6 with spaces around commas.
    const sep = page === 6 ? " ,\n " : ",";
    let data = page === 4 ? texts.map((t) => t.replaceAll(",", ", ")).join(",\n") : texts.join(sep);
    // `escaped`: `/` written `\/` (PHP), characters past ASCII as `\uXXXX` (Python's json.dumps).
    if (u.searchParams.get("escaped"))
      data = data
        .replace(
          /\{"id":(\d+),/g,
          (_m, id: string) => `{"id":${id},"url":"https:\\/\\/example.com\\/r\\/${id}",`,
        )
        .replace(
          /[\u007f-\uffff]/g,
          (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`,
        );
    // `spaced`: every record written as Python's json.dumps writes it (`", "`, `": "`).
    if (u.searchParams.get("spaced"))
      data = texts.map((t) => t.replaceAll('","', '", "').replaceAll('":', '": ')).join(", ");
    if (u.pathname === "/bad-rest" && page === 8) data += '],"oops":tru, "x":[0';
    if (u.pathname === "/bad-commas" && page === 3) data = data.replace("},{", "},,{");
    // A record that looks canonical but is not JSON, on page 2: what JSON.parse would refuse.
    // `dup`: ids repeat every 600 records (a primary key of `id` keeps the last of each).
    if (u.searchParams.get("dup"))
      data = data.replace(/\{"id":(\d+),/g, (_m, id: string) => `{"id":${Number(id) % 600},`);
    // `late`: the largest `when` and `name` only in record 1300 (canonical: read from its bytes).
    if (u.searchParams.get("late") && page === 13)
      data = data.replace(
        recordText(1300),
        recordText(1300)
          .replace(/"when":"[^"]*"/, '"when":"2099-12-31T23:59:59Z"')
          .replace('"name":"r1300', '"name":"zz1300'),
      );
    const bad = u.searchParams.get("bad");
    if (bad && page === 2) data = data.replace(recordText(250), bad);
    const next = from + SIZE < TOTAL ? `"${from + SIZE}"` : "null";
    const meta = u.pathname === "/root" ? "" : `,"meta":{"total":${TOTAL}}`;
    const body = u.pathname === "/root" ? `[${data}]` : `{"data":[${data}],"next":${next}${meta}}`;
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

const SCHEMA = JSON.stringify({
  type: "object",
  required: ["id", "name", "when"],
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    email: { type: ["string", "null"], format: "email" },
    when: { type: "string", format: "date-time" },
    amount: { type: "number" },
    big: { type: "integer" },
    tags: { type: "array", items: { type: "string" } },
    owner: { type: "object", required: ["id"], properties: { id: { type: "integer" } } },
  },
});

/** `bytes 2`: with a page worker thread (`workers: 2`), which checks the records there. */
type Variant = "records" | "parsed" | "bytes" | "bytes 2";
const SWITCHES: Record<Variant, Record<string, string>> = {
  records: { PIPELINES_PAGE_WORK: "off" },
  parsed: { PIPELINES_BYTE_CHECK: "off" },
  bytes: {},
  "bytes 2": { PIPELINES_PAGE_WORKER_AFTER: "0" },
};

async function runVariant(
  path: string,
  variant: Variant,
  schema = true,
  params = "",
  key = "",
  extra = "",
  schemaText = SCHEMA,
) {
  const p = tempProject("pipelines-byte-check-");
  try {
    const paginate = path === "/root" ? "" : "\n    paginate: { type: cursor, cursor: $.next }";
    p.pipeline(
      "p",
      `${sourceBlock(url, variant === "bytes 2" ? "workers: 2" : "")}
streams:
  s:
    path: ${path}${params ? `\n    params: ${params}` : ""}
    records: ${path === "/root" ? "$" : "$.data"}${paginate}${schema ? "\n    schema: s.schema.json" : ""}${key ? `\n    primary_key: ${key}` : ""}${extra}
validation: { invalid_records: skip, max_invalid_ratio: 0.5 }
output: { format: jsonl }
`,
    );
    writeFileSync(p.file("schemas/s.schema.json"), schemaText);
    const before = bytesCheckedRecords();
    const unitsBefore = recordWorkerUnits();
    const r = await runPipelineWith(SWITCHES[variant], p.dir, "p");
    const read = (rel: string) => (existsSync(p.file(rel)) ? readFileSync(p.file(rel), "utf8") : null);
    return {
      code: r.code,
      checked: bytesCheckedRecords() - before,
      /** Pages sent to a worker thread (its records are checked there: not in `checked`). */
      units: recordWorkerUnits() - unitsBefore,
      output: read("out/p/s.jsonl"),
      quarantine: read(".pipelines/quarantine/p/s.jsonl") ?? read("out/p/s.invalid.jsonl"),
      summary: normalizeRun(r.summary),
      stderr: normalizeStderr(r.stderr),
      report: normalizeRun(JSON.parse(read("reports/p/latest.json") ?? "null")),
      state: normalizeRun(JSON.parse(read(".pipelines/state/p.json") ?? "null")),
    };
  } finally {
    p.cleanup();
  }
}

type VariantRun = Awaited<ReturnType<typeof runVariant>>;

/** The variants' outputs, quarantines, summaries and reports are the record-by-record run's. */
function expectSameRuns(records: VariantRun, others: VariantRun[]): void {
  for (const other of others) {
    expect(other.output).toBe(records.output);
    expect(other.quarantine).toBe(records.quarantine);
    expect(other.summary).toEqual(records.summary);
    expect(other.report).toEqual(records.report);
  }
}

describe("records checked from their bytes: the same run as parsing them", () => {
  for (const [path, schema] of [
    ["/cursor", true],
    ["/cursor", false],
    ["/root", true],
  ] as const)
    it(`${path}${schema ? "" : " without a schema"}: identical output, quarantine, summary and report`, async () => {
      const records = await runVariant(path, "records", schema);
      const parsed = await runVariant(path, "parsed", schema);
      const bytes = await runVariant(path, "bytes", schema);
      const thread = await runVariant(path, "bytes 2", schema);
      if (path === "/cursor") expect(thread.units).toBeGreaterThan(5);
      expect(records.code).toBe(0);
      expect(records.output!.split("\n").length).toBeGreaterThan(path === "/root" ? 90 : 1400);
      expect([records.checked, parsed.checked]).toEqual([0, 0]);
      // Most records are counted from their bytes; the pretty page, invalid records, big
      // integers and fields still collecting examples are parsed.
      expect(bytes.checked).toBeGreaterThan(path === "/root" ? 50 : 1000);
      // The page worker thread checks as many from their bytes (LinesChunk.checked).
      if (path === "/cursor") expect(thread.checked).toBe(bytes.checked);
      if (path === "/cursor") expect(records.output).toContain(`{"id":500,"name":"r500",`);
      if (schema) {
        expect(records.quarantine).not.toBeNull();
        if (path !== "/root")
          expect(JSON.stringify(records.report)).toContain('{"field":"extra","count":600');
      }
      expect(records.output).toContain(`"big":${10n ** 20n},`);
      expect(records.output).toContain('"__proto__":{"p":0}');
      for (const other of [parsed, bytes, thread]) {
        expect(other.code).toBe(records.code);
        expect(other.output).toBe(records.output);
        expect(other.quarantine).toBe(records.quarantine);
        expect(other.summary).toEqual(records.summary);
        expect(other.report).toEqual(records.report);
      }
    });

  // A primary key is read from the checked records' bytes (byte-keys.ts): the JSON lines writer
  // keeps the last record of each key, as when every record is parsed.
  for (const key of ["id", "name", "[id, name]", "owner", "email", "tags"])
    it(`primary_key ${key}, keys repeating across pages: identical output, summary and report`, async () => {
      const params = '{ dup: "1" }';
      const records = await runVariant("/cursor", "records", true, params, key);
      const parsed = await runVariant("/cursor", "parsed", true, params, key);
      const bytes = await runVariant("/cursor", "bytes", true, params, key);
      const thread = await runVariant("/cursor", "bytes 2", true, params, key);
      expect(records.code).toBe(0);
      expect(bytes.checked).toBeGreaterThan(1000);
      expect(thread.units).toBeGreaterThan(5);
      expect(thread.checked).toBe(bytes.checked);
      const lines = records.output!.trim().split("\n").length;
      if (key === "id") expect(lines).toBe(600);
      else expect(lines).toBeGreaterThan(0);
      expectSameRuns(records, [parsed, bytes, thread]);
    });

  // Records written with white space between their tokens, or escapes stringifyJson does not write
  // (`\\/`, `\\u00e9`), are checked from their bytes once made canonical (checked-lines.ts
  // compactInto): the same run as parsing them.
  for (const [what, params] of [
    ["spaces after commas and colons", '{ spaced: "1" }'],
    ["`\\/` and `\\u` escapes", '{ escaped: "1" }'],
    ["both", '{ spaced: "1", escaped: "1" }'],
  ])
    it(`records written with ${what}: checked from bytes, identical run`, async () => {
      const records = await runVariant("/cursor", "records", true, params, "id");
      const parsed = await runVariant("/cursor", "parsed", true, params, "id");
      const bytes = await runVariant("/cursor", "bytes", true, params, "id");
      const thread = await runVariant("/cursor", "bytes 2", true, params, "id");
      expect(records.code).toBe(0);
      expect(bytes.checked).toBeGreaterThan(1000);
      expect(thread.units).toBeGreaterThan(5);
      expect(thread.checked).toBe(bytes.checked);
      expectSameRuns(records, [parsed, bytes, thread]);
    });

  // An incremental cursor is read from the checked records' bytes too (byte-keys.ts byteCursor):
  // the saved position is the one the parsed records give (date-times with offsets, a number).
  for (const field of ["when", "id", "amount", "name"])
    it(`incremental cursor_field ${field}: identical output, state, summary and report`, async () => {
      const extra = `\n    incremental: { cursor_field: ${field}, param: since }`;
      const params = '{ late: "1" }';
      const records = await runVariant("/cursor", "records", true, params, "id", extra);
      const parsed = await runVariant("/cursor", "parsed", true, params, "id", extra);
      const bytes = await runVariant("/cursor", "bytes", true, params, "id", extra);
      const thread = await runVariant("/cursor", "bytes 2", true, params, "id", extra);
      expect(records.code).toBe(0);
      expect(bytes.checked).toBeGreaterThan(1000);
      expect(thread.units).toBeGreaterThan(5);
      expect(thread.checked).toBe(bytes.checked);
      const largest = { when: "2099-12-31T23:59:59Z", id: 1499, amount: 1498, name: "zz1300" }[field];
      // Record 1300's name is `zz1300 😀 \" é\n`: its escapes read from the bytes too.
      const text = typeof largest === "string" ? JSON.stringify(largest).slice(0, -1) : String(largest);
      expect(JSON.stringify(records.state)).toContain(`"cursor":${text}`);
      for (const other of [parsed, bytes, thread]) {
        expect(other.output).toBe(records.output);
        expect(other.state).toEqual(records.state);
        expect(other.summary).toEqual(records.summary);
        expect(other.report).toEqual(records.report);
      }
    });

  // Keywords that bound values (byte-check.ts: enum, const, lengths, pattern, ranges, string
  // formats, additionalProperties): records within them are checked from their bytes, the others
  // parsed and quarantined by ajv — the same run.
  const BOUNDED = JSON.stringify({
    type: "object",
    required: ["id", "name", "when"],
    properties: {
      id: { type: "integer", minimum: 0, maximum: 1450 },
      name: { type: "string", minLength: 2, maxLength: 20, pattern: "^r\\d" },
      email: { type: ["string", "null"], format: "email" },
      when: { type: "string", format: "date-time" },
      amount: { type: "number", exclusiveMinimum: -1, maximum: 1400 },
      big: { type: "integer" },
      tags: { type: "array", minItems: 1, maxItems: 1, items: { enum: ["t0", "t1", "t2", "t3"] } },
      owner: {
        type: "object",
        required: ["id"],
        properties: { id: { type: "integer", minimum: 0 } },
        additionalProperties: false,
      },
      extra: { type: "string", pattern: "^drift [0-3]$" },
      url: { type: "string", format: "uri" },
    },
  });
  for (const [what, params] of [
    ["as the API writes them", ""],
    ["with `\\/` and `\\u` escapes", '{ escaped: "1" }'],
  ])
    it(`a schema with enum, lengths, patterns, ranges and formats, records ${what}: checked from bytes, identical run`, async () => {
      const run = (v: Variant) => runVariant("/cursor", v, true, params, "id", "", BOUNDED);
      const records = await run("records");
      const parsed = await run("parsed");
      const bytes = await run("bytes");
      const thread = await run("bytes 2");
      expect(records.code).toBe(0);
      // Some records are outside the bounds (ids over 1450, `drift 4`…): quarantined.
      expect(records.quarantine!.split("\n").length).toBeGreaterThan(100);
      expect(bytes.checked).toBeGreaterThan(1000);
      expect(thread.checked).toBe(bytes.checked);
      expectSameRuns(records, [parsed, bytes, thread]);
    });

  const malformed = [
    '{"id":250,"flag":nope}',
    '{"id":250,"a" 1}',
    '{"id":250,"a":"x\ny"}',
    '{"id":250,"a":1-2}',
    '{"id":250,"a":01}',
    '{"id":250,"a":tru}',
    // White space between two tokens' bytes: taking it out would join them (`1 2` → `12`).
    '{"id":250, "a":1 2}',
    '{"id":250, "a":tr ue}',
    '{"id":250, "a":- 1}',
    '{"id":250, "a":1 .5}',
    '{"id":250, "a":1, }',
  ];
  for (const bad of malformed)
    it(`a record written ${JSON.stringify(bad)} fails the stream as when the page is parsed`, async () => {
      const params = JSON.stringify({ bad });
      const parsed = await runVariant("/cursor", "parsed", true, params);
      const bytes = await runVariant("/cursor", "bytes", true, params);
      expect(parsed.code).toBe(1);
      expect(parsed.stderr).toMatch(/not JSON/);
      expect(bytes.checked).toBeGreaterThan(0); // the pages before it
      expect(bytes.code).toBe(parsed.code);
      expect(bytes.stderr).toBe(parsed.stderr);
      expect(bytes.summary).toEqual(parsed.summary);
    });

  it("a record nested too deep on a page with a big integer fails as when the page is parsed", async () => {
    // Page 2 holds record 222's 21-digit integer: the page's parse is lossless, which refuses
    // nesting past 1,000 levels; the deep record alone must be parsed the same way.
    const params = JSON.stringify({ bad: `{"id":250,"d":${"[".repeat(1001)}${"]".repeat(1001)}}` });
    const parsed = await runVariant("/cursor", "parsed", true, params);
    const bytes = await runVariant("/cursor", "bytes", true, params);
    expect(parsed.code).toBe(1);
    expect(parsed.stderr).toMatch(/deep/);
    expect(bytes.code).toBe(parsed.code);
    expect(bytes.stderr).toBe(parsed.stderr);
    expect(bytes.summary).toEqual(parsed.summary);
  });

  for (const path of ["/bad-rest", "/bad-commas"])
    it(`${path}: a page whose records are canonical but whose rest is not JSON fails as when it is parsed`, async () => {
      const parsed = await runVariant(path, "parsed");
      const bytes = await runVariant(path, "bytes");
      expect(parsed.code).toBe(1);
      expect(parsed.stderr).toMatch(/not JSON/);
      expect(bytes.checked).toBeGreaterThan(0);
      expect(bytes.code).toBe(parsed.code);
      expect(bytes.stderr).toBe(parsed.stderr);
      expect(bytes.summary).toEqual(parsed.summary);
    });
});
