/**
 * DuckDB and Parquet stage a run's records with columns of their own (the record's position, its
 * key's first and last position): a field with such a name must arrive intact (`rowid`, a common
 * API field) or be refused by name, never be replaced by a staging value.
 */
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { runWriter, tempDir } from "./helpers.js";

async function rows(format: "duckdb" | "parquet", file: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(format === "duckdb" ? file : ":memory:");
  try {
    const conn = await inst.connect();
    const from = format === "duckdb" ? "items" : `read_parquet('${file.replaceAll("'", "''")}')`;
    const r = await conn.runAndReadAll(
      `SELECT id, rowid_ AS v FROM (SELECT id, "rowid" AS rowid_ FROM ${from}) ORDER BY id, v`,
    );
    conn.closeSync();
    return r.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    inst.closeSync();
  }
}

const RECORDS = [
  { id: 1, rowid: "a" },
  { id: 2, rowid: "b" },
  { id: 1, rowid: "c" },
];

describe.each(["duckdb", "parquet"] as const)("output %s", (format) => {
  it.each([
    [
      "without a primary key",
      {},
      [
        { id: 1n, v: "a" },
        { id: 1n, v: "c" },
        { id: 2n, v: "b" },
      ],
    ],
    [
      "with a primary key (a repeated key keeps its last record)",
      { primaryKey: ["id"] },
      [
        { id: 1n, v: "c" },
        { id: 2n, v: "b" },
      ],
    ],
  ])("a field named `rowid` keeps its values (%s)", async (_what, ctx, want) => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, `out.${format}`);
      await runWriter(format, "replace", file, RECORDS, ctx, format === "duckdb" ? "items" : undefined);
      expect(await rows(format, file)).toEqual(want);
    } finally {
      cleanup();
    }
  });

  it.each(["__pl_first", "__PL_last", "__pl_ord"])(
    "a field named %s (a name the output uses itself) is refused by name",
    async (name) => {
      const { dir, cleanup } = tempDir();
      try {
        const file = path.join(dir, `out.${format}`);
        const records = [
          { id: 1, [name]: "x" },
          { id: 1, [name]: "y" },
        ];
        await expect(
          runWriter(
            format,
            "replace",
            file,
            records,
            { primaryKey: ["id"] },
            format === "duckdb" ? "items" : undefined,
          ),
        ).rejects.toThrow(new RegExp(`field \`${name}\` has a name the DuckDB output uses itself`));
      } finally {
        cleanup();
      }
    },
  );
});
