import { describe, expect, it } from "vitest";
import { CsvDecoder } from "../../src/records/decoders/csv.js";
import type { RecordDecoder } from "../../src/records/decoders/index.js";
import { JsonlDecoder } from "../../src/records/decoders/jsonl.js";
import { FIELD_ERRORS } from "../../src/records/field-specs.js";
import { RowCutter } from "../../src/run/record-workers/cut.js";
import { stringifyJson } from "../../src/shared/json-text.js";
import { seeded } from "../helpers/seeded.js";

/** Feeds `text` in chunks of `size` bytes (splitting UTF-8 characters and CRLFs anywhere). */
function decode(d: RecordDecoder, text: string | Buffer, size: number): unknown[] {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, "utf8");
  const out: unknown[] = [];
  for (let i = 0; i < bytes.length; i += size) d.push(bytes.subarray(i, i + size), out);
  d.end(out);
  return out;
}

describe("jsonl decoder", () => {
  const body = '\uFEFF{"id":1,"name":"é"}\r\n\n{"id":12345678901234567890}\n{"id":3}';
  for (const size of [1, 2, 3, 7, 1000])
    it(`decodes the same records whatever the chunk size (${size})`, () => {
      const d = new JsonlDecoder();
      expect(decode(d, body, size)).toEqual([{ id: 1, name: "é" }, { id: 12345678901234567890n }, { id: 3 }]);
      expect(d.completeBytes).toBe(Buffer.byteLength(body));
      expect(d.lines).toBe(4);
    });
  it("a malformed line is an error naming its line number", () => {
    expect(() => decode(new JsonlDecoder(), '{"a":1}\n{"a":2}\n{"a":\n', 4)).toThrow(
      /line 3 of the JSON lines body/,
    );
  });
  it("holds only the unfinished line", () => {
    const d = new JsonlDecoder();
    const out: unknown[] = [];
    const line = Buffer.from(`${JSON.stringify({ pad: "x".repeat(1000) })}\n`);
    for (let i = 0; i < 10_000; i++) {
      d.push(line.subarray(0, 500), out);
      d.push(line.subarray(500), out);
      expect(d.held).toBeLessThanOrEqual(line.length);
      out.length = 0;
    }
  });

  // Each record's line, when it is already what stringifyJson writes for it (written as it came).
  const lines = [
    '\uFEFF{"id":1,"name":"é"}', // a BOM: the serializer's job
    '{"id":2,"name":"é"}\r', // CRLF: the line without its `\r`
    '{"id": 3}',
    "",
    '{"id":12345678901234567890,"d":1.5}',
    '{"id":5,"id":6}',
    '{"n":1e3}',
    '{"id":7}',
  ];
  const expected = [
    undefined,
    '{"id":2,"name":"é"}',
    undefined,
    '{"id":12345678901234567890,"d":1.5}',
    undefined,
    undefined,
    '{"id":7}',
  ];
  for (const size of [1, 3, 7, 1000])
    it(`texts: each record's line when it is canonical, else undefined (chunks of ${size})`, () => {
      const d = new JsonlDecoder();
      const bytes = Buffer.from(lines.join("\n"), "utf8");
      const out: unknown[] = [];
      const texts: (string | undefined)[] = [];
      for (let i = 0; i < bytes.length; i += size) d.push(bytes.subarray(i, i + size), out, texts);
      d.end(out, texts);
      expect(texts).toEqual(expected);
      expect(out.length).toBe(texts.length);
      for (let i = 0; i < out.length; i++)
        if (texts[i] !== undefined) expect(stringifyJson(out[i])).toBe(texts[i]);
    });

  it("texts: bytes that are not valid UTF-8 make no line canonical (their text is not their bytes)", () => {
    const d = new JsonlDecoder();
    const out: unknown[] = [];
    const texts: (string | undefined)[] = [];
    // Two keys whose different invalid bytes both decode to U+FFFD: one key once parsed.
    const body = Buffer.concat([
      Buffer.from('{"a":1}\n{"'),
      Buffer.from([0xff]),
      Buffer.from('":1,"'),
      Buffer.from([0xfe]),
      Buffer.from('":2}\n'),
    ]);
    d.push(body, out, texts);
    expect(out).toEqual([{ a: 1 }, { "\uFFFD": 2 }]);
    expect(texts).toEqual([undefined, undefined]);
  });
});

