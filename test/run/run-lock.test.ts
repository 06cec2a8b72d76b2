import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { listFiles, readJsonl, runPipeline, sourceBlock, type TempProject, tempProject } from "./helpers.js";

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
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

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
  return spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  }).stdout as unknown as number;
}

function writeLock(pid: number | string, host = hostname()): void {
  mkdirSync(p.file(".pipelines/state"), { recursive: true });
  writeFileSync(
    p.file(".pipelines/state/p.lock"),
    JSON.stringify({
      pid: Number(pid),
      host,
      run_id: "20260101T000000Z-aaaaaa",
      started_at: "2026-01-01T00:00:00Z",
    }),
  );
}

function put(rel: string, text = "x"): void {
  mkdirSync(path.dirname(p.file(rel)), { recursive: true });
  writeFileSync(p.file(rel), text);
}

describe("one run of a pipeline at a time", () => {
  it("a run in progress (its process alive) refuses a second one: exit 1, nothing sent, its lock kept", async () => {
    pipeline();
    writeLock(process.pid);
    const before = readFileSync(p.file(".pipelines/state/p.lock"), "utf8");
    const r = await runPipeline(p.dir, "p").catch((e: Error) => e);
    // The refusal comes before any summary: runPipeline sees no JSON on stdout.
    expect(String(r)).toContain("another run of `p` is in progress (pid");
    expect(String(r)).toContain("run 20260101T000000Z-aaaaaa");
    expect(requests).toBe(0);
    expect(readFileSync(p.file(".pipelines/state/p.lock"), "utf8")).toBe(before);
    expect(existsSync(p.file("out/p/s.jsonl"))).toBe(false);
  });

  it("a lock from another host is respected too (whether it runs cannot be told from here)", async () => {
    pipeline();
    writeLock(1, "some-other-host");
    const r = await runPipeline(p.dir, "p").catch((e: Error) => e);
    expect(String(r)).toContain("on some-other-host");
    expect(requests).toBe(0);
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
  it("are removed by the next run (stale lock taken over); other pipelines' files are kept", async () => {
    pipeline();
    writeLock(deadPid());
    const OLD = "20260101T000000Z-aaaaaa";
    const ours = [
      `out/p/.s.jsonl.${OLD}.body.tmp`,
      `out/p/.s.jsonl.${OLD}.tmp`,
      `out/p/.s.invalid.jsonl.${OLD}.tmp`,
      `out/p/.s.rejected-${OLD}.jsonl.${OLD}.tmp`,
      `.pipelines/state/.partitions/p/${OLD}/s.jsonl`,
      ".pipelines/state/.p.json.4242.1767225600000.tmp",
      "reports/p/.latest.html.4242.1767225600000.tmp",
    ];
    const theirs = [
      `out/p/.other.jsonl.${OLD}.body.tmp`,
      `out/q/.s.jsonl.${OLD}.body.tmp`,
      `.pipelines/state/.partitions/q/${OLD}/s.jsonl`,
      ".pipelines/state/.q.json.4242.1767225600000.tmp",
      `out/p/s.rejected-${OLD}.jsonl`,
    ];
    for (const f of [...ours, ...theirs]) put(f);

    const r = await runPipeline(p.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(p.file("out/p/s.jsonl"))).toEqual(ITEMS);
    expect(r.stderr).toContain("p: removed what an interrupted run left: ");
    for (const f of ours) expect(existsSync(p.file(f)), f).toBe(false);
    for (const f of theirs) expect(existsSync(p.file(f)), f).toBe(true);
    // No lock, no scratch, no temporary state left (this pipeline keeps no state file).
    expect(listFiles(p.file(".pipelines/state")).filter((f) => !f.includes("q"))).toEqual([]);
  });

  it("sqlite: staging tables of killed runs of the stream are dropped", async () => {
    pipeline("sqlite");
    expect((await runPipeline(p.dir, "p")).code).toBe(0);
    const file = p.file("out/p.db");
    expect(existsSync(file)).toBe(true);
    const db = new Database(file);
    db.exec('CREATE TABLE "s__staging_20260101T000000Z-aaaaaa" (x)');
    db.exec('CREATE TABLE "t__staging_20260101T000000Z-aaaaaa" (x)');
    db.close();
    expect((await runPipeline(p.dir, "p")).code).toBe(0);
    const after = new Database(file, { readonly: true });
    const tables = (
      after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
    )
      .map((t) => t.name)
      .sort();
    after.close();
    expect(tables).toEqual(["s", "t__staging_20260101T000000Z-aaaaaa"]);
  });
});
