import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesCheckedRecords } from "../../src/run/record-sink.js";
import { readStreamTable } from "../helpers/duckdb-query.js";
import {
  closeServer,
  listenLocal,
  normalizeRun,
  normalizeStderr,
  runPipelineWith,
  sourceBlock,
  tempProject,
} from "./helpers.js";

/**
 * Edge inputs for the page path (src/run/page-work/checked-lines.ts, records/byte-check.ts,
 * DuckDB/Parquet's Stager.seeMembers): each case runs record by record (PIPELINES_PAGE_WORK=off),
 * with pages parsed (PIPELINES_BYTE_CHECK=off), with the defaults, and with a page worker thread,
 * and the exit code, errors, output, quarantine, tables and column types, summary and report must
 * be identical. A case's `bytes` is how many of its records are checked from their bytes (jsonl:
 * every page's, not only the first's; a change to what the byte path takes updates it on purpose);
 * the others are inputs the byte check must stand aside for.
 */
let server: Server;
let url: string;
let pages: string[] = [];
const WRAP = (data: string, next: string) => `{"data":[${data}],"next":${next}}`;
let wrap = WRAP;
let latin1 = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    if (u.pathname.startsWith("/child/")) {
      const id = u.pathname.slice(7);
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(`{"data":[{"pid":"${id}","n":1}],"next":null}`);
      return;
    }
    const k = Number(u.searchParams.get("cursor") ?? 0);
    const next = k + 1 < pages.length ? `"${k + 1}"` : "null";
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(Buffer.from(wrap(pages[k], next), latin1 ? "latin1" : "utf8"));
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

type Variant = "records" | "parsed" | "bytes" | "thread";
const SWITCHES: Record<Variant, Record<string, string>> = {
  records: { PIPELINES_PAGE_WORK: "off" },
  parsed: { PIPELINES_BYTE_CHECK: "off" },
  bytes: {},
  thread: { PIPELINES_PAGE_WORKER_AFTER: "0" },
};
async function run(
  format: string,
  variant: Variant,
  schema: unknown,
  policy = "skip",
  extra = "",
  drift = "",
  mode = "",
  records = "$.data",
  paginate = "{ type: cursor, cursor: $.next }",
) {
  const before = bytesCheckedRecords();
  const p = tempProject("pipelines-bc-edge-");
  try {
    p.pipeline(
      "p",
      `${sourceBlock(url, variant === "thread" ? "workers: 2" : "workers: 1")}
streams:
  s:
    path: /cursor
    records: ${records}
    paginate: ${paginate}${schema ? "\n    schema: s.schema.json" : ""}${extra}
validation: { invalid_records: ${policy}${drift.includes("max_invalid_ratio") ? "" : ", max_invalid_ratio: 0.9"}${drift} }
output: { format: ${format}${mode} }
`,
    );
    if (schema) writeFileSync(p.file("schemas/s.schema.json"), JSON.stringify(schema));
    const r = await runPipelineWith(SWITCHES[variant], p.dir, "p");
    const child = existsSync(p.file("out/p/c.jsonl")) ? readFileSync(p.file("out/p/c.jsonl"), "utf8") : null;
    const read = (rel: string) => (existsSync(p.file(rel)) ? readFileSync(p.file(rel), "utf8") : null);
    let tables: unknown = null;
    const out = format === "duckdb" ? p.file("out/p.duckdb") : p.file("out/p/s.parquet");
    if (format !== "jsonl" && existsSync(out)) {
      try {
        tables = await readStreamTable(out, format as "duckdb" | "parquet");
      } catch (e) {
        tables = String(e);
      }
    }
    return {
      checked: bytesCheckedRecords() - before,
      child,
      code: r.code,
      output: read("out/p/s.jsonl") ?? read("out/p/s.json") ?? read("out/p/s.csv"),
      quarantine: read(".pipelines/quarantine/p/s.jsonl") ?? read("out/p/s.invalid.jsonl"),
      tables,
      summary: normalizeRun(r.summary),
      stderr: normalizeStderr(r.stderr),
      report: normalizeRun(JSON.parse(read("reports/p/latest.json") ?? "null")),
    };
  } finally {
    p.cleanup();
  }
}

