import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { runCli } from "../cli/helpers.js";
import {
  closeServer,
  listenLocal,
  listFiles,
  readJsonl,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "./helpers.js";

/**
 * One run of a pipeline at a time (`<state>/<pipeline>.lock`), and the leftovers of a killed run
 * removed by the next one: temporary outputs, partition scratch, temporary state and report
 * files, sqlite staging tables. Files of other pipelines are never touched.
 */
const ITEMS = [{ id: 1 }, { id: 2 }];
let server: Server;
let url: string;
let requests = 0;

beforeAll(async () => {
  server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: ITEMS }));
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-lock-");
  requests = 0;
});
afterEach(() => p.cleanup());

const pipeline = (format = "jsonl") =>
  p.pipeline(
    "p",
    `${sourceBlock(url)}\nstreams:\n  s: { path: /s, records: $.data }\noutput: { format: ${format} }\n`,
  );

/** A pid that no process has: one that just exited. */
function deadPid(): number {
  return Number(
    spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" })
      .stdout,
  );
}

const OLD = "20260101T000000Z-aaaaaa";

function writeLock(pid: number, host = hostname(), ageMs = 0): void {
  mkdirSync(p.file(".pipelines/state"), { recursive: true });
  const file = p.file(".pipelines/state/p.lock");
  writeFileSync(file, JSON.stringify({ pid, host, run_id: OLD, started_at: "2026-01-01T00:00:00Z" }));
  if (ageMs) {
    const then = new Date(Date.now() - ageMs);
    utimesSync(file, then, then);
  }
}

/** A process that stays alive until the test ends. */
function liveProcess(): ChildProcess {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  onTestFinished(() => {
    child.kill();
  });
  return child;
}

function put(rel: string, text = "x"): void {
  mkdirSync(path.dirname(p.file(rel)), { recursive: true });
  writeFileSync(p.file(rel), text);
}

