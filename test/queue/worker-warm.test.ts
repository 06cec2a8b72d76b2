/**
 * A worker compiles the project's pipelines when it starts (UnitRunner.warm), so that the first
 * jobs of a run's burst do not each wait behind that work; a pipeline that does not load is left
 * to its jobs, which still report why.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadProject } from "../../src/config/project.js";
import { UnitRunner } from "../../src/queue/worker.js";
import { sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, streamJobs } from "./helpers.js";

const PREFIX = "t-warm";
let redis: Redis;
beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(() => redis.disconnect());

it("compiles every pipeline that loads, and a job of one that does not still says why", async () => {
  const p = tempProject("pipelines-queue-warm-");
  const good = [sourceBlock("http://127.0.0.1:9"), "streams:", "  items:", "    path: /items", ""].join("\n");
  p.pipeline("a", good);
  p.pipeline("b", good.replace("/items", "/other"));
  p.pipeline("broken", `${good}  oops: [\n`);
  p.pipeline("needs-env", good.replace("/items", "/${env.MISSING_VAR}"));
  const project = await loadProject(p.dir);
  const runner = new UnitRunner(project, {}, [], { redis, prefix: PREFIX });
  try {
    expect(await runner.warm()).toBe(2);
    expect(runner.compiledCount).toBe(2);
    // A job of a warmed pipeline uses what warm() compiled (its API is down: the job fails).
    const a = await streamJobs(project, "items", PREFIX, "a");
    expect((await runner.process(a(0))).error?.kind).toBe("transport");
    expect(runner.compiledCount).toBe(2);
    for (const name of ["broken", "needs-env"]) {
      const job = await streamJobs(project, "items", PREFIX, name);
      const outcome = await runner.process(job(0));
      expect(outcome.error?.kind).toBe("queue");
      expect(outcome.error?.message).toMatch(
        new RegExp(
          `cannot load pipeline \`${name}\` \\(1 config error\\): run \`pipelines validate ${name}\``,
        ),
      );
    }
  } finally {
    await runner.close();
    p.cleanup();
  }
});
