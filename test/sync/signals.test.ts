/**
 * Ctrl-C and SIGTERM through the real CLI (dist/cli/bin.js as a child process). The rule (README,
 * "Exit codes"; the message the CLI prints): nothing is committed after the signal. A stream that
 * had already committed before it keeps its output and its cursor; every other stream commits
 * nothing, leaves no temporary file, and its previous output and cursor stay as they were. The
 * run exits 130 and its summary says which stream committed (ok) and which was interrupted
 * (failed, kind `aborted`).
 *
 * The server holds one request open (the slow stream's second page, or the second partition of
 * a child stream) so the signal always arrives while that stream is fetching.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BIN, ensureBuilt } from "../built.js";
import {
  closeServer,
  listenLocal,
  listFiles,
  readJsonl,
  sourceBlock,
  type TempProject,
  tempProject,
} from "../run/helpers.js";

const held: ServerResponse[] = [];
/** When set, the fast stream's request is held too, until the test answers it. */
let holdFast: ((answer: () => void) => void) | null = null;
const server = createServer((req, res) => {
  const u = new URL(req.url ?? "/", "http://x");
  const send = (body: unknown) =>
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  const at = "2024-02-01T00:00:00Z";
  if (u.pathname === "/fast") {
    const answer = () => send({ data: [{ id: 1, updated_at: at }], next: null });
    return holdFast ? holdFast(answer) : answer();
  }
  if (u.pathname === "/slow") {
    if (u.searchParams.get("cursor") === "2") return void held.push(res); // never answered
    return send({ data: [{ id: 1, updated_at: at }], next: "2" });
  }
  if (u.pathname === "/parents") return send({ data: [{ id: 1 }, { id: 2 }, { id: 3 }], next: null });
  if (u.pathname === "/parents/1/children") return send({ data: [{ n: 1 }], next: null });
  if (u.pathname === "/parents/2/children") return void held.push(res);
  res.writeHead(404).end();
});
let url: string;
beforeAll(async () => {
  url = await listenLocal(server);
  await ensureBuilt();
}, 300_000);
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-signals-");
});
afterEach(() => {
  holdFast = null;
  for (const res of held.splice(0)) res.destroy();
  p.cleanup();
});

const PAGINATE = "paginate: { type: cursor, cursor: $.next, param: cursor }";
const INCREMENTAL =
  'incremental: { cursor_field: updated_at, param: since, initial: "2024-01-01T00:00:00Z" }';

function twoStreams(): void {
  p.pipeline(
    "p",
    `${sourceBlock(url, "concurrency: 2")}
streams:
  fast: { path: /fast, records: $.data, primary_key: id, ${PAGINATE}, ${INCREMENTAL} }
  slow: { path: /slow, records: $.data, primary_key: id, ${PAGINATE}, ${INCREMENTAL} }
`,
  );
}

function parentAndChild(): void {
  p.pipeline(
    "p",
    `${sourceBlock(url, "concurrency: 1")}
streams:
  parents: { path: /parents, records: $.data, primary_key: id }
  children:
    parent: parents
    path: /parents/\${parent.id}/children
    records: $.data
`,
  );
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function spawnRun(onStderr?: (text: string) => void): { child: ChildProcess; exited: Promise<Exit> } {
  const child = spawn(process.execPath, [BIN, "run", "p", "--json"], {
    cwd: p.dir,
    env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
    onStderr?.(stderr);
  });
  const exited = new Promise<Exit>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, exited };
}

