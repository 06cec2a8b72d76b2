import diagnostics from "node:diagnostics_channel";
import { open } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  closeServer,
  listenLocal,
  readJsonl,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "./helpers.js";

/**
 * A cursor API's next page can only be asked for once the current page is parsed; the runner
 * then sends that request before it validates, serialises and writes the page, so the API works
 * on the next page meanwhile (read-pages.ts). undici reuses a kept-alive connection only after a
 * turn of the event loop, so "sent" has to be seen on the wire, not just handed to undici: here
 * the request for page 2 must reach the socket before page 1's JSON lines reach the file.
 */
const PAGES = 3;
const PER_PAGE = 1500; // ~100 KB of JSON lines: more than the output's 64 KiB write buffer
const record = (i: number) => ({ id: i, name: `record-${i}`, email: `user${i}@example.com` });

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    const page = Number(new URL(req.url ?? "/", "http://x").searchParams.get("cursor") ?? 1);
    const data = Array.from({ length: PER_PAGE }, (_, k) => record((page - 1) * PER_PAGE + k));
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ data, next: page < PAGES ? String(page + 1) : null }));
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-overlap-");
  p.pipeline(
    "p",
    `${sourceBlock(url)}\nstreams:\n  s:\n    path: /items\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }\n`,
  );
});
afterEach(() => p.cleanup());

describe("cursor pagination", () => {
  it("sends the next page's request before the current page is written", async () => {
    const events: string[] = [];
    const stopSends = noteSends(events);
    const probe = await open(p.file("probe"), "w");
    const proto = Object.getPrototypeOf(probe);
    await probe.close();
    const write = proto.write as (...a: unknown[]) => Promise<unknown>;
    const spy = vi.spyOn(proto, "write").mockImplementation(function (this: unknown, ...args: unknown[]) {
      const data = args[0];
      // JSON lines come as a string, or as bytes (records copied from the page: json-spans.ts).
      const text =
        typeof data === "string"
          ? data
          : data instanceof Uint8Array
            ? Buffer.from(data.buffer, data.byteOffset, Math.min(12, data.byteLength)).toString()
            : "";
      if (text.startsWith('{"id":')) events.push(`write ${text.slice(0, 12)}`);
      return write.apply(this, args);
    });
    await runThenStop(() => spy.mockRestore(), stopSends);
    expect(readJsonl(p.file("out/p/s.jsonl"))).toHaveLength(PAGES * PER_PAGE);
    // Page 1's first JSON lines reach the file only after page 2 was asked for.
    const firstWrite = events.indexOf('write {"id":0,"nam');
    expect(firstWrite, events.join("\n")).toBeGreaterThan(0);
    expect(events.slice(0, firstWrite)).toEqual(["sent 1", "sent 2"]);
  });
});

describe("cursor pagination, pages read by a scan first", () => {
  // The next page is asked for once the page's cursor and records were found by a scan of its
  // bytes (page-heads.ts), before the page is parsed (jsonl: the page path; the other outputs
  // parse first: the scan only costs them, measured). Seen as "sent 2" before the JSON.parse of
  // page 1's body.
  it("jsonl: page 2 is requested before page 1 is parsed", async () => {
    // Pages parsed whole: records checked from their bytes parse no page (byte-check-run.test.ts).
    process.env.PIPELINES_BYTE_CHECK = "off";
    const events: string[] = [];
    const stopSends = noteSends(events);
    const parse = JSON.parse;
    const spy = vi.spyOn(JSON, "parse").mockImplementation(function (this: unknown, ...args: unknown[]) {
      const text = args[0];
      if (typeof text === "string" && text.startsWith('{"data":[') && text.length > 10_000)
        events.push(`parse ${text.includes('"next":"2"') ? 1 : "later"}`);
      return parse.apply(this, args as Parameters<typeof JSON.parse>);
    });
    await runThenStop(
      () => spy.mockRestore(),
      stopSends,
      () => delete process.env.PIPELINES_BYTE_CHECK,
    );
    expect(events.slice(0, 3), events.join("\n")).toEqual(["sent 1", "sent 2", "parse 1"]);
  });
});

/** Runs the pipeline (it must succeed), then stops watching it, whatever happened. */
async function runThenStop(...stops: (() => void)[]): Promise<void> {
  try {
    const r = await runPipeline(p.dir, "p");
    expect(r.code, r.stderr).toBe(0);
  } finally {
    for (const stop of stops) stop();
  }
}

/** Notes "sent <cursor>" in `events` as each request reaches the wire; returns the way to stop. */
function noteSends(events: string[]): () => void {
  const onSend = (m: unknown) => {
    const { request } = m as { request: { path: string } };
    events.push(`sent ${new URL(request.path, "http://x").searchParams.get("cursor") ?? 1}`);
  };
  diagnostics.subscribe("undici:client:sendHeaders", onSend);
  return () => diagnostics.unsubscribe("undici:client:sendHeaders", onSend);
}
