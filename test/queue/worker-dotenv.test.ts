// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${…}` templates
/**
 * A worker compiles a pipeline from its own folder and environment, `.env` included, as a local
 * run does at each run: a token rotated in the worker's `.env` is used from the next job on (a
 * long-running worker kept the old one until it was restarted).
 */
import { writeFileSync } from "node:fs";
import { expect, it } from "vitest";
import { loadProject } from "../../src/config/project.js";
import { UnitRunner } from "../../src/queue/worker.js";
import { sourceBlock, tempProject } from "../run/helpers.js";
import { streamJobs, useApiAndRedis } from "./helpers.js";

const PREFIX = "t-worker-dotenv";
const seen: string[] = [];

const api = useApiAndRedis((req, res) => {
  seen.push(String(req.headers.authorization));
  res.setHeader("content-type", "application/json");
  res.end('{"data":[{"id":1}]}');
});

it("a token rotated in the worker's .env is used from the next job on", async () => {
  const p = tempProject("pipelines-queue-dotenv-");
  p.pipeline(
    "p",
    [
      sourceBlock(api.base, 'auth: { type: bearer, token: "${env.API_TOKEN}" }'),
      "streams:",
      "  items: { path: /items, records: $.data }",
      "",
    ].join("\n"),
  );
  writeFileSync(p.file(".env"), "API_TOKEN=first-token\n");
  const project = await loadProject(p.dir);
  const runner = new UnitRunner(project, {}, [], { redis: api.redis, prefix: PREFIX });
  try {
    const job = await streamJobs(project, "items", PREFIX);
    expect((await runner.process(job(0))).error).toBe(null);
    // A different length: the change shows in the file's size, whatever the clock's resolution.
    writeFileSync(p.file(".env"), "API_TOKEN=second-token-rotated\n");
    expect((await runner.process(job(1))).error).toBe(null);
    expect(seen).toEqual(["Bearer first-token", "Bearer second-token-rotated"]);
  } finally {
    await runner.close();
    p.cleanup();
  }
});
