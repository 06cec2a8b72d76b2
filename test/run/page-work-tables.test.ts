import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsSeenPulls } from "../../src/run/page-work/pull-pages.js";
import { bytesCheckedRecords } from "../../src/run/record-sink.js";
import { queryDuckdb, readStreamTable } from "../helpers/duckdb-query.js";
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
 * DuckDB and Parquet stage JSON lines, so paged JSON reaches them as it reaches the jsonl output
 * (src/run/page-work/: canonical records copied from the page's bytes, each record's values seen
 * by the writer first, RecordWriter.seeRow): the same tables, column types, invalid records,
 * counts, drift, report and exit code as the record-by-record path (PIPELINES_PAGE_WORK=off), and
 * the same refusals naming the same record.
 */
const TOTAL = 1234;
const SIZE = 100;

/** Record i as JSON text: big integers, `__proto__`, invalid records, duplicates, drift, widening. */
function recordText(i: number, pretty: boolean): string {
  const id = i % 50 === 49 ? i - 1 : i; // a duplicate primary key every 50 records
  const parts = [
    `"id":${id}`,
    `"name":"r${i}${i % 13 === 0 ? ' 😀 \\" é' : ""}"`,
    `"amount":${i % 97 === 5 ? '"not a number"' : i / 4}`, // invalid: amount is a number
    `"big":${i % 7 ? i : 2n ** 60n + BigInt(i)}`, // beyond 2^53, within 64 bits, one in seven
    `"updated":"2024-01-${String(1 + (i % 28)).padStart(2, "0")}T0${i % 10}:00:00+02:00"`,
  ];
  if (i % 31 === 0) parts.push(`"__proto__":{"polluted":${i}}`);
  if (i >= 700) parts.push(`"extra":"drift ${i % 7}"`); // a new field from record 700
  parts.push(`"ratio":${i % 3 === 0 ? i : i + 0.5}`); // no schema: integer, then number
  if (i % 5 === 0) parts.push(`"misc":${i % 10 === 0 ? `"t${i}"` : `[${i}]`}`); // no schema: JSON
  // No schema: a column that widens late (integer → number → JSON) and one that starts null.
  parts.push(
    `"late":${i < 600 ? i : i < 1000 ? i + 0.5 : `"x${i}"`}`,
    `"sparse":${i < 300 ? "null" : `"s${i}"`}`,
  );
  if (i % 211 === 3)
    parts.push(`"score":"high"`); // invalid: score is an integer
  else parts.push(`"score":${i % 10}`);
  return pretty ? `{ ${parts.join(", ")} }` : `{${parts.join(",")}}`;
}

let server: Server;
let url: string;
/** What /cursor serves in place of record 450 (a refusal test), or null. */
let replace450: string | null = null;

beforeAll(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const from = Number(u.searchParams.get("cursor") ?? 0);
    const texts: string[] = [];
    // Every fourth page written with spaces: its records are serialized, the others copied.
    for (let i = from; i < Math.min(from + SIZE, TOTAL); i++)
      texts.push(i === 450 && replace450 !== null ? replace450 : recordText(i, (from / SIZE) % 4 === 3));
    const next = from + SIZE < TOTAL ? `"${from + SIZE}"` : "null";
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(`{"data":[${texts.join(",")}],"next":${next}}`);
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

const SCHEMA = JSON.stringify({
  type: "object",
  required: ["id", "name", "amount"],
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    amount: { type: "number" },
    big: { type: "integer" },
    score: { type: "integer" },
    updated: { type: "string", format: "date-time" },
  },
});

type Variant = "records" | "workers 1" | "workers 2";

