import { createReadStream } from "node:fs";
import { rejectedPath } from "../compile/layout.js";
import type { OutputPlan } from "../compile/plan.js";
import { parseJson, stringifyJson } from "../shared/json-text.js";
import { AtomicFile, fileExists, readLines, SpanReader } from "./atomic-file.js";
import {
  combine,
  jsonKeyFunction,
  type Key,
  type Layout,
  type OldRecord,
  RunKeys,
  requireKeyForMerge,
} from "./merge.js";
import type { RecordWriter, WriterContext } from "./writer.js";

const JSONL: Layout = { open: "", sep: "", term: "\n", close: "", empty: "" };
const JSON_ARRAY: Layout = { open: "[\n", sep: ",\n", term: "", close: "\n]\n", empty: "[]\n" };

/** One JSON object per line. */
export function openJsonlWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  return openJsonFamily(output, ctx, false);
}

/** One JSON array, one record per line inside it. */
export function openJsonWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  return openJsonFamily(output, ctx, true);
}

/**
 * Records go to a temporary body file already in the final layout. When nothing needs
 * combining (replace, no duplicate), commit is a rename; otherwise commit streams the old target
 * and the body into a second temporary file (see merge.ts) and renames that.
 */
async function openJsonFamily(output: OutputPlan, ctx: WriterContext, array: boolean): Promise<RecordWriter> {
  requireKeyForMerge(output, ctx.primaryKey);
  const layout = array ? JSON_ARRAY : JSONL;
  const keyOf = ctx.primaryKey?.length ? jsonKeyFunction(ctx.primaryKey) : null;
  const keys = keyOf ? new RunKeys() : null;
  const body = await AtomicFile.create(output.path, ctx.runId, "body");
  let out: AtomicFile | null = null;
  let reader: SpanReader | null = null;
  let count = 0;
  let bytes = 0;

  const commitCombined = async (mode = output.mode, target = output.path): Promise<void> => {
    await body.close();
    out = await AtomicFile.create(target, ctx.runId);
    const old = mode !== "replace" && (await fileExists(output.path)) ? output.path : null;
    reader = await SpanReader.open(body.tmpPath);
    const handle = reader;
    await combine({
      out,
      layout,
      mode,
      old: old ? readOldRecords(old, array, mode === "merge" ? keyOf : null) : null,
      body: readBody(body.tmpPath, array),
      keys,
      latest: (slot) => handle.read(slot.offset, slot.length),
    });
    await reader.close();
    reader = null;
    await out.commit();
    await body.abort();
  };

  return {
    write(record, given) {
      const json = given ?? stringifyJson(record);
      if (keys && keyOf) {
        const length = Buffer.byteLength(json);
        const prefix = array ? 2 : 0;
        keys.see(keyOf(record), count, bytes + prefix, length);
        bytes += prefix + length + (array ? 0 : 1);
      }
      const text = array ? (count === 0 ? "[\n" : ",\n") + json : json + "\n";
      count++;
      return body.write(text);
    },
    // JSON lines only: an array's separators depend on the records before (writeLines is optional).
    writeLines: array
      ? undefined
      : (text, n, keyList, lengths) => {
          if (keys && keyList && lengths) bytes = seeKeys(keys, keyList, lengths, count, bytes);
          count += n;
          return body.write(text);
        },
    duplicates: () => keys?.duplicates ?? 0,
    async commit() {
      if (output.mode === "replace" && !keys?.duplicates) {
        if (array) await body.write(count ? JSON_ARRAY.close : JSON_ARRAY.empty);
        await body.commit();
        return;
      }
      await commitCombined();
    },
    async keepRejected() {
      const target = rejectedPath(output.path, ctx.runId);
      if (!keys?.duplicates) {
        if (array) await body.write(count ? JSON_ARRAY.close : JSON_ARRAY.empty);
        await body.commit(target);
      } else await commitCombined("replace", target);
      return target;
    },
    async abort() {
      await reader?.close().catch(() => {});
      await body.abort();
      await out?.abort();
    },
  };
}

/** Notes the keys of JSON lines written elsewhere (writeLines); the body's length after them. */
function seeKeys(
  keys: RunKeys,
  list: readonly (Key | null)[],
  lengths: readonly number[],
  first: number,
  bytes: number,
): number {
  let at = bytes;
  for (let i = 0; i < list.length; i++) {
    keys.see(list[i], first + i, at, lengths[i]);
    at += lengths[i] + 1;
  }
  return at;
}

/** The body's records: one per line; for an array, after the `[` line and without the comma. */
async function* readBody(file: string, array: boolean): AsyncGenerator<string> {
  let first = true;
  for await (const line of readLines(file)) {
    if (!array) yield line;
    else if (first) first = false;
    else yield line.endsWith(",") ? line.slice(0, -1) : line;
  }
}

/** The target's records, as written there; with `keyOf` (merge), each with its key. */
async function* readOldRecords(
  file: string,
  array: boolean,
  keyOf: ((record: Record<string, unknown>) => Key | null) | null,
): AsyncGenerator<OldRecord> {
  let n = 0;
  const source = array ? readJsonArray(file) : readNonBlankLines(file);
  for await (const text of source) {
    n++;
    if (!keyOf) {
      yield { text, key: null };
      continue;
    }
    let value: unknown;
    try {
      value = parseJson(text);
    } catch {
      throw new Error(`cannot merge into ${file}: ${array ? "element" : "line"} ${n} is not valid JSON`);
    }
    const key =
      value !== null && typeof value === "object" && !Array.isArray(value)
        ? keyOf(value as Record<string, unknown>)
        : null;
    yield { text, key };
  }
}

async function* readNonBlankLines(file: string): AsyncGenerator<string> {
  for await (const line of readLines(file)) if (line.trim() !== "") yield line;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d, 0xfeff]);

/**
 * The elements of a file holding one JSON array, streamed: each element's text (trimmed), found
 * by tracking nesting and strings, so that any layout (pretty-printed or not) reads in flat
 * memory. An empty file reads as no elements. Elements are not validated here.
 */
export async function* readJsonArray(file: string): AsyncGenerator<string> {
  let started = false;
  let done = false;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let pieces: string[] = [];
  const element = (): string => {
    const text = pieces.join("").trim();
    pieces = [];
    return text;
  };
  const input = createReadStream(file, { encoding: "utf8", highWaterMark: 64 * 1024 });
  try {
    for await (const chunk of input as AsyncIterable<string>) {
      let from = 0;
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk.charCodeAt(i);
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = true;
          else if (c === 0x22) inString = false;
          continue;
        }
        if (!started || done) {
          if (WS.has(c)) continue;
          if (!started && c === 0x5b) {
            started = true;
            depth = 1;
            from = i + 1;
            continue;
          }
          throw new Error(`${file} is not a JSON array (unexpected ${JSON.stringify(chunk[i])})`);
        }
        if (c === 0x22) inString = true;
        else if (c === 0x7b || c === 0x5b) depth++;
        else if (c === 0x7d || c === 0x5d) {
          depth--;
          if (depth === 0) {
            pieces.push(chunk.slice(from, i));
            const text = element();
            if (text) yield text;
            done = true;
          }
        } else if (c === 0x2c && depth === 1) {
          pieces.push(chunk.slice(from, i));
          yield element();
          from = i + 1;
        }
      }
      if (started && !done) pieces.push(chunk.slice(from));
    }
  } finally {
    input.destroy();
  }
  if (started && !done) throw new Error(`${file} is not a complete JSON array`);
}
