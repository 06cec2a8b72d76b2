import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CsvParser, csvRow } from "../../src/outputs/csv-writer.js";
import { listDir, parseCsv, readCsvFile, runWriter, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;
let file: string;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  file = path.join(dir, "items.csv");
});
afterEach(() => cleanup());

const text = () => readFileSync(file, "utf8");

describe("csv quoting (RFC 4180)", () => {
  it("writes a header, CRLF line ends, and quotes only fields with a quote, comma, CR or LF", async () => {
    await runWriter("csv", "replace", file, [
      { id: 1, s: "plain" },
      { id: 2, s: "a,b" },
      { id: 3, s: 'say "hi"' },
      { id: 4, s: "line1\nline2" },
      { id: 5, s: "cr\rhere" },
      { id: 6, s: "crlf\r\nhere" },
      { id: 7, s: "  spaces kept  " },
      { id: 8, s: "ünïcödé ✓ 😀 日本" },
      { id: 9, s: '"' },
    ]);
    expect(text()).toBe(
      "id,s\r\n" +
        "1,plain\r\n" +
        '2,"a,b"\r\n' +
        '3,"say ""hi"""\r\n' +
        '4,"line1\nline2"\r\n' +
        '5,"cr\rhere"\r\n' +
        '6,"crlf\r\nhere"\r\n' +
        "7,  spaces kept  \r\n" +
        "8,ünïcödé ✓ 😀 日本\r\n" +
        '9,""""\r\n',
    );
    expect(readCsvFile(file).rows.map((r) => r.s)).toEqual([
      "plain",
      "a,b",
      'say "hi"',
      "line1\nline2",
      "cr\rhere",
      "crlf\r\nhere",
      "  spaces kept  ",
      "ünïcödé ✓ 😀 日本",
      '"',
    ]);
  });

  it("null, undefined and the empty string are all an empty cell (CSV cannot tell them apart)", async () => {
    await runWriter("csv", "replace", file, [{ a: null, b: "", c: undefined, d: 0 }]);
    expect(text()).toBe("a,b,c,d\r\n,,,0\r\n");
  });

  it("numbers and booleans as text; arrays and objects as JSON text", async () => {
    await runWriter("csv", "replace", file, [
      { n: 1.5, big: 1e21, neg: -3, t: true, f: false, arr: [1, "x"], obj: { a: { b: null } } },
    ]);
    expect(readCsvFile(file).rows).toEqual([
      { n: "1.5", big: "1e+21", neg: "-3", t: "true", f: "false", arr: '[1,"x"]', obj: '{"a":{"b":null}}' },
    ]);
    expect(text()).toContain('"[1,""x""]"');
  });

  it("header names are quoted like cells", async () => {
    await runWriter("csv", "replace", file, [{ "a,b": 1, 'q"': 2 }]);
    expect(text()).toBe('"a,b","q"""\r\n1,2\r\n');
  });

  it('a row of one empty cell is written as "" (not a blank line)', async () => {
    await runWriter("csv", "replace", file, [{ a: "x" }, { a: null }, { a: "" }]);
    expect(text()).toBe('a\r\nx\r\n""\r\n""\r\n');
    expect(readCsvFile(file).rows).toEqual([{ a: "x" }, { a: "" }, { a: "" }]);
  });
});

