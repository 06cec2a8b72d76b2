/**
 * The run lock (run/run-lock.ts) called directly: the heartbeat, a lock being written, the
 * takeover marker, release. (Through the CLI: run-lock.test.ts and security/paths.test.ts.)
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ExecutionPlan } from "../../src/compile/plan.js";
import { isInside, lockPipeline, PipelineLockedError } from "../../src/run/run-lock.js";

let root: string;
let plan: ExecutionPlan;
const RUN = "20260101T000000Z-aaaaaa";
const OTHER = "20260101T000000Z-bbbbbb";
const lockFile = () => path.join(root, "state", "p.lock");
const marker = () => `${lockFile()}.takeover`;
const ago = (file: string, ms: number) => {
  const t = new Date(Date.now() - ms);
  utimesSync(file, t, t);
};

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), "pipelines-lockunit-"));
  plan = {
    pipeline: "p",
    dirs: {
      root,
      state: path.join(root, "state"),
      reports: path.join(root, "reports"),
      out: path.join(root, "out"),
      schemas: path.join(root, "schemas"),
    },
    streams: [],
  } as unknown as ExecutionPlan;
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

const holder = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    pid: process.pid + 100000,
    host: "other-host",
    run_id: OTHER,
    started_at: "2026-01-01T00:00:00Z",
    ...over,
  });

describe("lockPipeline", () => {
  it("writes pid, host, run id and start time; release removes it", async () => {
    const lock = await lockPipeline(plan, RUN);
    const held = JSON.parse(readFileSync(lockFile(), "utf8"));
    expect(held).toMatchObject({ pid: process.pid, host: hostname(), run_id: RUN });
    expect(Number.isNaN(Date.parse(held.started_at))).toBe(false);
    expect(lock.removed).toEqual([]);
    await lock.release();
    expect(existsSync(lockFile())).toBe(false);
  });

  it("touches the lock every 30 s while held, and stops at release", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const lock = await lockPipeline(plan, RUN);
    ago(lockFile(), 100_000);
    vi.advanceTimersByTime(30_000);
    for (let i = 0; i < 200 && Date.now() - statSync(lockFile()).mtimeMs > 50_000; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(Date.now() - statSync(lockFile()).mtimeMs).toBeLessThan(50_000);
    await lock.release();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("release leaves a lock another run took over", async () => {
    const lock = await lockPipeline(plan, RUN);
    writeFileSync(lockFile(), holder({ host: hostname(), run_id: OTHER }));
    await lock.release();
    expect(JSON.parse(readFileSync(lockFile(), "utf8")).run_id).toBe(OTHER);
  });

  it("another host's lock: refused while fresh, naming the host, the run and its start", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder());
    ago(lockFile(), 100_000);
    const err = await lockPipeline(plan, RUN).catch((e) => e);
    expect(err).toBeInstanceOf(PipelineLockedError);
    expect(err.message).toBe(
      `another run of \`p\` is in progress (pid ${process.pid + 100000} on other-host, run ${OTHER}, started 2026-01-01T00:00:00Z); two runs at once would write the same outputs and state. Nothing was sent. If that process is gone, delete ${path.join("state", "p.lock")}`,
    );
    ago(lockFile(), 140_000);
    const lock = await lockPipeline(plan, RUN);
    expect(JSON.parse(readFileSync(lockFile(), "utf8")).run_id).toBe(RUN);
    await lock.release();
  });

  it("a lock that is being written (unreadable, younger than 10 s) is held; older, it is stale", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), '{"pid": 1');
    ago(lockFile(), 5_000);
    await expect(lockPipeline(plan, RUN)).rejects.toThrow("in progress (a run that is starting)");
    ago(lockFile(), 11_000);
    const lock = await lockPipeline(plan, RUN);
    expect(lock.removed).toEqual([]);
    await lock.release();
  });

  it("a takeover marker: a fresh one means another run is taking over; one older than 30 s is removed", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder({ host: hostname(), pid: process.pid }));
    ago(lockFile(), 200_000);
    writeFileSync(marker(), "x");
    await expect(lockPipeline(plan, RUN)).rejects.toThrow("(a run that is starting)");
    expect(existsSync(marker())).toBe(true);
    ago(marker(), 31_000);
    const lock = await lockPipeline(plan, RUN);
    // A holder with nothing left behind: nothing reported removed.
    expect(lock.removed).toEqual([]);
    expect(existsSync(marker())).toBe(false);
    expect(JSON.parse(readFileSync(lockFile(), "utf8")).run_id).toBe(RUN);
    await lock.release();
  });

  it("the same host: a live process holds it (refused), this very pid does not", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    // pid 1 is alive on any host.
    writeFileSync(lockFile(), holder({ host: hostname(), pid: 1 }));
    await expect(lockPipeline(plan, RUN)).rejects.toThrow(`(pid 1, run ${OTHER}, started`);
    writeFileSync(lockFile(), holder({ host: hostname(), pid: process.pid }));
    const lock = await lockPipeline(plan, RUN);
    await lock.release();
  });

  it("a lock not of the shape we write is unreadable: held while younger than 10 s, stale at 30 s", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    const shapes = [
      "[]",
      "null",
      '"x"',
      "7",
      holder({ pid: 0 }),
      holder({ pid: -3 }),
      holder({ pid: 1.5 }),
      holder({ pid: "1" }),
      holder({ host: "" }),
      holder({ host: 5 }),
      holder({ host: "\u001bh" }),
      holder({ host: "h\u001b" }),
      holder({ host: "h".repeat(256) }),
      holder({ run_id: "nope" }),
      holder({ run_id: 3 }),
      holder({ started_at: 1 }),
      holder({ started_at: "x\u0085" }),
      `{"pid":1,"host":"h","run_id":"${OTHER}","started_at":"x"${" ".repeat(5000)}}`,
    ];
    for (const shape of shapes) {
      writeFileSync(lockFile(), shape);
      ago(lockFile(), 1_000);
      await expect(lockPipeline(plan, RUN), shape.slice(0, 80)).rejects.toThrow("(a run that is starting)");
      ago(lockFile(), 30_000);
      const lock = await lockPipeline(plan, RUN);
      expect(lock.removed, shape.slice(0, 80)).toEqual([]);
      await lock.release();
    }
    // The control: the shape we write, 30 s old, from another host, is held.
    writeFileSync(lockFile(), holder());
    ago(lockFile(), 30_000);
    await expect(lockPipeline(plan, RUN)).rejects.toThrow("on other-host");
  });

  it("a file-system error creating the takeover marker is that error, not another run in progress", async () => {
    // `<name>.lock` fits in 255 bytes, `<name>.lock.takeover` does not: open() fails with ENAMETOOLONG.
    const name = "p".repeat(250);
    (plan as { pipeline: string }).pipeline = name;
    mkdirSync(plan.dirs.state, { recursive: true });
    const lock = path.join(plan.dirs.state, `${name}.lock`);
    writeFileSync(lock, holder());
    ago(lock, 200_000);
    await expect(lockPipeline(plan, RUN)).rejects.toMatchObject({ code: "ENAMETOOLONG" });
  });

  it("a symbolic link in place of the lock is refused, never followed", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(path.join(root, "elsewhere"), holder());
    symlinkSync(path.join(root, "elsewhere"), lockFile());
    await expect(lockPipeline(plan, RUN)).rejects.toThrow(
      `${path.join("state", "p.lock")} is not a lock file (a symbolic link)`,
    );
  });
});

/**
 * The age limits, exactly at the limit: Date alone is faked (the file system is real), and the
 * lock's time is a whole second so its mtime is exact.
 */
