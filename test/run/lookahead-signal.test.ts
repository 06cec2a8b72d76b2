/**
 * A request sequence stopped by its own signal (a cancelled queue job: the worker's HTTP session
 * goes on for its other jobs) sends nothing more — not even the pages an offset stream guesses
 * ahead when one of its earlier guesses comes back after the signal.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import { compilePlan } from "../../src/compile/compile-plan.js";
import { loadPipelineText } from "../../src/config/load-pipeline.js";
import { makeProject } from "../../src/config/project.js";
import { openSession } from "../../src/run/run-pipeline.js";
import { runStream } from "../../src/run/run-stream.js";
import { newStreamResult } from "../../src/run/stream-result.js";
import { closeServer, listenLocal, sourceBlock, type TempProject, tempProject } from "./helpers.js";

let server: Server;
let url: string;
/** Offsets asked for, in order, and the answers held back until the test lets them go. */
let offsets: number[] = [];
let held: { offset: number; res: ServerResponse }[] = [];
let onRequest: () => void = () => {};

function answer(offset: number, res: ServerResponse) {
  const items = offset < 2000 ? Array.from({ length: 100 }, (_, i) => ({ id: offset + i })) : [];
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ items }));
}

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    const offset = Number(new URL(req.url ?? "/", "http://x").searchParams.get("offset") ?? 0);
    offsets.push(offset);
    held.push({ offset, res });
    onRequest();
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-lookahead-signal-");
  offsets = [];
  held = [];
});
afterEach(() => p.cleanup());

function release(pick: (offset: number) => boolean) {
  const go = held.filter((h) => pick(h.offset));
  held = held.filter((h) => !pick(h.offset));
  for (const h of go) answer(h.offset, h.res);
}

it("no page is guessed once the sequence's signal is aborted", async () => {
  const text = `${sourceBlock(url, "concurrency: 4")}
streams:
  s: { path: /items, records: $.items, paginate: { type: offset, limit: 100 } }
`;
  const loaded = loadPipelineText(makeProject(p.dir, null, {}), "p", "pipelines/p.yaml", text, {});
  const plan = compilePlan(loaded);
  const stream = plan.streams[0]!;
  // The worker's session: no signal of its own (its jobs have theirs).
  const { client, state, executor } = openSession(plan, loaded.redactor, {});
  const job = new AbortController();
  const fourAsked = new Promise<void>((resolve) => {
    onRequest = () => offsets.length >= 4 && resolve();
  });
  const result = newStreamResult("s");
  const running = runStream(
    stream,
    executor,
    {
      runId: "20260101T000000Z-aaaaaa",
      baseUrl: plan.source.baseUrl,
      origin: plan.source.origin,
      allowedOrigins: plan.source.allowedOrigins,
      concurrency: 4,
      validation: plan.validation,
      limit: null,
      maxPages: null,
      fullRefresh: false,
      prefetch: 4,
      state,
      scratchDir: path.join(plan.dirs.state, ".partitions"),
      signal: job.signal,
    },
    { parentRecords: null, keepRecordsAt: null, parentKey: null },
    result,
  );
  try {
    // The first page and three guesses are asked for; the job is cancelled while they are out.
    await fourAsked;
    expect(offsets).toEqual([0, 100, 200, 300]);
    job.abort(new Error("the run was cancelled"));
    // The guesses come back: before the fix each one started the next guess.
    release((o) => o > 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(offsets).toEqual([0, 100, 200, 300]);
    release(() => true);
    await running;
  } finally {
    release(() => true);
    await client.close();
  }
  expect(result.status).toBe("failed");
  expect(result.error?.kind).toBe("aborted");
  expect(offsets).toEqual([0, 100, 200, 300]);
});
