// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline templates
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { closeServer, listenLocal, runPipeline, sourceBlock, tempProject } from "../run/helpers.js";

// A hostile API whose values end up in request headers: a cursor and a parent field with CR/LF.
const requests: { path: string; headers: Record<string, unknown> }[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push({ path: url.pathname, headers: req.headers });
    res.writeHead(200, { "content-type": "application/json" });
    if (url.pathname === "/cursor")
      res.end(JSON.stringify({ data: [{ id: 1 }], next: "abc\r\nX-Injected: 1" }));
    else if (url.pathname === "/parents") res.end(JSON.stringify([{ id: 1, name: "a\r\nX-Injected: 1" }]));
    else res.end(JSON.stringify([{ id: 2 }]));
  });
  base = await listenLocal(server);
});
afterAll(() => closeServer(server));
beforeEach(() => {
  requests.length = 0;
});

describe("a value from the API that cannot be a header value", () => {
  it("a cursor with CR/LF sent `in: header` fails the stream once, clearly, without a retry", async () => {
    const project = tempProject();
    try {
      project.pipeline(
        "p",
        [
          sourceBlock(base),
          "streams:",
          "  items:",
          "    path: /cursor",
          "    records: $.data",
          "    paginate: { type: cursor, cursor: $.next, param: X-Cursor, in: header }",
        ].join("\n"),
      );
      const r = await runPipeline(project.dir, "p");
      expect(r.code).toBe(1);
      const s = r.stream("items");
      expect(s.error).toEqual({
        kind: "invalid_request",
        message:
          'cannot send "abc\\r\\nX-Injected: 1" in header X-Cursor: a header value cannot hold line breaks or other control characters',
      });
      expect(s.retries).toEqual({});
      expect(requests).toHaveLength(1);
      expect(requests.some((q) => "x-injected" in q.headers)).toBe(false);
    } finally {
      project.cleanup();
    }
  });

  it("a parent field with CR/LF in a header template is refused by the HTTP client and not retried as a reset", async () => {
    const project = tempProject();
    try {
      project.pipeline(
        "p",
        [
          sourceBlock(base),
          "streams:",
          "  parents: { path: /parents }",
          "  children:",
          "    parent: parents",
          "    path: /children",
          '    headers: { X-Parent: "${parent.name}" }',
        ].join("\n"),
      );
      const r = await runPipeline(project.dir, "p");
      expect(r.code).toBe(1);
      const s = r.stream("children");
      expect(s.retries).toEqual({});
      expect(JSON.stringify(s.error)).toContain("the request could not be sent");
      expect(JSON.stringify(s.error)).not.toContain("connection was closed");
      expect(requests.filter((q) => q.path === "/children")).toHaveLength(0);
    } finally {
      project.cleanup();
    }
  });
});
