import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { aliveRecordWorkers, recordWorkerUnits } from "../../src/run/record-workers/pool.js";
import { parseJson, stringifyJson } from "../../src/shared/json-text.js";
import { closeServer, listenLocal, runPipeline, sourceBlock, tempProject } from "./helpers.js";

/**
 * `source.workers`: a JSONL or CSV export's records decoded, shaped, checked and serialized on a
 * worker thread must give exactly what the main thread alone gives — output, quarantine, counts,
 * report statistics, cursor, duplicates, errors with line numbers, retried bodies. Bodies here are
 * served without Content-Length (an export of unknown size goes to the worker) and are a few MiB
 * (units are cut every 256 KiB at a row end: many cuts, some next to quoted line breaks).
 */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
const server = createServer((req, res) => handler(req, res));
let base = "";
beforeAll(async () => {
  base = await listenLocal(server);
});
afterAll(() => closeServer(server));
const project = tempProject("pipelines-exports-workers-");
afterAll(() => project.cleanup());
beforeAll(() => writeFileSync(project.file("schemas/events.json"), SCHEMA));

/** Serves `body` chunked (no Content-Length) in 16 KiB writes; the first `cuts` responses reset after `cutAt` bytes. */
function serve(
  body: Buffer | (() => Buffer),
  headers: Record<string, string> = {},
  cuts = 0,
  cutAt = 0,
): Handler {
  let served = 0;
  return (_req, res) => {
    const b = typeof body === "function" ? body() : body;
    const cut = served++ < cuts;
    res.writeHead(200, headers);
    let i = 0;
    const step = () => {
      if (cut && i >= cutAt) {
        res.socket?.destroy();
        return;
      }
      if (i >= b.length) return res.end();
      const next = b.subarray(i, i + 16 * 1024);
      i += 16 * 1024;
      if (res.write(next)) setImmediate(step);
      else res.once("drain", step);
    };
    step();
  };
}

const N = 30_000;
/** JSON lines with everything a run keeps track of: filtered, invalid, duplicate keys, drift, big integers, `__proto__`, a cursor. */
function jsonlBody(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < N; i++) {
    const id = i % 1000 === 999 ? i - 1 : i; // a duplicate key now and then
    const amount = i % 500 === 7 ? `"x${i}"` : String(i / 4); // invalid (type: number) now and then
    const extra = i % 3000 === 5 ? `,"__proto__":{"polluted":${i}},"new_field":"v${i}"` : "";
    const big = i % 4000 === 11 ? `,"big":12345678901234567890${i}` : "";
    lines.push(
      `{"id":${id},"event":"${i % 9 === 0 ? "$identify" : "click"}","amount":${amount},"updated":${1704067200 + (i % 7919)}${extra}${big},"text":"é ${"x".repeat(i % 40)}"}`,
    );
  }
  return Buffer.from(`${lines.join("\r\n")}\n`);
}

const SCHEMA = JSON.stringify({
  type: "object",
  properties: {
    id: { type: "integer" },
    event: { type: "string" },
    amount: { type: "number" },
    updated: { type: "integer" },
    text: { type: "string" },
  },
});

const JSONL = (workers: number | "auto", extra = "") => `
${sourceBlock(base, `workers: ${workers}`)}
streams:
  events:
    path: /export
    response: { format: jsonl }
    primary_key: [id]
    schema: events.json
    incremental: { cursor_field: updated, param: since }
    filter: "@.event != '$identify'"${extra}
validation: { max_invalid_ratio: 0.5 }
`;

/** Everything a run leaves that must not depend on `workers`. */
function outcome(pipeline: string, stream: string) {
  const read = (f: string) => {
    try {
      return readFileSync(project.file(f), "utf8");
    } catch {
      return null;
    }
  };
  const report = JSON.parse(read(`reports/${pipeline}/latest.json`) ?? "{}");
  const s = report.streams?.find((x: { name: string }) => x.name === stream) ?? {};
  return {
    output: read(`out/${pipeline}/${stream}.jsonl`),
    quarantine: read(`out/${pipeline}/${stream}.invalid.jsonl`),
    state: JSON.parse(read(`.pipelines/state/${pipeline}.json`) ?? "{}").streams?.[stream] ?? null,
    records: s.records,
    errors: s.errors,
    fields: s.fields,
    drift: s.drift,
  };
}

