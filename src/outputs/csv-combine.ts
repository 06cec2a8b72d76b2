import type { OutputPlan } from "../compile/plan.js";
import { AtomicFile, fileExists, SpanReader } from "./atomic-file.js";
import { CRLF, csvRow, parseOne, readCsv } from "./csv-format.js";
import { combine, type Key, keyFunction, type Layout, type OldRecord, type RunKeys } from "./merge.js";

/**
 * The CSV commit that rewrites the file: the old target (append, merge) and this run's body,
 * row by row, into a new temporary file with the full header (the old header first, in its
 * order, then this run's new columns), earlier rows padded with empty cells.
 */

const ROWS: Layout = { open: "", sep: "", term: CRLF, close: "", empty: "" };

/** What the writer has when it combines. */
export interface CombineInput {
  output: OutputPlan;
  runId: string;
  primaryKey: string[] | null;
  /** The body file: this run's rows (with a header row when `hasHeader`). */
  body: AtomicFile;
  columns: string[];
  hasHeader: boolean;
  /** Rows written to the body. */
  count: number;
  keys: RunKeys | null;
  cell: (value: unknown) => string;
  headerText: (name: string) => string;
}

/** Files the combine has open, for the writer's abort. */
export interface OpenFiles {
  out: AtomicFile | null;
  reader: SpanReader | null;
}

/** Writes the combined file to `target` and commits it; the body is removed. */
export async function commitCombined(
  input: CombineInput,
  open: OpenFiles,
  mode: OutputPlan["mode"],
  target: string,
): Promise<void> {
  const { output, body, keys, cell, headerText } = input;
  await body.close();
  const bodyColumns = input.columns;
  const old = mode !== "replace" && (await fileExists(output.path)) ? await openCsv(output.path) : null;
  try {
    const final = old ? [...old.header] : [];
    const position = new Map<string, number>();
    final.forEach((c, i) => {
      if (!position.has(c)) position.set(c, i);
    });
    for (const name of bodyColumns) {
      const c = headerText(name);
      if (!position.has(c)) {
        position.set(c, final.length);
        final.push(c);
      }
    }
    const width = final.length;
    const bodyMap = bodyColumns.map((c) => position.get(headerText(c))!);
    const out = await AtomicFile.create(target, input.runId);
    open.out = out;
    if (width || input.count || old) await out.write(csvRow(final) + CRLF);
    const reader = await SpanReader.open(body.tmpPath);
    open.reader = reader;
    const toFinal = (cells: string[]): string => csvRow(remap(cells, bodyMap, width));
    await combine({
      out,
      layout: ROWS,
      mode,
      old: old
        ? oldRows(output.path, old, width, mode === "merge" ? input.primaryKey : null, cell, headerText)
        : null,
      body: bodyRows(body.tmpPath, input.hasHeader, toFinal),
      keys,
      latest: async (slot) => toFinal(parseOne(await reader.read(slot.offset, slot.length))),
    });
    await reader.close();
    open.reader = null;
  } finally {
    await old?.rows.return(undefined);
  }
  await open.out!.commit();
  await body.abort();
}

/** Keys compared as cell text (what a CSV file keeps); an empty cell matches nothing. */
export function csvKeyFunction(
  primaryKey: string[],
  cell: (value: unknown) => string,
): (record: Record<string, unknown>) => Key | null {
  return keyFunction(primaryKey, (v) => {
    const t = cell(v);
    return t === "" ? undefined : t;
  });
}

/** Cells placed at their final positions (`map[i]` for cell i), padded with empty cells. */
function remap(cells: string[], map: number[], width: number): string[] {
  const out = new Array<string>(width).fill("");
  const n = Math.min(cells.length, map.length);
  for (let i = 0; i < n; i++) out[map[i]] = cells[i];
  return out;
}

async function* bodyRows(
  file: string,
  hasHeader: boolean,
  toFinal: (cells: string[]) => string,
): AsyncGenerator<string> {
  let skip = hasHeader;
  for await (const cells of readCsv(file)) {
    if (skip) skip = false;
    else yield toFinal(cells);
  }
}

interface OpenCsv {
  header: string[];
  rows: AsyncGenerator<string[]>;
}

/** An existing CSV file: its header, and an iterator over the rows after it; null when empty. */
async function openCsv(file: string): Promise<OpenCsv | null> {
  const rows = readCsv(file);
  const first = await rows.next();
  if (first.done) return null;
  return { header: first.value, rows };
}

/** The old file's rows in the final columns (its header is their prefix); keys for merge. */
async function* oldRows(
  file: string,
  old: OpenCsv,
  width: number,
  primaryKey: string[] | null,
  cell: (value: unknown) => string,
  headerText: (name: string) => string,
): AsyncGenerator<OldRecord> {
  const keyAt = primaryKey?.map((f) => old.header.indexOf(headerText(f))) ?? null;
  const keyed = keyAt !== null && !keyAt.includes(-1);
  const keyOf = primaryKey ? csvKeyFunction(primaryKey, cell) : null;
  const cellsByName: Record<string, string> = Object.create(null);
  let line = 1;
  for (let next = await old.rows.next(); !next.done; next = await old.rows.next()) {
    line++;
    const cells = next.value;
    if (cells.length > width) {
      if (cells.slice(width).some((c) => c !== "")) {
        throw new Error(
          `cannot add to ${file}: row ${line} has ${cells.length} cells but the header names ${old.header.length} columns`,
        );
      }
      cells.length = width;
    }
    while (cells.length < width) cells.push("");
    let key: Key | null = null;
    if (keyed && keyAt && keyOf && primaryKey) {
      for (let k = 0; k < keyAt.length; k++) cellsByName[primaryKey[k]] = cells[keyAt[k]];
      key = keyOf(cellsByName);
    }
    yield { text: csvRow(cells), key };
  }
}
