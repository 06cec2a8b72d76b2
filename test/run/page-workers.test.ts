import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aliveRecordWorkers, recordWorkerUnits } from "../../src/run/record-workers/pool.js";
import {
  closeServer,
  listenLocal,
  listFiles,
  normalizeRun,
  runPipeline,
  sourceBlock,
  tempProject,
} from "./helpers.js";

/**
 * Page processing (src/run/page-work/) keeps every promise of the record-by-record path: the same
 * output bytes, quarantine, counts, statistics, drift, suspicions, report and exit code, whether
 * the pages are processed on the main thread (`workers: 1`) or in a worker thread (`workers: 2`),
 * and the same as the record-by-record path itself (PIPELINES_PAGE_WORK=off).
 */
const TOTAL = 1234;
const SIZE = 100;

/** Record i as JSON text: big integers, `__proto__` keys, invalid records, duplicates and drift. */
function recordText(i: number): string {
  const id = i % 50 === 49 ? i - 1 : i; // a duplicate primary key every 50 records
  const parts = [
    `"id":${id}`,
    `"name":"r${i}"`,
    `"amount":${i % 97 === 5 ? '"not a number"' : i / 4}`, // invalid: amount is a number
    `"big":${10n ** 20n + BigInt(i)}`, // beyond 2^53: exact digits
  ];
  if (i % 31 === 0) parts.push(`"__proto__":{"polluted":${i}}`, `"constructor":"c${i}"`);
  if (i >= 700) parts.push(`"extra":"drift ${i % 7}"`); // a new field from record 700
  if (i % 211 === 3)
    parts.push(`"score":"high"`); // a type change (integer declared)
  else parts.push(`"score":${i % 10}`);
  parts.push(`"updated":"2024-01-${String(1 + (i % 28)).padStart(2, "0")}T00:00:00Z"`);
  return `{${parts.join(",")}}`;
}
const page = (from: number, to: number) =>
  Array.from({ length: Math.max(0, Math.min(to, TOTAL) - from) }, (_, k) => recordText(from + k)).join(",");

let server: Server;
let url: string;
let loopCalls = 0;
/** Requests to /flaky so far: every third one fails once (503, then 429). */
let flakyCalls = 0;
/** Holds the sixth page of /held until released (to look at the run while it is on). */
let held: { arrived: () => void; release: Promise<void> } | null = null;

