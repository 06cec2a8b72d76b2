// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and project configs use `${…}` templates
/**
 * A wait the API asks for holds every worker of the pipeline, not just the one that saw it: a
 * 429 with Retry-After, and X-RateLimit-Remaining at 0 with its reset header. Three real workers
 * each have a request in flight when one of them is told to wait; the other two get their
 * answers right after (as soon as the pause is visible in Redis, or after 1 s at most) and take
 * their next jobs. No request of any worker may reach the API inside the wait.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../../src/shared/sleep.js";
import { ensureBuilt } from "../built.js";
import { arrivedDuringWait, startPauseServer } from "../helpers/pause-server.js";
import { FAN_OUT_STREAMS, runPipeline, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorkers, type WorkerProcess, writeQueueConfig } from "./helpers.js";

const PARENTS = 12;
const WAIT_S = 2;
let redis: Redis;

beforeAll(async () => {
  await ensureBuilt();
  redis = new Redis(redisUrl());
}, 180_000);
afterAll(() => redis.disconnect());

/** Resolves once the pipeline's pause is in Redis, or after 1 s (the pause was not shared). */
async function pauseVisible(prefix: string): Promise<void> {
  for (let t = 0; t < 1000; t += 10) {
    if (await redis.exists(`${prefix}:budget:p:pause`)) return;
    await sleep(10);
  }
}

describe.each(["429", "remaining"] as const)("a wait asked by the API (%s)", (kind) => {
  it("pauses all three workers: no request arrives inside it", async () => {
    const prefix = `t-pause-${kind}`;
    const api = await startPauseServer({
      parents: PARENTS,
      busy: 3,
      waitSeconds: WAIT_S,
      kind,
      release: () => pauseVisible(prefix),
    });
    const p = tempProject("pipelines-queue-pause-");
    const workers: WorkerProcess[] = [];
    try {
      p.pipeline(
        "p",
        [
          sourceBlock(
            api.url,
            "rate_limit: { remaining_header: x-ratelimit-remaining, reset_header: x-ratelimit-reset }",
          ),
          FAN_OUT_STREAMS,
        ].join("\n"),
      );
      writeQueueConfig(p.dir, prefix);
      workers.push(...(await startWorkers(3, p.dir, ["--concurrency", "1"])));
      const r = await runPipeline(p.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stream("repos").records.written).toBe(PARENTS);
      expect(arrivedDuringWait(api, WAIT_S)).toEqual([]);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await api.close();
      p.cleanup();
    }
  }, 60_000);
});
