// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${…}` templates
/**
 * A local run: a 429 with Retry-After holds every request of the pipeline, not only the one that
 * got it. Three partitions are in flight when one is told to wait 2 s; the other two get their
 * answers 300 ms later and move on to the next partitions, which must wait too.
 */
import { expect, it } from "vitest";
import { sleep } from "../../src/shared/sleep.js";
import { arrivedDuringWait, startPauseServer } from "../helpers/pause-server.js";
import { FAN_OUT_STREAMS, runPipeline, sourceBlock, tempProject } from "./helpers.js";

it("a Retry-After seen by one request pauses the others (concurrency 3)", async () => {
  const api = await startPauseServer({
    parents: 9,
    busy: 3,
    waitSeconds: 2,
    kind: "429",
    release: () => sleep(300),
  });
  const p = tempProject("pipelines-pause-local-");
  try {
    p.pipeline("p", [sourceBlock(api.url, "concurrency: 3"), FAN_OUT_STREAMS].join("\n"));
    const r = await runPipeline(p.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("repos").records.written).toBe(9);
    expect(arrivedDuringWait(api, 2)).toEqual([]);
  } finally {
    await api.close();
    p.cleanup();
  }
}, 30_000);