const many = (f: (i: number) => string, n = 40) => Array.from({ length: n }, (_, i) => f(i)).join(",");

const CASES: Record<
  string,
  {
    pages: string[];
    schema?: unknown;
    extra?: string;
    drift?: string;
    mode?: string;
    policies?: string[];
    records?: string;
    wrap?: (d: string, n: string) => string;
    latin1?: boolean;
    paginate?: string;
    formats?: string[];
    /** Records checked from their bytes (jsonl), exactly; none when absent. */
    bytes?: number;
  }
> = {
  parentChild: {
    policies: ["skip", "keep"],
    pages: [many((i) => `{"id":${i},"x":${i % 9 ? i : '"s"'}}`)],
    schema: { type: "object", properties: { id: { type: "integer" }, x: { type: "integer" } } },
    extra: "\n  c:\n    parent: s\n    path: /child/\u0024{parent.id}\n    records: $.data",
  },
  ratio: {
    policies: ["skip", "keep"],
    bytes: 80,
    pages: [
      many((i) => `{"id":${i},"x":${i}}`),
      many((i) => `{"id":${i},"x":"s"}`),
      many((i) => `{"id":${i},"x":${i}}`),
    ],
    schema: { type: "object", properties: { id: { type: "integer" }, x: { type: "integer" } } },
    drift: ", max_invalid_ratio: 0.2",
  },
  untracked: {
    bytes: 20,
    pages: [0, 1, 2].map((p) =>
      many((i) => `{"id":${i},${Array.from({ length: 100 }, (_, k) => `"f${p}_${i}_${k}":${k}`).join(",")}}`),
    ),
    schema: { type: "object", properties: { id: { type: "integer" } } },
  },
  untrackedNoSchema: {
    bytes: 120,
    pages: [0, 1, 2].map((p) =>
      many((i) => `{"id":${i},${Array.from({ length: 100 }, (_, k) => `"f${p}_${i}_${k}":${k}`).join(",")}}`),
    ),
  },
  latin1: {
    bytes: 40,
    pages: [many((i) => `{"id":${i},"x":"${i === 5 ? "é" : "e"}"}`), many((i) => `{"id":${i},"x":"e"}`)],
    latin1: true,
  },
  surrogateNames: {
    policies: ["skip", "keep"],
    bytes: 39,
    pages: [
      many((i) => `{"id":${i},"${i === 5 ? "\\ud800" : "x"}":${i}}`),
      many((i) => `{"id":${i},"x":"${i === 7 ? "\\udc00" : "e"}"}`),
    ],
    schema: { type: "object", properties: { id: { type: "integer" }, x: { type: "integer" } } },
  },
  cursorInRecords: {
    pages: [0, 1, 2].map((p) =>
      many((i) => (i === 39 ? (p < 2 ? `{"id":${p + 1}}` : `{"x":1}`) : `{"id":${i},"x":${i}}`)),
    ),
    paginate: '{ type: cursor, cursor: "$.data[-1:].id" }',
  },
  errorInRecords: {
    pages: [
      many((i) => `{"id":${i},"x":${i}}`),
      many((i) => `{"id":${i},"x":${i}${i === 0 ? ',"message":"boom"' : ""}}`),
    ],
    extra: '\n    error_path: "$.data[0].message"',
  },
  totalInRecords: {
    pages: [0, 1, 2].map(() => many((i) => `{"id":${i}}`, 10)),
    paginate: '{ type: offset, limit: 10, total: "$.data[0].id" }',
  },
  path_star: {
    pages: [many((i) => `{"id":${i},"x":${i}}`), many((i) => `{"id":${i},"x":${i},"data":[{"id":1}]}`)],
    records: '"$.data[*]"',
  },
  path_slice: {
    pages: [many((i) => `{"id":${i},"x":${i}}`), many((i) => `{"id":${i},"x":${i},"data":[{"id":1}]}`)],
    records: '"$.data[1:]"',
  },
  path_filter: {
    pages: [many((i) => `{"id":${i},"x":${i}}`), many((i) => `{"id":${i},"x":${i},"data":[{"id":1}]}`)],
    records: '"$.data[?(@.x > 5)]"',
  },
  path_bracket: {
    bytes: 80,
    pages: [many((i) => `{"id":${i},"x":${i}}`), many((i) => `{"id":${i},"x":${i},"data":[{"id":1}]}`)],
    records: "\"$['data']\"",
  },
  path_descend: {
    pages: [many((i) => `{"id":${i},"x":${i}}`), many((i) => `{"id":${i},"x":${i},"data":[{"id":1}]}`)],
    records: '"$..data"',
  },
  path_dotstar: {
    pages: [many((i) => `{"id":${i},"x":${i}}`), many((i) => `{"id":${i},"x":${i},"data":[{"id":1}]}`)],
    records: '"$.data.*"',
  },
  path_index: {
    pages: [many((i) => `{"id":${i},"x":${i}}`), many((i) => `{"id":${i},"x":${i},"data":[{"id":1}]}`)],
    records: '"$.data[0]"',
  },
  rootPath: {
    pages: [many((i) => `{"id":${i},"x":${i}}`)],
    records: "$",
    wrap: (d) => `[${d}]`,
  },
  nestedPath: {
    bytes: 80,
    pages: [many((i) => `{"id":${i},"x":${i}}`), many((i) => `{"id":${i},"x":"s"}`)],
    records: "$.result.items",
    wrap: (d, n) => `{"result":{"items":[${d}],"n":2},"next":${n}}`,
  },
  bom: {
    bytes: 40,
    pages: [many((i) => `{"id":${i},"x":${i}}`)],
    wrap: (d, n) => `\ufeff{"data":[${d}],"next":${n}}`,
  },
  spaces: {
    bytes: 40,
    pages: [many((i) => `{"id":${i},"x":${i}}`).replaceAll("},{", "} ,\r\n\t{")],
    wrap: (d, n) => `{ "data" : [ ${d} ] , "next" : ${n} }`,
  },
  trailingComma: {
    pages: [many((i) => `{"id":${i},"x":${i}}`)],
    wrap: (d, n) => `{"data":[${d},],"next":${n}}`,
  },
  dupDataKey: {
    pages: [many((i) => `{"id":${i},"x":${i}}`)],
    wrap: (d, n) => `{"data":[${d}],"next":${n},"data":[{"id":1}]}`,
  },
  failPolicy: {
    pages: [many((i) => `{"id":${i},"x":${i === 25 ? '"bad"' : i}}`), many((i) => `{"id":${i},"x":${i}}`)],
    schema: { type: "object", properties: { id: { type: "integer" }, x: { type: "integer" } } },
    policies: ["fail"],
  },
  driftFail: {
    policies: ["skip", "keep"],
    bytes: 79,
    pages: [
      many((i) => `{"id":${i},"x":${i}${i === 30 ? ',"z":1' : ""}}`),
      many((i) => `{"id":${i},"x":${i % 2 ? i : '"s"'}}`),
    ],
    schema: { type: "object", properties: { id: { type: "integer" }, x: {} } },
    drift: ", drift: fail",
  },
  append: {
    formats: ["jsonl", "duckdb", "parquet", "json", "csv"],
    bytes: 40,
    pages: [many((i) => `{"id":${i},"x":${i}}`)],
    mode: ", mode: append",
  },
  oddRecords: {
    pages: [
      many((i) => (i === 7 ? "null" : `{"id":${i}}`)),
      many((i) => (i === 3 ? "[1]" : `{"id":${i}}`)),
      many((i) => (i === 3 ? '"s"' : `{"id":${i}}`)),
    ],
  },
  nestedDup: {
    pages: [many((i) => `{"id":${i},"o":{"k":${i},"k":"s"}}`)],
    schema: {
      type: "object",
      properties: { id: { type: "integer" }, o: { type: "object", properties: { k: { type: "integer" } } } },
    },
  },
  caseNames: {
    bytes: 80,
    pages: [many((i) => `{"id":${i},"x":1}`), many((i) => `{"id":${i},"X":${i}}`)],
  },
  reserved: {
    bytes: 80,
    pages: [many((i) => `{"id":${i},"x":1}`), many((i) => `{"id":${i},"${i === 5 ? "_run_id" : "x"}":${i}}`)],
  },
  // Unlisted fields: `toString` holds one value (an example already: its records are not parsed
  // for it), `constructor` three and more (examples full after three records).
  protoNames: {
    bytes: 19,
    pages: [
      many((i) => `{"id":${i},"constructor":${i},"toString":"x","__proto__":${i % 2 ? "null" : "{}"}}`),
    ],
    schema: { type: "object", required: ["id"], properties: { id: { type: "integer" } } },
  },
  wideningBigint: {
    bytes: 30,
    pages: [many((i) => `{"id":${i},"v":${i < 10 ? i : i < 20 ? "12345678901234567890" : `${i}.5`}}`)],
  },
  typeArray: {
    formats: ["jsonl", "duckdb", "parquet", "json", "csv"],
    policies: ["skip", "keep"],
    bytes: 18,
    pages: [many((i) => `{"id":${i},"v":${[1, "1.5", '"s"', "null", "true", "[1]", '{"a":1}'][i % 7]}}`)],
    schema: {
      type: "object",
      properties: { id: { type: "integer" }, v: { type: ["integer", "string", "null"] } },
    },
  },
  nestedRequired: {
    policies: ["skip", "keep"],
    bytes: 20,
    pages: [many((i) => `{"id":${i},"o":{"a":${i % 3 ? i : '"x"'},"b":[{"c":${i % 4 ? 1 : "null"}}]}}`)],
    schema: {
      type: "object",
      properties: {
        id: { type: "integer" },
        o: {
          type: "object",
          required: ["a", "b"],
          properties: {
            a: { type: ["integer", "number"] },
            b: {
              type: "array",
              items: { type: "object", required: ["c"], properties: { c: { type: "integer" } } },
            },
          },
        },
      },
    },
  },
  nullFirst: {
    formats: ["jsonl", "duckdb", "parquet", "json", "csv"],
    bytes: 80,
    pages: [
      many(
        (i) => `{"id":${i},"x":${i < 20 ? "null" : i % 2 ? `${i}.5` : `"s${i}"`},"y":${i < 10 ? "null" : i}}`,
      ),
      many((i) => `{"id":${i},"x":${i},"y":${i}.25}`),
    ],
  },
  escapedNames: {
    formats: ["jsonl", "duckdb", "parquet", "json", "csv"],
    bytes: 37,
    pages: [many((i) => `{"id":${i},"a\\"b":${i},"é":"${i}","😀":${i % 2 ? "true" : "null"},"":${i}}`)],
    schema: { type: "object", properties: { id: { type: "integer" }, 'a"b': { type: "integer" } } },
  },
  emptyThings: {
    bytes: 14,
    pages: [many((i) => (i % 3 === 0 ? "{}" : `{"id":${i},"a":{},"b":[],"c":[[]]}`))],
    schema: {
      type: "object",
      properties: { id: { type: "integer" }, a: { type: "object" }, b: { type: "array" } },
    },
  },
  numbers: {
    policies: ["skip", "keep"],
    bytes: 15,
    pages: [
      many(
        (i) =>
          `{"id":${i},"n":${["-0", "0.0", "1E2", "1e400", "0", "-1.5", "123456789012345", "1234567890123456"][i % 8]}}`,
      ),
    ],
    schema: { type: "object", properties: { id: { type: "integer" }, n: { type: "number" } } },
  },
  formatNonString: {
    policies: ["skip", "keep"],
    bytes: 13,
    pages: [many((i) => `{"id":${i},"d":${i % 2 ? i : '"x"'},"e":"${i % 3 ? "a@b.co" : "nope"}"}`)],
    schema: {
      type: "object",
      properties: {
        id: { type: "integer" },
        d: { type: ["integer", "string"], format: "date-time" },
        e: { format: "email" },
      },
    },
  },
  annotations: {
    bytes: 37,
    pages: [many((i) => `{"id":${i},"x":"v${i % 5}","y":${i}}`)],
    schema: {
      $comment: "c",
      type: "object",
      examples: [{ a: 1 }],
      properties: {
        id: { type: "integer", examples: [{}], default: {} },
        x: { type: "string", $comment: "z" },
      },
    },
  },
  drift: {
    bytes: 39,
    pages: [
      many((i) => `{"id":${i},"new":${i % 4 ? `"v${i % 2}"` : "null"},"n2":{"k":${i % 2}}}`),
      many((i) => `{"id":${i},"new":"v${i % 7}"}`),
    ],
    schema: { type: "object", properties: { id: { type: "integer" } } },
  },
  manyFields: {
    pages: [many((i) => `{"id":${i},${Array.from({ length: 300 }, (_, k) => `"f${k}":${k}`).join(",")}}`, 5)],
    schema: { type: "object", properties: { id: { type: "integer" } } },
  },
  bigNested: {
    pages: [
      many(
        (i) =>
          `{"id":${i},"o":{"b":${i % 2 ? "12345678901234567890" : "1"}},"a":[${i % 3 ? "9007199254740993" : "2"}]}`,
      ),
    ],
    schema: {
      type: "object",
      properties: { id: { type: "integer" }, o: { type: "object", properties: { b: { type: "integer" } } } },
    },
  },
  longString: {
    pages: [many((i) => `{"id":${i},"s":"${"x".repeat(i * 5)}","t":"${"y".repeat(100 + i)}"}`)],
    schema: { type: "object", properties: { id: { type: "integer" } } },
  },
};

