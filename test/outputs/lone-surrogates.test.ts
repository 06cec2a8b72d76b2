/**
 * A lone UTF-16 surrogate (`"\ud800"` in JSON: valid JSON, kept by JavaScript in a string) has no
 * UTF-8 encoding. jsonl, json and singer write it back as the same JSON escape; every output that
 * stores UTF-8 text (csv, sqlite, duckdb, parquet, postgres) must refuse it with an error naming
 * the record and the field, never store U+FFFD (or fail far from the record) instead.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Row } from "../../src/records/shape.js";
import { parseJson } from "../../src/shared/json-text.js";
import { freshDatabase, tables } from "../pg/helpers.js";
import { runWriter, tempDir } from "./helpers.js";

/** Records as an API sends them: the escapes are in the JSON text. */
const rows = (text: string) => parseJson(text) as Row[];
const TOP = rows('[{"id":1,"s":"fine 😀"},{"id":2,"s":"a\\ud800b"}]');
const LOW = rows('[{"id":1,"s":"x"},{"id":2,"s":"\\udc00"}]');
const NESTED = rows('[{"id":1,"obj":{"k":"ok"}},{"id":2,"obj":{"k":["\\ud83d"]}}]');
const KEY = rows('[{"id":1},{"id":2,"a\\ud800":1}]');
const MESSAGE = /lone UTF-16 surrogate/;

describe.each(["csv", "sqlite", "duckdb", "parquet"] as const)("output %s", (format) => {
  const table = format === "duckdb" ? "items" : undefined;
  it.each([
    ["a string field", TOP, /record #2\b.*field "s"/],
    ["a lone low surrogate", LOW, /record #2\b.*field "s"/],
    // CSV writes an object as its JSON text, which keeps the escape: only the others refuse it.
    ...(format === "csv" ? [] : [["a string inside an object", NESTED, /record #2\b.*field "obj"/] as const]),
  ] as const)("refuses %s naming the record and field; nothing written", async (_what, records, where) => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, `out.${format}`);
      const err = await runWriter(format, "replace", file, records, {}, table).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(MESSAGE);
      expect((err as Error).message).toMatch(where);
      if (format !== "sqlite" && format !== "duckdb") expect(existsSync(file)).toBe(false);
    } finally {
      cleanup();
    }
  });

  it("refuses a field name with a lone surrogate", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, `out.${format}`);
      await expect(runWriter(format, "replace", file, KEY, {}, table)).rejects.toThrow(MESSAGE);
    } finally {
      cleanup();
    }
  });

  it("refuses two new field names whose halves would pair up if joined", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, `out.${format}`);
      const halves = rows('[{"id":1},{"id":2,"a\\ud800":1,"\\udc00b":2}]');
      await expect(runWriter(format, "replace", file, halves, {}, table)).rejects.toThrow(MESSAGE);
    } finally {
      cleanup();
    }
  });
});

describe("output postgres", () => {
  let url: string;
  beforeAll(async () => {
    url = await freshDatabase("pg_surrogates");
  });
  const n = 0;
  const load = (records: Row[], name: string) =>
    runWriter(
      "postgres",
      "replace",
      "/tmp/unused",
      records,
      { output: { postgres: { url, schema: "public" }, stateKey: "p" } },
      name,
    );

  it.each([
    ["a text field", TOP, "top", /record #2\b.*field "s"/],
    ["a lone low surrogate", LOW, "low", /record #2\b.*field "s"/],
    ["a string inside a jsonb value", NESTED, "nested", /record #2\b.*field "obj"/],
  ])("refuses %s naming the record and field; no table", async (_what, records, name, where) => {
    const err = await load(records, name).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(MESSAGE);
    expect((err as Error).message).toMatch(where);
    expect(await tables(url)).not.toContain(name);
  });

  it("refuses a field name with a lone surrogate", async () => {
    await expect(load(KEY, "key")).rejects.toThrow(MESSAGE);
  });
});
