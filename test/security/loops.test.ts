/**
 * Attack class "loops": an API that makes a runner fetch for ever. Every paginator type against a
 * server that ignores the pagination parameter (or sends the same pointer again) must stop at
 * once with a loud `pagination_loop` error, leaving the previous output untouched.
 */
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  closeServer,
  listenLocal,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "../run/helpers.js";

let server: Server;
let url: string;
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    const u = new URL(req.url ?? "/", "http://x");
    res.setHeader("content-type", "application/json");
    const items = [{ id: 1 }, { id: 2 }, { id: 3 }];
    if (u.pathname === "/same") {
      // Ignores page / offset / cursor: the first page, for ever.
      res.end(JSON.stringify({ items, next: "/same?after=x", cursor: "c1" }));
    } else if (u.pathname === "/echo") {
      // Ignores the page asked for but echoes it (and a request id): the same records.
      res.end(JSON.stringify({ page: u.searchParams.get("page"), request_id: requests, items }));
    } else if (u.pathname === "/bigids") {
      // Three pages of 64-bit ids (beyond 2^53, parsed exactly as BigInt), then an empty page.
      const page = Number(u.searchParams.get("page") ?? "1");
      const ids = page <= 3 ? [1, 2].map((k) => `12345678901234567${page}${k}`) : [];
      res.end(`{"items":[${ids.map((id) => `{"id":${id}}`).join(",")}]}`);
    } else if (u.pathname === "/cursor") {
      // A fresh cursor every time, the same records: a cursor loop the cursor check cannot see.
      res.end(JSON.stringify({ items, cursor: `c${requests}` }));
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
afterEach(() => p?.cleanup());

const cases: [string, string, string][] = [
  ["page", "/same", "{ type: page }"],
  ["offset", "/same", "{ type: offset, limit: 3 }"],
  ["page (echoing the page asked for)", "/echo", "{ type: page }"],
  ["cursor (a new cursor, the same records)", "/cursor", "{ type: cursor, cursor: $.cursor }"],
  ["next_url", "/same", "{ type: next_url, next: $.next }"],
];

describe.each(cases)("%s against an API that answers the same page", (_name, path, paginate) => {
  it.each([1, 4])(
    "stops with pagination_loop after a handful of requests (concurrency %i)",
    async (concurrency) => {
      p = tempProject();
      p.pipeline(
        "loop",
        `${sourceBlock(url, `concurrency: ${concurrency}`)}\nstreams:\n  s:\n    path: ${path}\n    records: $.items\n    paginate: ${paginate}\n`,
      );
      requests = 0;
      const r = await runPipeline(p.dir, "loop");
      expect(r.code).toBe(1);
      expect(r.stream("s").status).toBe("failed");
      expect(r.stream("s").error?.kind).toBe("pagination_loop");
      // Pages fetched ahead (at most twice the window) are all it may cost.
      expect(requests).toBeLessThanOrEqual(2 + 2 * concurrency);
      expect(existsSync(p.file("out/loop/s.jsonl"))).toBe(false);
    },
  );
});

describe("the repeat check on real data", () => {
  it("pages of 64-bit ids (BigInt) are compared exactly: no false loop, every record written", async () => {
    p = tempProject();
    p.pipeline(
      "big",
      `${sourceBlock(url)}\nstreams:\n  s:\n    path: /bigids\n    records: $.items\n    paginate: { type: page }\n`,
    );
    const r = await runPipeline(p.dir, "big");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("s").records.written).toBe(6);
    expect(readFileSync(p.file("out/big/s.jsonl"), "utf8")).toContain('{"id":1234567890123456731}');
  });
});
