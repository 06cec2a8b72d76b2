/**
 * `run --queue` of every demo pipeline (demo/pipelines, against the demo API of src/demo/, its
 * 503s, rate limit, OAuth2 tokens and invalid records included) with three real workers gives
 * what a local run gives: the same output bytes, saved state, report and `--json` summary
 * (minus times and run ids) and exit code. The SQLite and DuckDB demos (one writing process:
 * refused with --queue) write jsonl here, in both runs.
 */
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type DemoApi, startDemoApi } from "../../src/demo/demo-api.js";
import { ensureBuilt } from "../built.js";
import { runCli } from "../cli/helpers.js";
import { freePort } from "../helpers/free-port.mjs";
import { listFiles, type TempProject, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, type WorkerProcess, writeQueueConfig } from "./helpers.js";
import { comparable, comparableState } from "./parity.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PIPELINES = ["analytics", "crm", "github", "pokeapi", "releases", "shop", "slack"];
const PREFIX = "t-demo";

/** A copy of the demo project; sqlite and duckdb outputs become jsonl (same mode). */
function demoCopy(): TempProject {
  const p = tempProject("pipelines-queue-demo-");
  cpSync(path.join(REPO, "demo", "pipelines"), p.file("pipelines"), { recursive: true });
  cpSync(path.join(REPO, "demo", "schemas"), p.file("schemas"), { recursive: true });
  for (const name of ["shop", "slack"]) {
    const file = p.file(`pipelines/${name}.yaml`);
    writeFileSync(file, readFileSync(file, "utf8").replace(/format: (sqlite|duckdb)/, "format: jsonl"));
  }
  return p;
}

/** The demo API's variables, as `pipelines demo` sets them. */
const demoEnv = (api: DemoApi) => ({
  DEMO_API: api.url,
  DEMO_TOKEN: "demo-token-7d1c0b2e",
  DEMO_CLIENT_ID: api.clientId,
  DEMO_CLIENT_SECRET: api.clientSecret,
});

let local: TempProject;
let queued: TempProject;
/** Both runs' demo APIs listen on this port: the records hold URLs of the API. */
let port: number;

beforeAll(async () => {
  await ensureBuilt();
  port = await freePort();
  local = demoCopy();
  queued = demoCopy();
}, 180_000);
afterAll(() => {
  local?.cleanup();
  queued?.cleanup();
});

/**
 * Every demo pipeline against a fresh demo API (its flaky 503s start over), one `run` each, a
 * second apart: the demo API's own limit (40 requests in any second, whatever the pipeline)
 * then never answers 429, which would depend on how fast the previous pipeline ended.
 */
async function runAll(p: TempProject, args: string[], workers: number) {
  const api = await startDemoApi(port);
  const env = demoEnv(api);
  const started: WorkerProcess[] = [];
  try {
    for (let i = 0; i < workers; i++)
      started.push(await startWorker(p.dir, ["--concurrency", "4"], { ...env, NO_COLOR: "1" }));
    const runs: { code: number; summary: unknown; stderr: string }[] = [];
    for (const name of PIPELINES) {
      await new Promise((r) => setTimeout(r, 1100));
      const r = await runCli(["run", name, "--json", ...args], p.dir, { ...env, REDIS_URL: redisUrl() });
      runs.push({ code: r.code, summary: JSON.parse(r.stdout), stderr: r.stderr });
    }
    return runs;
  } finally {
    await Promise.all(started.map((w) => w.stop()));
    await api.close();
  }
}

it("every demo pipeline: run --queue on three workers gives the local run's outputs, state, reports, summary and exit code", async () => {
  const a = await runAll(local, [], 0);
  writeQueueConfig(queued.dir, PREFIX);
  const b = await runAll(queued, ["--queue"], 3);
  for (const [i, name] of PIPELINES.entries()) {
    expect(a[i].code, `${name}: ${a[i].stderr}`).toBe(0);
    expect(b[i].code, `${name}: ${b[i].stderr}`).toBe(a[i].code);
    expect(comparable(b[i].summary, queued.dir), name).toEqual(comparable(a[i].summary, local.dir));
  }

  const outputs = listFiles(local.file("out"));
  expect(outputs.length).toBeGreaterThan(8);
  expect(listFiles(queued.file("out"))).toEqual(outputs);
  for (const f of outputs)
    expect(readFileSync(queued.file(`out/${f}`), "utf8"), f).toBe(
      readFileSync(local.file(`out/${f}`), "utf8"),
    );

  const redis = new Redis(redisUrl());
  let states = 0;
  try {
    for (const name of PIPELINES) {
      const report = (p: TempProject) =>
        comparable(JSON.parse(readFileSync(p.file(`reports/${name}/latest.json`), "utf8")), p.dir);
      expect(report(queued), name).toEqual(report(local));
      const file = local.file(`.pipelines/state/${name}.json`);
      const saved = await redis.get(`${PREFIX}:state:${name}`);
      if (!existsSync(file)) expect(saved, name).toBeNull();
      else
        expect(comparableState(saved ?? "{}", queued.dir), name).toEqual(
          comparableState(readFileSync(file, "utf8"), local.dir),
        );
      states += saved ? 1 : 0;
    }
  } finally {
    redis.disconnect();
  }
  // analytics (window checkpoints), releases (a values list) and github (its cursor) keep state.
  expect(states).toBeGreaterThanOrEqual(2);
}, 240_000);
