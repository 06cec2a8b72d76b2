/**
 * A killed run's PostgreSQL staging tables (`_staging_<run id>_…`) are dropped by the next run,
 * when it takes the killed run's stale lock over (run/run-lock.ts): in the schema of every
 * postgres output, only that run's, and each one named in what the takeover removed.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ExecutionPlan } from "../../src/compile/plan.js";
import { lockPipeline } from "../../src/run/run-lock.js";
import { freshDatabase, query, tables } from "./helpers.js";

const RUN = "20260101T000000Z-aaaaaa";
const KILLED = "20260101T000000Z-bbbbbb";
let url: string;
let root: string;

beforeAll(async () => {
  url = await freshDatabase("runlock");
  root = mkdtempSync(path.join(tmpdir(), "pipelines-pglock-"));
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("drops the killed run's staging tables in each postgres output's schema, no other, and names them", async () => {
  await query(url, "CREATE SCHEMA other");
  for (const t of [
    "public.items",
    `public."_staging_${KILLED}_a1"`,
    `public."_staging_${KILLED}_b2"`,
    `other."_staging_${KILLED}_c3"`,
    `public."_staging_${RUN}_a1"`,
  ])
    await query(url, `CREATE TABLE ${t} (x int)`);
  const out = (name: string, format: string, schema?: string) => ({
    name,
    output: {
      format,
      path: path.join(root, "out", `${name}.jsonl`),
      quarantine: null,
      postgres: schema ? { url, schema } : undefined,
    },
  });
  const plan = {
    pipeline: "p",
    dirs: { root, state: path.join(root, "state"), reports: path.join(root, "reports") },
    // Two outputs in one schema (its tables dropped once), one in another, one not postgres.
    streams: [
      out("a", "postgres", "public"),
      out("b", "postgres", "public"),
      out("c", "postgres", "other"),
      out("d", "jsonl"),
    ],
  } as unknown as ExecutionPlan;
  const lock = path.join(root, "state", "p.lock");
  mkdirSync(path.dirname(lock), { recursive: true });
  writeFileSync(
    lock,
    JSON.stringify({ pid: 999_999, host: "other-host", run_id: KILLED, started_at: "2026-01-01T00:00:00Z" }),
  );
  const old = new Date(Date.now() - 200_000);
  utimesSync(lock, old, old);

  const held = await lockPipeline(plan, RUN);
  await held.release();
  expect([...held.removed].sort()).toEqual([
    `postgres table "other"."_staging_${KILLED}_c3"`,
    `postgres table "public"."_staging_${KILLED}_a1"`,
    `postgres table "public"."_staging_${KILLED}_b2"`,
  ]);
  expect(await tables(url)).toEqual([`_staging_${RUN}_a1`, "items"]);
  expect(await tables(url, "other")).toEqual([]);
});