/** Runs `pipeline` with the file made by `text(workers)`; the summary and what the run left. */
async function runWith(pipeline: string, text: (w: number | "auto") => string, workers: number | "auto") {
  project.pipeline(pipeline, text(workers));
  const before = recordWorkerUnits();
  const r = await runPipeline(project.dir, pipeline, ["--full-refresh"]);
  const units = recordWorkerUnits() - before;
  const s = r.stream(pipeline === "csv" ? "report" : "events");
  const { updated_at: _, ...state } = outcome(pipeline, s.name).state ?? {};
  return { ...outcome(pipeline, s.name), code: r.code, records: s.records, error: s.error, units, state };
}

describe("a JSONL export through a record worker", () => {
  it("gives byte for byte what the main thread gives: output, quarantine, counts, statistics, drift, cursor, duplicates", async () => {
    const body = jsonlBody();
    handler = serve(body);
    const one = await runWith("ev", JSONL, 1);
    const two = await runWith("ev", JSONL, 2);
    expect(one.units).toBe(0);
    expect(two.units).toBeGreaterThan(8);
    expect(one.code, JSON.stringify(one.error)).toBe(0);
    expect(one.records.seen).toBe(N);
    expect(one.records.duplicates).toBeGreaterThan(0);
    expect(one.records.invalid).toBeGreaterThan(0);
    expect(one.drift.new_fields.map((f: { field: string }) => f.field)).toEqual(
      expect.arrayContaining(["__proto__", "new_field", "big"]),
    );
    expect(one.output).toContain('"__proto__":{"polluted":5}');
    expect(one.output).toMatch(/"big":123456789012345678904011[,}]/);
    expect(one.state.cursor).toBe(1704067200 + 7918);
    const { units: _a, ...a } = one;
    const { units: _b, ...b } = two;
    expect(b).toEqual(a);
  });

  it("a body cut mid-transfer is retried; the output equals the main thread's clean run", async () => {
    const body = jsonlBody();
    handler = serve(body);
    const clean = await runWith("ev", JSONL, 1);
    handler = serve(body, {}, 2, 1500 * 1024);
    const cut = await runWith("ev", JSONL, 2);
    expect(cut.units).toBeGreaterThan(8);
    const { units: _a, ...a } = clean;
    const { units: _b, ...b } = cut;
    expect(b).toEqual(a);
  });

  it("a body that differs on the retry fails the stream, as on the main thread", async () => {
    const body = jsonlBody();
    let calls = 0;
    const cutOnce = serve(body, {}, 1, 1500 * 1024);
    const other = serve(Buffer.from(body.toString().replace('"id":1,', '"id":-1,')));
    handler = (req, res) => (calls++ % 2 === 0 ? cutOnce(req, res) : other(req, res));
    const two = await runWith("ev", JSONL, 2);
    expect(two.units).toBeGreaterThan(0);
    expect(two.code).toBe(1);
    expect(two.error?.message).toMatch(/read again after a transport fault/);
  });

  it("a malformed line far into the body fails with its line number, as on the main thread", async () => {
    const lines = jsonlBody().toString().split("\n");
    lines[24_321] = '{"id": 1, "event":';
    handler = serve(Buffer.from(lines.join("\n")));
    const one = await runWith("ev", JSONL, 1);
    const two = await runWith("ev", JSONL, 2);
    expect(two.units).toBeGreaterThan(8);
    expect(one.code).toBe(1);
    expect(one.error?.message).toMatch(/line 24322 of the JSON lines body is not JSON/);
    expect(two.error).toEqual(one.error);
  });
});