describe("csv decoder (RFC 4180)", () => {
  it("a body cut before the header's line feed and read again from byte 0 strips its BOM again", () => {
    const body = Buffer.from("\uFEFFid,name\r\n1,a\r\n2,b\r\n");
    const d = new CsvDecoder({ delimiter: ",", header: true });
    const out: unknown[] = [];
    d.push(body.subarray(0, 6), out); // the BOM and part of the header: no complete row
    expect(d.completeBytes).toBe(0);
    d.resume(); // a transport fault: the request is sent again, its body read from the start
    d.push(body, out);
    d.end(out);
    expect(out).toEqual([
      { id: "1", name: "a" },
      { id: "2", name: "b" },
    ]);
  });

  const body =
    '\uFEFFid,note,amount\r\n1,"line one\r\nline two",4.50\r\n2,"she said ""hi""",\r\n\r\n3,"a,b",7\r\n4,plain,"8"';
  for (const size of [1, 2, 5, 1000])
    it(`quoted newlines, doubled quotes, BOM, CRLF, blank lines (chunks of ${size})`, () => {
      const d = new CsvDecoder({ delimiter: ",", header: true });
      expect(decode(d, body, size)).toEqual([
        { id: "1", note: "line one\r\nline two", amount: "4.50" },
        { id: "2", note: 'she said "hi"', amount: "" },
        { id: "3", note: "a,b", amount: "7" },
        { id: "4", note: "plain", amount: "8" },
      ]);
      expect(d.completeBytes).toBe(Buffer.byteLength(body));
    });
  // Classic Mac line endings (Excel for Mac's "CSV (Macintosh)"): the body has no line feed at all.
  const mac = 'id,note\r1,"two\rlines"\r2,b,extra\r3,c\r';
  for (const size of [1, 2, 5, 1000])
    it(`a lone \\r ends a row, as \\n and \\r\\n do (chunks of ${size})`, () => {
      const d = new CsvDecoder({ delimiter: ",", header: true });
      const rows = decode(d, mac, size) as Record<string | symbol, unknown>[];
      expect(rows.map((r) => Object.fromEntries(Object.entries(r)))).toEqual([
        { id: "1", note: "two\rlines" },
        { id: "2", note: "b", c3: "extra" },
        { id: "3", note: "c" },
      ]);
      expect((rows[1][FIELD_ERRORS] as { message: string }[])[0].message).toBe(
        "line 4: 3 cells, the header has 2",
      );
      expect(d.completeBytes).toBe(Buffer.byteLength(mac));
    });
  for (const size of [1, 2, 3, 1000])
    it(`a \\r\\n cut between its \\r and its \\n is one line break (chunks of ${size})`, () => {
      const d = new CsvDecoder({ delimiter: ",", header: true });
      const text = "a,b\r\n1,2\r\n\r\n3,x\r\n4,5";
      const rows = decode(d, text, size) as Record<string | symbol, unknown>[];
      expect(rows).toEqual([
        { a: "1", b: "2" },
        { a: "3", b: "x" },
        { a: "4", b: "5" },
      ]);
      expect(d.lines).toBe(5);
      expect(d.completeBytes).toBe(text.length);
    });
  it("a chunk that ends at a lone \\r is taken whole, a line feed inside a quoted cell before it notwithstanding", () => {
    // A record worker's unit ends at a row's end: what the decoder keeps back is lost on a resume.
    const d = new CsvDecoder({ delimiter: ",", header: true });
    const out: unknown[] = [];
    const unit = Buffer.from('id,note\r1,"a\nb"\r2,c\r');
    d.push(unit, out);
    expect(out).toEqual([
      { id: "1", note: "a\nb" },
      { id: "2", note: "c" },
    ]);
    expect(d.completeBytes).toBe(unit.length);
    expect(d.held).toBe(0);
  });
  it("a lone \\r body is decoded as it arrives: only the unfinished row is held", () => {
    const d = new CsvDecoder({ delimiter: ",", header: true });
    const out: unknown[] = [];
    const row = Buffer.from("1,abcdefgh\r");
    d.push(Buffer.from("id,note\r"), out);
    for (let i = 0; i < 1000; i++) {
      d.push(row, out);
      expect(d.held).toBeLessThan(row.length * 3);
    }
    d.end(out);
    expect(out.length).toBe(1000);
  });
  it("delimiter and header: false", () => {
    const d = new CsvDecoder({ delimiter: ";", header: false });
    expect(decode(d, 'a;b\n"x;y";z\n', 3)).toEqual([
      { c1: "a", c2: "b" },
      { c1: "x;y", c2: "z" },
    ]);
  });
  it("a row of the wrong width is an invalid record naming its line", () => {
    const [row] = decode(new CsvDecoder({ delimiter: ",", header: true }), "a,b\n1,2,3\n", 100) as Record<
      string | symbol,
      unknown
    >[];
    expect(row).toMatchObject({ a: "1", b: "2", c3: "3" });
    const errs = row[FIELD_ERRORS] as { message: string }[];
    expect(errs[0].message).toBe("line 2: 3 cells, the header has 2");
  });
  it("a header that names a column twice is malformed (a row's cell would be lost), with its line", () => {
    expect(() =>
      decode(new CsvDecoder({ delimiter: ",", header: true }), "\n\nid,name,name\n1,a,b\n", 4),
    ).toThrow(/line 3 of the CSV body is malformed: the header names the column "name" twice/);
    expect(() => decode(new CsvDecoder({ delimiter: ",", header: true }), "a,,\n1,x,y\n", 100)).toThrow(
      /line 1 .*the column "" twice/,
    );
  });
  it("an unclosed quote or text after a closing quote is malformed, with its line", () => {
    expect(() => decode(new CsvDecoder({ delimiter: ",", header: true }), 'a\n"x\n', 2)).toThrow(
      /line 2 of the CSV body is malformed: a quoted cell is not closed/,
    );
    expect(() => decode(new CsvDecoder({ delimiter: ",", header: true }), 'a\n1\n"x"y\n', 2)).toThrow(
      /line 3 of the CSV body is malformed: text after a closing quote/,
    );
  });
});

