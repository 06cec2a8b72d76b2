/**
 * A request sequence stopped by its own signal (a cancelled queue job: the worker's HTTP session
 * goes on for its other jobs) sends nothing more — not even the pages an offset stream guesses
 * ahead when one of its earlier guesses comes back after the signal.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { beforeEach, expect, it } from "vitest";
import { sourceBlock, streamSession, useLocalServer, useTempProject } from "./helpers.js";

/** Offsets asked for, in order, and the answers held back until the test lets them go. */
let offsets: number[] = [];
let held: { offset: number; res: ServerResponse }[] = [];
let onRequest: () => void = () => {};
/** Answer every request at once with 429 and this Retry-After (seconds), instead of holding it. */
let throttle: number | null = null;
/** Answer with the first lines of a JSON lines body, and hold the rest (a long export). */
let stall = false;

function answer(offset: number, res: ServerResponse) {
  const items = offset < 2000 ? Array.from({ length: 100 }, (_, i) => ({ id: offset + i })) : [];
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ items }));
}

const api = useLocalServer((req: IncomingMessage, res) => {
  const offset = Number(new URL(req.url ?? "/", "http://x").searchParams.get("offset") ?? 0);
  offsets.push(offset);
  if (throttle !== null)
    res.writeHead(429, { "retry-after": String(throttle), "content-type": "application/json" }).end("{}");
  else if (stall) {
    res.writeHead(200, { "content-type": "application/x-ndjson" }).write('{"id":1}\n{"id":2}\n');
    held.push({ offset, res });
  } else held.push({ offset, res });
  onRequest();
});

const p = useTempProject("pipelines-lookahead-signal-");
beforeEach(() => {
  offsets = [];
  held = [];
  throttle = null;
  stall = false;
});

function release(pick: (offset: number) => boolean) {
  const go = held.filter((h) => pick(h.offset));
  held = held.filter((h) => !pick(h.offset));
  for (const h of go) answer(h.offset, h.res);
}

function startStream(spec: string, signal: AbortSignal, concurrency = 4) {
  // A long max_delay: a Retry-After of 20 s is waited out, not refused.
  // A long timeout: a body that stops moving is not ended by it within the test.
  const text = `${sourceBlock(api.url, `concurrency: ${concurrency}`).replace("max_delay: 2s", "max_delay: 60s").replace("timeout: 5s", "timeout: 60s")}
streams:
  s: { path: /items, ${spec} }
`;
  // The worker's session: no signal of its own (its jobs have theirs).
  const session = streamSession(p.dir, text);
  return { ...session.start(0, { concurrency, prefetch: concurrency, signal }), close: session.close };
}

it("no page is guessed once the sequence's signal is aborted", async () => {
  const job = new AbortController();
  const fourAsked = new Promise<void>((resolve) => {
    onRequest = () => offsets.length >= 4 && resolve();
  });
  const { running, result, close } = startStream(
    "records: $.items, paginate: { type: offset, limit: 100 }",
    job.signal,
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
    await close();
  }
  expect(result.status).toBe("failed");
  expect(result.error?.kind).toBe("aborted");
  expect(offsets).toEqual([0, 100, 200, 300]);
});

it.each([
  ["a JSON page", "records: $.items, paginate: { type: offset, limit: 100 }"],
  ["a JSON lines export", "response: { format: jsonl }"],
])("%s waiting out a Retry-After stops at its signal: no retry is sent after it", async (_, spec) => {
  throttle = 20;
  const job = new AbortController();
  const asked = new Promise<void>((resolve) => {
    onRequest = () => resolve();
  });
  const { running, result, close } = startStream(spec, job.signal, 1);
  try {
    await asked;
    const at = Date.now();
    job.abort(new Error("the run was cancelled"));
    await running;
    // Stopped at the signal, not after the 20 s the API asked for (and its retry).
    expect(Date.now() - at).toBeLessThan(10_000);
  } finally {
    await close();
  }
  expect(result.status).toBe("failed");
  expect(result.error?.kind).toBe("aborted");
  expect(offsets).toEqual([0]);
});

it.each([
  [
    "a JSON page the API is slow to answer",
    false,
    "records: $.items, paginate: { type: offset, limit: 100 }",
  ],
  ["a JSON lines export's body, the API still sending it", true, "response: { format: jsonl }"],
])("%s: the request on the wire ends at the sequence's signal", async (_, stalled, spec) => {
  stall = stalled;
  const job = new AbortController();
  const asked = new Promise<void>((resolve) => {
    onRequest = () => resolve();
  });
  const { running, result, close } = startStream(spec, job.signal, 1);
  try {
    await asked;
    job.abort(new Error("the run was cancelled"));
    // Stopped at the signal, not when the API ends its answer (or the 60 s timeout does).
    const ended = await Promise.race([
      running.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 10_000)),
    ]);
    expect(ended).toBe(true);
  } finally {
    for (const h of held) h.res.destroy();
    held = [];
    await running;
    await close();
  }
  expect(result.status).toBe("failed");
  expect(result.error?.kind).toBe("aborted");
  expect(offsets).toEqual([0]);
});
