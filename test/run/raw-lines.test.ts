import { readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { StreamQuality } from "../../src/records/quality.js";
import { RawLines, rawLinesTaken } from "../../src/run/raw-lines.js";
import { runPipeline, sourceBlock, tempProject, useLocalServer } from "./helpers.js";

/**
 * A JSON lines export whose records nothing reads (no schema, no shaping: src/run/raw-lines.ts)
 * is written from its canonical lines as they came, unparsed. Everything must be exactly what
 * parsing every line gives (PIPELINES_RAW_LINES=off): the output's bytes, the counts, the
 * report's field statistics, errors with their line numbers, a body read again after a reset,
 * the pagination guards. Bodies mix runs of canonical lines with lines the raw reading refuses
 * (white space, CRLF, blank lines, `\u` escapes, `1.50`), served in 16 KiB writes.
 */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
const server = useLocalServer((req, res) => handler(req, res));
const project = tempProject("pipelines-raw-lines-");
afterAll(() => project.cleanup());
afterEach(() => {
  delete process.env.PIPELINES_RAW_LINES;
});

/** Serves `body` chunked in 16 KiB writes; the first `cuts` responses reset after `cutAt` bytes. */
function serve(
  body: Buffer,
  cuts = 0,
  cutAt = 0,
  headers: (n: number) => Record<string, string> = () => ({}),
): Handler {
  let served = 0;
  return (_req, res) => {
    const n = served++;
    res.writeHead(200, { "content-type": "application/x-ndjson", ...headers(n) });
    let i = 0;
    const step = () => {
      if (n < cuts && i >= cutAt) {
        res.socket?.destroy();
        return;
      }
      if (i >= body.length) return res.end();
      const next = body.subarray(i, i + 16 * 1024);
      i += 16 * 1024;
      if (res.write(next)) setImmediate(step);
      else res.once("drain", step);
    };
    step();
  };
}

/** 20,000 lines: blocks of canonical lines, and now and then lines the raw reading refuses. */
function body(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const block = Math.floor(i / 700) % 4; // whole chunks of one kind and of the other
    const nested = `{"n":${i},"price":${(i % 1000) / 10},"tags":["a","b\\"c"],"ok":${i % 2 === 0},"none":null}`;
    let line = `{"event":"${i % 5 ? "click" : "view"}","id":${i},"props":${nested},"text":"é ${"x".repeat(i % 30)} 😀"}`;
    if (i % 997 === 3)
      line = `{"id":${i},"big":123456789012345678901234,"__proto__":{"p":1},"k\\"ey":"v\\n"}`;
    if (i % 1301 === 7) line = `{"id":${i},"maybe":null,"arr":[],"obj":{},"neg":-12.5}`;
    if (block === 3 && i % 50 === 0) line = `{"id": ${i}, "spaced": true}`;
    if (block === 3 && i % 70 === 1) line = `{"id":${i},"esc":"\\u00e9","price":1.50}`;
    if (block === 2 && i % 90 === 2) lines.push("");
    lines.push(line);
  }
  const crlf = lines.slice(0, 8000).join("\n");
  return Buffer.from(`${crlf}\n${lines.slice(8000, 12000).join("\r\n")}\r\n${lines.slice(12000).join("\n")}`); // no final newline
}

const BODY = body();

function pipeline(name: string, extra = "", response = "{ format: jsonl }"): void {
  writeFileSync(
    project.file(`pipelines/${name}.yaml`),
    `${sourceBlock(server.url)}
streams:
  events:
    path: /export
    response: ${response}
${extra}`,
  );
}

/**
 * A run with the raw reading off then on, each against a fresh `serving()`: both results. The
 * run with it on must have taken some lines raw (rawLinesTaken), the one with it off none.
 */
