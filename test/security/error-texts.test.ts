import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatDuration } from "../../src/shared/units.js";
import {
  closeServer,
  listenLocal,
  readJsonl,
  runPipeline,
  sourceBlock,
  tempProject,
} from "../run/helpers.js";

// A hostile API: garbage totals and an absurd Retry-After.
const N = 25;
const items = Array.from({ length: N }, (_, i) => ({ id: i + 1 }));
let total: unknown;
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const q = url.searchParams;
    if (url.pathname === "/busy") {
      res.writeHead(429, { "retry-after": "9".repeat(400), "content-type": "application/json" });
      res.end("{}");
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    if (url.pathname === "/offset") {
      const offset = Number(q.get("offset") ?? 0);
      const limit = Number(q.get("limit") ?? 10);
      res.end(JSON.stringify({ items: items.slice(offset, offset + limit), total }));
    } else {
      const page = Number(q.get("page") ?? 1);
      res.end(JSON.stringify({ results: items.slice((page - 1) * 10, page * 10), total_pages: total }));
    }
  });
  base = await listenLocal(server);
});
afterAll(() => closeServer(server));

async function run(stream: string) {
  const project = tempProject();
  try {
    project.pipeline("p", [sourceBlock(base), "streams:", `  items: ${stream}`].join("\n"));
    const r = await runPipeline(project.dir, "p");
    const records = r.code === 0 ? readJsonl(project.file("out/p/items.jsonl")) : [];
    return { r, s: r.stream("items"), records };
  } finally {
    project.cleanup();
  }
}

describe("a total from the API that is not a count is ignored, with a warning, not trusted", () => {
  const OFFSET = "{ path: /offset, records: $.items, paginate: { type: offset, limit: 10, total: $.total } }";
  const PAGE =
    "{ path: /page, records: $.results, paginate: { type: page, size_param: per_page, size: 10, total_pages: $.total_pages } }";

  it.each([
    [-5, "-5"],
    ["lots", '"lots"'],
    [{ value: 25 }, '{"value":25}'],
  ])("offset: total %j → every record, and the stop names the value", async (value, shown) => {
    total = value;
    const { r, s, records } = await run(OFFSET);
    expect(r.code).toBe(0);
    expect(records).toEqual(items);
    expect(s.stop_reason).toEqual({
      code: "empty_page",
      message: `an empty page ($.total was ${shown}, not a count: ignored)`,
      warning: true,
    });
    expect(r.stderr).not.toContain("all -5 records");
  });

  it("page: total_pages -1 → every record, and the stop names the value", async () => {
    total = -1;
    const { r, s, records } = await run(PAGE);
    expect(r.code).toBe(0);
    expect(records).toEqual(items);
    expect(s.stop_reason).toMatchObject({
      message: "an empty page ($.total_pages was -1, not a count: ignored)",
      warning: true,
    });
  });

  it("a sound total still stops the stream (and a missing one is no warning)", async () => {
    total = "25";
    const a = await run(OFFSET);
    expect(a.records).toEqual(items);
    expect(a.s.stop_reason).toEqual({ code: "total_reached", message: "all 25 records of $.total" });
    total = undefined;
    const b = await run(OFFSET);
    expect(b.records).toEqual(items);
    expect(b.s.stop_reason).toEqual({ code: "empty_page", message: "an empty page" });
  });
});

describe("durations from the API are written in words, whatever their value", () => {
  it("formatDuration: one formatter for the CLI and the report", () => {
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe("forever");
    expect(formatDuration(Number.NaN)).toBe("unknown");
    expect(formatDuration(-5)).toBe("0ms");
    expect(formatDuration(850)).toBe("850ms");
    expect(formatDuration(1200)).toBe("1.20s");
    expect(formatDuration(119_600)).toBe("2m00s"); // not 1m60s
    expect(formatDuration(119_600, "words")).toBe("2 min 0 s");
    expect(formatDuration(3_725_000)).toBe("1h02m");
    expect(formatDuration(3_725_000, "words")).toBe("1 h 2 min");
  });

  it("a Retry-After of 10^400 seconds: `asked to wait forever`, the header value shortened", async () => {
    const { r, s } = await run("{ path: /busy }");
    expect(r.code).toBe(1);
    expect(s.error?.kind).toBe("rate_limit_wait");
    expect(s.error?.message).toContain(
      `the API asked to wait forever (Retry-After: ${"9".repeat(40)}…), longer than retry.max_delay 2.00s`,
    );
    expect(s.error?.message).not.toMatch(/Infinity|NaN/);
  });
});
