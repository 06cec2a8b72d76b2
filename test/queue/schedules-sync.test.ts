/**
 * The schedules in Redis follow the pipeline files: a schedule whose file was deleted, or whose
 * `schedule` key was removed or changed, is removed (or replaced) by the next `worker
 * --schedules` start, or by a running worker's refresh; `pipelines status` stops showing it. A
 * file that does not load keeps the schedule it had (a half-saved edit never drops a schedule).
 */
import { rmSync, writeFileSync } from "node:fs";
import { afterEach, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { runCli } from "../cli/helpers.js";
import { type TempProject, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, type WorkerProcess, writeQueueConfig } from "./helpers.js";

beforeAll(async () => {
  await ensureBuilt();
}, 180_000);

const text = (cron: string | null) =>
  [
    ...(cron ? [`schedule: "${cron}"`] : []),
    "source:",
    "  base_url: http://127.0.0.1:9",
    "streams:",
    "  items:",
    "    path: /items",
    "output:",
    "  format: jsonl",
    "",
  ].join("\n");

let p: TempProject;
const workers: WorkerProcess[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  p?.cleanup();
});

/** `pipelines status --json`'s schedules: pipeline → cron. */
async function scheduled(): Promise<Record<string, string>> {
  const r = await runCli(["status", "--json"], p.dir, { REDIS_URL: redisUrl() });
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout) as { scheduled: { pipeline: string; cron: string }[] };
  return Object.fromEntries(s.scheduled.map((x) => [x.pipeline, x.cron]));
}

const YEARLY = "0 0 1 1 *";
const OTHER = "0 0 2 1 *";

it("the next worker --schedules start removes the schedules of deleted files and of removed or changed `schedule` keys", async () => {
  p = tempProject("pipelines-queue-sched-sync-");
  writeQueueConfig(p.dir, "t-sched-sync-start");
  for (const name of ["deleted", "unscheduled", "changed", "kept"]) p.pipeline(name, text(YEARLY));
  const first = await startWorker(p.dir, ["--schedules"]);
  await first.stop();
  expect(await scheduled()).toEqual({ deleted: YEARLY, unscheduled: YEARLY, changed: YEARLY, kept: YEARLY });

  rmSync(p.file("pipelines/deleted.yaml"));
  p.pipeline("unscheduled", text(null));
  p.pipeline("changed", text(OTHER));
  const second = await startWorker(p.dir, ["--schedules"]);
  workers.push(second);
  expect(await scheduled()).toEqual({ changed: OTHER, kept: YEARLY });
  expect(second.stderr()).toContain("schedules: deleted removed (its file is gone or has no `schedule`)");
  expect(second.stderr()).toContain("schedules: unscheduled removed");
  expect(second.stderr()).toContain("schedules: changed at `0 0 2 1 *` (UTC)");
}, 60_000);

it("a running worker's refresh follows the files; a file that does not load keeps its schedule", async () => {
  p = tempProject("pipelines-queue-sched-sync-");
  writeQueueConfig(p.dir, "t-sched-sync-refresh");
  for (const name of ["a", "b", "broken"]) p.pipeline(name, text(YEARLY));
  const w = await startWorker(p.dir, ["--schedules"], { PIPELINES_SCHEDULES_REFRESH_MS: "200" });
  workers.push(w);
  expect(await scheduled()).toEqual({ a: YEARLY, b: YEARLY, broken: YEARLY });

  rmSync(p.file("pipelines/a.yaml"));
  p.pipeline("b", text(OTHER));
  writeFileSync(p.file("pipelines/broken.yaml"), `${text(YEARLY)}streams: [\n`);
  const deadline = Date.now() + 30_000;
  while (
    !w.stderr().includes("schedules: a removed") ||
    !w.stderr().includes("schedules: b at `0 0 2 1 *`")
  ) {
    if (Date.now() > deadline) throw new Error(`no refresh seen:\n${w.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(await scheduled()).toEqual({ b: OTHER, broken: YEARLY });
  // The broken file is said once, not at every refresh.
  expect(w.stderr().split("`broken` does not load").length - 1).toBe(1);
}, 60_000);