beforeAll(async () => {
  // Small test pages: the worker takes over after two pages, not after 1 MiB of bodies.
  process.env.PIPELINES_PAGE_WORKER_AFTER = "0";
  server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const q = u.searchParams;
    const send = (body: string) => res.writeHead(200, { "content-type": "application/json" }).end(body);
    if (u.pathname === "/flaky" && ++flakyCalls % 3 === 0) {
      const status = flakyCalls % 2 ? 503 : 429;
      return res.writeHead(status, { "retry-after": "0" }).end("busy");
    }
    if (u.pathname === "/held" && q.get("cursor") === "500" && held) {
      const h = held;
      held = null;
      h.arrived();
      void h.release.then(() => send(`{"data":[${page(500, 600)}],"next":null}`));
      return;
    }
    // Three JSON pages (the third handed to the worker), then HTML.
    if (u.pathname === "/not-json") {
      const c = Number(q.get("cursor") ?? 0);
      if (c < 3) return send(`{"data":[${page(c * 100, c * 100 + 100)}],"next":"${c + 1}"}`);
      return res.writeHead(200, { "content-type": "text/html" }).end("<html>oops</html>");
    }
    if (u.pathname === "/cursor" || u.pathname === "/flaky" || u.pathname === "/held") {
      const c = q.get("cursor");
      // After the last records: an empty page that still carries a cursor, then one without.
      if (c === "tail") return send(`{"data":[],"next":null}`);
      const from = c === null ? 0 : Number(c);
      const next =
        from + SIZE >= TOTAL ? (from >= TOTAL ? "tail" : String(from + SIZE)) : String(from + SIZE);
      return send(`{"data":[${page(from, from + SIZE)}],"next":"${next}","meta":{"total":${TOTAL}}}`);
    }
    // The /cursor records, written as APIs write them: pretty-printed pages, records with spaces,
    // `2.0`, `\/` and `\u00e9` in them (not as JSON.stringify writes them), a member name written
    // with an escape, the records key twice, a BOM, the cursor in a nested object.
    if (u.pathname === "/pretty" || u.pathname === "/tricky") {
      const c = q.get("cursor");
      if (c === "tail")
        return send(
          u.pathname === "/pretty"
            ? `{\n  "data": [],\n  "next": null\n}`
            : `{"data":[],"meta":{"next":null}}`,
        );
      const from = c === null ? 0 : Number(c);
      const next =
        from + SIZE >= TOTAL ? (from >= TOTAL ? "tail" : String(from + SIZE)) : String(from + SIZE);
      const texts = Array.from({ length: Math.max(0, Math.min(from + SIZE, TOTAL) - from) }, (_, k) => {
        const i = from + k;
        let t = recordText(i).replace(
          `"name":"r${i}"`,
          i % 5 === 0 ? `"name":"r\\/${i}\\u00e9"` : `"name":"r${i}"`,
        );
        if (i % 3 === 0) t = t.replace('{"id":', '{ "id" : ');
        if (i % 8 === 0) t = t.replace(`"amount":${i / 4},`, `"amount":${i / 4}.0,`);
        return t;
      });
      if (u.pathname === "/pretty")
        return send(`{\n  "data": [\n    ${texts.join(",\n    ")}\n  ],\n  "next": "${next}"\n}\n`);
      const n = from / SIZE;
      const data = n === 1 ? '"d\\u0061ta"' : '"data"';
      const dup = n === 2 ? '"data":[{"id":-1}],' : "";
      const bom = n === 3 ? "\ufeff" : "";
      return send(`${bom}{${dup}${data}:[${texts.join(",")}],"meta":{"total":${TOTAL},"next":"${next}"}}`);
    }
    // Three pages, then one that looks like JSON to a scan (its records and cursor are where a
    // scan finds them) but does not parse: a comma before a closing brace.
    if (u.pathname === "/late-not-json") {
      const c = Number(q.get("cursor") ?? 0);
      if (c < 3) return send(`{"data":[${page(c * 100, c * 100 + 100)}],"next":"${c + 1}"}`);
      if (c === 3) return send(`{"data":[{"id":1,"name":"x","amount":1,}],"next":"${c + 1}"}`);
      return send(`{"data":[],"next":null}`);
    }
    // The next cursor in an array: read with `$.cursors.0` (a member of an array).
    if (u.pathname === "/array-cursor") {
      const c = Number(q.get("cursor") ?? 0);
      if (c >= 3) return send(`{"data":[],"cursors":[]}`);
      return send(`{"data":[${page(c * 100, c * 100 + 100)}],"cursors":["${c + 1}"]}`);
    }
    // Three pages, then one that is not JSON whose cursor sends the first page again: a loop the
    // scan sees before the parse refuses the page (the record path says "not JSON").
    if (u.pathname === "/loop-bad") {
      const c = Number(q.get("cursor") ?? 0);
      if (c < 3) return send(`{"data":[${page(c * 100, c * 100 + 100)}],"next":"${c + 1}"}`);
      return send(`{"data":[{"id":1,"name":"x",}],"next":"1"}`);
    }
    // Four pages, one whose record is nested too deep, then 404: the page's own error is told.
    if (u.pathname === "/deep-then-404") {
      const c = Number(q.get("cursor") ?? 0);
      if (c < 4) return send(`{"data":[${page(c * 100, c * 100 + 100)}],"next":"${c + 1}"}`);
      const deep = `${"[".repeat(1100)}${"]".repeat(1100)}`;
      if (c === 4) return send(`{"data":[{"id":1,"name":"x","amount":1,"deep":${deep}}],"next":"5"}`);
      return res.writeHead(404).end("{}");
    }
    // Four pages, one that is not JSON, then 404: the page's own error is the one told.
    if (u.pathname === "/bad-then-404") {
      const c = Number(q.get("cursor") ?? 0);
      if (c < 4) return send(`{"data":[${page(c * 100, c * 100 + 100)}],"next":"${c + 1}"}`);
      if (c === 4) return send(`{"data":[{"id":1,"name":"x",}],"next":"5"}`);
      return res.writeHead(404).end("{}");
    }
    // A page like the one before (count, first and last record) whose middle record is not JSON:
    // the loop guard compares the records before the page is parsed.
    if (u.pathname === "/mid-bad") {
      const c = Number(q.get("cursor") ?? 0);
      const middle = c === 3 ? '{"id": 2 x}' : `{"id": 2, "page": ${c}}`;
      return send(`{"data":[{"id":1},${middle},{"id":3}],"next":${c < 3 ? `"${c + 1}"` : "null"}}`);
    }
    if (u.pathname === "/offset") {
      const from = Number(q.get("offset"));
      const n = Math.min(Number(q.get("limit")), 70); // the server caps the page size
      return send(`{"items":[${page(from, from + n)}],"total":${TOTAL}}`);
    }
    if (u.pathname === "/page") {
      const p = Number(q.get("page"));
      const n = Number(q.get("per_page"));
      return send(
        `{"results":[${page((p - 1) * n, p * n)}],"total_pages":${Math.ceil(TOTAL / n)},"page":${p}}`,
      );
    }
    // From the fifth page on, the cursor sent before comes back (pages 1-3 are processed on the
    // main thread, the rest in the worker).
    if (u.pathname === "/loop-cursor") {
      const c = Number(q.get("cursor") ?? 0);
      return send(`{"data":[${page(c * 10, c * 10 + 10)}],"next":"${Math.min(c + 1, 4)}"}`);
    }
    // From page 4 on, ignores the page parameter: the same records, in a body that differs.
    if (u.pathname === "/loop-page") {
      const p = Math.min(Number(q.get("page")), 4);
      return send(`{"results":[${page(p * 10, p * 10 + 10)}],"request":${loopCalls++}}`);
    }
    res.writeHead(404).end();
  });
  url = await listenLocal(server);
});
afterAll(async () => {
  delete process.env.PIPELINES_PAGE_WORKER_AFTER;
  await closeServer(server);
});

