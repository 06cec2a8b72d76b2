import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { OutputPlan } from "../../src/compile/plan.js";
import { settleRemovals } from "../../src/outputs/atomic-file.js";
import { openWriter } from "../../src/outputs/registry.js";
import type { RecordWriter, WriterContext } from "../../src/outputs/writer.js";
import type { Row } from "../../src/records/shape.js";

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), "pipelines-outputs-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let runs = 0;

export interface RunOptions extends Partial<WriterContext> {
  /** Leave the writer uncommitted and abort it instead. */
  abort?: boolean;
  /** More of the output plan (a database's `postgres`, `stateKey`). */
  output?: Partial<OutputPlan>;
}

/**
 * Opens a writer, writes `records` (awaiting backpressure), then commits (or aborts), as the run
 * engine does: a failed commit is followed by `abort()`.
 */
export async function runWriter(
  format: OutputPlan["format"],
  mode: OutputPlan["mode"],
  file: string,
  records: Row[],
  opts: RunOptions = {},
  table?: string,
): Promise<RecordWriter> {
  const { abort, output, ...ctx } = opts;
  const writer = await openWriter(
    {
      format,
      mode,
      path: file,
      ...(table ? { table: { name: table, metadataColumns: true, nested: "json" as const } } : {}),
      ...output,
    },
    { runId: `run${++runs}`, stream: "items", columns: null, primaryKey: null, ...ctx },
  );
  try {
    for (const record of records) {
      const pending = writer.write(record);
      if (pending) await pending;
    }
  } catch (err) {
    // As a run does when a record is refused: its files are closed and removed.
    await writer.abort();
    throw err;
  }
  if (abort) {
    await writer.abort();
    return writer;
  }
  try {
    await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  // As a run does before it ends: the outputs replaced are removed (AtomicFile.commit).
  await settleRemovals();
  return writer;
}

/** Names in `dir` (to check that no temporary file is left behind). */
export function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

export function readJsonl(file: string): unknown[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

export function readJson(file: string): unknown[] {
  return JSON.parse(readFileSync(file, "utf8"));
}

/**
 * A small RFC 4180 parser for the tests, independent of the one in src: records of fields,
 * CRLF between records, quoted fields with doubled quotes. Strict: it fails on a bare LF or CR
 * outside quotes, and on text after a closing quote.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  if (text === "") return rows;
  for (;;) {
    let field = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) throw new Error("unterminated quoted field");
        field += text.slice(i, q);
        i = q + 1;
        if (text[i] === '"') {
          field += '"';
          i++;
        } else break;
      }
    } else {
      while (i < text.length && text[i] !== "," && text[i] !== "\r" && text[i] !== "\n") {
        if (text[i] === '"') throw new Error(`quote inside an unquoted field at ${i}`);
        field += text[i++];
      }
    }
    row.push(field);
    if (text[i] === ",") {
      i++;
      continue;
    }
    if (text.startsWith("\r\n", i)) {
      rows.push(row);
      row = [];
      i += 2;
      if (i === text.length) return rows;
      continue;
    }
    if (i === text.length) throw new Error("the last record has no CRLF");
    throw new Error(`unexpected ${JSON.stringify(text[i])} at ${i}`);
  }
}

/** A CSV file as its header and its rows as objects (cell text by column). */
export function readCsvFile(file: string): { header: string[]; rows: Record<string, string>[] } {
  const [header, ...rest] = parseCsv(readFileSync(file, "utf8"));
  for (const r of rest) if (r.length !== header.length) throw new Error(`row of ${r.length} cells: ${r}`);
  return { header, rows: rest.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]]))) };
}