async function runVariant(
  format: "duckdb" | "parquet",
  variant: Variant,
  mode = "replace",
  extra = "",
  key = "\n    primary_key: id",
  schema = "\n    schema: s.schema.json",
) {
  const p = tempProject("pipelines-page-tables-");
  try {
    p.pipeline(
      "p",
      `${sourceBlock(url, `workers: ${variant === "workers 2" ? 2 : 1}`)}
streams:
  s:
    path: /cursor
    records: $.data
    paginate: { type: cursor, cursor: $.next }${schema}${key}${extra}
validation: { invalid_records: skip, max_invalid_ratio: 0.5 }
output: { format: ${format}, mode: ${mode} }
`,
    );
    writeFileSync(p.file("schemas/s.schema.json"), SCHEMA);
    const seenBefore = rowsSeenPulls();
    const checkedBefore = bytesCheckedRecords();
    const switches: Record<string, string> = variant === "records" ? { PIPELINES_PAGE_WORK: "off" } : {};
    const r = await runPipelineWith(switches, p.dir, "p");
    const seen = rowsSeenPulls() - seenBefore;
    const checked = bytesCheckedRecords() - checkedBefore;
    const report = existsSync(p.file("reports/p/latest.json"))
      ? normalizeRun(JSON.parse(readFileSync(p.file("reports/p/latest.json"), "utf8")))
      : null;
    const out = format === "duckdb" ? p.file("out/p.duckdb") : p.file("out/p/s.parquet");
    const made =
      existsSync(out) &&
      (format === "parquet" ||
        (await queryDuckdb(out, "SELECT table_name FROM duckdb_tables() WHERE table_name = 's'")).length > 0);
    const tables = made ? await readStreamTable(out, format, " ORDER BY id") : null;
    const quarantine = existsSync(p.file("out/p/s.invalid.jsonl"))
      ? readFileSync(p.file("out/p/s.invalid.jsonl"), "utf8")
      : null;
    const stderr = normalizeStderr(r.stderr);
    return {
      code: r.code,
      seen,
      checked,
      summary: normalizeRun(r.summary),
      stderr,
      report,
      tables,
      quarantine,
    };
  } finally {
    p.cleanup();
  }
}