describe("age limits at the millisecond", () => {
  const T = Date.UTC(2026, 0, 1, 12, 0, 0);
  const at = (file: string) => utimesSync(file, new Date(T), new Date(T));
  const now = (ms: number) => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(T + ms);
  };

  it("another host's lock untouched for exactly 2 minutes is held; a millisecond more, stale", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder());
    at(lockFile());
    now(120_000);
    await expect(lockPipeline(plan, RUN)).rejects.toThrow("on other-host");
    now(120_001);
    await (await lockPipeline(plan, RUN)).release();
  });

  it("an unreadable lock is held until exactly 10 s old; at 10 s it is stale", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), '{"pid": 1');
    at(lockFile());
    now(9_999);
    await expect(lockPipeline(plan, RUN)).rejects.toThrow("(a run that is starting)");
    now(10_000);
    await (await lockPipeline(plan, RUN)).release();
  });

  it("a takeover marker exactly 30 s old is still another run's; a millisecond more, it is removed", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder());
    utimesSync(lockFile(), new Date(T - 200_000), new Date(T - 200_000)); // stale at T
    writeFileSync(marker(), "x");
    at(marker());
    now(30_000);
    await expect(lockPipeline(plan, RUN)).rejects.toThrow("(a run that is starting)");
    now(30_001);
    await (await lockPipeline(plan, RUN)).release();
  });
});

