/**
 * PageProcessor (src/run/page-work/page-processor.ts) with pages read by a scan first and
 * canonical records copied from their bytes: its heads against the same processor parsing every
 * page first (PIPELINES_PAGE_SCAN=off), its lines against every page parsed and every record
 * serialized (recordLines without the page's bytes: the path before copies existed). On generated
 * pages — canonical and not, white space between and inside records, invalid records, filtered
 * ones, duplicate keys, big integers, escapes — the heads, the written bytes, the counts, the
 * keys and lengths for de-duplication, the quarantine and the statistics are the same.
 */
import { describe, expect, it } from "vitest";
import type { StreamPlan, ValidationPlan } from "../../src/compile/plan.js";
import { jsonKeyFunction } from "../../src/outputs/merge.js";
import { StreamQuality } from "../../src/records/quality.js";
import { compileShaper } from "../../src/records/shape.js";
import type { PageHeads } from "../../src/run/page-work/page-heads.js";
import { type PagePlan, PageProcessor } from "../../src/run/page-work/page-processor.js";
import { recordLines } from "../../src/run/record-workers/record-lines.js";
import type { LinesChunk } from "../../src/run/record-workers/streamed-types.js";
import { LINE_CANONICAL, LINE_NOT } from "../../src/shared/json-spans.js";
import { parseJson } from "../../src/shared/json-text.js";

const validation: ValidationPlan = { invalidRecords: "skip", maxInvalidRatio: 1, drift: "warn" };
const schema = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "integer" }, name: { type: "string" }, amount: { type: "number" } },
};

function plan(filter: string | null): PagePlan {
  return {
    stream: {
      name: "s",
      records: "$.data",
      fields: null,
      exclude: null,
      flatten: null,
      includeParent: null,
      filter,
      schema: { file: null, schema },
      primaryKey: ["id"],
    } as unknown as PagePlan["stream"],
    context: { runId: "r", startedAt: "2024-01-01T00:00:00Z", pipeline: "p", stream: "s" },
    validation,
    cursorField: "amount",
    paths: ["$.meta.next"],
    asked: null,
  };
}

function processor(scan: boolean, filter: string | null): { p: PageProcessor; quality: StreamQuality } {
  const before = process.env.PIPELINES_PAGE_SCAN;
  if (scan) delete process.env.PIPELINES_PAGE_SCAN;
  else process.env.PIPELINES_PAGE_SCAN = "off";
  try {
    const pl = plan(filter);
    const quality = new StreamQuality(pl.stream as unknown as StreamPlan, validation);
    return { p: new PageProcessor(pl, quality), quality };
  } finally {
    if (before === undefined) delete process.env.PIPELINES_PAGE_SCAN;
    else process.env.PIPELINES_PAGE_SCAN = before;
  }
}

/** Every page parsed, every record serialized: the lines as they were made before copies. */
function reference(filter: string | null) {
  const pl = plan(filter);
  const quality = new StreamQuality(pl.stream as unknown as StreamPlan, validation);
  const shaper = compileShaper(pl.stream, pl.context);
  const maker = { shaper, quality, skip: true, keyOf: jsonKeyFunction(["id"]), cursorField: "amount" };
  return {
    quality,
    lines: (page: Buffer) => recordLines(maker, shaper.select(parseJson(page.toString("utf8")))),
  };
}

/** The lines as text, whatever form they came in. */
const text = (c: LinesChunk) => (typeof c.text === "string" ? c.text : Buffer.from(c.text).toString("utf8"));

function generator(seed: number) {
  let s = seed;
  const rand = (n: number) => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s % n;
  };
  const values = [
    '"x"',
    '"é"',
    '"a\\"b"',
    '"\\u00e9"',
    '"\\/"',
    "1",
    "1.5",
    "2.0",
    "1e3",
    "-0",
    "null",
    "true",
  ];
  const ids = ["1", "2", "3", '"three"', "12345678901234567890"];
  const record = () => {
    const members = [`"id":${ids[rand(ids.length)]}`];
    if (rand(2)) members.push(`"name":${values[rand(values.length)]}`);
    if (rand(2)) members.push(`"amount":${values[rand(values.length)]}`);
    if (rand(8) === 0) members.push(`"name":"again"`); // a key twice: JSON.parse keeps the last
    if (rand(8) === 0) members.push(`"nested":{"k":[1,{"z":${values[rand(values.length)]}}]}`);
    const sep = rand(5) === 0 ? ", " : ",";
    return rand(6) === 0 ? `{ ${members.join(sep)} }` : `{${members.join(sep)}}`;
  };
  return (n: number) => {
    const recs = Array.from({ length: rand(6) }, record);
    if (n % 7 === 3 && recs.length) recs.push("42", '"a string"'); // not objects: invalid records
    const sep = rand(3) === 0 ? ",\n  " : ",";
    return `{"data":[${recs.join(sep)}],"meta":{"next":${rand(4) ? `"c${n}"` : "null"}}}`;
  };
}

describe("PageProcessor: scanned pages against parsed ones", () => {
  for (const filter of [null, "@.amount != 1"]) {
    it(`the same heads, bytes, counts, keys and statistics on generated pages (filter: ${filter})`, () => {
      for (let seed = 1; seed <= 40; seed++) {
        const next = generator(seed);
        const a = processor(true, filter);
        const b = processor(false, filter);
        const ref = reference(filter);
        for (let n = 0; n < 12; n++) {
          const page = Buffer.from(next(n), "utf8");
          const ha = a.p.head(page);
          const hb = b.p.head(page);
          expect(ha?.count, page.toString()).toBe(hb?.count);
          expect(ha?.values).toEqual(hb?.values);
          expect(ha?.compared).toEqual(hb?.compared);
          const la = a.p.lines();
          const lb = b.p.lines();
          const lr = ref.lines(page);
          for (const other of [lb, lr]) {
            expect(text(la), page.toString()).toBe(text(other));
            // `checked` says how the records were read (from bytes or parsed), not what they are.
            const { text: _a, checked: _ca, ...restA } = la;
            const { text: _o, checked: _co, ...restO } = other;
            expect(restA).toEqual(restO);
          }
        }
        expect(a.quality.exportState()).toEqual(ref.quality.exportState());
        expect(b.quality.exportState()).toEqual(ref.quality.exportState());
      }
    });
  }

  it("copies canonical records as they came (the scan path is the one taken)", () => {
    const a = processor(true, null);
    const page = Buffer.from('{"data":[{"id":1,"name":"x"},{"id":2,"name":"y"}],"meta":{"next":null}}');
    a.p.head(page);
    const lines = a.p.lines();
    expect(lines.text).toBeInstanceOf(Uint8Array); // bytes: copied from the page
    expect(text(lines)).toBe('{"id":1,"name":"x"}\n{"id":2,"name":"y"}\n');
    const b = processor(false, null);
    b.p.head(page);
    expect(b.p.lines().text).toBeInstanceOf(Uint8Array); // parsed first, then copied too
  });

  it("the scan reads the records strictly only for a stream the byte check reads", () => {
    const page = Buffer.from('{"data":[{"id":1,"name":"x"},{"id": 2}],"meta":{"next":null}}');
    const heads = (p: PageProcessor) => (p as unknown as { heads: PageHeads }).heads;
    // No filter: the byte check reads the records, and the scan's flags are there for it.
    expect(heads(processor(true, null).p).read(page)!.scan!.lines).toEqual([LINE_CANONICAL, LINE_NOT]);
    // A filter: the records are parsed, and the scan does not read them.
    expect(heads(processor(true, "$.id > 0").p).read(page)!.scan!.lines).toBeNull();
  });
});