describe("paged JSON into DuckDB and Parquet: staged from the pages as the jsonl output is written", () => {
  for (const format of ["duckdb", "parquet"] as const) {
    it(`${format}: the same table, types, invalid records, summary and report as record by record`, async () => {
      const records = await runVariant(format, "records");
      const one = await runVariant(format, "workers 1");
      const two = await runVariant(format, "workers 2");
      expect(records.code).toBe(0);
      expect(records.seen).toBe(0);
      // The page path was taken (with `workers: 2` too: a writer that sees records keeps them here),
      // most records checked from their bytes, their primary key too (byte-keys.ts).
      expect([one.seen, two.seen]).toEqual([1, 1]);
      expect(one.checked).toBeGreaterThan(500);
      const rows = records.tables!.rows as Record<string, unknown>[];
      expect(rows.length).toBeGreaterThan(1100);
      expect(rows.find((r) => r.id === "0n")).toMatchObject({ big: `${2n ** 60n}n`, ratio: 0 });
      expect(rows.find((r) => r.id === "13n")?.name).toBe('r13 😀 " é');
      expect(records.tables!.types).toContainEqual({
        column_name: "updated",
        column_type: "TIMESTAMP WITH TIME ZONE",
      });
      expect(records.tables!.types).toContainEqual({ column_name: "ratio", column_type: "DOUBLE" });
      expect(records.tables!.types).toContainEqual({ column_name: "misc", column_type: "JSON" });
      expect(JSON.stringify(records.summary)).toMatch(/"duplicates":2[0-9]/);
      expect(JSON.stringify(records.report)).toContain('{"field":"extra","count":534');
      if (format === "duckdb") expect(records.tables!.invalid!.length).toBeGreaterThan(10);
      else expect(records.quarantine?.split("\n").length).toBeGreaterThan(10);
      for (const other of [one, two]) {
        expect(other.code).toBe(records.code);
        expect(other.tables).toEqual(records.tables);
        expect(other.quarantine).toEqual(records.quarantine);
        expect(other.summary).toEqual(records.summary);
        expect(other.report).toEqual(records.report);
      }
    });
  }

  for (const [format, schema] of [
    ["duckdb", true],
    ["parquet", true],
    ["duckdb", false],
  ] as const)
    it(`${format} without a primary key${schema ? "" : " or a schema"}: records checked from their bytes, the same table and report`, async () => {
      const noSchema = schema ? undefined : "";
      const records = await runVariant(format, "records", "replace", "", "", noSchema);
      const one = await runVariant(format, "workers 1", "replace", "", "", noSchema);
      expect(records.code).toBe(0);
      expect(records.checked).toBe(0);
      // Pages holding a `\ud` escape and records that need their values (invalid, big, a new
      // column, a type a column does not hold) are parsed; the rest are told by their members.
      expect(one.checked).toBeGreaterThan(500);
      expect(one.tables).toEqual(records.tables);
      expect(one.quarantine).toEqual(records.quarantine);
      expect(one.summary).toEqual(records.summary);
      expect(one.report).toEqual(records.report);
      expect(records.tables!.types).toContainEqual({ column_name: "ratio", column_type: "DOUBLE" });
      expect(records.tables!.types).toContainEqual({ column_name: "late", column_type: "JSON" });
      expect(records.tables!.types).toContainEqual({ column_name: "sparse", column_type: "VARCHAR" });
    });

  it("a lone surrogate a field's `value` adds (not the page's bytes) is refused naming the record, as record by record", async () => {
    const fields = '\n    fields: { id: $.id, name: $.name, amount: $.amount, tag: { value: "x\\ud83d" } }';
    const records = await runVariant("duckdb", "records", "replace", fields);
    const one = await runVariant("duckdb", "workers 1", "replace", fields);
    expect(records.code).toBe(1);
    expect(records.stderr).toMatch(/record 0: field "tag" .*surrogate/);
    expect(one.seen).toBe(1);
    expect(one.code).toBe(records.code);
    expect(one.stderr).toBe(records.stderr);
    expect(one.summary).toEqual(records.summary);
  });

  const refusals: [string, string, RegExp, ("duckdb" | "parquet")[]][] = [
    [
      "a lone surrogate",
      '{"id":450,"name":"\\ud800","amount":1}',
      /record 450: field "name" .*surrogate/,
      ["duckdb", "parquet"],
    ],
    [
      "an invalid record holding a lone surrogate (its invalid-records table refuses it)",
      '{"id":450,"name":"\\ud800","amount":"not a number"}',
      /field "record" .*surrogate .*s__invalid/,
      ["duckdb"], // Parquet keeps invalid records in the quarantine file (JSON lines hold them)
    ],
    [
      "a value its typed column cannot hold",
      `{"id":450,"name":"x","amount":1,"big":${10n ** 20n}}`,
      /record 450: field `big` holds .*BIGINT/,
      ["duckdb", "parquet"],
    ],
  ];
  for (const [what, text, message, formats] of refusals)
    for (const format of formats)
      it(`${format}: a record with ${what} is refused naming it, as record by record (nothing written)`, async () => {
        replace450 = text;
        try {
          const records = await runVariant(format, "records");
          const one = await runVariant(format, "workers 1");
          expect(records.code).toBe(1);
          expect(one.seen).toBe(1);
          expect(records.stderr).toMatch(message);
          expect(one.code).toBe(records.code);
          expect(one.stderr).toBe(records.stderr);
          expect(one.summary).toEqual(records.summary);
          expect([records.tables, one.tables]).toEqual([null, null]);
        } finally {
          replace450 = null;
        }
      });

  // A record longer than a staging file part (1 MiB) and than twice read_json's smallest object size,
  // copied from the page's bytes: staged whole, read back intact, as record by record.
  for (const format of ["duckdb", "parquet"] as const)
    it(`${format}: a 2.5 MB record from the page's bytes arrives intact, as record by record`, async () => {
      const name = `${"é".repeat(600_000)}${'x"y\\'.repeat(150_000)}${"😀".repeat(100_000)}`;
      replace450 = `{"id":450,"name":${JSON.stringify(name)},"amount":1}`;
      try {
        const records = await runVariant(format, "records");
        const one = await runVariant(format, "workers 1");
        expect(records.code).toBe(0);
        expect(one.seen).toBe(1);
        expect(one.checked).toBeGreaterThan(500);
        const row = (records.tables!.rows as Record<string, unknown>[]).find((r) => r.id === "450n");
        expect(row?.name).toBe(name);
        expect(one.tables).toEqual(records.tables);
        expect(one.summary).toEqual(records.summary);
        expect(one.report).toEqual(records.report);
      } finally {
        replace450 = null;
      }
    });
});