describe("a retried body (resume)", () => {
  it("CSV: a first attempt cut before its first line break: the retry skips the BOM and reads the header again", () => {
    const text = "\uFEFFid,amount\r\n1,2.5\r\n";
    const d = new CsvDecoder({ delimiter: ",", header: true });
    const out: unknown[] = [];
    d.push(Buffer.from(text, "utf8").subarray(0, 6), out); // BOM + "id," then the body is cut
    expect(d.completeBytes).toBe(0);
    d.resume();
    expect(decode(d, text, 7)).toEqual([{ id: "1", amount: "2.5" }]);
  });

  it("CSV: resumed after complete rows, the retry's skipped bytes include the BOM and the header", () => {
    const text = "\uFEFFid,amount\r\n1,2.5\r\n2,3\r\n";
    const d = new CsvDecoder({ delimiter: ",", header: true });
    const out: unknown[] = [];
    d.push(Buffer.from(text, "utf8").subarray(0, 22), out);
    expect(out).toEqual([{ id: "1", amount: "2.5" }]);
    const done = d.completeBytes;
    d.resume();
    expect(decode(d, Buffer.from(text, "utf8").subarray(done), 5)).toEqual([{ id: "2", amount: "3" }]);
  });
});

describe("record worker units (RowCutter) of a CSV body", () => {
  it("end after a line feed or a lone \\r outside quoted cells", () => {
    const cutter = new RowCutter(44);
    const body = Buffer.from('id,note\r1,"x\ry"\r2,b');
    expect(cutter.scan(body)).toBe(body.indexOf("2,b"));
    const plain = new RowCutter(44);
    plain.scan(Buffer.from("id,note\r")); // past the BOM's place: the fast path
    expect(plain.scan(Buffer.from("1,a\r2,b\r3,c"))).toBe(8);
  });
});

