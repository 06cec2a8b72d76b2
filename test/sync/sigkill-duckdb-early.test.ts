/**
 * The real CLI killed with SIGKILL while DuckDB's early load (src/outputs/duckdb-early.ts) holds
 * rows in its open transaction: the replaced table stays exactly as it was, no table is added, and
 * the next run (which removes the staging files the kill left) replaces it.
 *
 * How the test knows the early load had begun: the server holds the last page until the run has
 * staged more than EARLY_BATCH_FILES full files beside the database (the load begins at that
 * many: test/outputs/duckdb-early.test.ts), then waits a second more (an insert of a batch takes
 * tens of milliseconds) before the kill.
 */
import { type ChildProcess, spawn } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EARLY_BATCH_FILES } from "../../src/outputs/duckdb-early.js";
import { STAGING_PART_CHARS } from "../../src/outputs/duckdb-stager.js";
import { BIN, ensureBuilt } from "../built.js";
import { listFiles, type TempProject, tempProject } from "../run/helpers.js";

const PAGE = 4000;
/** Records of about 120 characters: staged files enough for a batch and more. */
const TOTAL = Math.ceil(((EARLY_BATCH_FILES + 3) * STAGING_PART_CHARS) / 120);

let version = 1;
/** Set while a request for the last page waits for the test. */
let holdLast: ((release: () => void) => void) | null = null;
let server: http.Server;
let url: string;
let project: TempProject;

function item(i: number): Record<string, unknown> {
  return { id: i, name: `item ${i} v${version}`.padEnd(60, "."), value: i * version, tag: `t${i % 7}` };
}

beforeAll(async () => {
  await ensureBuilt();
  server = http.createServer((req, res) => {
    const from = Number(new URL(req.url ?? "/", "http://x").searchParams.get("cursor") ?? 0);
    const to = Math.min(TOTAL, from + PAGE);
    const body = JSON.stringify({
      data: Array.from({ length: to - from }, (_, k) => item(from + k)),
      next: to < TOTAL ? String(to) : null,
    });
    const send = () => res.writeHead(200, { "content-type": "application/json" }).end(body);
    if (to === TOTAL && holdLast) holdLast(send);
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 180_000);
afterAll(() => server?.close());
beforeEach(() => {
  version = 1;
  holdLast = null;
  project = tempProject("pipelines-duck-early-");
  project.pipeline(
    "p",
    [
      "source:",
      `  base_url: ${url}`,
      "  timeout: 30s",
      "streams:",
      "  items:",
      "    path: /items",
      "    records: $.data",
      "    paginate: { type: cursor, cursor: $.next, param: cursor }",
      "output: { format: duckdb, mode: replace }",
      "",
    ].join("\n"),
  );
});
afterEach(() => project.cleanup());

function run(): {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null; stderr: string }>;
} {
  const child = spawn(process.execPath, [BIN, "run", "p"], {
    cwd: project.dir,
    env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  return {
    child,
    exited: new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr }))),
  };
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(project.file("out/p.duckdb"), { access_mode: "READ_ONLY" });
  try {
    const conn = await inst.connect();
    const r = await conn.runAndReadAll(sql);
    conn.closeSync();
    return r.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    inst.closeSync();
  }
}

const staged = () => listFiles(project.file("out")).filter((f) => f.includes(".staging-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("SIGKILL during DuckDB's early load", () => {
  it("the replaced table stays as it was, no table is added; the next run replaces it and removes the staging files", async () => {
    const first = run();
    expect((await first.exited).code).toBe(0);
    const summary = async () =>
      query("SELECT count(*) AS n, min(name) AS name, sum(value) AS total FROM items");
    const before = await summary();
    expect(before[0].n).toBe(BigInt(TOTAL));
    const tables = await query("SELECT table_name FROM duckdb_tables() ORDER BY table_name");

    version = 2;
    let release: (() => void) | null = null;
    holdLast = (send) => {
      release = send;
    };
    const killed = run();
    for (let i = 0; i < 600 && !(release && staged().length > EARLY_BATCH_FILES); i++) await sleep(50);
    expect(staged().length, "the run staged a batch of files").toBeGreaterThan(EARLY_BATCH_FILES);
    await sleep(1000);
    killed.child.kill("SIGKILL");
    expect((await killed.exited).signal).toBe("SIGKILL");
    holdLast = null;
    (release as (() => void) | null)?.();

    expect(await summary()).toEqual(before);
    expect(await query("SELECT table_name FROM duckdb_tables() ORDER BY table_name")).toEqual(tables);
    expect(staged().length, "the kill leaves its staging files").toBeGreaterThan(0);

    const next = run();
    const r = await next.exited;
    expect(r.code, r.stderr).toBe(0);
    expect(await summary()).toEqual([
      { n: BigInt(TOTAL), name: item(0).name, total: BigInt((2 * TOTAL * (TOTAL - 1)) / 2) },
    ]);
    expect(staged()).toEqual([]);
  });
});
