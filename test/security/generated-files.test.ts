// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` in API keys
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { formulaSafe } from "../../src/outputs/csv-writer.js";
import { runCli } from "../cli/helpers.js";
import { readCsvFile } from "../outputs/helpers.js";
import {
  closeServer,
  listenLocal,
  readJsonl,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "../run/helpers.js";

// A hostile API: what it answers on each path is set by the test.
let answers: Record<string, unknown> = {};
let server: Server;
let base: string;
let project: TempProject;

beforeAll(async () => {
  server = createServer((req, res) => {
    const body = answers[new URL(req.url ?? "/", "http://x").pathname];
    res.writeHead(body === undefined ? 404 : 200, { "content-type": "application/json" });
    res.end(JSON.stringify(body ?? { error: "not found" }));
  });
  base = await listenLocal(server);
});
afterAll(() => closeServer(server));
beforeEach(() => {
  answers = {};
  project = tempProject("pipelines-generated-");
});
afterEach(() => project.cleanup());

const FORMULAS = {
  key: "=k1",
  eq: '=HYPERLINK("http://evil.test","x")',
  plus: "+cmd|' /C calc'!A0",
  minus: "-2+3+cmd|' /C calc'!A0",
  at: "@SUM(1+1)*cmd|' /C calc'!A0",
  tab: "\t=1+1",
  cr: "\r=1+1",
  negative: -5,
  negative_text: "-5",
  signed_text: "+1.5e3",
  plain: "plain",
  "=col": 1,
};

describe("csv: cells a spreadsheet would run as formulas (output.csv.escape_formulas)", () => {
  it("formulaSafe prefixes formula starts with ', leaves plain numbers and other text", () => {
    expect(formulaSafe("=1+1")).toBe("'=1+1");
    expect(formulaSafe("+1+1")).toBe("'+1+1");
    expect(formulaSafe("-1+1")).toBe("'-1+1");
    expect(formulaSafe("@x")).toBe("'@x");
    expect(formulaSafe("\tx")).toBe("'\tx");
    expect(formulaSafe("\rx")).toBe("'\rx");
    for (const keep of ["-5", "+5", "-1.5", "-1e3", "-.5", "plain", "", "a=b", "'=x"])
      expect(formulaSafe(keep)).toBe(keep);
  });

  const pipeline = (csv: string) =>
    project.pipeline(
      "sheet",
      [
        sourceBlock(base),
        "streams:",
        "  rows: { path: /rows, primary_key: key }",
        `output: { format: csv, mode: merge${csv} }`,
      ].join("\n"),
    );

  it("by default the cells are the API's values, exactly", async () => {
    answers["/rows"] = [FORMULAS];
    pipeline("");
    const r = await runPipeline(project.dir, "sheet");
    expect(r.code).toBe(0);
    const { header, rows } = readCsvFile(project.file("out/sheet/rows.csv"));
    expect(header).toContain("=col");
    expect(rows).toEqual([Object.fromEntries(Object.entries(FORMULAS).map(([k, v]) => [k, String(v)]))]);
  });

  it("with escape_formulas: true, string cells and column names get a leading ', numbers are untouched, and merge still matches keys", async () => {
    answers["/rows"] = [FORMULAS];
    pipeline(", csv: { escape_formulas: true }");
    const plan = await runCli(["plan", "sheet"], project.dir);
    expect(plan.stdout).toContain("formulas escaped");
    for (let run = 0; run < 2; run++) {
      const r = await runPipeline(project.dir, "sheet");
      expect(r.code).toBe(0);
    }
    const { header, rows } = readCsvFile(project.file("out/sheet/rows.csv"));
    // The second run merged into the first one's file: one header, one row per key.
    expect(header).toEqual([...Object.keys(FORMULAS).slice(0, -1), "'=col"]);
    expect(rows).toEqual([
      {
        key: "'=k1",
        eq: `'${FORMULAS.eq}`,
        plus: `'${FORMULAS.plus}`,
        minus: `'${FORMULAS.minus}`,
        at: `'${FORMULAS.at}`,
        tab: "'\t=1+1",
        cr: "'\r=1+1",
        negative: "-5",
        negative_text: "-5",
        signed_text: "+1.5e3",
        plain: "plain",
        "'=col": "1",
      },
    ]);
  });
});

describe("sqlite: column names from the API", () => {
  it("a NUL in a field name fails the stream with a clear error (no `unrecognized token`)", async () => {
    answers["/rows"] = [{ id: 1, "a\u0000b": 2, 'q"uote': 3, "x\x1b[2Jy": 4 }];
    project.pipeline(
      "db",
      [sourceBlock(base), "streams:", "  rows: { path: /rows }", "output: { format: sqlite }"].join("\n"),
    );
    const r = await runPipeline(project.dir, "db");
    expect(r.code).toBe(1);
    expect(r.stream("rows").error).toEqual({
      kind: "output",
      message: expect.stringContaining(
        'field "a\\u0000b" holds a NUL character, which an SQLite column name cannot hold (table rows)',
      ),
    });
    expect(r.stream("rows").error?.message).not.toContain("unrecognized token");
  });

  it("other odd names (quotes, control characters) are quoted and kept as they are", async () => {
    answers["/rows"] = [{ id: 1, 'q"uote': 3, "x\x1b[2Jy": 4, "a]b": 5 }];
    project.pipeline(
      "db",
      [sourceBlock(base), "streams:", "  rows: { path: /rows }", "output: { format: sqlite }"].join("\n"),
    );
    const r = await runPipeline(project.dir, "db");
    expect(r.code).toBe(0);
    const db = new Database(project.file("out/db.db"), { readonly: true });
    try {
      expect(db.prepare("SELECT * FROM rows").all()).toEqual([
        { id: 1, 'q"uote': 3, "x\x1b[2Jy": 4, "a]b": 5 },
      ]);
    } finally {
      db.close();
    }
  });
});

describe("init --from-url: names from the response are written literally", () => {
  const yamlFile = () => readFileSync(path.join(project.dir, "pipelines", "x.yaml"), "utf8");

  it("a records key holding `${env.…}` is written as `$${`, and the pipeline then reads that key", async () => {
    const records = [{ id: 1, "name${env.HOME}": "a" }];
    answers["/data"] = { "items${env.HOME}": records, meta: { total: 1 } };
    const r = await runCli(["init", "x", "--from-url", `${base}/data`], project.dir);
    expect(r.code).toBe(0);
    const text = yamlFile();
    expect(text).toContain(`records: "$['items$\${env.HOME}']"`);
    expect(text).toContain(`#   "name$\${env.HOME}": "$['name$\${env.HOME}']"`);
    expect(text).not.toMatch(/[^$]\$\{env\.HOME\}/);
    const run = await runCli(["run", "x"], project.dir, { HOME: "/home/somebody" });
    expect(run.code).toBe(0);
    expect(readJsonl(project.file("out/x/data.jsonl"))).toEqual(records);
  });

  it("a cursor path built from a key (Stripe style) is written literally too", async () => {
    answers["/data"] = { "list${env.X}": [{ id: 1 }, { id: 2 }], has_more: false };
    const r = await runCli(["init", "x", "--from-url", `${base}/data`], project.dir);
    expect(r.code).toBe(0);
    expect(yamlFile()).toContain(`cursor: "$['list$\${env.X}'][-1:].id"`);
    const v = await runCli(["validate", "x"], project.dir);
    expect(v.code).toBe(0);
    const run = await runCli(["run", "x"], project.dir, { X: "oops" });
    expect(run.code).toBe(0);
    expect(readJsonl(project.file("out/x/data.jsonl"))).toEqual([{ id: 1 }, { id: 2 }]);
  });
});