describe("csv decoder, raw rows (a stream whose records nothing reads: src/run/raw-lines.ts)", () => {
  /** Decodes `body` in chunks, raw rows written as the lines' text; and without raw rows. Both as JSON texts, in order. */
  function both(body: string, size: number, delimiter = ",") {
    const bytes = Buffer.from(body, "utf8");
    const lines: string[] = [];
    let rawRows = 0;
    const out: unknown[] = [];
    const raw = new CsvDecoder({ delimiter, header: true }, (json, rows) => {
      for (const line of out.splice(0)) lines.push(stringifyJson(line));
      const parts = json.split("\n");
      expect(parts.pop()).toBe("");
      expect(parts.length).toBe(rows);
      lines.push(...parts);
      rawRows += rows;
      return true;
    });
    let error: unknown = null;
    try {
      for (let i = 0; i < bytes.length; i += size) raw.push(bytes.subarray(i, i + size), out);
      raw.end(out);
    } catch (err) {
      error = String(err);
    }
    for (const line of out.splice(0)) lines.push(stringifyJson(line));
    let expected: string[] | null = null;
    try {
      expected = decode(new CsvDecoder({ delimiter, header: true }), body, size).map((r) => stringifyJson(r));
    } catch (err) {
      expect(String(err)).toBe(error);
    }
    if (expected) {
      expect(error).toBeNull();
      expect(lines).toEqual(expected);
    }
    return rawRows;
  }

  it("plain rows go raw and read the same; a row with anything else is decoded", () => {
    const head = 'id,name,"$1"\r\n';
    const plain = Array.from({ length: 50 }, (_, i) => `${i},n${i} é😀,x$1`).join("\r\n");
    expect(both(`\uFEFF${head}${plain}\r\n${plain}\r\n`, 64)).toBeGreaterThan(50);
    const mixed = `${head}1,a,b\n2,"q",c\n3,x\\y,z\n4,t\tu,v\n5,w\n6,\u2028,y\n7,a\rb,c\n8,a,b`;
    expect(both(mixed, 1000)).toBe(1); // one text with the header, not all plain: decoded (but the last row, alone after the end)
    expect(both(mixed, 3)).toBeGreaterThan(0); // texts of plain rows only: raw
  });

  it("agrees with decoding on 3,000 random bodies (quotes, CRs, U+2028, tabs, widths, BOM)", () => {
    const rnd = seeded(23);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const specials = ['"', "\r", "\\", "\t", "é", "😀", "\u2028", "\u2029", "$1", "{", ","];
    let rawRows = 0;
    for (let k = 0; k < 3000; k++) {
      const width = 2 + (k % 3);
      let body = `${k % 4 === 0 ? "\uFEFF" : ""}${["x", "y", "z", "w"].slice(0, width).join(",")}\n`;
      for (let r = 0; r < 30; r++) {
        const cells = Array.from({ length: rnd() < 0.1 ? width + 1 : width }, () =>
          pick(["a", "bc", "", "d1"]),
        );
        // Now and then a special character inside a cell (mostly in a plain row otherwise).
        if (rnd() < 0.12) {
          const c = Math.floor(rnd() * cells.length);
          cells[c] = cells[c] + pick(specials) + pick(["", "e", "f,g"]);
        }
        if (rnd() < 0.03) cells[0] = `"q${pick(["", '""', ",", "\n"])}"`;
        body += cells.join(",") + (rnd() < 0.5 ? "\r\n" : "\n");
      }
      rawRows += both(body, 1 + Math.floor(rnd() * 40));
    }
    expect(rawRows).toBeGreaterThan(10_000); // the raw rows did take part
  });
});
