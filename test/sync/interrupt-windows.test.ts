// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${window.…}` templates
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/**
 * Ctrl-C between windows of a checkpointed stream (in process: the CLI's signal, as bin.ts
 * aborts it): the windows committed before the signal stay, with their position; nothing after
 * them is written; the headline says the stream committed part of its windows; the next run
 * fetches the rest, each record once.
 */
let server: SyncServer;
let project: TempProject;
/** Holds the third window's request until the test lets it go. */
let hold: Promise<void> | null = null;
let release: () => void = () => {};

beforeAll(async () => {
  server = await startSyncServer(async (req) => {
    if (req.query.from === "2024-01-03" && hold) await hold;
    return { body: [{ id: req.query.from }] };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

const state = () => {
  const file = project.file(".pipelines/state/test.json");
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { streams: {} };
};
const ids = () => (readJsonl(project.file("out/test/ev.jsonl")) as { id: string }[]).map((r) => r.id);
const tick = () => new Promise((r) => setTimeout(r, 10));

describe("Ctrl-C between the windows of a checkpointed stream", () => {
  it("keeps the committed windows and says so; the next run fetches the rest once", async () => {
    project.pipeline(
      "test",
      `
source: { base_url: ${server.url}, concurrency: 1 }
streams:
  ev:
    path: /e
    params: { from: "\${window.start}" }
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-05, format: date }
output: { mode: append }
`,
    );
    hold = new Promise((r) => {
      release = r;
    });
    const signal = new AbortController();
    let stdout = "";
    let stderr = "";
    const running = run(["run", "test", "--json"], {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      cwd: project.dir,
      env: {},
      signal: signal.signal,
    } as Parameters<typeof run>[1]);
    // Windows 1 and 2 committed (their state written), window 3 on the wire: the signal.
    while (!server.requests.some((r) => r.query.from === "2024-01-03")) await tick();
    while (state().streams.ev?.cursor !== "2024-01-03T00:00:00Z") await tick();
    signal.abort(new Error("interrupted by SIGINT"));
    release();
    await running;
    hold = null;
    const ev = (JSON.parse(stdout) as { streams: { status: string }[] }).streams[0];
    expect(ev.status).toBe("partial");
    expect(stderr).toContain(
      "INTERRUPTED (0 of 1 stream committed, 1 partly (what it committed before the signal stays)",
    );
    expect(ids()).toEqual(["2024-01-01", "2024-01-02"]);
    expect(state().streams.ev.cursor).toBe("2024-01-03T00:00:00Z");

    server.reset();
    const again = await runPipeline(project.dir, "test");
    expect(again.code, again.stderr).toBe(0);
    expect(server.requests.map((r) => r.query.from)).toEqual(["2024-01-03", "2024-01-04"]);
    expect(ids()).toEqual(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]);
  });
});