describe("a stale lock's leftovers", () => {
  const stream = (name: string, file: string, format = "jsonl") => ({
    name,
    output: { path: path.join(root, "out", file), format, quarantine: null },
  });

  it("the killed run's partition scratch folder goes, with the files in it", async () => {
    const scratch = path.join(plan.dirs.state, ".partitions", "p", OTHER);
    mkdirSync(scratch, { recursive: true });
    writeFileSync(path.join(scratch, "children.jsonl"), "{}\n");
    writeFileSync(lockFile(), holder());
    ago(lockFile(), 200_000);
    const lock = await lockPipeline(plan, RUN);
    expect(existsSync(scratch)).toBe(false);
    expect(lock.removed).toEqual([path.join("state", ".partitions", "p", OTHER)]);
    await lock.release();
  });

  it("duckdb: the killed run's staging tables are dropped, no other; the message names them", async () => {
    const db = path.join(root, "out", "p.duckdb");
    (plan as { streams: unknown[] }).streams = [stream("items", "p.duckdb", "duckdb")];
    mkdirSync(path.join(root, "out"), { recursive: true });
    const sql = async (text: string) => {
      const inst = await DuckDBInstance.create(db);
      try {
        const conn = await inst.connect();
        const r = await conn.runAndReadAll(text);
        conn.closeSync();
        return r.getRows().map((row) => String(row[0]));
      } finally {
        inst.closeSync();
      }
    };
    await sql(
      `CREATE TABLE items (x INT); CREATE TABLE "items__staging_${OTHER}" (x INT); CREATE TABLE "items__invalid__staging_${OTHER}" (x INT); CREATE TABLE "items__staging_${RUN}" (x INT)`,
    );
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder());
    ago(lockFile(), 200_000);
    const lock = await lockPipeline(plan, RUN);
    await lock.release();
    expect([...lock.removed].sort()).toEqual([
      `${path.join("out", "p.duckdb")} (table items__invalid__staging_${OTHER})`,
      `${path.join("out", "p.duckdb")} (table items__staging_${OTHER})`,
    ]);
    expect(await sql("SELECT table_name FROM duckdb_tables() ORDER BY table_name")).toEqual([
      "items",
      `items__staging_${RUN}`,
    ]);
  });

  it("a quarantine file in another folder than its output (singer): its temporary file goes too", async () => {
    const quarantine = path.join(root, "out", "p", "items.invalid.jsonl");
    (plan as { streams: unknown[] }).streams = [
      {
        name: "items",
        output: { path: path.join(root, "data", "items.singer"), format: "singer", quarantine },
      },
    ];
    mkdirSync(path.dirname(quarantine), { recursive: true });
    const leftover = path.join(path.dirname(quarantine), `.items.invalid.jsonl.${OTHER}.tmp`);
    writeFileSync(leftover, "{}\n");
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder());
    ago(lockFile(), 200_000);
    const lock = await lockPipeline(plan, RUN);
    expect(existsSync(leftover)).toBe(false);
    expect(lock.removed).toEqual([path.join("out", "p", `.items.invalid.jsonl.${OTHER}.tmp`)]);
    await lock.release();
  });

  it("a jsonl output that exists is left alone (only sqlite outputs are opened for staging tables)", async () => {
    (plan as { streams: unknown[] }).streams = [stream("items", "items.jsonl")];
    mkdirSync(path.join(root, "out"), { recursive: true });
    writeFileSync(path.join(root, "out", "items.jsonl"), '{"id":1}\n');
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder());
    ago(lockFile(), 200_000);
    const lock = await lockPipeline(plan, RUN);
    expect(lock.removed).toEqual([]);
    expect(readFileSync(path.join(root, "out", "items.jsonl"), "utf8")).toBe('{"id":1}\n');
    await lock.release();
  });
});

/**
 * Another process acting between two steps of lockPipeline, made deterministic: `act` runs at
 * the n-th read of the clock (Date.now, the real time is returned). lockPipeline reads it between
 * its steps: in each look at the lock after its lstat and before its read (#1 the first look,
 * then #2 the takeover marker's age when there is a marker, then the second look). Returns how
 * many times the clock was read.
 */
function atClockRead(n: number, act: () => void): () => number {
  const now = Date.now;
  let reads = 0;
  vi.spyOn(Date, "now").mockImplementation(() => {
    if (++reads === n) act();
    return now.call(Date);
  });
  return () => reads;
}

