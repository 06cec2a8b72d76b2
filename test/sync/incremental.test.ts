import { existsSync, readFileSync, rmSync } from "node:fs";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import {
  changedSince,
  type Item,
  isoAt,
  makeItems,
  pageOf,
  type SeenRequest,
  type SyncServer,
  startSyncServer,
} from "./sync-server.js";

const INITIAL = "2024-01-01T00:00:00Z";

/** The API's data: the tests change it between runs. */
let items: Item[] = [];
/** Makes a request fail with this status (max_attempts is 1: no retry). */
let failWhen: ((req: SeenRequest) => number | null) | null = null;
/** Newest first (as many APIs sort by default) instead of id order. */
let newestFirst = false;
let server: SyncServer;
let project: TempProject;

function served(since: string | undefined): Item[] {
  const list = changedSince(items, since);
  return newestFirst ? [...list].sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at)) : list;
}

beforeAll(async () => {
  server = await startSyncServer((req) => {
    const status = failWhen?.(req) ?? null;
    if (status !== null) return { status, body: { error: "boom" } };
    if (req.method === "GET" && req.rawPath === "/items") {
      return { body: { items: pageOf(served(req.query.since), req.query) } };
    }
    if (req.method === "GET" && req.rawPath === "/others") {
      return { body: { items: pageOf(served(req.query.since), req.query) } };
    }
    if (req.rawPath === "/seq") {
      // Sequence numbers sent as strings (as many APIs do for 64-bit ids).
      const after = Number(req.query.after ?? "0");
      return { body: items.filter((r) => r.id >= after).map((r) => ({ id: r.id, seq: String(r.id) })) };
    }
    if (req.rawPath === "/days") {
      // A date-only cursor: one record per day, 2024-03-01 + id days.
      const list = items.map((r) => ({ id: r.id, day: isoAt(24 * r.id).slice(0, 10) }));
      return { body: list.filter((r) => req.query.since === undefined || r.day >= req.query.since) };
    }
    if (req.method === "POST" && req.rawPath === "/search") {
      const since = (req.json as { since?: string } | undefined)?.since;
      return { body: { results: pageOf(served(since), req.query) } };
    }
    return { status: 404, body: { error: "not_found" } };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  items = makeItems(12);
  failWhen = null;
  newestFirst = false;
  server.requests.length = 0;
  project = tempProject("pipelines-sync-inc-");
});
afterEach(() => project.cleanup());

const STATE = () => project.file(".pipelines/state/p.json");
const OUT = () => project.file("out/p/items.jsonl");

function readState(): { streams?: Record<string, { cursor: string | number }> } {
  return JSON.parse(readFileSync(STATE(), "utf8"));
}

/** Pipeline `p` with one incremental stream `items` (paginated 5 per page) and merge output. */
function pipeline(
  opts: { format?: string; stream?: string[]; extraStreams?: string[]; lookback?: string } = {},
) {
  const stream = opts.stream ?? [
    "path: /items",
    "records: $.items",
    "paginate: { type: page, size_param: per_page, size: 5 }",
    "primary_key: id",
    `incremental: { cursor_field: updated_at, param: since, initial: "${INITIAL}"${opts.lookback === "" ? "" : `, lookback: ${opts.lookback ?? "1h"}`} }`,
  ];
  project.pipeline(
    "p",
    [
      "source:",
      `  base_url: ${server.url}`,
      "  retry: { max_attempts: 1 }",
      "  timeout: 5s",
      "streams:",
      "  items:",
      ...stream.map((l) => `    ${l}`),
      ...(opts.extraStreams ?? []).map((l) => `  ${l}`),
      "output:",
      `  format: ${opts.format ?? "jsonl"}`,
      "  mode: merge",
      "",
    ].join("\n"),
  );
}

/** The `since` values the runs sent, one per request, in order. */
const sinceSent = (path = "/items") =>
  server.requests.filter((r) => r.rawPath === path).map((r) => r.query.since);

/** Changes the API's data: items 3 and 12 edited (updated later), items 13 and 14 added. */
function changeData(): void {
  items = items.map((r) =>
    r.id === 3 || r.id === 12
      ? { ...r, name: `${r.name}-edited`, value: r.value + 1, updated_at: isoAt(40 + r.id) }
      : r,
  );
  items.push(
    { id: 13, name: "item-13", value: 130, updated_at: isoAt(50) },
    { id: 14, name: "item-14", value: 140, updated_at: isoAt(51) },
  );
}

describe("incremental sync, jsonl merge", () => {
  it("first run sends `initial` and saves the largest cursor; the next sends saved minus lookback and converges", async () => {
    pipeline();
    const first = await runPipeline(project.dir, "p");
    expect(first.code, first.stderr).toBe(0);
    // Every page of the first run carries `initial` (12 items at 5 per page: 3 pages, then an
    // empty one; page streams may also ask for pages ahead).
    expect(new Set(sinceSent())).toEqual(new Set([INITIAL]));
    expect(sinceSent().length).toBeGreaterThanOrEqual(4);
    expect(readJsonl(OUT())).toEqual(items);
    expect(readState().streams?.items.cursor).toBe(isoAt(12));

    changeData();
    server.requests.length = 0;
    const second = await runPipeline(project.dir, "p");
    expect(second.code, second.stderr).toBe(0);
    // saved 2024-03-01T12:00:00Z minus lookback 1h, on every page of the run.
    expect(new Set(sinceSent())).toEqual(new Set([isoAt(11)]));
    // Only what changed since then was fetched: 11 (inside the lookback), 3 and 12 (edited), 13, 14.
    expect(second.stream("items").records.written).toBe(5);
    const merged = readJsonl(OUT()) as Item[];
    expect(merged).toEqual(items);
    expect(new Set(merged.map((r) => r.id)).size).toBe(merged.length);
    expect(readState().streams?.items.cursor).toBe(isoAt(52));

    // Nothing changed: the lookback refetches the newest items, the merge keeps the file as is.
    const before = readFileSync(OUT(), "utf8");
    server.requests.length = 0;
    const third = await runPipeline(project.dir, "p");
    expect(third.code, third.stderr).toBe(0);
    expect(new Set(sinceSent())).toEqual(new Set([isoAt(51)]));
    expect(third.stream("items").records.written).toBe(2);
    expect(readFileSync(OUT(), "utf8")).toBe(before);
  });

  it("without lookback the saved cursor is sent as is", async () => {
    pipeline({ lookback: "" });
    expect((await runPipeline(project.dir, "p")).code).toBe(0);
    changeData();
    server.requests.length = 0;
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(new Set(sinceSent())).toEqual(new Set([isoAt(12)]));
    expect(readJsonl(OUT())).toEqual(items);
  });

  it("--full-refresh does not send the saved cursor, fetches everything, and saves the new largest value", async () => {
    pipeline();
    expect((await runPipeline(project.dir, "p")).code).toBe(0);
    changeData();
    server.requests.length = 0;
    const r = await runPipeline(project.dir, "p", ["--full-refresh"]);
    expect(r.code, r.stderr).toBe(0);
    expect(new Set(sinceSent())).toEqual(new Set([INITIAL]));
    expect(sinceSent()).not.toContain(isoAt(11));
    expect(sinceSent()).not.toContain(isoAt(12));
    expect(r.stream("items").records.written).toBe(14);
    expect(readJsonl(OUT())).toEqual(items);
    expect(readState().streams?.items.cursor).toBe(isoAt(52));
  });

  it("`in: body` sends the cursor as a JSON body field of a POST, on every page", async () => {
    pipeline({
      stream: [
        "path: /search",
        "method: POST",
        "body: { q: all }",
        "records: $.results",
        "paginate: { type: page, size_param: per_page, size: 5 }",
        "primary_key: id",
        `incremental: { cursor_field: updated_at, param: since, in: body, initial: "${INITIAL}", lookback: 30m }`,
      ],
    });
    const first = await runPipeline(project.dir, "p");
    expect(first.code, first.stderr).toBe(0);
    const bodies = () => server.requests.filter((r) => r.rawPath === "/search").map((r) => r.json);
    expect(new Set(bodies().map((b) => JSON.stringify(b)))).toEqual(
      new Set([JSON.stringify({ q: "all", since: INITIAL })]),
    );
    expect(bodies().length).toBeGreaterThanOrEqual(4);
    expect(server.requests.every((r) => r.query.since === undefined)).toBe(true);
    expect(readJsonl(OUT())).toEqual(items);

    changeData();
    server.requests.length = 0;
    const second = await runPipeline(project.dir, "p");
    expect(second.code, second.stderr).toBe(0);
    expect(new Set(bodies().map((b) => JSON.stringify(b)))).toEqual(
      new Set([JSON.stringify({ q: "all", since: "2024-03-01T11:30:00Z" })]),
    );
    expect(readJsonl(OUT())).toEqual(items);
  });

  it("state is not advanced when the stream fails (500 on the last page, max_attempts 1); the output is unchanged", async () => {
    pipeline();
    // A first run that fails: no state file, no output.
    failWhen = (req) => (req.query.page === "3" ? 500 : null);
    const failedFirst = await runPipeline(project.dir, "p");
    expect(failedFirst.code).toBe(1);
    expect(existsSync(STATE())).toBe(false);
    expect(existsSync(OUT())).toBe(false);

    failWhen = null;
    expect((await runPipeline(project.dir, "p")).code).toBe(0);
    const stateBefore = readFileSync(STATE(), "utf8");
    const outBefore = readFileSync(OUT(), "utf8");

    // Many changes, so that pages 1 and 2 of the failing run carry cursors past the saved one.
    items = items.map((r) => ({ ...r, value: r.value + 1000, updated_at: isoAt(100 + r.id) }));
    let lastPage = 0;
    failWhen = (req) => {
      const page = Number(req.query.page ?? "1");
      lastPage = Math.max(lastPage, page);
      // 12 changed items: pages 1–3 have records; fail the empty page 4 that would end the run
      // (and any page asked for ahead of it).
      return page >= 4 ? 500 : null;
    };
    const failed = await runPipeline(project.dir, "p");
    expect(failed.code).toBe(1);
    expect(failed.stream("items").status).toBe("failed");
    expect(failed.stream("items").records.written).toBe(12);
    expect(lastPage).toBeGreaterThanOrEqual(4);
    expect(readFileSync(STATE(), "utf8")).toBe(stateBefore);
    expect(readFileSync(OUT(), "utf8")).toBe(outBefore);

    // The next good run starts again from the old cursor and gets every change.
    failWhen = null;
    server.requests.length = 0;
    const again = await runPipeline(project.dir, "p");
    expect(again.code, again.stderr).toBe(0);
    expect(new Set(sinceSent())).toEqual(new Set([isoAt(11)]));
    expect(readJsonl(OUT())).toEqual(items);
    expect(readState().streams?.items.cursor).toBe(isoAt(112));
  });

  it("a failed stream keeps its old cursor while another stream of the pipeline advances its own", async () => {
    pipeline({
      extraStreams: [
        "others:",
        "  path: /others",
        "  records: $.items",
        "  paginate: { type: page, size_param: per_page, size: 5 }",
        "  primary_key: id",
        `  incremental: { cursor_field: updated_at, param: since, initial: "${INITIAL}" }`,
      ],
    });
    expect((await runPipeline(project.dir, "p")).code).toBe(0);
    expect(readState().streams).toMatchObject({
      items: { cursor: isoAt(12) },
      others: { cursor: isoAt(12) },
    });

    changeData();
    failWhen = (req) => (req.rawPath === "/others" && req.query.page === "2" ? 503 : null);
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    expect(r.stream("items").status).toBe("ok");
    expect(r.stream("others").status).toBe("failed");
    expect(readState().streams).toMatchObject({
      items: { cursor: isoAt(52) },
      others: { cursor: isoAt(12) },
    });
  });

  it("a --limit run does not save a cursor past records it never fetched (newest-first API)", async () => {
    newestFirst = true;
    pipeline();
    const limited = await runPipeline(project.dir, "p", ["--limit", "3"]);
    expect(limited.code, limited.stderr).toBe(0);
    expect(limited.stream("items").records.written).toBe(3);
    expect(limited.stream("items").warnings.join("\n")).toContain("incremental cursor not saved");
    expect(existsSync(STATE())).toBe(false);
    // The 3 newest: saving their largest cursor would make the next run skip items 1..9.
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    const out = (readJsonl(OUT()) as Item[]).sort((a, b) => a.id - b.id);
    expect(out).toEqual(items);
    expect(readState().streams?.items.cursor).toBe(isoAt(12));
  });
});

describe("incremental cursor and early stops", () => {
  it("a --max-pages run does not save a cursor either (the API still had pages)", async () => {
    newestFirst = true;
    pipeline();
    const limited = await runPipeline(project.dir, "p", ["--max-pages", "1"]);
    expect(limited.code, limited.stderr).toBe(0);
    expect(limited.stream("items").stop_reason?.code).toBe("max_pages");
    expect(limited.stream("items").warnings.join("\n")).toContain("incremental cursor not saved (max_pages");
    expect(existsSync(STATE())).toBe(false);
  });
});

describe("incremental cursor values", () => {
  it("numeric strings are compared as numbers: the largest of 1..12 is 12, not 9", async () => {
    pipeline({
      stream: [
        "path: /seq",
        "primary_key: id",
        'incremental: { cursor_field: seq, param: after, initial: "0" }',
      ],
    });
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(readState().streams?.items.cursor).toBe("12");
    server.requests.length = 0;
    expect((await runPipeline(project.dir, "p")).code).toBe(0);
    expect(server.requests.map((q) => q.query.after)).toEqual(["12"]);
  });

  it("a date-only cursor minus a lookback stays a date", async () => {
    pipeline({
      stream: [
        "path: /days",
        "primary_key: id",
        'incremental: { cursor_field: day, param: since, initial: "2024-01-01", lookback: 1d }',
      ],
    });
    expect((await runPipeline(project.dir, "p")).code).toBe(0);
    expect(readState().streams?.items.cursor).toBe("2024-03-13");
    server.requests.length = 0;
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests.map((q) => q.query.since)).toEqual(["2024-03-12"]);
    expect(r.stream("items").records.written).toBe(2);
  });
});

describe("incremental sync, sqlite merge", () => {
  const DB = () => project.file("out/p.db");
  function rows(): Item[] {
    const db = new Database(DB(), { readonly: true });
    try {
      return db.prepare("SELECT id, name, value, updated_at FROM items ORDER BY id").all() as Item[];
    } finally {
      db.close();
    }
  }

  it("upserts the changed records: the table equals the API's data, one row per id", async () => {
    pipeline({ format: "sqlite" });
    const first = await runPipeline(project.dir, "p");
    expect(first.code, first.stderr).toBe(0);
    expect(rows()).toEqual(items);

    changeData();
    server.requests.length = 0;
    const second = await runPipeline(project.dir, "p");
    expect(second.code, second.stderr).toBe(0);
    expect(new Set(sinceSent())).toEqual(new Set([isoAt(11)]));
    expect(second.stream("items").records.written).toBe(5);
    expect(rows()).toEqual(items);
    const db = new Database(DB(), { readonly: true });
    try {
      expect(db.prepare("SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM items").get()).toEqual({
        n: 14,
        d: 14,
      });
    } finally {
      db.close();
    }
    expect(readState().streams?.items.cursor).toBe(isoAt(52));
  });
});

describe("incremental state kept in the destination database", () => {
  /** The state the database holds for pipeline p, stream items. */
  async function stateInDb(format: "sqlite" | "duckdb"): Promise<{ cursor: string } | null> {
    if (format === "sqlite") {
      const db = new Database(project.file("out/p.db"), { readonly: true });
      try {
        const text = db
          .prepare("SELECT state FROM _pipelines_state WHERE pipeline = 'p' AND stream = 'items'")
          .pluck()
          .get();
        return typeof text === "string" ? JSON.parse(text) : null;
      } finally {
        db.close();
      }
    }
    const { DuckDBInstance } = await import("@duckdb/node-api");
    const inst = await DuckDBInstance.create(project.file("out/p.duckdb"));
    try {
      const conn = await inst.connect();
      const r = await conn.runAndReadAll(
        "SELECT CAST(state AS VARCHAR) FROM _pipelines_state WHERE pipeline = 'p' AND stream = 'items'",
      );
      conn.closeSync();
      const rows = r.getRows();
      return rows.length ? JSON.parse(String(rows[0][0])) : null;
    } finally {
      inst.closeSync();
    }
  }

  for (const format of ["sqlite", "duckdb"] as const) {
    it(`${format}: the cursor is committed with the rows, and wins over a lost or older state file`, async () => {
      pipeline({ format });
      const first = await runPipeline(project.dir, "p");
      expect(first.code, first.stderr).toBe(0);
      expect((await stateInDb(format))?.cursor).toBe(isoAt(12));

      // The state folder is lost (a new machine, a cleaned checkout): the database still knows.
      rmSync(project.file(".pipelines/state"), { recursive: true, force: true });
      changeData();
      server.requests.length = 0;
      const second = await runPipeline(project.dir, "p");
      expect(second.code, second.stderr).toBe(0);
      expect(new Set(sinceSent())).toEqual(new Set([isoAt(11)]));
      expect(second.stream("items").records.written).toBe(5);
      expect((await stateInDb(format))?.cursor).toBe(isoAt(52));
      // The state file is still written after the commit.
      expect(readState().streams?.items.cursor).toBe(isoAt(52));
    });
  }
});