describe("one run of a pipeline at a time", () => {
  it("a run in progress (its process alive) refuses a second one: exit 1, nothing sent, its lock kept", async () => {
    pipeline();
    writeLock(liveProcess().pid!);
    const before = readFileSync(p.file(".pipelines/state/p.lock"), "utf8");
    const r = await runCli(["run", "p", "--json"], p.dir);
    expect(r.code, r.stderr).toBe(1);
    // The refusal comes before any summary: nothing on stdout.
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("another run of `p` is in progress (pid");
    expect(r.stderr).toContain(`run ${OLD}`);
    expect(requests).toBe(0);
    expect(readFileSync(p.file(".pipelines/state/p.lock"), "utf8")).toBe(before);
    expect(existsSync(p.file("out/p/s.jsonl"))).toBe(false);
  });

  it("a lock from another host is respected while it is touched, not after 2 minutes without", async () => {
    pipeline();
    writeLock(1, "some-other-host");
    const r = await runCli(["run", "p", "--json"], p.dir);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("on some-other-host");
    expect(requests).toBe(0);
    // Its heartbeat is 90 s old: still fresh (stale after 2 minutes), still respected.
    writeLock(1, "some-other-host", 90_000);
    expect((await runCli(["run", "p", "--json"], p.dir)).code).toBe(1);
    expect(requests).toBe(0);
    writeLock(1, "some-other-host", 3 * 60_000);
    expect((await runPipeline(p.dir, "p")).code).toBe(0);
  });

  it("a lock of this very pid is stale (a container restarted as the same PID 1)", async () => {
    pipeline();
    writeLock(process.pid);
    expect((await runPipeline(p.dir, "p")).code).toBe(0);
    expect(existsSync(p.file(".pipelines/state/p.lock"))).toBe(false);
  });

  it("`run p p` runs p once", async () => {
    pipeline();
    const r = await runPipeline(p.dir, "p", ["p"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary.pipeline).toBe("p");
    expect(requests).toBe(1);
  });

  it("the lock is gone after a run, also a failed one", async () => {
    pipeline();
    expect((await runPipeline(p.dir, "p")).code).toBe(0);
    expect(existsSync(p.file(".pipelines/state/p.lock"))).toBe(false);
    p.pipeline(
      "p",
      `${sourceBlock(url)}\nstreams:\n  s: { path: /s, records: $.data, error_path: $.data }\n`,
    );
    expect((await runPipeline(p.dir, "p")).code).toBe(1);
    expect(existsSync(p.file(".pipelines/state/p.lock"))).toBe(false);
  });
});

describe("a killed run's leftovers", () => {
  it("are removed by the next run (stale lock taken over); files of other runs and pipelines are kept", async () => {
    pipeline();
    const pid = deadPid();
    writeLock(pid);
    const ours = [
      `out/p/.s.jsonl.${OLD}.body.tmp`,
      `out/p/.s.jsonl.${OLD}.tmp`,
      `out/p/.s.jsonl.${OLD}.replaced.tmp`, // the output it replaced, not removed yet
      `out/p/.s.invalid.jsonl.${OLD}.tmp`,
      `out/p/.s.rejected-${OLD}.jsonl.${OLD}.tmp`,
      `.pipelines/state/.partitions/p/${OLD}/s.jsonl`,
      `.pipelines/state/.p.json.${pid}.1767225600000.tmp`,
      `reports/p/.latest.html.${pid}.1767225600000.tmp`,
    ];
    const theirs = [
      "out/p/.s.jsonl.20260505T000000Z-bbbbbb.body.tmp", // another run's
      `.pipelines/state/.p.json.${pid + 1}.1767225600000.tmp`,
      `out/p/.other.jsonl.${OLD}.body.tmp`,
      `out/q/.s.jsonl.${OLD}.body.tmp`,
      `.pipelines/state/.partitions/q/${OLD}/s.jsonl`,
      `.pipelines/state/.q.json.${pid}.1767225600000.tmp`,
      `out/p/s.rejected-${OLD}.jsonl`,
      // Near misses of the killed run's names: not hidden, not .tmp.
      `out/p/.s.jsonl.${OLD}.body.keep`,
      `reports/p/latest.html.${pid}.1767225600000.tmp`,
      `reports/p/.latest.html.${pid}.1767225600000.json`,
    ];
    for (const f of [...ours, ...theirs]) put(f);

    const r = await runPipeline(p.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(p.file("out/p/s.jsonl"))).toEqual(ITEMS);
    expect(r.stderr).toContain("p: removed what an interrupted run left: ");
    for (const f of ours) expect(existsSync(p.file(f)), f).toBe(false);
    for (const f of theirs) expect(existsSync(p.file(f)), f).toBe(true);
    // No lock and no scratch of the killed run left (this pipeline keeps no state file; the run
    // history in .history/ is the new run's).
    expect(
      listFiles(p.file(".pipelines/state")).filter((f) => !f.includes("q") && !f.startsWith(".history/")),
    ).toEqual([`.p.json.${pid + 1}.1767225600000.tmp`]);
  });

  it("a live run's files are never removed: cleanup follows only a stale lock", async () => {
    pipeline();
    put(`out/p/.s.jsonl.${OLD}.body.tmp`);
    expect((await runPipeline(p.dir, "p")).code).toBe(0);
    expect(existsSync(p.file(`out/p/.s.jsonl.${OLD}.body.tmp`))).toBe(true);
  });

  it("sqlite: the killed run's staging table is dropped, no other", async () => {
    pipeline("sqlite");
    expect((await runPipeline(p.dir, "p")).code).toBe(0);
    const file = p.file("out/p.db");
    expect(existsSync(file)).toBe(true);
    const db = new Database(file);
    db.exec(`CREATE TABLE "s__staging_${OLD}" (x)`);
    db.exec(`CREATE TABLE "t__staging_${OLD}" (x)`);
    db.exec('CREATE TABLE "s__staging_20260505T000000Z-bbbbbb" (x)');
    db.close();
    writeLock(deadPid());
    const r = await runPipeline(p.dir, "p");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`(table s__staging_${OLD})`);
    const after = new Database(file, { readonly: true });
    const tables = (
      after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
    )
      .map((t) => t.name)
      .sort();
    after.close();
    expect(tables).toEqual(["s", "s__staging_20260505T000000Z-bbbbbb", `t__staging_${OLD}`]);
  });
});
