import { open } from "node:fs/promises";
import path from "node:path";
import type { ExecutionPlan, StreamPlan } from "../compile/plan.js";
import { readJsonArray } from "../outputs/json-writers.js";
import { parseJson, setOwn, stringifyJson } from "../shared/json-text.js";
import type { HistoryRun } from "../state/run-history.js";
import type { RunReport } from "./report-types.js";

/** Rows of each stream's output shown in the report. */
export const PREVIEW_ROWS = 5;
/** Most bytes read from the start of an output file for its preview. */
const PREVIEW_BYTES = 256 * 1024;
const VALUE_CHARS = 200;

/**
 * Adds the report's history view: the pipeline's last runs (from the state folder, this run
 * last) and the first rows of each stream's output as it is now (committed, or the preview the
 * commit guard kept). A preview that cannot be read is left out; the report is written anyway.
 */
export async function addHistoryView(
  report: RunReport,
  plan: ExecutionPlan,
  runs: HistoryRun[],
): Promise<void> {
  report.history = runs;
  const previews: Record<string, Record<string, unknown>[]> = {};
  for (const s of report.streams) {
    const stream = plan.streams.find((x) => x.name === s.name);
    if (!stream) continue;
    const file = s.preview_output ? path.resolve(plan.dirs.root, s.preview_output) : stream.output.path;
    const rows = await firstRows(stream, file).catch(() => null);
    if (rows?.length) previews[s.name] = rows.map(cutRow);
  }
  report.previews = previews;
}

/** Values cut to 200 characters (objects and arrays as JSON text): the preview is a glance. */
function cutRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    const text =
      v !== null && typeof v === "object" ? stringifyJson(v) : typeof v === "bigint" ? v.toString() : v;
    setOwn(
      out,
      k,
      typeof text === "string" && text.length > VALUE_CHARS ? `${text.slice(0, VALUE_CHARS)}…` : text,
    );
  }
  return out;
}

async function firstRows(stream: StreamPlan, file: string): Promise<Record<string, unknown>[]> {
  const format = stream.output.format;
  if (format === "sqlite") return sqliteRows(stream.output.path, stream.name);
  if (format === "json") {
    const out: Record<string, unknown>[] = [];
    for await (const text of readJsonArray(file)) {
      out.push(parseJson(text) as Record<string, unknown>);
      if (out.length >= PREVIEW_ROWS) break;
    }
    return out;
  }
  const head = await readHead(file);
  if (format === "jsonl") {
    const lines = head.split("\n").filter((l) => l.trim() !== "");
    // The last line may be cut by the byte bound: only whole lines are read.
    return lines.slice(0, PREVIEW_ROWS).flatMap((l) => {
      try {
        return [parseJson(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }
  if (format === "csv") return csvRows(head);
  return [];
}

async function readHead(file: string): Promise<string> {
  const handle = await open(file, "r");
  try {
    const buf = Buffer.alloc(PREVIEW_BYTES);
    const { bytesRead } = await handle.read(buf, 0, PREVIEW_BYTES, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}

/** The header and the first rows of a CSV text (RFC 4180 quoting), as records of strings. */
function csvRows(text: string): Record<string, unknown>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length && rows.length <= PREVIEW_ROWS; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  const [header, ...body] = rows;
  if (!header) return [];
  return body.slice(0, PREVIEW_ROWS).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ""])));
}

async function sqliteRows(file: string, table: string): Promise<Record<string, unknown>[]> {
  return (await import("../outputs/sqlite-peek.js")).sqliteFirstRows(file, table, PREVIEW_ROWS);
}
