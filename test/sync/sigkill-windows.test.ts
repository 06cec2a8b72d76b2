// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and messages use `${…}` templates
/**
 * Checkpoints the hard way: the built CLI backfills 20 daily windows (append, jsonl) and is
 * SIGKILLed at several points chosen at random (seeded); each rerun resumes. In the end every
 * record is in the output exactly once, in order, byte for byte as a clean run writes it, and no
 * window that a killed run had committed (saved in the state) was requested again.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { seeded } from "../helpers/seeded.js";
import { type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const BIN = path.join(REPO, "dist", "cli", "bin.js");
const HOUR = 3_600_000;
const PAGE = 6;

let server: SyncServer;

beforeAll(async () => {
  await ensureBuilt();
  server = await startSyncServer(
    (req) => {
      if (req.rawPath !== "/events") return { status: 404, body: {} };
      const from = Date.parse(req.query.from);
      const to = Date.parse(req.query.to);
      const all: { id: string; at: string }[] = [];
      for (let t = from; t < to; t += HOUR) all.push({ id: `e${t / HOUR}`, at: new Date(t).toISOString() });
      const at = Number(req.query.cursor ?? 0);
      return {
        body: { data: all.slice(at, at + PAGE), next: at + PAGE < all.length ? String(at + PAGE) : null },
      };
    },
    { latencyMs: 5 },
  );
}, 180_000);
afterAll(() => server?.close());

function pipeline(project: TempProject): void {
  project.pipeline(
    "p",
    [
      "source:",
      `  base_url: ${server.url}`,
      "  retry: { max_attempts: 2, initial_delay: 10ms }",
      "  concurrency: 3",
      "streams:",
      "  events:",
      "    path: /events",
      '    params: { from: "${window.start}", to: "${window.end}" }',
      "    records: $.data",
      "    paginate: { type: cursor, cursor: $.next }",
      "    windows: { step: 1d, start: 2024-01-01, end: 2024-01-21 }",
      "output:",
      "  mode: append",
      "",
    ].join("\n"),
  );
}

function spawnRun(project: TempProject): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, "run", "p"], {
    cwd: project.dir,
    env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" },
    stdio: ["ignore", "ignore", "ignore"],
  });
  return { child, exited: new Promise((resolve) => child.on("exit", (code) => resolve(code))) };
}

describe("SIGKILL mid-backfill, windows with checkpoints", () => {
  it("every record exactly once, and committed windows are not fetched again", async () => {
    const clean = tempProject("pipelines-kill-clean-");
    const killed = tempProject("pipelines-kill-");
    try {
      pipeline(clean);
      pipeline(killed);
      server.reset();
      expect(await spawnRun(clean).exited).toBe(0);
      const cleanRequests = server.requests.length; // 20 windows × 4 pages
      expect(cleanRequests).toBe(80);
      const expected = readFileSync(clean.file("out/p/events.jsonl"));

      const random = seeded(14);
      const stateFile = killed.file(".pipelines/state/p.json");
      let kills = 0;
      for (let round = 0; round < 6; round++) {
        const saved = existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, "utf8")) : null;
        const resumeAt: string | undefined = saved?.streams?.events?.cursor;
        server.reset();
        const killAfter = 3 + Math.floor(random() * 20);
        const { child, exited } = spawnRun(killed);
        server.onRequest = () => {
          if (server.requests.length >= killAfter) {
            server.onRequest = null;
            child.kill("SIGKILL");
          }
        };
        const code = await exited;
        server.onRequest = null;
        if (code === null) kills++;
        // No window before the saved position was requested again.
        if (resumeAt)
          for (const r of server.requests)
            expect(Date.parse(r.query.from)).toBeGreaterThanOrEqual(Date.parse(resumeAt));
        if (code === 0) break;
      }
      expect(kills).toBeGreaterThanOrEqual(3);
      server.reset();
      expect(await spawnRun(killed).exited).toBe(0);
      const out = readFileSync(killed.file("out/p/events.jsonl"));
      const got = out.toString().trim().split("\n");
      expect({ records: got.length, duplicates: got.length - new Set(got).size }).toEqual({
        records: 480,
        duplicates: 0,
      });
      expect(out.equals(expected)).toBe(true);
      const lines = out.toString().trim().split("\n");
      expect(new Set(lines).size).toBe(20 * 24);
    } finally {
      clean.cleanup();
      killed.cleanup();
    }
  }, 120_000);
});
