/**
 * A request sequence stopped by its own signal (a cancelled queue job) while its request waits
 * for one of the session's connection slots (`source.concurrency`, taken by another job's request
 * the API is slow to answer) stops at once: it does not wait for that request to end.
 */
import type { ServerResponse } from "node:http";
import { beforeEach, expect, it } from "vitest";
import { sourceBlock, streamSession, useLocalServer, useTempProject } from "./helpers.js";

const paths: string[] = [];
/** Answers held until the test lets them go. */
let held: ServerResponse[] = [];
let onRequest: () => void = () => {};

const api = useLocalServer((req, res) => {
  paths.push(req.url ?? "");
  held.push(res);
  onRequest();
});

const p = useTempProject("pipelines-slot-signal-");
beforeEach(() => {
  paths.length = 0;
  held = [];
});

function release() {
  for (const res of held)
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: [{ id: 1 }] }));
  held = [];
}

it("a sequence waiting for a connection slot stops at its signal, not when the slot frees", async () => {
  // One connection slot; a long timeout: the slow request holds it for the whole test.
  const text = `${sourceBlock(api.url, "concurrency: 1").replace("timeout: 5s", "timeout: 60s")}
streams:
  a: { path: /a, records: $.data }
  b: { path: /b, records: $.data }
`;
  // A worker's session: no signal of its own; each job has its own.
  const session = streamSession(p.dir, text);
  const start = (i: number, signal: AbortSignal) => session.start(i, { signal });
  const asked = new Promise<void>((resolve) => {
    onRequest = resolve;
  });
  const a = start(0, new AbortController().signal);
  await asked; // a's request holds the only slot
  const job = new AbortController();
  const b = start(1, job.signal);
  try {
    await new Promise((r) => setTimeout(r, 100)); // b's request waits for the slot
    job.abort(new Error("the run was cancelled"));
    const ended = await Promise.race([
      b.running.then(() => "stopped"),
      new Promise((r) => setTimeout(() => r("still waiting for the slot"), 10_000)),
    ]);
    expect(ended).toBe("stopped");
  } finally {
    release();
    await a.running;
    await b.running;
    await session.close();
  }
  expect(b.result.error?.kind).toBe("aborted");
  expect(a.result.status).toBe("ok");
  expect(paths).toEqual(["/a"]);
});
