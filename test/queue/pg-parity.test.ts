// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${…}` templates
/**
 * A pipeline writing PostgreSQL (a fan-out of 60 partitions, per-partition incremental state,
 * quarantined records, merge), run locally into one database and with `run --queue` on three
 * real workers into another: the same rows, quarantine rows, state in the database
 * (`_pipelines_state`), saved state (file / Redis), report, summary and exit code — on a first
 * run and on a second, incremental one after the API changed.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { freshDatabase, query } from "../pg/helpers.js";
import {
  closeServer,
  listenLocal,
  listFiles,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "../run/helpers.js";
import { redisUrl, startWorker, type WorkerProcess, writeQueueConfig } from "./helpers.js";
import { comparable, comparableState } from "./parity.js";

const ORGS = 60;
let server: Server;
let base: string;
/** The API's version: the second runs see changed and new repositories. */
let version = 1;

function reposOf(org: number) {
  const n = (org % 4) + (version === 2 && org % 3 === 0 ? 1 : 0);
  return Array.from({ length: n }, (_, i) => ({
    id: `${org}-${i}`,
    // Every 7th repository has no name: invalid under the schema, quarantined.
    name: (org * 10 + i) % 7 === 0 ? null : `repo ${org}/${i}`,
    stars: org * i,
    updated_at: `2024-03-${String(10 + i + (version === 2 && i === 0 && org % 2 ? 5 : 0)).padStart(2, "0")}T00:00:00Z`,
    topics: i % 2 ? ["a", "b"] : [],
  }));
}

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    res.setHeader("content-type", "application/json");
    if (url.pathname === "/orgs") {
      res.end(JSON.stringify({ data: Array.from({ length: ORGS }, (_, i) => ({ id: i + 1 })) }));
      return;
    }
    const m = /^\/orgs\/(\d+)\/repos$/.exec(url.pathname);
    if (!m) {
      res.statusCode = 404;
      res.end("{}");
      return;
    }
    const since = url.searchParams.get("since");
    const repos = reposOf(Number(m[1])).filter((r) => since === null || r.updated_at > since);
    setTimeout(() => res.end(JSON.stringify({ data: repos })), Number(m[1]) % 5);
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

const text = () =>
  [
    sourceBlock(base, "concurrency: 4"),
    "streams:",
    "  orgs:",
    "    path: /orgs",
    "    records: $.data",
    "    primary_key: id",
    "  repos:",
    "    parent: orgs",
    "    path: /orgs/${parent.id}/repos",
    "    records: $.data",
    "    primary_key: id",
    "    incremental: { cursor_field: updated_at, param: since }",
    "    schema:",
    "      type: object",
    "      required: [id, name]",
    "      properties: { id: { type: string }, name: { type: string }, stars: { type: integer } }",
    "output:",
    "  format: postgres",
    "  url: ${env.DATABASE_URL}",
    "  mode: merge",
    "validation: { invalid_records: skip, max_invalid_ratio: 0.5 }",
    "",
  ].join("\n");

/** Everything of the database but the metadata columns (run id, load time) and times of the state. */
async function contents(url: string) {
  const rows = (table: string, order: string) =>
    query(url, `SELECT * FROM ${table} ORDER BY ${order}`).then((rs) =>
      rs.map(({ _run_id, _loaded_at, ...rest }) => rest),
    );
  const state = await query<{ pipeline: string; stream: string; state: unknown }>(
    url,
    "SELECT pipeline, stream, state FROM _pipelines_state ORDER BY pipeline, stream",
  );
  const tables = await query<{ t: string }>(
    url,
    "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
  );
  return {
    tables: tables.map((t) => t.t),
    orgs: await rows("orgs", "id"),
    repos: await rows("repos", "id"),
    invalid: !tables.some((t) => t.t === "repos__invalid")
      ? null
      : (await rows("repos__invalid", "record_id")).map(({ record, errors, record_id }) => ({
          record,
          errors,
          record_id,
        })),
    state: state.map((s) => comparable(s)),
  };
}

/** A database URL's database name (the two runs write two databases). */
const dbName = (url: string) => new URL(url).pathname.slice(1);

let local: TempProject;
let queued: TempProject;
let localDb: string;
let queuedDb: string;

beforeAll(async () => {
  localDb = await freshDatabase("qlocal");
  queuedDb = await freshDatabase("qqueue");
  local = tempProject("pipelines-queue-pg-");
  queued = tempProject("pipelines-queue-pg-");
  for (const p of [local, queued]) p.pipeline("p", text());
  writeQueueConfig(queued.dir, "t-pg");
}, 60_000);
afterAll(() => {
  local?.cleanup();
  queued?.cleanup();
});

it("run --queue on three workers writes PostgreSQL as a local run does, first and incremental runs", async () => {
  const workers: WorkerProcess[] = [];
  const redis = new Redis(redisUrl());
  try {
    for (let i = 0; i < 3; i++)
      workers.push(await startWorker(queued.dir, ["--concurrency", "3"], { DATABASE_URL: queuedDb }));
    const seen: number[] = [];
    for (const v of [1, 2]) {
      version = v;
      const a = await runPipeline(local.dir, "p", [], { DATABASE_URL: localDb });
      const b = await runPipeline(queued.dir, "p", ["--queue"], {
        DATABASE_URL: queuedDb,
        REDIS_URL: redisUrl(),
      });
      expect(a.code, a.stderr).toBe(0);
      expect(b.code, b.stderr).toBe(a.code);
      expect(b.stream("repos").records.written).toBeGreaterThan(0);
      seen.push(b.stream("repos").records.seen);
      expect(b.stream("repos").records.invalid).toBeGreaterThan(0);
      expect(comparable(b.summary, queued.dir, dbName(queuedDb))).toEqual(
        comparable(a.summary, local.dir, dbName(localDb)),
      );
      expect(await contents(queuedDb)).toEqual(await contents(localDb));
      // Files beside the database (the quarantine of a checkpointed child stream).
      const files = listFiles(local.file("out"));
      expect(listFiles(queued.file("out"))).toEqual(files);
      for (const f of files)
        expect(readFileSync(queued.file(`out/${f}`), "utf8"), f).toBe(
          readFileSync(local.file(`out/${f}`), "utf8"),
        );
      const report = (p: TempProject, db: string) =>
        comparable(JSON.parse(readFileSync(p.file("reports/p/latest.json"), "utf8")), p.dir, dbName(db));
      expect(report(queued, queuedDb)).toEqual(report(local, localDb));
      const saved = await redis.get("t-pg:state:p");
      expect(comparableState(saved ?? "{}", queued.dir)).toEqual(
        comparableState(readFileSync(local.file(".pipelines/state/p.json"), "utf8"), local.dir),
      );
    }
    // The second runs were incremental: only the changed and new repositories were fetched.
    expect(seen[1]).toBeLessThan(seen[0]);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    redis.disconnect();
  }
}, 180_000);