describe("a JSONL export's lines written as they came (when already canonical)", () => {
  // Lines JSON.stringify writes otherwise (each must be serialized again) among canonical ones.
  const odd = [
    '{"id":%,"a":1,"a":2}',
    '{"id":%,"x":{"k":1,"k":"last"}}',
    '{"id":%,"n":1e3,"m":1.0,"z":-0,"s":0.0000001,"p":1.50}',
    '{"id": %, "spaced": [1, 2]}',
    '{"id":%,"u":"\\u00e9\\/"}',
    '{"id":%,"b":1,"2":"integer-like key"}',
    '{"id":%,"d":1234567890.1234567}',
  ];
  const plain = [
    '{"id":%,"big":12345678901234567890,"q":"a \\"b\\" \\\\ c\\n","t":"é 😀","d":-0.25}',
    '{"id":%,"__proto__":{"polluted":1},"e":[true,false,null,{}]}',
  ];
  function oddBody(): { body: Buffer; expected: string } {
    const lines: string[] = [];
    for (let i = 0; i < 40_000; i++) {
      const t = i % 10 < 3 ? odd[i % odd.length] : plain[i % plain.length];
      lines.push(t.replace("%", String(i)));
    }
    const expected = `${lines.map((l) => stringifyJson(parseJson(l))).join("\n")}\n`;
    return { body: Buffer.from(`\uFEFF${lines.join("\r\n")}\n`), expected };
  }
  const PLAIN = (w: number | "auto") => `
${sourceBlock(base, `workers: ${w}`)}
streams:
  events:
    path: /export
    response: { format: jsonl }
`;

  it("the output is what serializing each record gives, byte for byte, with workers 1 and 2, clean or cut", async () => {
    const { body, expected } = oddBody();
    expect(expected).toContain('{"id":0,"a":2}');
    expect(expected).toContain('"n":1000,"m":1,"z":0,"s":1e-7,"p":1.5');
    expect(expected).toContain('{"id":10,"spaced":[1,2]}');
    expect(expected).toContain('"big":12345678901234567890,');
    handler = serve(body);
    const one = await runWith("odd", PLAIN, 1); // canonical lines unparsed (src/run/raw-lines.ts)
    // Nothing reads these records: the raw reading takes them on the main thread unless it is off.
    process.env.PIPELINES_RAW_LINES = "off";
    let two: Awaited<ReturnType<typeof runWith>>;
    let cut: typeof two;
    let parsed: typeof two;
    try {
      parsed = await runWith("odd", PLAIN, 1);
      two = await runWith("odd", PLAIN, 2);
      handler = serve(body, {}, 2, 1500 * 1024);
      cut = await runWith("odd", PLAIN, 2);
    } finally {
      delete process.env.PIPELINES_RAW_LINES;
    }
    expect(parsed.output).toBe(expected);
    expect(one.code, JSON.stringify(one.error)).toBe(0);
    expect(two.units).toBeGreaterThan(8);
    expect(cut.units).toBeGreaterThan(8);
    expect(one.output).toBe(expected);
    expect(two.output).toBe(expected);
    expect(cut.output).toBe(expected);
  });

  it("output `json` (one array): each record's JSON as serializing gives it, canonical lines copied", async () => {
    const { body, expected } = oddBody();
    handler = serve(body);
    project.pipeline("odd", `${PLAIN(1)}output: { format: json }\n`);
    const r = await runPipeline(project.dir, "odd", ["--full-refresh"]);
    expect(r.code).toBe(0);
    const records = expected.slice(0, -1).split("\n");
    expect(readFileSync(project.file("out/odd/events.json"), "utf8")).toBe(`[\n${records.join(",\n")}\n]\n`);
  });
});

describe("which bodies go to a worker", () => {
  it("a body declared small (Content-Length under 1 MiB) is decoded on the main thread", async () => {
    const small = Buffer.from(jsonlBody().toString().split("\n").slice(0, 2000).join("\n"));
    handler = (_req, res) => res.writeHead(200, { "content-length": String(small.length) }).end(small);
    const two = await runWith("small", JSONL, 2);
    expect(two.code, JSON.stringify(two.error)).toBe(0);
    expect(two.units).toBe(0);
  });

  // On the main thread alone this failed too: two streamed pages (no body bytes kept) looked like
  // the same page to the pagination guard (a "pagination loop" on page 2 of every paged export).
  it("pages of a stream that alternate big and small bodies hand the statistics over and back: identical to the main thread's", async () => {
    const lines = jsonlBody().toString().split("\n");
    const pages = [lines.slice(0, 15_000), lines.slice(15_000, 16_000), lines.slice(16_000)].map((p) =>
      Buffer.from(p.join("\n")),
    );
    handler = (req, res) => {
      const page = Number(new URL(req.url ?? "/", base).searchParams.get("page") ?? "1");
      const next: Record<string, string> =
        page < 3 ? { link: `<${base}/export?page=${page + 1}>; rel="next"` } : {};
      if (page === 2)
        return res.writeHead(200, { ...next, "content-length": String(pages[1].length) }).end(pages[1]);
      serve(pages[page - 1], next)(req, res);
    };
    const paged = (w: number | "auto") => JSONL(w, "\n    paginate: { type: link_header }");
    const one = await runWith("ev", paged, 1);
    const two = await runWith("ev", paged, 2);
    expect(one.code, JSON.stringify(one.error)).toBe(0);
    expect(one.records.seen).toBe(N);
    expect(two.units).toBeGreaterThan(8);
    const { units: _a, ...a } = one;
    const { units: _b, ...b } = two;
    expect(b).toEqual(a);
  });

  it("Ctrl-C in the middle of a body ends the run, commits nothing and leaves no worker thread", async () => {
    const body = jsonlBody();
    const ac = new AbortController();
    handler = (_req, res) => {
      res.writeHead(200);
      // 2 MiB, then the body stalls: the run is interrupted while a worker holds the stream.
      res.write(body.subarray(0, 2 * 1024 * 1024), () =>
        setTimeout(() => ac.abort(new Error("interrupted")), 200),
      );
    };
    project.pipeline("stall", JSONL(2));
    const before = recordWorkerUnits();
    const code = await run(["run", "stall", "--json"], {
      stdout: { write: () => {} },
      stderr: { write: () => {} },
      cwd: project.dir,
      env: {},
      signal: ac.signal,
    });
    expect(code).not.toBe(0);
    expect(recordWorkerUnits() - before).toBeGreaterThan(0);
    expect(() => readFileSync(project.file("out/stall/events.jsonl"))).toThrow();
    while (aliveRecordWorkers() > 0) await new Promise((r) => setTimeout(r, 10));
  });
});

