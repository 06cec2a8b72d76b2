import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import Database from "better-sqlite3";
import { readCsv } from "../../src/outputs/csv-writer.js";

import { parseJson } from "../../src/shared/json-text.js";

import { closeServer, listenLocal, runPipeline, sourceBlock, type TempProject } from "../run/helpers.js";

/** Every output format: each attack-class test runs against all of them (add new writers here). */
export const FORMATS = ["jsonl", "json", "csv", "sqlite"] as const;
export type Format = (typeof FORMATS)[number];

/** A server answering each path with a fixed body (a string or bytes), as JSON; 404 otherwise. */
export interface BodyServer {
  url: string;
  /** Paths requested, with their query string. */
  requests: string[];
  close(): Promise<void>;
}

export async function bodyServer(bodies: Record<string, string | Buffer>): Promise<BodyServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? "");
    const body = bodies[new URL(req.url ?? "/", "http://x").pathname];
    if (body === undefined) {
      res.writeHead(404, { "content-type": "application/json" }).end("{}");
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  const url = await listenLocal(server);
  return { url, requests, close: () => closeServer(server) };
}

/** Where a stream's output lands for `format` (sqlite: one file per pipeline). */
export function outputPath(format: Format): string {
  return format === "sqlite" ? "out/p.db" : `out/\${stream}.${format}`;
}

/** Writes pipeline `p` (streams given as name → YAML lines), output in `format`, and runs it. */
export async function runFormat(
  project: TempProject,
  url: string,
  format: Format,
  streams: Record<string, string[]>,
  opts: { source?: string; extra?: string[]; env?: Record<string, string> } = {},
) {
  project.pipeline(
    "p",
    [
      sourceBlock(url, opts.source ?? ""),
      "streams:",
      ...Object.entries(streams).flatMap(([name, lines]) => [`  ${name}:`, ...lines.map((l) => `    ${l}`)]),
      "output:",
      `  format: ${format}`,
      `  path: ${outputPath(format)}`,
      ...(opts.extra ?? []),
      "",
    ].join("\n"),
  );
  return runPipeline(project.dir, "p", [], opts.env ?? {});
}

/**
 * A stream's records as written, each as field → the exact text of its value, in any format:
 * strings as they are, numbers with the digits in the file, arrays and objects as JSON text.
 * Missing, null and empty values are left out (CSV cannot tell them apart). Objects have no
 * prototype, so `__proto__` and `constructor` are plain fields here.
 */
export async function readRecords(
  project: TempProject,
  format: Format,
  stream: string,
): Promise<Record<string, string>[]> {
  const file = project.file(format === "sqlite" ? "out/p.db" : `out/${stream}.${format}`);
  if (!existsSync(file)) return [];
  const rows: [string, unknown][][] = [];
  if (format === "jsonl" || format === "json") {
    const text = readFileSync(file, "utf8");
    const values = (
      format === "json" ? parseJson(text) : text.split("\n").filter(Boolean).map(parseJson)
    ) as Record<string, unknown>[];
    for (const v of values) rows.push(Object.entries(v));
  } else if (format === "csv") {
    let header: string[] | null = null;
    for await (const cells of readCsv(file)) {
      if (!header) header = cells;
      else rows.push(header.map((h, i) => [h, cells[i]]));
    }
  } else {
    const db = new Database(file, { readonly: true });
    try {
      db.defaultSafeIntegers(true);
      const stmt = db.prepare(`SELECT * FROM "${stream}" ORDER BY rowid`).raw();
      const names = stmt.columns().map((c) => c.name);
      for (const r of stmt.all() as unknown[][]) rows.push(names.map((n, i) => [n, r[i]]));
    } finally {
      db.close();
    }
  }
  return rows.map((fields) => {
    const out: Record<string, string> = Object.create(null);
    for (const [k, v] of fields) {
      if (v === null || v === undefined || v === "") continue;
      out[k] = typeof v === "string" ? v : typeof v === "object" ? exactJson(v) : String(v);
    }
    return out;
  });
}

/** JSON text with BigInts as bare digits (test-side, independent of the code under test). */
function exactJson(v: unknown): string {
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return `[${v.map(exactJson).join(",")}]`;
  if (v !== null && typeof v === "object")
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${exactJson(x)}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

/** Plain expected records (`__proto__` written as a quoted key in a literal is a field). */
export function expected(...records: Record<string, string>[]): Record<string, string>[] {
  return records.map((r) => Object.assign(Object.create(null), r));
}
