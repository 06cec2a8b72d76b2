import { open } from "node:fs/promises";
import type { OutputPlan } from "../compile/plan.js";

/** Bytes read from the start of a file to tell whether it holds a record. */
const HEAD_BYTES = 64 * 1024;

/**
 * Whether a stream's current output holds at least one record (the commit guard protects it):
 * a JSONL line, a JSON array element, a CSV row after the header, a row of the SQLite table.
 * Reads at most the file's first 64 KiB. False when there is no output yet; for a format it does
 * not know, false (the guard then lets the run commit).
 */
export async function outputHasRecords(output: OutputPlan, table: string): Promise<boolean> {
  if (output.format === "sqlite") return sqliteHasRows(output.path, table);
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