const SCHEMA = JSON.stringify({
  type: "object",
  required: ["id", "name", "amount"],
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    amount: { type: "number" },
    big: { type: "integer" },
    score: { type: "integer" },
    updated: { type: "string" },
  },
});

const STREAMS: Record<string, string> = {
  cursor: `path: /cursor\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  offset: `path: /offset\n    records: $.items\n    paginate: { type: offset, limit: 100, total: $.total }`,
  page: `path: /page\n    records: $.results\n    paginate: { type: page, size_param: per_page, size: 90, total_pages: $.total_pages }`,
  flaky: `path: /flaky\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  held: `path: /held\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  pretty: `path: /pretty\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  tricky: `path: /tricky\n    records: $.data\n    paginate: { type: cursor, cursor: $.meta.next }`,
  "late-not-json": `path: /late-not-json\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  "array-cursor": `path: /array-cursor\n    records: $.data\n    paginate: { type: cursor, cursor: $.cursors.0 }`,
  "loop-bad": `path: /loop-bad\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  "bad-then-404": `path: /bad-then-404\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  "mid-bad": `path: /mid-bad\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  "deep-then-404": `path: /deep-then-404\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  "whole-cursor": `path: /cursor\n    records: $.data\n    paginate: { type: cursor, cursor: $ }`,
  "not-json": `path: /not-json\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  "loop-cursor": `path: /loop-cursor\n    records: $.data\n    paginate: { type: cursor, cursor: $.next }`,
  "loop-page": `path: /loop-page\n    records: $.results\n    paginate: { type: page, size_param: per_page, size: 10 }`,
};

/** `records`: the record-by-record path (pull.ts), every page parsed before the next is asked for. */
type Variant = "records" | "workers 1" | "workers 2" | "workers auto";

async function runVariant(kind: string, variant: Variant, concurrency = 3, during?: () => Promise<void>) {
  const p = tempProject("pipelines-page-workers-");
  try {
    p.pipeline(
      "p",
      `${sourceBlock(url, `concurrency: ${concurrency}\nworkers: ${variant === "workers 2" ? 2 : variant === "workers auto" ? "auto" : 1}`)}
streams:
  s:
    ${STREAMS[kind]}
    schema: s.schema.json
    primary_key: id
    incremental: { cursor_field: updated, param: since }
output: { format: jsonl }
`,
    );
    writeFileSync(p.file("schemas/s.schema.json"), SCHEMA);
    if (variant === "records") process.env.PIPELINES_PAGE_WORK = "off";
    let r: Awaited<ReturnType<typeof runPipeline>>;
    const unitsBefore = recordWorkerUnits();
    try {
      const running = runPipeline(p.dir, "p");
      await during?.();
      r = await running;
    } finally {
      delete process.env.PIPELINES_PAGE_WORK;
    }
    const read = (rel: string) => (existsSync(p.file(rel)) ? readFileSync(p.file(rel), "utf8") : null);
    const report = JSON.parse(read("reports/p/latest.json") ?? "null");
    return {
      code: r.code,
      /** Units this run sent to a worker thread (0: the main thread did all the record work). */
      units: recordWorkerUnits() - unitsBefore,
      output: read("out/p/s.jsonl"),
      quarantine: read("out/p/s.invalid.jsonl") ?? read(".pipelines/quarantine/p/s.jsonl"),
      state: normalizeRun(JSON.parse(read(".pipelines/state/p.json") ?? "null")),
      summary: normalizeRun(r.summary),
      report: normalizeRun(report),
      files: listed(p.dir),
    };
  } finally {
    p.cleanup();
  }
}

