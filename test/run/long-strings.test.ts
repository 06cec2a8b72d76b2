/**
 * Records with long strings, end to end into DuckDB and Parquet from a paged JSON API (the page
 * path: records copied from the page's bytes, staged by Stager.writeLines). DuckDB holds strings
 * of about 32 KB and more in memory until the commit: at its default limit these runs failed
 * ("failed to pin block"); the long lines staged raise the limit for the load (duckdb-stager.ts
 * longBytes, duckdb-engine.ts withMemory), and the run says so.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { expect, it } from "vitest";
import { runPipeline, sourceBlock, useLocalServer, useTempProject } from "./helpers.js";

const PER_PAGE = 5;
const PAGES = 12;
const text = (id: number) => `${"w".repeat(1024 * 1024)}${id}`;

const api = useLocalServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  const page = Number(url.searchParams.get("cursor") ?? 0);
  const pages = Number(url.searchParams.get("pages") ?? PAGES);
  const data = Array.from({ length: PER_PAGE }, (_, k) => ({
    id: page * PER_PAGE + k,
    text: text(page * PER_PAGE + k),
  }));
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ data, next: page + 1 < pages ? String(page + 1) : null }));
});
const p = useTempProject("pipelines-long-strings-");

/** Count, total length and whether every text is its record's, read back with DuckDB. */
async function readBack(database: string, from: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(database);
  try {
    const conn = await inst.connect();
    const r = await conn.runAndReadAll(
      `SELECT count(*) AS n, sum(length(text)) AS chars, bool_and(text = repeat('w', 1048576) || id::VARCHAR) AS same FROM ${from}`,
    );
    conn.closeSync();
    return r.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    inst.closeSync();
  }
}

it.each([
  ["duckdb", (dir: string) => readBack(path.join(dir, "out/p.duckdb"), "items")],
  [
    "parquet",
    (dir: string) =>
      readBack(":memory:", `read_parquet('${path.join(dir, "out/p/items.parquet").replaceAll("'", "''")}')`),
  ],
])("60 records of 1 MB strings into %s: loaded whole, the raised memory limit said", async (format, read) => {
  p.pipeline(
    "p",
    `${sourceBlock(api.url)}\nstreams:\n  items:\n    path: /items\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }\noutput: { format: ${format} }\n`,
  );
  const r = await runPipeline(p.dir, "p");
  expect(r.code, r.stderr).toBe(0);
  expect(r.stream("items").warnings.join("\n")).toMatch(/memory limit was raised to \d+ MiB for the load/);
  const n = PER_PAGE * PAGES;
  const chars = Array.from({ length: n }, (_, i) => text(i).length).reduce((a, b) => a + b, 0);
  expect(await read(p.dir)).toEqual([{ n: BigInt(n), chars: BigInt(chars), same: true }]);
});

it("a run the commit guard refuses keeps its records beside, and says the limit it raised for them", async () => {
  const pipeline = (pages: number) =>
    p.pipeline(
      "p",
      `${sourceBlock(api.url)}\nstreams:\n  items:\n    path: /items\n    params: { pages: ${pages} }\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }\noutput: { format: duckdb }\n`,
    );
  pipeline(PAGES);
  expect((await runPipeline(p.dir, "p")).code).toBe(0);
  // 5 records after 60: a drop of more than 90%, refused; the 5 are kept in a table beside.
  pipeline(1);
  const r = await runPipeline(p.dir, "p");
  expect(r.stream("items").status, JSON.stringify(r.stream("items").error)).toBe("rejected");
  expect(r.stream("items").warnings.join("\n")).toMatch(/memory limit was raised to \d+ MiB for the load/);
});

it("appending to a table of long strings: the file's long strings count too, and nothing is left in the WAL", async () => {
  const pipeline = (pages: number) =>
    p.pipeline(
      "p",
      `${sourceBlock(api.url)}\nstreams:\n  items:\n    path: /items\n    params: { pages: ${pages} }\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }\noutput: { format: duckdb, mode: append }\n`,
    );
  pipeline(PAGES);
  expect((await runPipeline(p.dir, "p")).code).toBe(0);
  // Checkpointed into the file at the raised limit: a WAL left to the close failed, kept the rows.
  expect(existsSync(path.join(p.dir, "out/p.duckdb.wal"))).toBe(false);
  // 5 more: the commit's checkpoint rewrites the table, its 60 MB of strings held in memory.
  pipeline(1);
  const r = await runPipeline(p.dir, "p");
  expect(r.code, r.stderr).toBe(0);
  expect(r.stream("items").warnings.join("\n")).toMatch(/memory limit was raised to \d+ MiB/);
  // The 60 of the first run and the 5 of this one (the API's first page again: ids 0 to 4).
  const [row] = await readBack(path.join(p.dir, "out/p.duckdb"), "items");
  expect([row.n, row.same]).toEqual([65n, true]);
});