/** Waits until `ready()` holds (polling; never a timing assertion). */
async function until(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Status = { name: string; status: string; error?: { kind: string } | null };
const streams = (r: Exit): Status[] => (JSON.parse(r.stdout) as { streams: Status[] }).streams;
const statusOf = (r: Exit, name: string) => streams(r).find((s) => s.name === name);

describe.each(["SIGINT", "SIGTERM"] as const)("%s during a run", (sig) => {
  it("a fast and a slow stream: the fast one, committed before the signal, stays; the slow one commits nothing", async () => {
    twoStreams();
    const { child, exited } = spawnRun();
    // The slow stream waits for its second page; the fast one has committed.
    await until(() => held.length === 1 && existsSync(p.file("out/p/fast.jsonl")), "the fast commit");
    child.kill(sig);
    const r = await exited;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain(
      `${sig}: stopping; nothing more is committed: streams that already committed keep their output, the others commit nothing`,
    );
    // The summary says which stream committed and which was interrupted.
    expect(statusOf(r, "fast")?.status).toBe("ok");
    expect(statusOf(r, "slow")?.status).toBe("failed");
    expect(statusOf(r, "slow")?.error?.kind).toBe("aborted");
    // Outputs: the fast stream's, whole; nothing of the slow one, not even a temporary file.
    expect(readJsonl(p.file("out/p/fast.jsonl"))).toEqual([{ id: 1, updated_at: "2024-02-01T00:00:00Z" }]);
    expect(listFiles(p.file("out/p"))).toEqual(["fast.jsonl"]);
    // State: the fast stream's cursor (committed with its output), none for the slow one; no lock.
    const state = JSON.parse(readFileSync(p.file(".pipelines/state/p.json"), "utf8"));
    expect(Object.keys(state.streams)).toEqual(["fast"]);
    expect(state.streams.fast.cursor).toBe("2024-02-01T00:00:00Z");
    expect(listFiles(p.file(".pipelines/state")).filter((f) => !f.startsWith(".history/"))).toEqual([
      "p.json",
    ]);
  });

  it("a child stream mid-partitions: the parent stays committed; the child commits nothing", async () => {
    parentAndChild();
    const { child, exited } = spawnRun();
    await until(() => held.length === 1, "the second partition");
    child.kill(sig);
    const r = await exited;
    expect(r.code, r.stderr).toBe(130);
    expect(statusOf(r, "parents")?.status).toBe("ok");
    expect(statusOf(r, "children")?.status).toBe("failed");
    expect(statusOf(r, "children")?.error?.kind).toBe("aborted");
    expect(readJsonl(p.file("out/p/parents.jsonl"))).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    // Not the first partition's records: no child output, no temporary file, no partition scratch.
    expect(listFiles(p.file("out/p"))).toEqual(["parents.jsonl"]);
    // (The run history of .history/ is kept: it is not a leftover.)
    expect(listFiles(p.file(".pipelines/state")).filter((f) => !f.startsWith(".history/"))).toEqual([]);
  });
});

/**
 * `pipelines run p | head -1`: the reader of the live progress (stderr here; stdout is the same
 * handler in src/cli/bin.ts) goes away after the first line. The run notices at its next write,
 * stops as on Ctrl-C — nothing more is committed — and exits 141. Deterministic: both streams
 * are held by the server while the reader closes; then the fast stream is answered, commits,
 * and its "done" line meets the closed pipe while the slow one is still held.
 */
describe("the reader of the progress goes away during a run", () => {
  it("exits 141; the stream committed before stays, the held one commits nothing", async () => {
    twoStreams();
    let answerFast: (() => void) | null = null;
    holdFast = (answer) => {
      answerFast = answer;
    };
    let firstLine = false;
    const { child, exited } = spawnRun((text) => {
      firstLine ||= text.includes("\n");
    });
    await until(() => firstLine && answerFast !== null && held.length === 1, "both streams held");
    child.stderr?.destroy(); // the reader closes after its first line
    answerFast!();
    const r = await exited;
    expect(r.code, r.stderr).toBe(141);
    expect(r.stderr).not.toContain("EPIPE");
    // The summary (stdout is still read) says which stream committed and which was stopped.
    expect(statusOf(r, "fast")?.status).toBe("ok");
    expect(statusOf(r, "slow")?.status).toBe("failed");
    expect(statusOf(r, "slow")?.error?.kind).toBe("aborted");
    expect(readJsonl(p.file("out/p/fast.jsonl"))).toEqual([{ id: 1, updated_at: "2024-02-01T00:00:00Z" }]);
    expect(listFiles(p.file("out/p"))).toEqual(["fast.jsonl"]);
    const state = JSON.parse(readFileSync(p.file(".pipelines/state/p.json"), "utf8"));
    expect(Object.keys(state.streams)).toEqual(["fast"]);
  });
});
