import { readFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { settleRemovals } from "../../src/outputs/atomic-file.js";
import { openWriter } from "../../src/outputs/registry.js";
import type { RecordWriter, WriterContext } from "../../src/outputs/writer.js";
import { ByteChecker, compileByteSchema } from "../../src/records/byte-check.js";
import type { Row } from "../../src/records/shape.js";
import { canonicalLineEnd, lineMembers } from "../../src/shared/canonical-line.js";
import { parseJson } from "../../src/shared/json-text.js";
import { randomRecords } from "../helpers/random-records.js";
import { seeded } from "../helpers/seeded.js";
import { tempDir } from "./helpers.js";

/**
 * The csv and sqlite writers on the page path (a record checked from its bytes given to
 * `seeMembers`, any other to `seeRow`, then `writeLines` for as many) against the same writer given
 * each parsed record by `write`: the same CSV bytes, the same SQLite table (schema, each value's
 * storage class and text), the same duplicates, in every mode option — random records with
 * escapes, formulas, inherited names, keys that repeat, columns that come late.
 */
let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

interface Options {
  escape?: boolean;
  pk?: string[];
  columns?: string[];
  schema?: Record<string, unknown>;
  n?: number;
}

async function open(
  format: "csv" | "sqlite",
  file: string,
  o: Options,
  runId: string,
): Promise<RecordWriter> {
  const output = {
    format,
    mode: "replace",
    path: file,
    ...(o.escape ? { csv: { escapeFormulas: true } } : {}),
  };
  const ctx: WriterContext = {
    runId,
    stream: "items",
    columns: o.columns ?? null,
    primaryKey: o.pk ?? null,
    schema: o.schema ?? null,
  };
  return openWriter(output as OutputPlan, ctx);
}

function sqliteTable(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    const cols = (db.prepare("SELECT name FROM pragma_table_info('items')").all() as { name: string }[]).map(
      (c) => `"${c.name.replaceAll('"', '""')}"`,
    );
    const cells = cols.map((c) => `typeof(${c}) || ':' || quote(${c})`).join(" || '|' || ");
    const schema = db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'items'").pluck().get();
    return JSON.stringify([schema, db.prepare(`SELECT ${cells} FROM items ORDER BY rowid`).pluck().all()]);
  } finally {
    db.close();
  }
}

/** One round: the same records through `write` and through the page path; records taken from bytes. */
async function round(format: "csv" | "sqlite", seed: number, o: Options): Promise<number> {
  const next = randomRecords(seed, 0.05);
  const ext = format === "csv" ? "csv" : "db";
  const [fa, fb] = [path.join(dir, `a${seed}.${ext}`), path.join(dir, `b${seed}.${ext}`)];
  const a = await open(format, fa, o, `A${seed}`);
  const b = await open(format, fb, o, `B${seed}`);
  const checker = new ByteChecker(compileByteSchema(true)!, null);
  const members = lineMembers();
  const pages = seeded(seed + 1000);
  let pending = 0;
  let fromBytes = 0;
  for (let i = 0; i < (o.n ?? 300); i++) {
    const text = next();
    await a.write(parseJson(text) as Row);
    const bytes = Buffer.from(text);
    const canonical = canonicalLineEnd(bytes, 0, bytes.length, members) === bytes.length;
    if (
      canonical &&
      checker.check(bytes, 0, bytes.length) &&
      b.seeMembers!(checker.names, checker.types, checker.count, checker.values, bytes)
    )
      fromBytes++;
    else b.seeRow!(parseJson(text) as Row, false);
    pending++;
    if (pages() < 0.1) {
      await b.writeLines!("", pending, null, null);
      pending = 0;
    }
  }
  if (pending) await b.writeLines!("", pending, null, null);
  expect(b.duplicates?.()).toBe(a.duplicates?.());
  await a.commit();
  await b.commit();
  await settleRemovals();
  if (format === "csv") expect(readFileSync(fb, "utf8")).toBe(readFileSync(fa, "utf8"));
  else expect(sqliteTable(fb)).toBe(sqliteTable(fa));
  return fromBytes;
}

const OPTIONS: [string, Options][] = [
  ["plain", {}],
  ["escape_formulas", { escape: true }],
  ["primary key id", { pk: ["id"] }],
  ["primary key [id, name] with escape_formulas", { pk: ["id", "name"], escape: true }],
  ["planned columns, one inherited", { columns: ["x", "id", "never", "constructor"] }],
  ["primary key constructor", { pk: ["constructor"] }],
  ["2,600 records (batches and groups of rows)", { n: 2600 }],
  [
    "a typed schema",
    {
      n: 1200,
      schema: {
        type: "object",
        properties: {
          id: { type: "integer" },
          name: { type: "string" },
          a: { type: "number" },
          b: { type: "boolean" },
          x: { type: "object" },
          y: { type: ["integer", "string"] },
        },
      },
    },
  ],
];

describe("csv and sqlite rows on the page path are the rows `write` makes", () => {
  for (const format of ["csv", "sqlite"] as const)
    for (const [what, o] of OPTIONS)
      it(`${format}: ${what} (3 seeds)`, async () => {
        let fromBytes = 0;
        for (const seed of [1, 2, 3])
          fromBytes += await round(format, seed + 10 * OPTIONS.findIndex(([w]) => w === what), o);
        // Many records are taken from their bytes (the others are not canonical, hold a number with
        // an exponent, or a member `__proto__` for sqlite).
        expect(fromBytes).toBeGreaterThan(o.n ?? 300);
      });
});
