import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsSeenPulls } from "../../src/run/page-work/pull-pages.js";
import { bytesCheckedRecords } from "../../src/run/record-sink.js";
import {
  closeServer,
  listenLocal,
  normalizeRun,
  normalizeStderr,
  runPipelineWith,
  sourceBlock,
  type TempProject,
  tempProject,
} from "./helpers.js";

/**
 * Paged JSON written as CSV takes the page path (src/run/page-work/): records checked from their
 * bytes have their rows made from those bytes (outputs/csv-bytes.ts), the others from the parsed
 * record (CsvWriter.seeRow). The same file, quarantine, counts, summary and report as the
 * record-by-record path (PIPELINES_PAGE_WORK=off) and as parsing every page
 * (PIPELINES_BYTE_CHECK=off), in every mode, with escape_formulas, a primary key, columns that
 * appear mid-run and a record CSV refuses.
 */
const TOTAL = 1200;
const SIZE = 100;

/** Text that makes CSV quote, JSON escape, spreadsheets run formulas, or UTF-8 take several bytes. */
const TRICKY = [
  "a,b",
  'say "hi"',
  "line\nbreak",
  "\r\n",
  "=1+2",
  "+x",
  "-5",
  "@sum",
  "\tlead",
  "é😀",
  "",
  "back\\slash",
  "-",
];

function recordText(i: number, run: number): string {
  const parts = [
    `"id":${i % 700}`,
    `"name":${JSON.stringify(`${TRICKY[i % TRICKY.length]}${i}`)}`,
    `"note":${i % 5 === 0 ? "null" : JSON.stringify(TRICKY[(i * 7) % TRICKY.length])}`,
    `"amount":${i % 3 ? i / 8 : i * 1000}`,
    `"ok":${i % 2 === 0}`,
    `"tags":${i % 4 === 0 ? "[]" : i % 4 === 1 ? `[${i}]` : `["t,${i % 3}","q\\"${i}"]`}`,
    `"owner":${i % 6 === 0 ? "{}" : `{"id":${i % 9},"n":"o ${i}"}`}`,
    `"run":${run}`,
  ];
  if (i % 17 === 0) parts.splice(2, 1); // no note
  if (i >= 600) parts.push(`"late":"from ${i}"`); // a column that appears mid-run
  if (i % 97 === 3) parts[1] = '"name":42'; // invalid (a number): quarantined or kept
  if (i % 59 === 0) parts.push(`"__proto__":{"p":${i}}`); // an own field once parsed
  if (i % 83 === 0) parts.push(`"big":${10n ** 19n + BigInt(i)}`); // beyond 2^53: parsed, exact
  return `{${parts.join(",")}}`;
}

let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const from = Number(u.searchParams.get("cursor") ?? 0);
    const run = Number(u.searchParams.get("run") ?? 1);
    const texts: string[] = [];
    for (let i = from; i < Math.min(from + SIZE, TOTAL); i++) texts.push(recordText(i, run));
    // Page 3 written with spaces (made canonical, then checked); page 5 pretty (parsed).
    const page = from / SIZE;
    let data = page === 5 ? texts.map((t) => t.replaceAll(",", ", ")).join(",\n ") : texts.join(",");
    if (page === 3) data = texts.map((t) => t.replaceAll('":', '": ')).join(", ");
    if (u.searchParams.get("lone") && page === 8) data = data.replace('"run":', '"lone":"\\udc00","run":');
    // `clash`: record 500 has `Name` beside `name` (SQLite refuses the batch that adds it).
    if (u.searchParams.get("clash") && page === 5) data = data.replace('{"id":500,', '{"id":500,"Name":"x",');
    const next = from + SIZE < TOTAL ? `"${from + SIZE}"` : "null";
    res.writeHead(200, { "content-type": "application/json" }).end(`{"data":[${data}],"next":${next}}`);
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

const SCHEMA = JSON.stringify({
  type: "object",
  required: ["id"],
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    note: { type: ["string", "null"] },
    amount: { type: "number" },
    ok: { type: "boolean" },
    tags: { type: "array" },
    owner: { type: "object" },
  },
});

