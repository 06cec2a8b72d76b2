import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../cli/helpers.js";
import { closeServer, listenLocal, readJsonl, runPipeline, sourceBlock, tempProject } from "./helpers.js";

/**
 * Exports that are not JSON: a JSON lines body (Mixpanel / Amplitude style), a gzip CSV report
 * served as application/octet-stream without Content-Encoding, a CSV with RFC 4180 quoting; bodies
 * cut mid-way by the server, after which the output must equal the output of a clean run.
 */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
const server = createServer((req, res) => handler(req, res));
let base = "";
const hits: string[] = [];
beforeAll(async () => {
  base = await listenLocal(server);
});
afterAll(() => closeServer(server));
const project = tempProject("pipelines-exports-");
afterAll(() => project.cleanup());
afterEach(() => {
  hits.length = 0;
});

const N = 5000;
const jsonl = Array.from({ length: N }, (_, i) =>
  JSON.stringify({ event: i % 7 === 0 ? "$identify" : "click", n: i, time: 1704067200 + i }),
).join("\n");

/** Serves `body` in 1 KiB writes; the first `cuts` responses are cut after `cutAt` bytes (a reset). */
function serve(body: Buffer, headers: Record<string, string>, cuts = 0, cutAt = 0): Handler {
  let served = 0;
  return (req, res) => {
    hits.push(req.url ?? "");
    const cut = served++ < cuts;
    res.writeHead(200, { ...headers, "content-length": String(body.length) });
    let i = 0;
    const step = () => {
      if (cut && i >= cutAt) {
        res.socket?.destroy();
        return;
      }
      if (i >= body.length) return res.end();
      const next = body.subarray(i, i + 1024);
      i += 1024;
      if (res.write(next)) setImmediate(step);
      else res.once("drain", step);
    };
    step();
  };
}

const JSONL_PIPELINE = (extra = "") => `
${sourceBlock(base)}
streams:
  events:
    path: /export
    response: { format: jsonl }
    fields:
      event: $.event
      n: { path: $.n, type: integer }
      at: { path: $.time, type: date-time, from: epoch }
    filter: "@.event != '$identify'"${extra}
`;

describe("JSON lines export", () => {
  it("streams every line as a record, converts fields, filters, and counts filtered apart", async () => {
    handler = serve(Buffer.from(jsonl), { "content-type": "application/x-ndjson" });
    project.pipeline("ev", JSONL_PIPELINE());
    const r = await runPipeline(project.dir, "ev");
    expect(r.code).toBe(0);
    const s = r.stream("events");
    const identify = Math.ceil(N / 7);
    expect(s.records).toMatchObject({ seen: N, filtered: identify, invalid: 0, written: N - identify });
    const rows = readJsonl(project.file("out/ev/events.jsonl")) as { n: number; at: string }[];
    expect(rows[0]).toEqual({ event: "click", n: 1, at: "2024-01-01T00:00:01Z" });
    expect(rows.length).toBe(N - identify);
  });

  it("a body cut mid-way is retried, and the output equals a clean run's (nothing twice, nothing lost)", async () => {
    handler = serve(Buffer.from(jsonl), { "content-type": "application/x-ndjson" });
    project.pipeline("ev", JSONL_PIPELINE());
    await runPipeline(project.dir, "ev");
    const clean = readJsonl(project.file("out/ev/events.jsonl"));
    handler = serve(Buffer.from(jsonl), { "content-type": "application/x-ndjson" }, 2, 40 * 1024);
    hits.length = 0;
    const r = await runPipeline(project.dir, "ev");
    expect(r.code).toBe(0);
    expect(hits.length).toBe(3);
    expect(r.stream("events").retries.truncated).toBe(2);
    expect(readJsonl(project.file("out/ev/events.jsonl"))).toEqual(clean);
  });

  it("a body that differs on the retry fails the stream instead of writing records twice", async () => {
    let calls = 0;
    const cutOnce = serve(Buffer.from(jsonl), {}, 1, 40 * 1024);
    const other = serve(Buffer.from(jsonl.replace('"n":1,', '"n":-1,')), {});
    handler = (req, res) => (calls++ === 0 ? cutOnce(req, res) : other(req, res));
    project.pipeline("ev", JSONL_PIPELINE());
    const r = await runPipeline(project.dir, "ev");
    expect(r.code).toBe(1);
    expect(r.stream("events").error?.message).toMatch(/read again after a transport fault/);
  });

  it("a malformed line fails with its line number (not retried)", async () => {
    handler = serve(Buffer.from('{"event":"a","n":1,"time":1}\n{"event":\n'), {});
    project.pipeline("ev", JSONL_PIPELINE());
    const r = await runPipeline(project.dir, "ev");
    expect(r.code).toBe(1);
    expect(r.stream("events").error?.message).toMatch(/line 2 of the JSON lines body is not JSON/);
    expect(hits.length).toBe(1);
  });
});

const csvRows = ["id,amount,note"];
for (let i = 1; i <= 3000; i++)
  csvRows.push(`${i},${(i / 4).toFixed(2)},"row ${i}, ""quoted""\r\nsecond line"`);
const csvText = `\uFEFF${csvRows.join("\r\n")}\r\n`;