/** A CSV report: BOM, CRLF, `;`, quoted cells with `;`, doubled quotes and line breaks, rows of the wrong width. */
function csvBody(): Buffer {
  const rows = ['"id";"amount";"note"'];
  for (let i = 1; i <= 80_000; i++) {
    const note = i % 3 === 0 ? `"row ${i}; ""quoted""\r\nsecond line\nthird"` : `plain ${i}`;
    rows.push(i % 2500 === 17 ? `${i};${i / 4}` : `${i};${(i / 4).toFixed(2)};${note}`);
  }
  return gzipSync(`\uFEFF${rows.join("\r\n")}\r\n`);
}

const CSV = (workers: number | "auto") => `
${sourceBlock(base, `workers: ${workers}`)}
streams:
  report:
    path: /report.csv.gz
    response: { format: csv, compression: gzip, csv: { delimiter: ";" } }
    fields:
      id: { path: $.id, type: integer }
      amount: { path: $.amount, type: number }
      note: $.note
validation: { max_invalid_ratio: 0.5 }
`;

describe("a gzip CSV export through a record worker", () => {
  it("gives byte for byte what the main thread gives, quoted line breaks across cuts and rows of the wrong width included", async () => {
    handler = serve(csvBody(), { "content-type": "application/octet-stream" });
    const one = await runWith("csv", CSV, 1);
    const two = await runWith("csv", CSV, 2);
    expect(one.units).toBe(0);
    expect(two.units).toBeGreaterThan(8);
    expect(one.code, JSON.stringify(one.error)).toBe(0);
    expect(one.records).toMatchObject({ seen: 80_000, invalid: 32 });
    expect(one.quarantine).toMatch(/line \d+: 2 cells, the header has 3/);
    expect(one.output).toContain('"note":"row 3; \\"quoted\\"\\r\\nsecond line\\nthird"');
    const { units: _a, ...a } = one;
    const { units: _b, ...b } = two;
    expect(b).toEqual(a);
  });

  it("lone \\r line endings (classic Mac) are cut into units too, not held whole; clean or cut, the main thread's output", async () => {
    const mac = gzipSync(
      gunzipSync(csvBody())
        .toString("utf8")
        .replaceAll(/\r\n(?=\d|$)/g, "\r"),
    );
    handler = serve(mac);
    const one = await runWith("csv", CSV, 1);
    const two = await runWith("csv", CSV, 2);
    expect(one.code, JSON.stringify(one.error)).toBe(0);
    expect(one.records).toMatchObject({ seen: 80_000, invalid: 32 });
    expect(two.units).toBeGreaterThan(8);
    handler = serve(mac, {}, 1, 200 * 1024);
    const cut = await runWith("csv", CSV, 2);
    expect(cut.units).toBeGreaterThan(8);
    const { units: _a, ...a } = one;
    for (const { units: _b, ...b } of [two, cut]) expect(b).toEqual(a);
  });

  it("a truncated gzip is retried; the output equals the main thread's clean run", async () => {
    const body = csvBody();
    handler = serve(body);
    const clean = await runWith("csv", CSV, 1);
    handler = serve(body, {}, 1, 200 * 1024);
    const cut = await runWith("csv", CSV, 2);
    expect(cut.units).toBeGreaterThan(8);
    const { units: _a, ...a } = clean;
    const { units: _b, ...b } = cut;
    expect(b).toEqual(a);
  });
});
