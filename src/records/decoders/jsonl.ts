import { isAscii, isUtf8 } from "node:buffer";
import { isCanonicalJsonObject } from "../../shared/canonical-json.js";
import { RunError } from "../../shared/errors.js";
import { parseJson } from "../../shared/json-text.js";
import { lastNewline, type RecordDecoder } from "./decoder.js";

/**
 * JSON lines: one JSON value per line (`\n` or `\r\n`); blank lines are skipped; a BOM before the
 * first line is skipped. Each chunk is decoded to text once, up to its last line feed (a UTF-8
 * character never spans it); the bytes after it wait for the next chunk.
 *
 * With `texts`, each record's line also goes there when it is already the JSON text stringifyJson
 * would write for the record (canonical-json.ts), else undefined: a writer of JSON can write it as
 * it came (the same bytes) instead of serializing the record again.
 */
export class JsonlDecoder implements RecordDecoder {
  private carry: Buffer | null = null;
  completeBytes = 0;
  lines = 0;

  /**
   * `raw`: offered each run of complete lines first (bytes ending with a line feed); it returns
   * how many records it took them as (src/run/raw-lines.ts), or -1 to leave them to this decoder.
   */
  constructor(private readonly raw: ((lines: Buffer) => number) | null = null) {}

  get held(): number {
    return this.carry?.length ?? 0;
  }

  push(chunk: Buffer, out: unknown[], texts?: (string | undefined)[]): void {
    const nl = lastNewline(chunk);
    if (nl < 0) {
      this.carry = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
      return;
    }
    const head = this.carry
      ? Buffer.concat([this.carry, chunk.subarray(0, nl + 1)])
      : chunk.subarray(0, nl + 1);
    this.carry = nl + 1 < chunk.length ? chunk.subarray(nl + 1) : null;
    const taken = this.raw ? this.raw(head) : -1;
    if (taken >= 0) this.lines += taken;
    else this.lines = this.parse(head.toString("utf8"), out, this.lines, head, texts);
    this.completeBytes += head.length;
  }

  end(out: unknown[], texts?: (string | undefined)[]): void {
    if (!this.carry) return;
    const rest = this.carry;
    this.carry = null;
    const bytes = texts || this.raw ? Buffer.concat([rest, NEWLINE]) : rest;
    const taken = this.raw ? this.raw(bytes) : -1;
    if (taken >= 0) this.lines += taken;
    else this.lines = this.parse(`${rest.toString("utf8")}\n`, out, this.lines, bytes, texts);
    this.completeBytes += rest.length;
  }

  resume(): void {
    this.carry = null;
  }

  /**
   * Every line of `text` (which ends with a line feed), decoded from `bytes`; returns the line
   * count after them. Bytes that are not valid UTF-8 make no line canonical (their text is not them).
   */
  private parse(
    text: string,
    out: unknown[],
    line: number,
    bytes: Buffer,
    texts: (string | undefined)[] | undefined,
  ): number {
    // ASCII: a character is a byte. Else the line's bytes end at the same line feed (a UTF-8
    // character never holds one).
    const ascii = texts !== undefined && isAscii(bytes);
    const utf8 = ascii || (texts !== undefined && isUtf8(bytes));
    let start = 0;
    let b = 0;
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", start)) {
      line++;
      const nl = ascii ? i : utf8 ? bytes.indexOf(10, b) : -1;
      let end = i;
      if (end > start && text.charCodeAt(end - 1) === 13) end--;
      if (end > start) {
        const s = text.slice(start, end);
        let record: unknown;
        try {
          record = parseJson(s);
        } catch (err) {
          if (s.trim() !== "") throw malformed(line, s, err);
        }
        if (record !== undefined) {
          out.push(record);
          if (texts) {
            const to = nl - (i - end); // without the `\r`
            texts.push(utf8 && isCanonicalJsonObject(bytes, b, to) ? s : undefined);
          }
        }
      }
      b = nl + 1;
      start = i + 1;
    }
    return line;
  }
}

const NEWLINE = Buffer.from("\n");

function malformed(line: number, text: string, err: unknown): RunError {
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return new RunError(
    err instanceof RunError ? err.kind : "bad_body",
    `line ${line} of the JSON lines body is not JSON (${(err as Error).message}): ${JSON.stringify(shown)}`,
    { line },
  );
}