describe("byte check edges", () => {
  for (const [name, c] of Object.entries(CASES))
    for (const format of c.formats ?? ["jsonl", "duckdb", "parquet"])
      for (const policy of c.policies ?? ["skip"])
        it(`${name} ${format} ${policy}`, async () => {
          pages = c.pages;
          const a = [
            c.schema,
            policy,
            c.extra ?? "",
            c.drift ?? "",
            c.mode ?? "",
            c.records ?? "$.data",
            c.paginate,
          ] as const;
          wrap = c.wrap ?? WRAP;
          latin1 = c.latin1 ?? false;
          const records = await run(format, "records", ...a);
          const parsed = await run(format, "parsed", ...a);
          const bytes = await run(format, "bytes", ...a);
          const thread = await run(format, "thread", ...a);
          // The cases meant for the byte check reach it (the others test that it stands aside).
          if (format === "jsonl") expect(bytes.checked, "records checked from bytes").toBe(c.bytes ?? 0);
          // A page worker thread checks the same records from their bytes (it takes the pages
          // after the second, page-work.ts LOCAL_PAGES: this bites for cases of three pages or
          // more — ratio, untracked, untrackedNoSchema).
          if (format === "jsonl")
            expect(thread.checked, "records checked from bytes on the thread").toBe(c.bytes ?? 0);
          for (const other of [parsed, bytes, thread]) {
            expect(other.code).toBe(records.code);
            expect(other.stderr).toBe(records.stderr);
            expect(other.output).toBe(records.output);
            expect(other.child).toBe(records.child);
            expect(other.quarantine).toBe(records.quarantine);
            expect(other.tables).toEqual(records.tables);
            expect(other.summary).toEqual(records.summary);
            expect(other.report).toEqual(records.report);
          }
          // 12,000 columns: DuckDB and Parquet load them at a raised memory limit, after two loads
          // that ran out of memory (duckdb-engine.ts withMemory), 4 variants: seconds each.
        }, 120_000);
});
