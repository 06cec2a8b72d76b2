import { readFileSync } from "node:fs";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { dataset, startApiServer, type TestServer } from "../server/api-server.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

const N = 60;
const TRUTH = dataset("items", N);
let api: TestServer;
let own: SyncServer;
let project: TempProject;

/** Records that are hard to write as CSV: separators, quotes, line breaks, nulls, nesting, a late field. */
const TRICKY: Record<string, unknown>[] = [
  {
    id: 1,
    name: 'comma, "quoted"',
    note: null,
    ok: true,
    price: 1.5,
    tags: ["a", "b"],
    owner: { login: "ann" },
  },
  { id: 2, name: "line\nbreak\r\nand CRLF", note: "  spaces  ", ok: false, price: 0, tags: [], owner: null },
  {
    id: 3,
    name: "ünïcødé ✓",
    note: "",
    ok: true,
    price: -2.25,
    tags: ["x,y"],
    owner: { login: 'o"k' },
    extra: 7,
  },
  { id: 4, name: "", note: "=1+1", ok: null, price: 1e21, tags: null, owner: {} },
];

beforeAll(async () => {
  api = await startApiServer();
  own = await startSyncServer((req) =>
    req.rawPath === "/tricky" ? { body: TRICKY } : { status: 404, body: { error: "not_found" } },
  );
});
afterAll(async () => {
  await api.close();
  await own.close();
});
beforeEach(() => {
  api.reset();
  project = tempProject("pipelines-sync-out-");
});
afterEach(() => project.cleanup());

/** Pipeline `p`: stream `items` over the test API's cursor endpoint (60 records, 3 pages). */
function pipeline(
  format: string,
  mode: string,
  opts: { primaryKey?: boolean; base?: string; stream?: string[] } = {},
) {
  const stream = opts.stream ?? [
    "path: /cursor/items",
    `params: { n: ${N}, limit: 25 }`,
    "records: $.data",
    "paginate: { type: cursor, cursor: $.next_cursor, has_more: $.has_more }",
  ];
  project.pipeline(
    "p",
    [
      "source:",
      `  base_url: ${opts.base ?? api.url}`,
      "  retry: { max_attempts: 2, initial_delay: 10ms }",
      "streams:",
      "  items:",
      ...stream.map((l) => `    ${l}`),
      ...(opts.primaryKey === false ? [] : ["    primary_key: id"]),
      "output:",
      `  format: ${format}`,
      `  mode: ${mode}`,
      "",
    ].join("\n"),
  );
}

async function runOk(args: string[] = []): Promise<void> {
  const r = await runPipeline(project.dir, "p", args);
  expect(r.code, r.stderr).toBe(0);
}

/** A small RFC 4180 reader: quoted fields with doubled quotes, CR/LF inside quotes, CRLF rows. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
      } else if (c === '"') {
        quoted = false;
        i++;
      } else {
        field += c;
        i++;
      }
    } else if (c === '"') {
      quoted = true;
      i++;
    } else if (c === ",") {
      row.push(field);
      field = "";
      i++;
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i += 2;
    } else {
      field += c;
      i++;
    }
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** The CSV cell a value must become: null → empty, arrays/objects → JSON, the rest as text. */
function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