type Variant = "records" | "parsed" | "bytes";
const SWITCHES: Record<Variant, Record<string, string>> = {
  records: { PIPELINES_PAGE_WORK: "off" },
  parsed: { PIPELINES_BYTE_CHECK: "off" },
  bytes: {},
};

interface Case {
  format?: "csv" | "sqlite";
  mode?: "replace" | "append" | "merge";
  key?: string;
  formulas?: boolean;
  invalid?: "skip" | "keep";
  schema?: boolean;
  lone?: boolean;
  clash?: boolean;
}

/** The sqlite table as text: each value with its storage class, integers exact. */
function sqliteDump(file: string): string | null {
  if (!existsSync(file)) return null;
  const db = new Database(file, { readonly: true });
  try {
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all() as string[];
    if (!tables.includes("s")) return JSON.stringify({ tables });
    // Rows as arrays (an object would take a column named `__proto__` as its prototype).
    const stmt = db.prepare('SELECT * FROM "s" ORDER BY rowid').safeIntegers(true).raw(true);
    const names = stmt.columns().map((c) => c.name);
    const cell = (v: unknown) => (typeof v === "bigint" ? `${v}n` : v);
    const rows = (stmt.all() as unknown[][]).map((r) => r.map((v, i) => [names[i], cell(v)]));
    return JSON.stringify({ tables, rows });
  } finally {
    db.close();
  }
}

async function runCase(p: TempProject, variant: Variant, c: Case, run: number) {
  const csv = c.formulas ? ", csv: { escape_formulas: true }" : "";
  p.pipeline(
    "p",
    `${sourceBlock(url)}
streams:
  s:
    path: /cursor
    params: { run: "${run}"${c.lone ? ', lone: "1"' : ""}${c.clash ? ', clash: "1"' : ""} }
    records: $.data
    paginate: { type: cursor, cursor: $.next }${c.schema === false ? "" : "\n    schema: s.schema.json"}${c.key ? `\n    primary_key: ${c.key}` : ""}
validation: { invalid_records: ${c.invalid ?? "skip"}, max_invalid_ratio: 0.5 }
output: { format: ${c.format ?? "csv"}, mode: ${c.mode ?? "replace"}${csv} }
`,
  );
  writeFileSync(p.file("schemas/s.schema.json"), SCHEMA);
  const before = bytesCheckedRecords();
  const pulls = rowsSeenPulls();
  const r = await runPipelineWith(SWITCHES[variant], p.dir, "p");
  const read = (rel: string) => (existsSync(p.file(rel)) ? readFileSync(p.file(rel), "utf8") : null);
  return {
    code: r.code,
    checked: bytesCheckedRecords() - before,
    paged: rowsSeenPulls() - pulls,
    output: c.format === "sqlite" ? sqliteDump(p.file("out/p.db")) : read("out/p/s.csv"),
    quarantine: read(".pipelines/quarantine/p/s.jsonl"),
    summary: normalizeRun(r.summary),
    stderr: normalizeStderr(r.stderr),
    report: normalizeRun(JSON.parse(read("reports/p/latest.json") ?? "null")),
  };
}

/** Two runs of the case (the second appends or merges onto the first's file) in each variant. */
async function runVariants(c: Case) {
  const out: Record<Variant, Awaited<ReturnType<typeof runCase>>[]> = { records: [], parsed: [], bytes: [] };
  for (const variant of ["records", "parsed", "bytes"] as const) {
    const p = tempProject("pipelines-csv-page-");
    try {
      out[variant].push(await runCase(p, variant, c, 1));
      if (c.mode && c.mode !== "replace") out[variant].push(await runCase(p, variant, c, 2));
    } finally {
      p.cleanup();
    }
  }
  return out;
}

function expectSame(runs: Awaited<ReturnType<typeof runVariants>>): void {
  const { records, parsed, bytes } = runs;
  for (const other of [parsed, bytes])
    for (let i = 0; i < records.length; i++) {
      expect(other[i].code).toBe(records[i].code);
      expect(other[i].output).toBe(records[i].output);
      expect(other[i].quarantine).toBe(records[i].quarantine);
      expect(other[i].summary).toEqual(records[i].summary);
      expect(other[i].stderr).toEqual(records[i].stderr);
      expect(other[i].report).toEqual(records[i].report);
    }
}

