import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeServer, listenLocal, readJsonl, runPipeline, sourceBlock, tempProject } from "./helpers.js";

/**
 * JSON lines and CSV exports whose bytes arrive in awkward pieces: the server sends the body in
 * pieces cut at the given offsets, each piece written after the previous one reached the socket
 * and a pause, so that the client reads them as separate chunks (a BOM, a CRLF, a UTF-8
 * character, a quoted newline or the gzip magic number cut in two). What is written must not
 * depend on where the body was cut.
 */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
const server = createServer((req, res) => handler(req, res));
let base = "";
beforeAll(async () => {
  base = await listenLocal(server);
});
afterAll(() => closeServer(server));
const project = tempProject("pipelines-export-chunks-");
afterAll(() => project.cleanup());

/** Serves `body` cut at `cuts` (byte offsets), one piece at a time. */
function serveCut(body: Buffer, headers: Record<string, string>, cuts: number[]): Handler {
  return (_req, res) => {
    res.writeHead(200, { ...headers, "content-length": String(body.length) });
    const ends = [...cuts, body.length];
    let from = 0;
    const next = (k: number): void => {
      if (k === ends.length) {
        res.end();
        return;
      }
      const piece = body.subarray(from, ends[k]);
      from = ends[k];
      // A pause after each piece reached the socket: the client reads it alone.
      res.write(piece, () => setTimeout(() => next(k + 1), 15));
    };
    next(0);
  };
}

const pipeline = (response: string) => `
${sourceBlock(base)}
streams:
  items:
    path: /export
    response: ${response}
`;

describe("compression: gzip, a body whose first chunk is one byte", () => {
  it("is still recognised as a gzip file (the magic number is cut in two)", async () => {
    const csv = Buffer.from("id,name\r\n1,a\r\n2,b\r\n");
    handler = serveCut(gzipSync(csv), { "content-type": "application/octet-stream" }, [1, 2]);
    project.pipeline("gz", pipeline("{ format: csv, compression: gzip }"));
    const r = await runPipeline(project.dir, "gz");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(project.file("out/gz/items.jsonl"))).toEqual([
      { id: "1", name: "a" },
      { id: "2", name: "b" },
    ]);
  });
});

describe("a body that is not what its compression says is the body's fault: failed at once, not retried", () => {
  const csv = Buffer.from("id,name\r\n1,a\r\n2,b\r\n");
  it("compression: gzip, but the body is a plain CSV", async () => {
    let requests = 0;
    const serve = serveCut(csv, { "content-type": "text/csv" }, []);
    handler = (req, res) => {
      requests++;
      serve(req, res);
    };
    project.pipeline("plain", pipeline("{ format: csv, compression: gzip }"));
    const r = await runPipeline(project.dir, "plain");
    expect(r.code).toBe(1);
    expect(requests).toBe(1);
    expect(r.stream("items").error).toMatchObject({
      kind: "bad_body",
      message: expect.stringContaining("`response.compression: gzip`, but the body is not a gzip file"),
    });
  });

  it("Content-Encoding: gzip on a body that is not gzip (a misconfigured proxy)", async () => {
    let requests = 0;
    const serve = serveCut(csv, { "content-type": "text/csv", "content-encoding": "gzip" }, []);
    handler = (req, res) => {
      requests++;
      serve(req, res);
    };
    project.pipeline("lying", pipeline("{ format: csv }"));
    const r = await runPipeline(project.dir, "lying");
    expect(r.code).toBe(1);
    expect(requests).toBe(1);
    expect(r.stream("items").error).toMatchObject({
      kind: "bad_body",
      message: expect.stringContaining("the body does not decompress"),
    });
  });

  it("a gzip body cut short is still a transport fault: retried, then read whole", async () => {
    let requests = 0;
    const gz = gzipSync(csv);
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      // The first answer ends (cleanly) in the middle of the gzip stream.
      if (requests++ === 0) res.end(gz.subarray(0, gz.length - 6));
      else res.end(gz);
    };
    project.pipeline("cut", pipeline("{ format: csv, compression: gzip }"));
    const r = await runPipeline(project.dir, "cut");
    expect(r.code, r.stderr).toBe(0);
    expect(requests).toBe(2);
    expect(readJsonl(project.file("out/cut/items.jsonl"))).toHaveLength(2);
  });
});

describe("the same for a buffered (JSON) body", () => {
  it("Content-Encoding: gzip on a JSON body that is not gzip fails at once; one cut short is retried", async () => {
    let requests = 0;
    const body = Buffer.from('[{"id":1},{"id":2}]');
    handler = (_req, res) => {
      requests++;
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
      res.end(body);
    };
    project.pipeline("jsonlying", pipeline("{ format: json }"));
    const r = await runPipeline(project.dir, "jsonlying");
    expect(r.code).toBe(1);
    expect(requests).toBe(1);
    expect(r.stream("items").error).toMatchObject({
      kind: "bad_body",
      message: expect.stringContaining("the gzip body of the response (status 200) does not decompress"),
    });
    const gz = gzipSync(body);
    requests = 0;
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
      res.end(requests++ === 0 ? gz.subarray(0, gz.length - 6) : gz);
    };
    const again = await runPipeline(project.dir, "jsonlying");
    expect(again.code, again.stderr).toBe(0);
    expect(requests).toBe(2);
  });
});
