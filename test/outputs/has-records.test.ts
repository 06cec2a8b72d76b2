import { writeFileSync } from "node:fs";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { outputHasRecords } from "../../src/outputs/has-records.js";
import { freshDatabase, query } from "../pg/helpers.js";
import { tempProject } from "../run/helpers.js";

const project = tempProject("has-records-");
afterAll(() => project.cleanup());
const at = (name: string) => path.join(project.dir, name);

const output = (o: Partial<OutputPlan> & Pick<OutputPlan, "format">): OutputPlan => ({
  mode: "replace",
  path: at("none"),
  ...o,
});

async function duck(file: string, sql: string): Promise<void> {
  const db = await DuckDBInstance.create(file);
  const c = await db.connect();
  await c.run(sql);
  c.closeSync();
  db.closeSync();
}

describe("outputHasRecords (the commit guard's view of the current target)", () => {
  it("duckdb: a row of the stream's table (output.table), not of another one", async () => {
    const file = at("d.duckdb");
    await duck(file, `CREATE TABLE "my items" AS SELECT 1 AS id; CREATE TABLE empty (id INTEGER)`);
    const table = (name: string) => ({ name, metadataColumns: true, nested: "json" as const });
    expect(
      await outputHasRecords(output({ format: "duckdb", path: file, table: table("my items") }), "x"),
    ).toBe(true);
    expect(await outputHasRecords(output({ format: "duckdb", path: file, table: table("empty") }), "x")).toBe(
      false,
    );
    expect(
      await outputHasRecords(output({ format: "duckdb", path: file, table: table("absent") }), "x"),
    ).toBe(false);
    expect(await outputHasRecords(output({ format: "duckdb", path: at("no.duckdb") }), "x")).toBe(false);
  });

  it("parquet: the rows the file holds", async () => {
    const full = at("full.parquet");
    const empty = at("empty.parquet");
    await duck(":memory:", `COPY (SELECT 1 AS id) TO '${full}' (FORMAT parquet)`);
    await duck(":memory:", `COPY (SELECT 1 AS id WHERE false) TO '${empty}' (FORMAT parquet)`);
    expect(await outputHasRecords(output({ format: "parquet", path: full }), "s")).toBe(true);
    expect(await outputHasRecords(output({ format: "parquet", path: empty }), "s")).toBe(false);
    expect(await outputHasRecords(output({ format: "parquet", path: at("no.parquet") }), "s")).toBe(false);
  });

  it("singer: a RECORD message in the file; standard output has no target", async () => {
    const schemaOnly = at("s1.singer.jsonl");
    const withRecord = at("s2.singer.jsonl");
    const schema = `${JSON.stringify({ type: "SCHEMA", stream: "s", schema: {}, key_properties: [] })}\n`;
    writeFileSync(schemaOnly, `${schema}{"type":"STATE","value":{}}\n`);
    writeFileSync(withRecord, `${schema}{"type":"RECORD","stream":"s","record":{"id":1}}\n`);
    expect(await outputHasRecords(output({ format: "singer", path: schemaOnly }), "s")).toBe(false);
    expect(await outputHasRecords(output({ format: "singer", path: withRecord }), "s")).toBe(true);
    expect(
      await outputHasRecords(output({ format: "singer", path: withRecord, singer: { stdout: true } }), "s"),
    ).toBe(false);
  });

  it("sqlite: the table `output.table` names", async () => {
    const file = at("t.db");
    const db = new Database(file);
    db.exec(`CREATE TABLE renamed (id INTEGER); INSERT INTO renamed VALUES (1); CREATE TABLE s (id INTEGER)`);
    db.close();
    const table = { name: "renamed", metadataColumns: true, nested: "json" as const };
    expect(await outputHasRecords(output({ format: "sqlite", path: file, table }), "s")).toBe(true);
  });

  describe("postgres", () => {
    let url: string;
    beforeAll(async () => {
      url = await freshDatabase("hasrecords");
      await query(
        url,
        `CREATE SCHEMA raw; CREATE TABLE raw."the items" AS SELECT 1 AS id; CREATE TABLE raw.empty (id int)`,
      );
    });
    const pgOut = (u: string, name: string) =>
      output({
        format: "postgres",
        postgres: { url: u, schema: "raw" },
        table: { name, metadataColumns: true, nested: "json" },
      });

    it("a row of the table in its schema; an empty or absent one is false; an unreachable server is an error, masked", async () => {
      expect(await outputHasRecords(pgOut(url, "the items"), "x")).toBe(true);
      expect(await outputHasRecords(pgOut(url, "empty"), "x")).toBe(false);
      expect(await outputHasRecords(pgOut(url, "absent"), "x")).toBe(false);
      // Never "no rows": an empty replace would empty a table the guard could not look at.
      const refused = outputHasRecords(pgOut("postgres://u:s3cr%zzet@127.0.0.1:1/none", "x"), "x");
      await expect(refused).rejects.toThrow(
        /cannot look at table "raw"\."x" before the commit .*connection refused/,
      );
      await expect(refused).rejects.not.toThrow(/s3cr/);
    });
  });
});
