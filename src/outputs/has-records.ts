import { open } from "node:fs/promises";
import type { OutputPlan } from "../compile/plan.js";

/** Bytes read from the start of a file to tell whether it holds a record. */
const HEAD_BYTES = 64 * 1024;

/**
 * Whether a stream's current output holds at least one record (the commit guard protects it):
 * a JSONL line, a JSON array element, a CSV row after the header, a row of the SQLite, DuckDB or
 * PostgreSQL table (`output.table`, else the stream's name), a Parquet file's row, a Singer
 * RECORD message. Reads at most a file's first 64 KiB (Singer: up to its first RECORD). False
 * when there is no output yet (Singer to standard output has none).
 */
export async function outputHasRecords(output: OutputPlan, stream: string): Promise<boolean> {
  const table = output.table?.name ?? stream;
  switch (output.format) {
    case "sqlite":
      return sqliteHasRows(output.path, table);
    case "duckdb":
      return (await import("./table-peek.js")).duckdbHasRows(output.path, table);
    case "parquet":
      return (await import("./table-peek.js")).parquetHasRows(output.path);
    case "postgres":
      return (await import("./table-peek.js")).postgresHasRows(output, table);
    case "singer":
      return (
        !output.singer?.stdout && (await import("./table-peek.js")).singerHasRecords(output.path, stream)
      );
  }
  const head = await readHead(output.path);
  if (head === null) return false;
  switch (output.format) {
    case "jsonl":
      return head.trim() !== "";
    case "json":
      return (
        head
          .replace(/^[\s\uFEFF]*\[/, "")
          .trim()
          .replace(/^\]/, "")
          .trim() !== ""
      );
    case "csv": {
      // The header ends at the first line break outside quotes; a record follows it.
      const end = headerEnd(head);
      return end >= 0 && head.slice(end).trim() !== "";
    }
    default:
      return false;
  }
}

async function readHead(file: string): Promise<string | null> {
  let handle: Awaited<ReturnType<typeof open>> | null = null;
  try {
    handle = await open(file, "r");
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buf, 0, HEAD_BYTES, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } catch {
    return null;
  } finally {
    await handle?.close();
  }
}

function headerEnd(text: string): number {
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === "\n") return i + 1;
  }
  return -1;
}

async function sqliteHasRows(file: string, table: string): Promise<boolean> {
  if ((await readHead(file)) === null) return false;
  return (await import("./sqlite-peek.js")).sqliteHasRows(file, table);
}