/** Times, durations, rates and run ids differ from run to run; nothing else may. */

function listed(dir: string): string[] {
  return listFiles(dir).map((f) => f.replace(/\d{8}T\d{6}Z-[0-9a-f]{6}/g, "RUN"));
}

describe("page processing: workers 1 and 2 against the record-by-record path", () => {
  for (const kind of ["cursor", "offset", "page", "pretty", "tricky"]) {
    it(`${kind} pages: identical output, quarantine, state, summary and report`, async () => {
      const records = await runVariant(kind, "records");
      const one = await runVariant(kind, "workers 1");
      const two = await runVariant(kind, "workers 2");
      expect(records.code).toBe(0);
      expect(records.output?.split("\n").length).toBeGreaterThan(1000);
      expect(records.quarantine).not.toBeNull();
      // drift (a new field, a changed type) and duplicates are in what is compared
      expect(JSON.stringify(records.report)).toMatch(/"new_fields":\[\{"field":"extra"/);
      expect(JSON.stringify(records.report)).toContain('{"field":"score","expected":["integer"]');
      expect(JSON.stringify(records.summary)).toMatch(/"duplicates":2[0-9]/);
      expect(records.output?.includes('"big":100000000000000000004,')).toBe(true);
      expect(records.output?.includes('"__proto__":{"polluted":31}')).toBe(true);
      expect([records.units, one.units]).toEqual([0, 0]);
      expect(two.units).toBeGreaterThan(0); // the worker path was taken
      for (const other of [one, two]) {
        expect(other.code).toBe(records.code);
        expect(other.output === records.output).toBe(true);
        expect(other.quarantine === records.quarantine).toBe(true);
        expect(other.state).toEqual(records.state);
        expect(other.summary).toEqual(records.summary);
        expect(other.report).toEqual(records.report);
        expect(other.files).toEqual(records.files);
      }
    });
  }

  for (const kind of ["loop-cursor", "loop-page"]) {
    // One request at a time: how many guesses were in flight when a loop stops a stream is timing.
    it(`${kind}: the guards see the same loop`, async () => {
      const records = await runVariant(kind, "records", 1);
      const one = await runVariant(kind, "workers 1", 1);
      const two = await runVariant(kind, "workers 2", 1);
      expect(records.code).not.toBe(0);
      expect(JSON.stringify(records.summary)).toContain("pagination_loop");
      expect(two.units).toBeGreaterThan(0); // the loop was seen by the guards in the worker
      for (const other of [one, two]) {
        expect(other.code).toBe(records.code);
        expect(other.summary).toEqual(records.summary);
        expect(other.report).toEqual(records.report);
      }
    });
  }

  it("workers 2 processes the pages in a worker thread, ended with the stream", async () => {
    let threads = -1;
    let release = () => {};
    const arrived = new Promise<void>((resolve) => {
      held = { arrived: resolve, release: new Promise<void>((r) => (release = r)) };
    });
    await runVariant("held", "workers 2", 1, async () => {
      await arrived; // the sixth page is asked for: the worker has taken over from page 3
      threads = aliveRecordWorkers();
      release();
    });
    expect(threads).toBe(1);
    expect(aliveRecordWorkers()).toBe(0);
  });

  it("streams running together share workers − 1 threads (workers 2: one), with the same output", async () => {
    const outputs: Record<string, string | null>[] = [];
    const codes: number[] = [];
    const unitsBefore = recordWorkerUnits();
    let most = 0;
    for (const workers of [1, 2]) {
      const p = tempProject("pipelines-page-workers-shared-");
      try {
        const streams = ["cursor", "offset", "page"]
          .map((k) => `  ${k}:\n    ${STREAMS[k]}\n    schema: s.schema.json\n    primary_key: id`)
          .join("\n");
        p.pipeline(
          "p",
          `${sourceBlock(url, `concurrency: 3\nworkers: ${workers}`)}\nstreams:\n${streams}\noutput: { format: jsonl }\n`,
        );
        writeFileSync(p.file("schemas/s.schema.json"), SCHEMA);
        const watch = setInterval(() => {
          most = Math.max(most, aliveRecordWorkers());
        }, 1);
        const r = await runPipeline(p.dir, "p").finally(() => clearInterval(watch));
        codes.push(r.code);
        const read = (rel: string) => (existsSync(p.file(rel)) ? readFileSync(p.file(rel), "utf8") : null);
        outputs.push({
          cursor: read("out/p/cursor.jsonl"),
          offset: read("out/p/offset.jsonl"),
          page: read("out/p/page.jsonl"),
        });
      } finally {
        p.cleanup();
      }
    }
    expect(outputs[0].cursor).toBeTruthy();
    expect(outputs[1]).toEqual(outputs[0]);
    expect(codes[1]).toBe(codes[0]);
    expect(recordWorkerUnits() - unitsBefore).toBeGreaterThan(0);
    expect(most).toBe(1);
  });

  it("a body that is not JSON fails the same way, masked, in every variant", async () => {
    const records = await runVariant("not-json", "records");
    const two = await runVariant("not-json", "workers 2");
    expect(records.code).not.toBe(0);
    expect(JSON.stringify(records.summary)).toContain("not_json");
    expect(two.units).toBeGreaterThan(0); // the HTML page reached the worker
    expect(two.code).toBe(records.code);
    expect(two.summary).toEqual(records.summary);
    expect(two.report).toEqual(records.report);
  });

  it("a body a scan reads but JSON.parse refuses fails as a body that is not JSON, the pages before written", async () => {
    const records = await runVariant("late-not-json", "records", 1);
    expect(records.code).not.toBe(0);
    expect(JSON.stringify(records.summary)).toContain("with a body that is not JSON");
    for (const variant of ["workers 1", "workers 2"] as const) {
      const other = await runVariant("late-not-json", variant, 1);
      expect(other.code).toBe(records.code);
      expect(other.output === records.output).toBe(true);
      // The next page's request left when the page's cursor was read, before the page was
      // parsed: one request more (as a guessed page) and the page counted; nothing else differs.
      const requests = (x: unknown) =>
        JSON.stringify(x)
          .replace(/"requests":\d+/g, '"requests":N')
          .replace(/"pages":\d+/g, '"pages":N');
      expect(requests(other.summary)).toBe(requests(records.summary));
      expect(requests(other.report)).toBe(requests(records.report));
    }
  });

  it("paginator paths into an array or the whole body read what the record path reads", async () => {
    for (const kind of ["array-cursor", "whole-cursor"]) {
      const records = await runVariant(kind, "records", 1);
      if (kind === "array-cursor") expect(JSON.stringify(records.summary)).toContain('"seen":300');
      for (const variant of ["workers 1", "workers 2"] as const) {
        const other = await runVariant(kind, variant, 1);
        expect([kind, variant, other.code]).toEqual([kind, variant, records.code]);
        expect(other.output === records.output).toBe(true);
        expect(other.summary).toEqual(records.summary);
      }
    }
  });

  it("a page's own error (not JSON, nested too deep) is told before what its scanned head set off after it", async () => {
    const kinds = {
      "loop-bad": "not_json",
      "bad-then-404": "not_json",
      "mid-bad": "not_json",
      "deep-then-404": "too_deep",
    };
    for (const [kind, expected] of Object.entries(kinds)) {
      const records = await runVariant(kind, "records", 1);
      expect(JSON.stringify(records.summary)).toContain(`"kind":"${expected}"`);
      for (const variant of ["workers 1", "workers 2"] as const) {
        const other = await runVariant(kind, variant, 1);
        const stream = (x: unknown) => (x as { streams: { error: unknown; records: unknown }[] }).streams[0];
        expect([kind, variant, stream(other.summary).error]).toEqual([
          kind,
          variant,
          stream(records.summary).error,
        ]);
        expect(stream(other.summary).records).toEqual(stream(records.summary).records);
        expect(other.code).toBe(records.code);
      }
    }
  });

  it("retried 429/503 pages give the clean run's output with workers", async () => {
    const clean = await runVariant("cursor", "workers 2");
    const faulty = await runVariant("flaky", "workers 2");
    expect(JSON.stringify(faulty.summary)).toMatch(/"retries":\{"[^}]+\}/);
    expect(faulty.units).toBeGreaterThan(0);
    expect(faulty.code).toBe(clean.code);
    expect(faulty.output === clean.output).toBe(true);
    expect(faulty.quarantine === clean.quarantine).toBe(true);
    expect(faulty.state).toEqual(clean.state);
  });

  it("workers: auto keeps paged JSON on the main thread (measured faster on 2 cores), same output", async () => {
    const before = recordWorkerUnits();
    const auto = await runVariant("cursor", "workers auto");
    expect(recordWorkerUnits()).toBe(before);
    const two = await runVariant("cursor", "workers 2");
    expect(recordWorkerUnits()).toBeGreaterThan(before);
    expect(auto.output === two.output).toBe(true);
    expect(auto.summary).toEqual(two.summary);
  });
});
