/**
 * The real CLI (dist/cli/bin.js) as a child process, killed with SIGKILL at chosen moments of a
 * slow incremental run (merge mode): a kill never changes the committed output or the state
 * file, and the next complete run converges on the API's data.
 *
 * What a kill leaves behind (checked below): the writer's temporary files beside the output,
 * `.items.jsonl.<run-id>.<tag>.tmp` (observed: one `.body.tmp` per killed run, also when the run
 * was killed before any output existed), and the pipeline's lock, `p.lock`. They never sit under
 * the real output name, and nothing else is left in the output or state folders (no state temp
 * file, no partition scratch). The next run takes the stale lock over and removes them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { freshDatabase, query, tables } from "../pg/helpers.js";
import { listFiles, readJsonl, type TempProject, tempProject } from "../run/helpers.js";
import {
  changedSince,
  type Item,
  isoAt,
  makeItems,
  type SeenRequest,
  type SyncServer,
  startSyncServer,
} from "./sync-server.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const BIN = path.join(REPO, "dist", "cli", "bin.js");
const PAGE = 20;

/** Builds dist/ when bin.js is missing or older than a source file. */
let items: Item[] = [];
let server: SyncServer;
let project: TempProject;

/** Pages of PAGE records of the items changed since `since`; `next` is null on the last one. */
function pageFor(req: SeenRequest): { data: Item[]; next: string | null; last: boolean } {
  const list = changedSince(items, req.query.since);
  const start = Number(req.query.cursor ?? "0");
  const end = start + PAGE;
  return {
    data: list.slice(start, end),
    next: end < list.length ? String(end) : null,
    last: end >= list.length,
  };
}

beforeAll(async () => {
  await ensureBuilt();
  server = await startSyncServer(
    (req) => {
      if (req.rawPath !== "/items") return { status: 404, body: { error: "not_found" } };
      const { data, next } = pageFor(req);
      return { body: { data, next } };
    },
    { latencyMs: 40 },
  );
}, 180_000);
afterAll(() => server?.close());
beforeEach(() => {
  items = makeItems(300);
  server.reset();
  server.onRequest = null;
  server.onAnswered = null;
  project = tempProject("pipelines-sync-kill-");
  writePipeline("jsonl");
});
afterEach(() => project.cleanup());

function writePipeline(format: string, outputExtra: string[] = [], mode = "merge"): void {
  project.pipeline(
    "p",
    [
      "source:",
      `  base_url: ${server.url}`,
      "  retry: { max_attempts: 2, initial_delay: 10ms }",
      "  timeout: 10s",
      "  concurrency: 1",
      "streams:",
      "  items:",
      "    path: /items",
      "    records: $.data",
      "    paginate: { type: cursor, cursor: $.next, param: cursor }",
      "    primary_key: id",
      '    incremental: { cursor_field: updated_at, param: since, initial: "2024-01-01T00:00:00Z" }',
      "output:",
      `  format: ${format}`,
      `  mode: ${mode}`,
      ...outputExtra,
      "",
    ].join("\n"),
  );
}

