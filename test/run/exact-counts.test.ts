import { existsSync, readFileSync } from "node:fs";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonArray } from "../../src/outputs/json-writers.js";
import { type SyncServer, startSyncServer } from "../sync/sync-server.js";
import { runPipeline, type TempProject, tempProject } from "./helpers.js";

/**
 * Issue 18: the counts agree with the output. 3 pages of 50, 50, 9 records where record 50 comes
 * again on the last page (an API whose pages shift while it is read): 109 seen, 1 duplicate,
 * 108 records in the output. `written` is the records this run put in the output, after
 * de-duplication (JSONL/CSV used to say `written 109, duplicates 1` for 108 lines).
 */
const PAGES = [
  Array.from({ length: 50 }, (_, i) => ({ id: i + 1, name: `n${i + 1}`, price: i + 0.5 })),
  Array.from({ length: 50 }, (_, i) => ({ id: i + 51, name: `n${i + 51}`, price: i + 1 })),
  [
    { id: 50, name: "n50 again", price: 3 },
    ...Array.from({ length: 8 }, (_, i) => ({ id: i + 101, name: `n${i + 101}`, price: 2.5 })),
  ],
];

let api: SyncServer;
let project: TempProject;
beforeAll(async () => {
  api = await startSyncServer((req) => {
    const page = Number(req.query.page ?? "1");
    return { body: { data: PAGES[page - 1] ?? [], page, total_pages: PAGES.length } };
  });
});
afterAll(() => api.close());
beforeEach(() => {
  project = tempProject("pipelines-counts-");
});
afterEach(() => project.cleanup());

const EXT = { jsonl: "jsonl", json: "json", csv: "csv", sqlite: "db" } as const;
type Format = keyof typeof EXT;

function pipeline(format: Format, mode: string): void {
  project.pipeline(
    "p",
    [
      "source:",
      `  base_url: ${api.url}`,
      "streams:",
      "  items:",
      "    path: /items",
      "    records: $.data",
      "    primary_key: id",
      "    paginate: { type: page, page_param: page, total_pages: $.total_pages }",
      "output:",
      `  format: ${format}`,
      `  mode: ${mode}`,
      "",
    ].join("\n"),
  );
}

/** The records actually in the output, counted from the file (or table). */
async function rowsInOutput(format: Format): Promise<number> {
  const file = format === "sqlite" ? project.file("out/p.db") : project.file(`out/p/items.${EXT[format]}`);
  if (!existsSync(file)) return 0;
  if (format === "sqlite") {
    const db = new Database(file, { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM "items"').get() as { n: number }).n;
    } finally {
      db.close();
    }
  }
  if (format === "json") {
    let n = 0;
    for await (const _ of readJsonArray(file)) n++;
    return n;
  }
  const lines = readFileSync(file, "utf8")
    .split(/\r?\n/)
    .filter((l) => l !== "");
  return format === "csv" ? lines.length - 1 : lines.length;
}

describe("written = the records this run put in the output, for every format and mode", () => {
  for (const format of Object.keys(EXT) as Format[]) {
    for (const mode of ["replace", "append", "merge"]) {
      it(`${format} ${mode}`, async () => {
        pipeline(format, mode);
        const first = await runPipeline(project.dir, "p");
        expect(first.code, first.stderr).toBe(0);
        const r = first.stream("items").records;
        expect(r).toMatchObject({ seen: 109, valid: 109, invalid: 0, duplicates: 1 });
        expect(await rowsInOutput(format)).toBe(108);
        expect(r.written).toBe(108);
        // A second run: append adds what it wrote; replace and merge keep 108 rows.
        const before = await rowsInOutput(format);
        const second = await runPipeline(project.dir, "p");
        expect(second.code, second.stderr).toBe(0);
        const w = second.stream("items").records.written;
        expect(w).toBe(108);
        expect(await rowsInOutput(format)).toBe(mode === "append" ? before + w : 108);
      });
    }
  }
});