async function both(name: string, serving: () => Handler) {
  const out = [];
  for (const mode of ["off", "on"]) {
    handler = serving();
    if (mode === "off") process.env.PIPELINES_RAW_LINES = "off";
    else delete process.env.PIPELINES_RAW_LINES;
    const before = rawLinesTaken();
    const r = await runPipeline(project.dir, name);
    // The raw path took part when on, and none when off (else the comparison proves nothing).
    if (mode === "off") expect(rawLinesTaken()).toBe(before);
    else expect(rawLinesTaken()).toBeGreaterThan(before);
    const report = JSON.parse(readFileSync(project.file(`reports/${name}/latest.json`), "utf8"));
    let output: string | null = null;
    try {
      output = readFileSync(project.file(`out/${name}/events.jsonl`), "utf8");
    } catch {}
    const s = report.streams[0];
    out.push({
      code: r.code,
      stderr: r.stderr
        .replace(/\d+(\.\d+)?m?s\b/g, "T")
        .replace(/run \S+/g, "run R")
        .replace(/reports\/\S+/g, "REPORT")
        .replace(/^.*\] started\n/gm, ""), // shown or not, as the first bytes take their time
      records: r.stream("events").records,
      output,
      stats: { fields: s.fields, records: s.records, errors: s.errors, error: s.error, stop: s.stop_reason },
    });
  }
  return out;
}

describe("raw JSON lines (a stream whose records nothing reads)", () => {
  it("gives exactly the output, counts and report statistics of parsing every line", async () => {
    pipeline("plain");
    const [off, on] = await both("plain", () => serve(BODY));
    expect(off.code).toBe(0);
    expect(on).toEqual(off);
    expect(off.records.written).toBe(20_000);
    expect(on.output!.split("\n").length).toBe(20_001);
  });

  it("the same after a reset in the middle of the body (read again, nothing twice)", async () => {
    pipeline("reset");
    const [off, on] = await both("reset", () => serve(BODY, 1, 600 * 1024));
    const [clean] = await both("reset", () => serve(BODY));
    expect(off.records).toMatchObject({ written: 20_000 });
    expect(off.stderr).toMatch(/1 retry/);
    expect(off.code).toBe(0);
    expect(on).toEqual(off);
    expect(on.output).toBe(clean.output);
  });

  it("a malformed line fails the stream the same way, naming its line", async () => {
    pipeline("bad");
    const lines = BODY.toString().split("\n");
    lines[15_000] = '{"id":1,"oops"}';
    const [off, on] = await both("bad", () => serve(Buffer.from(lines.join("\n"))));
    expect(off.code).not.toBe(0);
    expect(off.stats.error.message).toMatch(/line 15001 of the JSON lines body/);
    // What was counted before the failing chunk depends on how the bytes arrived: not compared.
    expect([on.code, on.stats.error, on.output]).toEqual([off.code, off.stats.error, off.output]);
  });

  it("pages: the loop guard still sees two pages with the same records", async () => {
    pipeline("loop", "    paginate: { type: link_header }\n");
    const page = Buffer.from('{"id":1}\n{"id":2}\n');
    const [off, on] = await both("loop", () =>
      serve(page, 0, 0, (n) => ({ link: `<${server.url}/export?page=${n + 2}>; rel="next"` })),
    );
    expect(off.stats.error?.message ?? off.stderr).toMatch(/pagination loop/);
    expect(on).toEqual(off);
  });

  it("pages: the guard compares each page's own first and last records", async () => {
    pipeline("twopages", "    paginate: { type: link_header }\n");
    const pages = ['{"id":"a"}\n{"id":"b"}\n', '{"id":"b"}\n{"id":"b"}\n', '{"id":"c"}\n'];
    const [off, on] = await both("twopages", () => {
      let n = 0;
      return (_req, res) => {
        const i = n++;
        res.writeHead(200, i < 2 ? { link: `<${server.url}/export?page=${i + 2}>; rel="next"` } : {});
        res.end(pages[i] ?? "");
      };
    });
    expect(off.code).toBe(0);
    expect(off.records.written).toBe(5);
    expect(on).toEqual(off);
  });
});

