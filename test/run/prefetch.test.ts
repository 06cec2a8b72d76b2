import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
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
 * Offset and page streams fetch pages ahead within `source.concurrency` (README, "Speed"): the
 * server must see several requests at once, and the output must not change at all.
 */
const TOTAL = 430;
const records = Array.from({ length: TOTAL }, (_, i) => ({ id: i + 1, name: `r${i + 1}` }));

let server: Server;
let url: string;
let inFlight = 0;
let maxInFlight = 0;
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const q = new URL(req.url ?? "/", "http://x").searchParams;
    requests++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    // A server that caps its page size below what is asked (40 < limit 100), like many do.
    const size = Math.min(40, Number(q.get("limit") ?? q.get("per_page") ?? 40));
    const from = q.has("offset") ? Number(q.get("offset")) : (Number(q.get("page")) - 1) * size;
    const body = JSON.stringify({ items: records.slice(from, from + size) });
    setTimeout(() => {
      inFlight--;
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    }, 15);
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-prefetch-");
});
afterEach(() => p.cleanup());

const PAGINATE = {
  offset: "{ type: offset, limit: 100 }",
  page: "{ type: page, size_param: per_page, size: 40 }",
};

async function pull(type: keyof typeof PAGINATE, concurrency: number) {
  p.pipeline(
    "p",
    `${sourceBlock(url, `concurrency: ${concurrency}`)}\nstreams:\n  s:\n    path: /${type}\n    records: $.items\n    paginate: ${PAGINATE[type]}\n`,
  );
  inFlight = 0;
  maxInFlight = 0;
  requests = 0;
  const r = await runPipeline(p.dir, "p");
  expect(r.code, r.stderr).toBe(0);
  return {
    bytes: readFileSync(p.file("out/p/s.jsonl")),
    max: maxInFlight,
    requests,
    stop: r.stream("s").stop_reason,
  };
}

describe.each(["offset", "page"] as const)("%s pagination fetches ahead", (type) => {
  it("sequentially at concurrency 1, several pages at once at concurrency 4, byte-identical output", async () => {
    const one = await pull(type, 1);
    expect(one.max).toBe(1);
    expect(readJsonl(p.file("out/p/s.jsonl"))).toEqual(records);
    // 11 pages of 40 (the last one short), then the empty page that ends the stream.
    expect(one.requests).toBe(12);
    expect(one.stop?.code).toBe("empty_page");

    const four = await pull(type, 4);
    expect(four.max).toBeGreaterThan(1);
    expect(four.max).toBeLessThanOrEqual(4);
    expect(four.bytes.equals(one.bytes)).toBe(true);
    // Guesses past the end cost at most a window of extra requests (offset: plus the first round,
    // guessed with the 100 asked for, dropped when the first page shows the server gives 40).
    expect(four.requests).toBeLessThanOrEqual(12 + 4 + (type === "offset" ? 3 : 0));
  });
});