const OUT = () => project.file("out/p/items.jsonl");
const STATE = () => project.file(".pipelines/state/p.json");
const read = (file: string): Buffer | null => (existsSync(file) ? readFileSync(file) : null);

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function spawnRun(env: Record<string, string> = {}): { child: ChildProcess; exited: Promise<Exit> } {
  const child = spawn(process.execPath, [BIN, "run", "p"], {
    cwd: project.dir,
    env: { PATH: process.env.PATH ?? "", NO_COLOR: "1", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<Exit>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exited };
}

async function runToCompletion(env: Record<string, string> = {}): Promise<void> {
  const { exited } = spawnRun(env);
  const r = await exited;
  expect(r.code, r.stderr).toBe(0);
}

type Moment = "first request" | "mid-run" | "after the last page";

/**
 * Starts a run and SIGKILLs it at `moment`, judged from the server's side: when the first request
 * arrives, when the 8th arrives, or as soon as the last page's reply has been flushed.
 */
async function runAndKill(moment: Moment, env: Record<string, string> = {}): Promise<Exit> {
  const before = server.requests.length;
  const { child, exited } = spawnRun(env);
  const kill = () => {
    server.onRequest = null;
    server.onAnswered = null;
    child.kill("SIGKILL");
  };
  if (moment === "first request") server.onRequest = () => kill();
  else if (moment === "mid-run") server.onRequest = () => server.requests.length - before >= 8 && kill();
  else server.onAnswered = (req) => pageFor(req).last && kill();
  const r = await exited;
  server.onRequest = null;
  server.onAnswered = null;
  return r;
}

/** Every file in out/ but the real output is a temporary file of the writer. */
function leftovers(): string[] {
  const files = listFiles(project.file("out"));
  const others = files.filter((f) => f !== path.join("p", "items.jsonl"));
  for (const f of others) expect(f).toMatch(/^p\/\.items\.jsonl\.[^/]+\.tmp$/);
  return others;
}

/** The edit the tests make between runs: every item changes (17 pages to fetch again), 40 are new. */
function changeEverything(): void {
  items = items.map((r) => ({
    ...r,
    value: r.value + 1,
    name: `${r.name}-v2`,
    updated_at: isoAt(1000 + r.id),
  }));
  items.push(
    ...makeItems(340)
      .slice(300)
      .map((r) => ({ ...r, updated_at: isoAt(2000 + r.id) })),
  );
}

/** The state folder holds the state file only (no temporary state, no partition scratch). */
/** The state folder's files, but the run history (one entry per finished run, in .history/). */
function stateFolder(): string[] {
  return listFiles(project.file(".pipelines/state")).filter((f) => !f.startsWith(".history/"));
}

describe("SIGKILL mid-run, then resume", () => {
  it("a killed run leaves the previous output and state byte-identical; the next run converges", async () => {
    // 1. The very first run killed: no output and no state file appear.
    const first = await runAndKill("first request");
    expect(first.signal).toBe("SIGKILL");
    expect(existsSync(OUT())).toBe(false);
    expect(existsSync(STATE())).toBe(false);
    expect(stateFolder()).toEqual(["p.lock"]);
    expect(leftovers()).toHaveLength(1);

    // 2. A complete run: 300 items in 15 pages.
    server.reset();
    await runToCompletion();
    expect(readJsonl(OUT())).toEqual(items);
    expect(server.requests.length).toBe(15);
    expect(JSON.parse(readFileSync(STATE(), "utf8")).streams.items.cursor).toBe(isoAt(300));
    // A complete run removes the killed run's temporary file and leaves none of its own.
    expect(leftovers()).toEqual([]);
    expect(stateFolder()).toEqual(["p.json"]);

    // 3. The API changes: every item is edited (so the incremental run has 17 pages again), 40 are new.
    changeEverything();
    const outBefore = read(OUT())!;
    const stateBefore = read(STATE())!;

    const moments: Moment[] = ["first request", "mid-run", "after the last page"];
    const seenLeftovers: string[][] = [];
    for (const moment of moments) {
      server.reset();
      const r = await runAndKill(moment);
      expect(r.signal, `${moment}: the run ended before the kill (${r.stderr})`).toBe("SIGKILL");
      if (moment === "after the last page") expect(server.requests.length).toBe(17);
      else expect(server.requests.length).toBeLessThan(17);
      expect(read(OUT())?.equals(outBefore), `${moment}: output changed`).toBe(true);
      expect(read(STATE())?.equals(stateBefore), `${moment}: state changed`).toBe(true);
      expect(stateFolder()).toEqual(["p.json", "p.lock"]);
      seenLeftovers.push(leftovers());
    }
    // A killed run leaves its temporary file (observed: one `.items.jsonl.<run-id>.body.tmp`);
    // the next run, killed too, removed it first: they do not pile up.
    for (let i = 0; i < seenLeftovers.length; i++) {
      expect(seenLeftovers[i]).toHaveLength(1);
      if (i > 0) expect(seenLeftovers[i]).not.toEqual(seenLeftovers[i - 1]);
    }
    const leftBeforeFinal = leftovers();

    // 4. Run again to completion: nothing lost, nothing duplicated, the old cursor was used.
    server.reset();
    await runToCompletion();
    expect(new Set(server.requests.map((q) => q.query.since))).toEqual(new Set([isoAt(300)]));
    const final = readJsonl(OUT()) as Item[];
    expect(final.length).toBe(340);
    expect(new Set(final.map((r) => r.id)).size).toBe(340);
    expect(final).toEqual(items);
    expect(JSON.parse(readFileSync(STATE(), "utf8")).streams.items.cursor).toBe(isoAt(2340));
    expect(stateFolder()).toEqual(["p.json"]);
    // The complete run removes every killed run's temporary files (and their stale lock).
    expect(leftBeforeFinal.length).toBeGreaterThan(0);
    expect(leftovers()).toEqual([]);
  });

  it("sqlite: a killed run leaves the table and the state as they were; the next run converges", async () => {
    writePipeline("sqlite");
    const DB = project.file("out/p.db");
    const query = <T>(sql: string): T[] => {
      const db = new Database(DB, { readonly: true, fileMustExist: true });
      try {
        return db.prepare(sql).all() as T[];
      } finally {
        db.close();
      }
    };
    const rows = () => query<Item>("SELECT id, name, value, updated_at FROM items ORDER BY rowid");
    const tables = () =>
      query<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map(
        (t) => t.name,
      );

    const dbState = () =>
      query<{ state: string }>(
        "SELECT state FROM _pipelines_state WHERE pipeline = 'p' AND stream = 'items'",
      );

    await runToCompletion();
    expect(rows()).toEqual(items);
    expect(tables()).toEqual(["_pipelines_state", "items"]);
    changeEverything();
    const before = rows();
    const stateBefore = read(STATE())!;
    const dbStateBefore = dbState();
    expect(JSON.parse(dbStateBefore[0].state).cursor).toBe(isoAt(300));

    for (const moment of ["mid-run", "after the last page"] as const) {
      server.reset();
      const r = await runAndKill(moment);
      expect(r.signal, `${moment}: the run ended before the kill (${r.stderr})`).toBe("SIGKILL");
      expect(rows(), `${moment}: the table changed`).toEqual(before);
      expect(read(STATE())?.equals(stateBefore), `${moment}: state changed`).toBe(true);
      expect(dbState(), `${moment}: the state in the database changed`).toEqual(dbStateBefore);
      // Only `items` (and the state table), and possibly a staging table of a killed run (`items__staging_<run-id>`; with
      // 340 rows, below one insert batch, none was observed: the kill rolls it back).
      for (const t of tables()) expect(t).toMatch(/^(_pipelines_state|items(__staging_.+)?)$/);
      expect(listFiles(project.file("out")).every((f) => /^p\.db(-wal|-shm)?$/.test(f))).toBe(true);
    }

    server.reset();
    await runToCompletion();
    const final = rows();
    expect(final.length).toBe(340);
    expect(final).toEqual(items);
    expect(query<{ n: number }>("SELECT COUNT(DISTINCT id) AS n FROM items")[0].n).toBe(340);
  });
  it("duckdb: a killed run leaves the table and the state as they were; the next run removes its staging file", async () => {
    writePipeline("duckdb");
    const DB = project.file("out/p.duckdb");
    const query = async (sql: string): Promise<Record<string, unknown>[]> => {
      const inst = await DuckDBInstance.create(DB, { access_mode: "READ_ONLY" });
      try {
        const conn = await inst.connect();
        const r = await conn.runAndReadAll(sql);
        conn.closeSync();
        return r.getRowObjectsJS() as Record<string, unknown>[];
      } finally {
        inst.closeSync();
      }
    };
    const rows = async () =>
      (await query("SELECT id, name, value, updated_at FROM items ORDER BY id")).map((r) => ({
        ...r,
        id: Number(r.id),
        value: Number(r.value),
      }));
    const tables = async () =>
      (await query("SELECT table_name FROM duckdb_tables() ORDER BY table_name")).map((t) => t.table_name);

    const dbState = async () =>
      query(
        "SELECT CAST(state AS VARCHAR) AS state FROM _pipelines_state WHERE pipeline = 'p' AND stream = 'items'",
      );

    await runToCompletion();
    expect(await rows()).toEqual(items);
    expect(await tables()).toEqual(["_pipelines_state", "items"]);
    changeEverything();
    const before = await rows();
    const stateBefore = read(STATE())!;
    const dbStateBefore = await dbState();
    expect(JSON.parse(String(dbStateBefore[0].state)).cursor).toBe(isoAt(300));
    let staged = 0;
    for (const moment of ["mid-run", "after the last page"] as const) {
      server.reset();
      const r = await runAndKill(moment);
      expect(r.signal, `${moment}: the run ended before the kill (${r.stderr})`).toBe("SIGKILL");
      expect(await rows(), `${moment}: the table changed`).toEqual(before);
      expect(read(STATE())?.equals(stateBefore), `${moment}: state changed`).toBe(true);
      expect(await dbState(), `${moment}: the state in the database changed`).toEqual(dbStateBefore);
      for (const t of await tables()) expect(t).toMatch(/^(_pipelines_state|items(__staging_.+)?)$/);
      // Records are staged in a temporary file beside the database until the commit loads them.
      for (const f of listFiles(project.file("out"))) {
        expect(f).toMatch(/^(p\.duckdb(\.wal)?|\.p\.duckdb\.[^/]+\.staging-[0-9a-f]+\.tmp)$/);
        if (f.endsWith(".tmp")) staged++;
      }
    }
    expect(staged, "a killed run leaves its staging file (the next run removes it)").toBeGreaterThan(0);

    server.reset();
    await runToCompletion();
    expect(await rows()).toEqual(items);
    expect(await tables()).toEqual(["_pipelines_state", "items"]);
    expect(listFiles(project.file("out")).every((f) => /^p\.duckdb(\.wal)?$/.test(f))).toBe(true);
  });

  // Merge (and append) into a table that exists streams its upserts (inserts), 20 records a
  // batch here: a kill comes after batches were sent, in one transaction, which the kill rolls
  // back: nothing is left. With PIPELINES_PG_UPSERT_ROWS=0 (one upsert at the commit) the staging
  // table is committed as it is loaded: the kill leaves it, and the next run drops it.
  for (const [upsertRows, leaves, mode] of [
    ["0", true, "merge"],
    ["20", false, "merge"],
    ["20", false, "append"],
  ] as const)
    it(`postgres ${mode} (PIPELINES_PG_UPSERT_ROWS=${upsertRows}): a killed run leaves the table and the state as they were; ${leaves ? "the next run drops its staging tables" : "no staging table is left"}`, async () => {
      const env = { PIPELINES_PG_UPSERT_ROWS: upsertRows };
      const url = await freshDatabase("sigkill");
      writePipeline("postgres", [`  url: ${url}`], mode);
      const rows = async () =>
        (await query<Item>(url, "SELECT id, name, value, updated_at FROM items ORDER BY id, updated_at")).map(
          (r) => ({
            ...r,
            id: Number(r.id),
            value: Number(r.value),
            updated_at: new Date(r.updated_at).toISOString().replace(/\.\d{3}Z$/, "Z"),
          }),
        );
      const dbState = async () =>
        query<{ state: { cursor: string } }>(
          url,
          "SELECT state FROM _pipelines_state WHERE pipeline = 'p' AND stream = 'items'",
        );

      await runToCompletion(env);
      expect(await rows()).toEqual(items);
      expect(await tables(url)).toEqual(["_pipelines_state", "items"]);
      changeEverything();
      const before = await rows();
      const stateBefore = read(STATE())!;
      const dbStateBefore = await dbState();
      expect(dbStateBefore[0].state.cursor).toBe(isoAt(300));
      let staged = 0;
      for (const moment of ["mid-run", "after the last page"] as const) {
        server.reset();
        const r = await runAndKill(moment, env);
        expect(r.signal, `${moment}: the run ended before the kill (${r.stderr})`).toBe("SIGKILL");
        expect(await rows(), `${moment}: the table changed`).toEqual(before);
        expect(read(STATE())?.equals(stateBefore), `${moment}: state changed`).toBe(true);
        expect(await dbState(), `${moment}: the state in the database changed`).toEqual(dbStateBefore);
        for (const t of await tables(url)) {
          expect(t).toMatch(/^(_pipelines_state|items|_staging_.+)$/);
          if (t.startsWith("_staging_")) staged++;
        }
      }
      if (leaves)
        expect(staged, "a killed run leaves its staging table (the next run drops it)").toBeGreaterThan(0);
      else expect(staged, "the killed run's transaction took its staging table with it").toBe(0);

      server.reset();
      await runToCompletion(env);
      // Append adds the changed items beside the old ones (ordered by id, then updated_at).
      const appended = [...before, ...items].sort(
        (a, b) => a.id - b.id || (a.updated_at < b.updated_at ? -1 : 1),
      );
      expect(await rows()).toEqual(mode === "append" ? appended : items);
      expect(await tables(url)).toEqual(["_pipelines_state", "items"]);
      expect((await dbState())[0].state.cursor).toBe(isoAt(2340));
    });
});