describe("csv columns", () => {
  it("with a schema: its properties in order, empty cells for missing values", async () => {
    await runWriter("csv", "replace", file, [{ b: 2, a: 1 }, { a: 3 }], { columns: ["a", "b", "c"] });
    expect(text()).toBe("a,b,c\r\n1,2,\r\n3,,\r\n");
  });

  it("with a schema and no record: the header alone", async () => {
    await runWriter("csv", "replace", file, [], { columns: ["a", "b"] });
    expect(text()).toBe("a,b\r\n");
  });

  it("with a schema: fields outside it become extra columns, earlier rows padded", async () => {
    await runWriter("csv", "replace", file, [{ a: 1, b: 2 }, { a: 3, x: "extra", b: 4 }, { a: 5 }], {
      columns: ["a", "b"],
    });
    expect(text()).toBe("a,b,x\r\n1,2,\r\n3,4,extra\r\n5,,\r\n");
    expect(listDir(dir)).toEqual(["items.csv"]);
  });

  it("without a schema: fields in the order they first appear; new fields mid-stream pad earlier rows", async () => {
    const records = [];
    // Enough rows, with quoted newlines, that the body is flushed to disk before the new field appears.
    for (let i = 0; i < 3000; i++) records.push({ id: i, note: `multi\r\nline, "${i}" ${"x".repeat(100)}` });
    records.push({ id: 3000, late: "L", note: "n" });
    records.push({ later: 1, id: 3001 });
    await runWriter("csv", "replace", file, records);
    const { header, rows } = readCsvFile(file);
    expect(header).toEqual(["id", "note", "late", "later"]);
    expect(rows).toHaveLength(3002);
    const x = "x".repeat(100);
    expect(rows[0]).toEqual({ id: "0", note: `multi\r\nline, "0" ${x}`, late: "", later: "" });
    expect(rows[2999]).toEqual({ id: "2999", note: `multi\r\nline, "2999" ${x}`, late: "", later: "" });
    expect(rows[3000]).toEqual({ id: "3000", note: "n", late: "L", later: "" });
    expect(rows[3001]).toEqual({ id: "3001", note: "", late: "", later: "1" });
  });

  it("append keeps one header: the old columns first, then the new ones; old rows padded", async () => {
    await runWriter("csv", "replace", file, [{ a: 1, b: "x" }]);
    await runWriter("csv", "append", file, [
      { b: "y", c: true },
      { c: false, a: 2 },
    ]);
    expect(text()).toBe("a,b,c\r\n1,x,\r\n,y,true\r\n2,,false\r\n");
  });

  it("append follows the old file's column order, whatever the schema's", async () => {
    writeFileSync(file, "b,a\r\nold b,old a\r\n");
    await runWriter("csv", "append", file, [{ a: "new a", b: "new b" }], { columns: ["a", "b"] });
    expect(text()).toBe("b,a\r\nold b,old a\r\nnew b,new a\r\n");
  });

  it("merge keys compare as cell text: the number 1 matches the old cell 1", async () => {
    await runWriter("csv", "replace", file, [
      { id: 1, v: "a" },
      { id: 2, v: "b" },
    ]);
    await runWriter("csv", "merge", file, [{ id: 1, v: "A", w: "new" }], { primaryKey: ["id"] });
    expect(text()).toBe("id,v,w\r\n1,A,new\r\n2,b,\r\n");
  });

  it("merge into a file without the key column keeps every old row", async () => {
    writeFileSync(file, "v\r\nold\r\n");
    await runWriter("csv", "merge", file, [{ id: 1, v: "new" }], { primaryKey: ["id"] });
    expect(text()).toBe("v,id\r\nold,\r\nnew,1\r\n");
  });

  it("old files written by others: BOM, LF line ends, needless quotes, blank lines, short rows", async () => {
    writeFileSync(file, '\ufeffid,"name"\n"1",one\n\n2\n');
    await runWriter("csv", "append", file, [{ id: 3, name: "three" }]);
    expect(text()).toBe("id,name\r\n1,one\r\n2,\r\n3,three\r\n");
  });

  it("an old row with more cells than the header fails the commit and leaves the file", async () => {
    writeFileSync(file, "a\r\n1,2\r\n");
    await expect(runWriter("csv", "append", file, [{ a: 3 }])).rejects.toThrow(/2 cells/);
    expect(text()).toBe("a\r\n1,2\r\n");
    expect(listDir(dir)).toEqual(["items.csv"]);
  });

  it("every row of every result parses with a strict RFC 4180 parser", async () => {
    await runWriter("csv", "replace", file, [{ a: 'x"\r\n,' }, { b: "\n" }], { primaryKey: ["a"] });
    await runWriter("csv", "merge", file, [{ a: 'x"\r\n,', b: "y" }, { c: "," }], { primaryKey: ["a"] });
    expect(parseCsv(text())).toEqual([
      ["a", "b", "c"],
      ['x"\r\n,', "y", ""],
      ["", "\n", ""],
      ["", "", ","],
    ]);
  });
});

describe("CsvParser", () => {
  const sample = 'h1,h2\r\n"a ""q"" , b",2\r\n"multi\r\nline",\r\n,\r\n""\r\nlast,"x"';
  const whole = [["h1", "h2"], ['a "q" , b', "2"], ["multi\r\nline", ""], ["", ""], [""], ["last", "x"]];

  it("parses a whole text", () => {
    const p = new CsvParser();
    expect([...p.push(sample), ...p.end()]).toEqual(whole);
  });

  it("gives the same records whatever the chunk boundaries", () => {
    for (const size of [1, 2, 3, 5, 7]) {
      const p = new CsvParser();
      const got: string[][] = [];
      for (let i = 0; i < sample.length; i += size) got.push(...p.push(sample.slice(i, i + size)));
      got.push(...p.end());
      expect(got).toEqual(whole);
    }
  });

  it("round-trips csvRow", () => {
    const cells = ["", " x ", 'q"', "a,b", "\r", "\n", "\r\n", "😀"];
    const p = new CsvParser();
    expect([...p.push(`${csvRow(cells)}\r\n`), ...p.end()]).toEqual([cells]);
  });
});