describe("output modes end to end", () => {
  it.each(["jsonl", "json"])(
    "%s append: a second run adds every record again after the first ones",
    async (format) => {
      pipeline(format, "append", { primaryKey: false });
      const file = project.file(`out/p/items.${format}`);
      const read = () => (format === "json" ? JSON.parse(readFileSync(file, "utf8")) : readJsonl(file));
      await runOk();
      expect(read()).toEqual(TRUTH);
      await runOk();
      expect(read()).toEqual([...TRUTH, ...TRUTH]);
    },
  );

  it.each(["jsonl", "json", "csv"])("%s merge twice with the same data is idempotent", async (format) => {
    pipeline(format, "merge");
    const file = project.file(`out/p/items.${format}`);
    await runOk();
    const once = readFileSync(file);
    await runOk();
    expect(readFileSync(file).equals(once)).toBe(true);
    if (format === "jsonl") expect(readJsonl(file)).toEqual(TRUTH);
    if (format === "json") expect(JSON.parse(once.toString("utf8"))).toEqual(TRUTH);
    if (format === "csv") expect(parseCsv(once.toString("utf8")).length).toBe(N + 1);
  });

  it("replace after append keeps only the last run", async () => {
    pipeline("jsonl", "append", { primaryKey: false });
    await runOk();
    await runOk();
    pipeline("jsonl", "replace", { primaryKey: false });
    await runOk();
    expect(readJsonl(project.file("out/p/items.jsonl"))).toEqual(TRUTH);
  });

  it("csv round-trips: separators, quotes, line breaks, unicode, nulls, nested values, a late column", async () => {
    pipeline("csv", "replace", { base: own.url, stream: ["path: /tricky"] });
    await runOk();
    const text = readFileSync(project.file("out/p/items.csv"), "utf8");
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual(["id", "name", "note", "ok", "price", "tags", "owner", "extra"]);
    expect(rows).toEqual(TRICKY.map((r) => header.map((h) => cell(r[h]))));
    // Cells holding JSON parse back to the values the API sent.
    expect(rows.map((r) => (r[5] === "" ? null : JSON.parse(r[5])))).toEqual(TRICKY.map((r) => r.tags));
    expect(rows.map((r) => (r[6] === "" ? null : JSON.parse(r[6])))).toEqual(TRICKY.map((r) => r.owner));
  });

  it("csv round-trips the test API's data set", async () => {
    pipeline("csv", "replace");
    await runOk();
    const [header, ...rows] = parseCsv(readFileSync(project.file("out/p/items.csv"), "utf8"));
    expect(header).toEqual(Object.keys(TRUTH[0]));
    expect(rows).toEqual(TRUTH.map((r) => header.map((h) => cell(r[h]))));
  });

  describe("sqlite", () => {
    const DB = () => project.file("out/p.db");
    function table(): Record<string, unknown>[] {
      const db = new Database(DB(), { readonly: true });
      try {
        return db.prepare("SELECT * FROM items ORDER BY rowid").all() as Record<string, unknown>[];
      } finally {
        db.close();
      }
    }
    /** A row as the API's record: JSON text columns parsed back. */
    const asRecord = (row: Record<string, unknown>) => ({
      ...row,
      tags: JSON.parse(row.tags as string),
      owner: JSON.parse(row.owner as string),
    });

    it("the table equals the server's data; merging the same data again changes nothing", async () => {
      pipeline("sqlite", "merge");
      await runOk();
      expect(table().map(asRecord)).toEqual(TRUTH);
      await runOk();
      expect(table().map(asRecord)).toEqual(TRUTH);
    });

    it("append twice doubles the rows; replace brings them back to one copy", async () => {
      pipeline("sqlite", "append");
      await runOk();
      await runOk();
      expect(table().map(asRecord)).toEqual([...TRUTH, ...TRUTH]);
      pipeline("sqlite", "replace");
      await runOk();
      expect(table().map(asRecord)).toEqual(TRUTH);
    });

    it("tricky values come back unchanged (booleans as 0/1, nested values as JSON text)", async () => {
      pipeline("sqlite", "replace", { base: own.url, stream: ["path: /tricky"] });
      await runOk();
      const rows = table();
      expect(rows.map((r) => r.name)).toEqual(TRICKY.map((r) => r.name));
      expect(rows.map((r) => r.note)).toEqual(TRICKY.map((r) => r.note));
      expect(rows.map((r) => r.ok)).toEqual([1, 0, 1, null]);
      expect(rows.map((r) => r.price)).toEqual(TRICKY.map((r) => r.price));
      expect(rows.map((r) => (r.tags === null ? null : JSON.parse(r.tags as string)))).toEqual(
        TRICKY.map((r) => r.tags),
      );
      expect(rows.map((r) => (r.owner === null ? null : JSON.parse(r.owner as string)))).toEqual(
        TRICKY.map((r) => r.owner),
      );
      expect(rows.map((r) => r.extra)).toEqual([null, null, 7, null]);
    });
  });
});