describe("CSV on the page path: the same file as record by record", () => {
  const cases: [string, Case][] = [
    ["replace, invalid records skipped", {}],
    ["replace, invalid records kept", { invalid: "keep" }],
    ["escape_formulas", { formulas: true }],
    ["no schema", { schema: false }],
    ["append", { mode: "append" }],
    ["merge on id (keys repeat within the run and across runs)", { mode: "merge", key: "id" }],
    ["replace with primary_key [id, ok] (duplicates in the run)", { key: "[id, ok]" }],
    ["merge on name with escape_formulas", { mode: "merge", key: "name", formulas: true }],
  ];
  for (const [what, c] of cases)
    it(what, async () => {
      const runs = await runVariants(c);
      const first = runs.records[0];
      expect(first.code).toBe(0);
      // The record path does not page; the others do, and most records are checked from bytes.
      expect(runs.records.map((r) => r.paged)).toEqual(runs.records.map(() => 0));
      expect(runs.bytes.every((r) => r.paged === 1)).toBe(true);
      expect(runs.parsed.every((r) => r.checked === 0)).toBe(true);
      expect(runs.bytes[0].checked).toBeGreaterThan(900);
      const header = first.output!.split("\r\n")[0];
      expect(header).toContain("late"); // the column that came mid-run
      if (c.formulas) expect(first.output).toContain("'=1+2");
      else expect(first.output).toContain(',"a,b');
      expect(first.output).toMatch(/,"\[""t,2"",""q\\""\d+""\]",/);
      expectSame(runs);
    });

  const sqliteCases: [string, Case][] = [
    ["replace, invalid records skipped", { format: "sqlite" }],
    ["invalid records kept, no schema", { format: "sqlite", invalid: "keep", schema: false }],
    ["append", { format: "sqlite", mode: "append" }],
    ["merge on id", { format: "sqlite", mode: "merge", key: "id" }],
  ];
  for (const [what, c] of sqliteCases)
    it(`sqlite: ${what}`, async () => {
      const runs = await runVariants(c);
      const first = runs.records[0];
      expect(first.code).toBe(0);
      expect(runs.records.map((r) => r.paged)).toEqual(runs.records.map(() => 0));
      expect(runs.bytes.every((r) => r.paged === 1)).toBe(true);
      expect(runs.bytes[0].checked).toBeGreaterThan(900);
      expect(first.output).toContain('["late","from 700"]');
      expect(first.output).toMatch(/\["big","1000000000000000\d{4}n?"\]/);
      expect(first.output).toMatch(/\["tags","\[\\"t,2\\",\\"q\\\\\\"\d+\\"\]"\]/);
      expect(first.output).toMatch(/\["__proto__","\{\\"p\\":\d+\}"\]/);
      expectSame(runs);
    });

  // SQLite adds a batch's columns when it writes the batch, at its 1000th record: one checked from
  // its bytes here (seeMembers), whose refusal counts it valid and not written, as record by record.
  it("sqlite: a batch refused at a record checked from its bytes (fields differing only in case): the same counts and error", async () => {
    const runs = await runVariants({ format: "sqlite", clash: true });
    expect(runs.records[0].code).toBe(1);
    expect(runs.records[0].stderr).toContain("differ only in case");
    expect(runs.bytes[0].checked).toBeGreaterThan(800);
    expectSame(runs);
  });

  for (const format of ["csv", "sqlite"] as const)
    it(`${format}: a lone surrogate is refused naming the record, after the same records, in every variant`, async () => {
      const runs = await runVariants({ lone: true, format });
      expect(runs.records[0].code).toBe(1);
      expect(runs.records[0].stderr).toMatch(/record #\d+, field "lone"/);
      if (format === "csv") expect(runs.records[0].output).toBeNull();
      expectSame(runs);
    });
});
