/**
 * The worker's side of a job it no longer holds (it stalled past its BullMQ lock and another
 * worker took the job over): its outcome will never be recorded, so it deletes its staged rows at
 * once; a worker that still holds the job names its own key and row count in the outcome.
 */
import { expect, it } from "vitest";
import { loadProject } from "../../src/config/project.js";
import { readStaged, stagedKey } from "../../src/queue/staging.js";
import { UnitRunner } from "../../src/queue/worker.js";
import type { Row } from "../../src/records/shape.js";
import { sourceBlock, tempProject } from "../run/helpers.js";
import { streamJobs, useApiAndRedis } from "./helpers.js";

const PREFIX = "t-lost-job";
const api = useApiAndRedis((_req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ data: Array.from({ length: 5 }, (_, i) => ({ id: i })) }));
});

it("a worker that lost its job deletes its staged rows; one that holds it names its key and count", async () => {
  const p = tempProject("pipelines-queue-lost-");
  p.pipeline(
    "p",
    [sourceBlock(api.base), "streams:", "  items:", "    path: /items", "    records: $.data", ""].join("\n"),
  );
  const project = await loadProject(p.dir);
  const runner = new UnitRunner(project, {}, [], { redis: api.redis, prefix: PREFIX });
  try {
    const job = await streamJobs(project, "items", PREFIX);
    const lost = await runner.process(job(0), undefined, async () => false);
    expect(lost.error?.kind).toBe("queue");
    expect(lost.staged).toBe(null);
    expect(await api.redis.keys(`${stagedKey(PREFIX, "r1", 0)}*`)).toEqual([]);

    const held = await runner.process(job(1), undefined, async () => true);
    expect(held.error).toBe(null);
    expect(held.rows).toBe(5);
    expect(held.staged?.startsWith(`${stagedKey(PREFIX, "r1", 1)}:`)).toBe(true);
    const ids: unknown[] = [];
    await readStaged(api.redis, held.staged ?? "", (r: Row) => void ids.push(r.id), held.rows);
    expect(ids).toEqual([0, 1, 2, 3, 4]);
  } finally {
    await runner.close();
    p.cleanup();
  }
});