describe("pages of an export compared whole by the loop guard", () => {
  it("pages with the same first and last records but others between are not a loop", async () => {
    pipeline("middles", "    paginate: { type: link_header }\n");
    const pages = [1, 2, 3, 4].map((n) => `{"id":"first"}\n{"id":"middle-${n}"}\n{"id":"last"}\n`);
    const [off, on] = await both("middles", () => {
      let n = 0;
      return (_req, res) => {
        const i = n++;
        res.writeHead(200, i < 3 ? { link: `<${server.url}/export?page=${i + 2}>; rel="next"` } : {});
        res.end(pages[i] ?? "");
      };
    });
    expect(off.stats.error).toBeNull();
    expect(off.code).toBe(0);
    expect(off.records.written).toBe(12);
    expect(on).toEqual(off);
  });
});

describe("raw CSV rows (made JSON lines by a replacement)", () => {
  const names = [
    "id",
    "name $1",
    "$&",
    "é 中",
    "__proto__",
    "c6",
    "c7",
    "c8",
    "c9",
    "tenth",
    "eleventh",
    "12th",
  ];
  /** 15,000 rows: runs of plain rows, and now and then a quoted cell, a backslash, a tab, a row of another width. */
  function csv(delimiter: string): Buffer {
    const rows = [names.join(delimiter)];
    for (let i = 0; i < 15_000; i++) {
      const cells = names.map((_, k) =>
        k === 3 ? `é 😀 {}[]:$1 ${i}` : k === 5 && i % 4 === 0 ? "" : `v${i}-${k}`,
      );
      const block = Math.floor(i / 600) % 3;
      if (block === 2 && i % 40 === 0) cells[1] = '"quoted, ""with"" a\nline break"';
      if (block === 2 && i % 45 === 1) cells[2] = "back\\slash";
      if (block === 2 && i % 50 === 2) cells[6] = "a\ttab";
      if (block === 2 && i % 55 === 3) cells.pop();
      rows.push(cells.join(delimiter));
    }
    return Buffer.from(`\uFEFF${rows.join("\r\n")}\r\n`);
  }

  for (const [delimiter, label] of [
    [",", "comma"],
    [";", "semicolon"],
  ] as const)
    it(`gives exactly what decoding every row gives (${label})`, async () => {
      pipeline(`csv-${label}`, "", `{ format: csv, csv: { delimiter: "${delimiter}" }, compression: gzip }`);
      const body = gzipSync(csv(delimiter));
      const [off, on] = await both(`csv-${label}`, () => serve(body));
      expect(off.code).toBe(0);
      expect(off.records.invalid).toBeGreaterThan(0); // the short rows
      expect(on).toEqual(off);
    });

  it("a tab-separated body, read again after a reset", async () => {
    pipeline("tsv", "", '{ format: csv, csv: { delimiter: "\\t" } }');
    const body = csv("\t");
    const [off, on] = await both("tsv", () => serve(body, 1, 300 * 1024));
    expect(off.code).toBe(0);
    expect(off.stderr).toMatch(/1 retry/);
    expect(on).toEqual(off);
  });
});

describe("RawLines", () => {
  it("takes canonical lines (counting them as check() would) and leaves any other run to the decoder", () => {
    const q1 = new StreamQuality({ schema: null, primaryKey: null }, { drift: "warn" } as never);
    const q2 = new StreamQuality({ schema: null, primaryKey: null }, { drift: "warn" } as never);
    const raw = new RawLines(q1);
    const text = '{"a":1,"b":"x","c":null}\n{"a":2.5,"d":[1]}\n{"b":{"e":true}}\n';
    expect(raw.take(Buffer.from(text))).toBe(3);
    for (const line of text.trim().split("\n")) q2.check(JSON.parse(line));
    expect(q1.fieldStats()).toEqual(q2.fieldStats());
    expect([q1.seen, q1.valid]).toEqual([q2.seen, q2.valid]);
    expect(raw.chunks[0]).toMatchObject({
      written: 3,
      first: '{"a":1,"b":"x","c":null}',
      last: '{"b":{"e":true}}',
    });
    for (const refused of [
      '{"a":1}\n{"a" :2}\n',
      '{"a":1}\r\n',
      '{"a":1}\n\n',
      '{"a":"\\u0041"}\n',
      '{"a":1.50}\n',
    ])
      expect(raw.take(Buffer.from(refused))).toBe(-1);
    expect(raw.chunks.length).toBe(1); // a refused run counted nothing
    expect(q1.seen).toBe(3);
  });
});