const CSV_PIPELINE = (compression: string) => `
${sourceBlock(base)}
streams:
  report:
    path: /report.csv.gz
    response: { format: csv, compression: ${compression} }
    fields:
      id: { path: $.id, type: integer }
      amount: { path: $.amount, type: number }
      note: $.note
`;

describe("gzip CSV report", () => {
  it("served as application/octet-stream without Content-Encoding: compression: gzip reads it", async () => {
    handler = serve(gzipSync(csvText), { "content-type": "application/octet-stream" });
    project.pipeline("rep", CSV_PIPELINE("gzip"));
    const r = await runPipeline(project.dir, "rep");
    expect(r.code, r.stderr).toBe(0);
    const rows = readJsonl(project.file("out/rep/report.jsonl"));
    expect(rows.length).toBe(3000);
    expect(rows[0]).toEqual({ id: 1, amount: 0.25, note: 'row 1, "quoted"\r\nsecond line' });
  });

  it("a truncated gzip is retried like a truncated body; the output equals a clean run's", async () => {
    handler = serve(gzipSync(csvText), { "content-type": "application/octet-stream" });
    project.pipeline("rep", CSV_PIPELINE("gzip"));
    await runPipeline(project.dir, "rep");
    const clean = readJsonl(project.file("out/rep/report.jsonl"));
    handler = serve(gzipSync(csvText), { "content-type": "application/octet-stream" }, 1, 8 * 1024);
    const r = await runPipeline(project.dir, "rep");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("report").retries.truncated).toBe(1);
    expect(readJsonl(project.file("out/rep/report.jsonl"))).toEqual(clean);
  });

  it("lone \\r line endings (classic Mac), cut mid-way and retried: the output equals the \\r\\n file's", async () => {
    handler = serve(gzipSync(csvText), { "content-type": "application/octet-stream" });
    project.pipeline("rep", CSV_PIPELINE("gzip"));
    await runPipeline(project.dir, "rep");
    const crlf = readJsonl(project.file("out/rep/report.jsonl"));
    // The same rows with `\r` between them (the quoted cells' own line breaks kept as they are).
    const mac = `\uFEFF${csvRows.join("\r")}\r`;
    project.pipeline("rep", CSV_PIPELINE("auto"));
    for (const cuts of [0, 1]) {
      handler = serve(Buffer.from(mac), { "content-type": "text/csv" }, cuts, 16 * 1024 + 3);
      const r = await runPipeline(project.dir, "rep");
      expect(r.code, r.stderr).toBe(0);
      expect(r.stream("report").retries.truncated ?? 0, "retried").toBe(cuts);
      expect(readJsonl(project.file("out/rep/report.jsonl"))).toEqual(crlf);
    }
  });

  it("the same file with Content-Encoding: gzip is read by compression: auto", async () => {
    handler = serve(gzipSync(csvText), { "content-type": "text/csv", "content-encoding": "gzip" });
    project.pipeline("rep", CSV_PIPELINE("auto"));
    const r = await runPipeline(project.dir, "rep");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(project.file("out/rep/report.jsonl")).length).toBe(3000);
  });
});

describe("conversions, quarantine and infer on exports", () => {
  it("a value that does not convert makes its record invalid (quarantined, grouped under field/<name>), never the run", async () => {
    const body = ['{"id":"1","amount":"4.50"}', '{"id":"2","amount":"4,50"}', '{"id":"3","amount":""}'].join(
      "\n",
    );
    handler = serve(Buffer.from(body), {});
    project.pipeline(
      "conv",
      `${sourceBlock(base)}
streams:
  rows:
    path: /rows
    response: { format: jsonl }
    fields:
      id: { path: $.id, type: integer }
      amount: { path: $.amount, type: number, default: 0 }
validation: { max_invalid_ratio: 0.5 }
`,
    );
    const r = await runPipeline(project.dir, "conv");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("rows").records).toMatchObject({ seen: 3, valid: 2, invalid: 1, written: 2 });
    expect(readJsonl(project.file("out/conv/rows.jsonl"))).toEqual([
      { id: 1, amount: 4.5 },
      { id: 3, amount: 0 },
    ]);
    const [q] = readJsonl(project.file("out/conv/rows.invalid.jsonl")) as {
      record: unknown;
      errors: { path: string; message: string }[];
    }[];
    expect(q.record).toEqual({ id: 2, amount: "4,50" });
    expect(q.errors[0]).toMatchObject({
      path: "field/amount",
      message: 'field `amount`: "4,50" is not a number (type: number)',
    });
    const report = JSON.parse(readFileSync(project.file("reports/conv/latest.json"), "utf8"));
    expect(report.streams[0].errors[0]).toMatchObject({
      field: "field/amount",
      keyword: "convert",
      count: 1,
    });
  });

  it("infer drafts a schema from a CSV export", async () => {
    handler = serve(Buffer.from("id,name\n1,a\n2,b\n"), { "content-type": "text/csv" });
    project.pipeline(
      "inf",
      `${sourceBlock(base)}
streams:
  things:
    path: /things.csv
    response: { format: csv }
    fields:
      id: { path: $.id, type: integer }
      name: $.name
`,
    );
    const r = await runCli(["infer", "inf"], project.dir);
    expect(r.code, r.stderr).toBe(0);
    const schema = JSON.parse(readFileSync(project.file("schemas/inf.things.schema.json"), "utf8"));
    expect(schema.properties.id.type).toBe("integer");
  });
});
