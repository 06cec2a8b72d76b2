// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${parent.…}` templates
import { readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { mayHoldBigInteger, parseJson, stringifyJson } from "../../src/shared/json-text.js";
import { listFiles, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type BodyServer, bodyServer, expected, FORMATS, readRecords, runFormat } from "./helpers.js";

/**
 * Attack class: numbers JavaScript cannot hold exactly. Integers beyond 2^53 arrive with the
 * digits the API sent, in every output format, in primary keys (no false duplicates), schema
 * validation, incremental cursors and child requests.
 */

const BIG = `{"data":[
  {"id":9007199254740993,"n":-12345678901234567890,"list":[1,12345678901234567891],"s":"a:12345678901234567892"},
  {"id":9007199254740992,"n":1.5,"list":[],"s":"x"},
  {"id":1234567890123456789,"n":9007199254740991,"list":[{"k":98765432109876543210}],"s":"y"}
]}`;

let server: BodyServer;
let project: TempProject;
beforeAll(async () => {
  server = await bodyServer({
    "/big": BIG,
    "/huge": `{"data":[{"id":1,"huge":123456789012345678901234567890}]}`,
    "/parents": `{"data":[{"id":1234567890123456789}]}`,
    "/children/1234567890123456789": `{"data":[{"n":1}]}`,
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project = tempProject("pipelines-numbers-");
});
afterEach(() => project.cleanup());

describe.each(FORMATS)("integers beyond 2^53, output %s", (format) => {
  it("are written with their exact digits and are not merged as duplicates", async () => {
    const r = await runFormat(project, server.url, format, {
      big: ["path: /big", "records: $.data", "primary_key: id"],
    });
    const s = r.stream("big");
    expect(s.status).toBe("ok");
    expect(s.records).toMatchObject({ written: 3, duplicates: 0 });
    expect(await readRecords(project, format, "big")).toEqual(
      expected(
        {
          id: "9007199254740993",
          n: "-12345678901234567890",
          list: "[1,12345678901234567891]",
          s: "a:12345678901234567892",
        },
        { id: "9007199254740992", n: "1.5", list: "[]", s: "x" },
        { id: "1234567890123456789", n: "9007199254740991", list: '[{"k":98765432109876543210}]', s: "y" },
      ),
    );
    if (format === "jsonl" || format === "json") {
      // Bare number literals, not strings.
      const text = readFileSync(project.file(`out/big.${format}`), "utf8");
      expect(text).toContain('"id":9007199254740993,');
      expect(text).toContain('"list":[{"k":98765432109876543210}]');
    }
  });

  it("merging the same records again keeps three records", async () => {
    const stream = ["path: /big", "records: $.data", "primary_key: id"];
    await runFormat(project, server.url, format, { big: stream }, { extra: ["  mode: merge"] });
    const again = await runPipeline(project.dir, "p");
    expect(again.stream("big").status).toBe("ok");
    expect((await readRecords(project, format, "big")).map((x) => x.id)).toEqual([
      "9007199254740993",
      "9007199254740992",
      "1234567890123456789",
    ]);
  });

  it("pass `type: integer` in a schema (invalid_records: fail)", async () => {
    const r = await runFormat(
      project,
      server.url,
      format,
      {
        big: [
          "path: /big",
          "records: $.data",
          "schema: { type: object, properties: { id: { type: integer }, n: { type: number } } }",
        ],
      },
      { extra: ["validation:", "  invalid_records: fail"] },
    );
    expect(r.stream("big").error).toBeNull();
    expect(r.stream("big").records).toMatchObject({ valid: 3, invalid: 0 });
  });

  it("drive an incremental cursor exactly (saved as its digits)", async () => {
    const r = await runFormat(project, server.url, format, {
      big: ["path: /big", "records: $.data", "incremental: { cursor_field: id, param: since }"],
    });
    expect(r.stream("big").status).toBe("ok");
    const stateFile = listFiles(project.dir).find((f) => f.endsWith("p.json") && !f.startsWith("out"));
    const state = JSON.parse(readFileSync(project.file(stateFile!), "utf8"));
    expect(state.streams.big.cursor).toBe("1234567890123456789");
    await runPipeline(project.dir, "p");
    expect(server.requests.at(-1)).toBe("/big?since=1234567890123456789");
  });

  it("reach child requests and include_parent exactly", async () => {
    const r = await runFormat(project, server.url, format, {
      parents: ["path: /parents", "records: $.data"],
      children: [
        "parent: parents",
        "path: /children/${parent.id}",
        "records: $.data",
        "include_parent: { parent_id: id }",
      ],
    });
    expect(r.stream("children").status).toBe("ok");
    expect(await readRecords(project, format, "children")).toEqual(
      expected({ n: "1", parent_id: "1234567890123456789" }),
    );
  });

  it("beyond 64 bits are kept exactly (as text in SQLite)", async () => {
    const r = await runFormat(project, server.url, format, { huge: ["path: /huge", "records: $.data"] });
    expect(r.stream("huge").status).toBe("ok");
    expect(await readRecords(project, format, "huge")).toEqual(
      expected({ id: "1", huge: "123456789012345678901234567890" }),
    );
  });
});

describe("parseJson / stringifyJson", () => {
  it("round-trips what JSON.parse reads, and big integers exactly", () => {
    const texts = [
      BIG,
      '{"a":"\\u0041\\"b\\\\","b":[true,false,null,-0,1e400,0.1],"__proto__":{"c":{}}}',
      "12345678901234567890",
      " [ -9007199254740993 , 9007199254740991 ] ",
      '{"s":"1234567890123456789012 inside a string","t":"\\"12345678901234567890"}',
    ];
    for (const text of texts) {
      const exact = parseJson(text);
      expect(stringifyJson(exact)).toBe(exactLiteral(text));
      expect(JSON.stringify(exact, (_k, v) => (typeof v === "bigint" ? Number(v) : v))).toBe(
        JSON.stringify(JSON.parse(text)),
      );
    }
    expect(parseJson("\ufeff[1]")).toEqual([1]);
    for (const bad of ["[1,]", '{"a":1,}', "[12345678901234567890", '"a', "01234567890123456789"])
      expect(() => parseJson(bad)).toThrow(SyntaxError);
  });

  it("looks at long digit runs only where a number can start", () => {
    expect(mayHoldBigInteger(`{"id":12345678901234567}`)).toBe(true);
    expect(mayHoldBigInteger(`[ -12345678901234567]`)).toBe(true);
    expect(mayHoldBigInteger(`{"id":123456789012345}`)).toBe(false);
    expect(mayHoldBigInteger(`{"id":"12345678901234567"}`)).toBe(false);
    expect(mayHoldBigInteger("9".repeat(100_000))).toBe(true);
  });
});

/** The text with insignificant spaces removed, as JSON.stringify would lay it out. */
function exactLiteral(text: string): string {
  // Parsing with numbers as text keeps digits: strings are re-quoted by JSON.stringify.
  return JSON.stringify(JSON.parse(text.replace(/(-?\d{16,})(?=\s*[,\]}]|\s*$)/g, '"@@big:$1"'))).replace(
    /"@@big:(-?\d+)"/g,
    "$1",
  );
}
