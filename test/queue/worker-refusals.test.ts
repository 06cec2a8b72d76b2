/**
 * A worker refuses a job it must not run, before any request: one of another `pipelines`
 * version, and one whose pipeline file differs from the submitter's (the job names the
 * worker, the versions or the hashes).
 */
import { expect, it } from "vitest";
import { loadProject } from "../../src/config/project.js";
import { UnitRunner } from "../../src/queue/worker.js";
import { VERSION } from "../../src/shared/version.js";
import { sourceBlock, tempProject } from "../run/helpers.js";
import { streamJobs, useApiAndRedis } from "./helpers.js";

const PREFIX = "t-refusals";
let requests = 0;

const api = useApiAndRedis((_req, res) => {
  requests++;
  res.setHeader("content-type", "application/json");
  res.end('{"data":[{"id":1}]}');
});

it("a job of another version or another file text is refused with a clear message, nothing sent", async () => {
  const p = tempProject("pipelines-queue-refusals-");
  p.pipeline(
    "p",
    [sourceBlock(api.base), "streams:", "  items: { path: /items, records: $.data }", ""].join("\n"),
  );
  const project = await loadProject(p.dir);
  const runner = new UnitRunner(project, {}, [], { redis: api.redis, prefix: PREFIX });
  try {
    const job = await streamJobs(project, "items", PREFIX);
    const older = await runner.process({ ...job(0), version: "0.0.1-older" });
    expect(older.error?.kind).toBe("queue");
    expect(older.error?.message).toContain(`runs pipelines ${VERSION}, the submitter 0.0.1-older`);
    expect(older.error?.message).toContain(runner.id);
    const edited = await runner.process({ ...job(1), fileHash: "0".repeat(64) });
    expect(edited.error?.kind).toBe("queue");
    expect(edited.error?.message).toContain("differs from the submitter's (sha256");
    expect(edited.error?.message).toContain("000000000000… there");
    expect(requests).toBe(0);
    // The same job as submitted runs.
    const ok = await runner.process(job(2));
    expect(ok.error).toBe(null);
    expect(ok.rows).toBe(1);
  } finally {
    await runner.close();
    p.cleanup();
  }
});