describe("another process acting between the steps of a takeover", () => {
  const THIRD = "20260101T000000Z-cccccc";
  const staleLock = () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder());
    ago(lockFile(), 200_000);
  };
  const ours = () => JSON.parse(readFileSync(lockFile(), "utf8")).run_id;

  it("a takeover marker left without a lock (a run killed while taking over) does not stop the next run", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(marker(), "x");
    const lock = await lockPipeline(plan, RUN);
    expect(ours()).toBe(RUN);
    await lock.release();
  });

  it("the lock removed after our lstat, before our read (its run ended): this run takes it", async () => {
    staleLock();
    const reads = atClockRead(1, () => rmSync(lockFile()));
    const lock = await lockPipeline(plan, RUN);
    expect(reads()).toBe(1);
    expect(ours()).toBe(RUN);
    expect(lock.removed).toEqual([]);
    await lock.release();
  });

  it("the lock replaced by a folder after our lstat: refused as not a lock file (a folder)", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder());
    atClockRead(1, () => {
      rmSync(lockFile());
      mkdirSync(lockFile());
    });
    await expect(lockPipeline(plan, RUN)).rejects.toThrow(
      `${path.join("state", "p.lock")} is not a lock file (a folder); nothing was sent`,
    );
  });

  it("the lock replaced by a symbolic link after our lstat: not followed, refused as not a regular file", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder());
    writeFileSync(path.join(root, "elsewhere"), holder());
    atClockRead(1, () => {
      rmSync(lockFile());
      symlinkSync(path.join(root, "elsewhere"), lockFile());
    });
    await expect(lockPipeline(plan, RUN)).rejects.toThrow(
      `${path.join("state", "p.lock")} is not a lock file (not a regular file); nothing was sent`,
    );
  });

  it("an old takeover marker removed by another run after our look at it: this run takes over", async () => {
    staleLock();
    writeFileSync(marker(), "x");
    ago(marker(), 31_000);
    const reads = atClockRead(2, () => rmSync(marker()));
    const lock = await lockPipeline(plan, RUN);
    expect(reads()).toBe(3);
    expect(ours()).toBe(RUN);
    expect(existsSync(marker())).toBe(false);
    await lock.release();
  });

  it("our takeover marker removed by another host meanwhile (clocks apart): the takeover completes", async () => {
    staleLock();
    const reads = atClockRead(2, () => rmSync(marker()));
    const lock = await lockPipeline(plan, RUN);
    expect(reads()).toBe(2);
    expect(ours()).toBe(RUN);
    await lock.release();
  });

  it("the holder touches its lock between our two looks (its heartbeat came back): refused, naming it", async () => {
    staleLock();
    atClockRead(1, () => utimesSync(lockFile(), new Date(), new Date()));
    const err = await lockPipeline(plan, RUN).catch((e) => e);
    expect(err).toBeInstanceOf(PipelineLockedError);
    expect(err.message).toContain(`(pid ${process.pid + 100000} on other-host, run ${OTHER}, started`);
    expect(JSON.parse(readFileSync(lockFile(), "utf8")).run_id).toBe(OTHER);
    expect(existsSync(marker())).toBe(false);
  });

  it("another run's lock in its place at our second look, stale too: refused (a run that is starting), left alone", async () => {
    staleLock();
    atClockRead(2, () => writeFileSync(lockFile(), holder({ run_id: THIRD })));
    await expect(lockPipeline(plan, RUN)).rejects.toThrow("in progress (a run that is starting);");
    expect(JSON.parse(readFileSync(lockFile(), "utf8")).run_id).toBe(THIRD);
    expect(existsSync(marker())).toBe(false);
  });
});

describe("the same host: a process this user may not signal", () => {
  const kill = (code: string) =>
    vi.spyOn(process, "kill").mockImplementation(() => {
      throw Object.assign(new Error(`kill ${code}`), { code });
    });

  it("EPERM (another user's live process) holds the lock; ESRCH (no such process) does not", async () => {
    mkdirSync(plan.dirs.state, { recursive: true });
    writeFileSync(lockFile(), holder({ host: hostname() }));
    kill("EPERM");
    await expect(lockPipeline(plan, RUN)).rejects.toThrow(
      `in progress (pid ${process.pid + 100000}, run ${OTHER}, started 2026-01-01T00:00:00Z);`,
    );
    vi.restoreAllMocks();
    kill("ESRCH");
    const lock = await lockPipeline(plan, RUN);
    expect(JSON.parse(readFileSync(lockFile(), "utf8")).run_id).toBe(RUN);
    await lock.release();
  });
});

describe("isInside: leftovers are removed only inside the folder they were looked for in", () => {
  it.each([
    ["/a/b", "/a/b/c", true],
    ["/a/b", "/a/b/c/d", true],
    ["/a/b", "/a/b/..c", true],
    ["/a/b", "/a/b", false],
    ["/a/b", "/a", false],
    ["/a/b", "/a/bc", false],
    ["/a/b", "/a/b/../c", false],
    ["/a/b", "/x", false],
  ])("%s contains %s: %s", (dir, file, inside) => {
    expect(isInside(dir, file)).toBe(inside);
  });
});
