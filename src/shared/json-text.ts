import { RunError } from "./errors.js";

/**
 * JSON text of API data in and out, exactly:
 * - integers beyond 2^53 (which JSON.parse rounds) arrive as BigInt, with every digit the API
 *   sent, and are written back as bare number literals with the same digits;
 * - a UTF-8 byte order mark before a body is skipped;
 * - a key named `__proto__` stays an own field (see {@link setOwn});
 * - values nested deeper than {@link MAX_NESTING} levels fail with a `too_deep` RunError instead
 *   of overflowing the call stack in whatever walks them.
 *
 * The common page has no long integer: it costs a strided look at its digits (one character in
 * 16) and JSON.parse. Only a page with a 16+ digit number token takes the lossless parser.
 */

/** Arrays and objects nested in each other deeper than this fail with a `too_deep` RunError. */
export const MAX_NESTING = 1000;

export function nestingError(): RunError {
  return new RunError(
    "too_deep",
    `a value is nested more than ${MAX_NESTING} levels deep (arrays and objects inside each other); pipelines handles up to ${MAX_NESTING}`,
  );
}

/** `obj[key] = value`, except that `__proto__` becomes an own field instead of the prototype. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else obj[key] = value;
}

/**
 * Field names that every plain object inherits (`constructor`, `toString`, `__proto__`, …): a
 * record without such a field still answers `record[name]` with something. Code that reads a
 * field by a name from config or from another record checks this once per name, then reads
 * with `Object.hasOwn` only for these names.
 */
export function isInheritedName(name: string): boolean {
  return name in Object.prototype;
}

/** `record[name]` if the record has it as its own field, else undefined. */
export function ownField(record: object, name: string): unknown {
  return Object.hasOwn(record, name) ? (record as Record<string, unknown>)[name] : undefined;
}

/** The text without a leading UTF-8 byte order mark (U+FEFF), which JSON.parse refuses. */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** What parseJsonBytes gives for bytes that are not JSON. */
export const NOT_JSON: unique symbol = Symbol("not JSON");

/** A body's bytes as JSON (parseJson): null when empty, NOT_JSON when they do not parse; too deep throws. */
export function parseJsonBytes(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return null;
  try {
    return parseJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch (err) {
    if (err instanceof RunError) throw err; // nested too deep
    return NOT_JSON;
  }
}

/** JSON.parse, lossless for big integers, a leading BOM skipped. Throws SyntaxError (or a too_deep RunError). */
export function parseJson(text: string): unknown {
  return parseJsonWith(text, false);
}

/**
 * parseJson, by the lossless parser also when `lossless` (a part of a document parseJson would
 * parse losslessly: it refuses what is nested too deep, as it does in the whole document).
 */
export function parseJsonWith(text: string, lossless: boolean): unknown {
  const t = stripBom(text);
  return lossless || mayHoldBigInteger(t) ? new LosslessParser(t).document() : JSON.parse(t);
}

/** Digits a safe integer may have at most is 16 (2^53 = 9007199254740992); fewer are always safe. */
const LONG = 16;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * True when the text has a run of 16+ ASCII digits that looks like a number token (after `:`,
 * `[`, `,`, a `-` or the start, spaces allowed). Any 16 consecutive characters hold exactly one
 * position ≡ 15 (mod 16), so looking at those positions finds every such run. A run inside a
 * string that looks like this (`"a:1234567890123456789"`) only costs the lossless parser.
 */
export function mayHoldBigInteger(t: string): boolean {
  const n = t.length;
  for (let p = LONG - 1; p < n; p += LONG) {
    if (!isDigit(t.charCodeAt(p))) continue;
    let start = p;
    while (start > 0 && isDigit(t.charCodeAt(start - 1))) start--;
    let end = p + 1;
    while (end < n && isDigit(t.charCodeAt(end))) end++;
    if (end - start >= LONG) {
      let b = start - 1;
      if (b >= 0 && t.charCodeAt(b) === 45) b--;
      while (b >= 0 && isSpace(t.charCodeAt(b))) b--;
      if (b < 0) return true;
      const c = t.charCodeAt(b);
      if (c === 58 || c === 91 || c === 44) return true;
    }
    p = end - 1; // a long run is looked at once; the next run starts after it
  }
  return false;
}

const isSpace = (c: number): boolean => c === 32 || c === 10 || c === 13 || c === 9;

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/** A small JSON parser (RFC 8259): what JSON.parse gives, but integers beyond 2^53 as BigInt. */
class LosslessParser {
  private i = 0;
  private depth = 0;
  constructor(private readonly t: string) {}

  document(): unknown {
    this.space();
    const v = this.value();
    this.space();
    if (this.i < this.t.length) this.fail("unexpected text after the JSON value");
    return v;
  }

  private fail(what: string): never {
    throw new SyntaxError(`${what} at position ${this.i}`);
  }

  private space(): void {
    const t = this.t;
    while (this.i < t.length && isSpace(t.charCodeAt(this.i))) this.i++;
  }

  private value(): unknown {
    const c = this.t.charCodeAt(this.i);
    if (c === 123) return this.object();
    if (c === 91) return this.array();
    if (c === 34) return this.string();
    if (c === 116) return this.word("true", true);
    if (c === 102) return this.word("false", false);
    if (c === 110) return this.word("null", null);
    return this.number();
  }

  private enter(): void {
    if (++this.depth > MAX_NESTING) throw nestingError();
    this.i++;
    this.space();
  }

  private object(): Record<string, unknown> {
    this.enter();
    const out: Record<string, unknown> = {};
    if (this.t.charCodeAt(this.i) === 125) {
      this.i++;
      this.depth--;
      return out;
    }
    for (;;) {
      if (this.t.charCodeAt(this.i) !== 34) this.fail("expected a string key");
      const key = this.string();
      this.space();
      if (this.t.charCodeAt(this.i) !== 58) this.fail("expected `:`");
      this.i++;
      this.space();
      setOwn(out, key, this.value());
      this.space();
      const c = this.t.charCodeAt(this.i++);
      if (c === 44) {
        this.space();
        continue;
      }
      if (c === 125) break;
      this.i--;
      this.fail("expected `,` or `}`");
    }
    this.depth--;
    return out;
  }

  private array(): unknown[] {
    this.enter();
    const out: unknown[] = [];
    if (this.t.charCodeAt(this.i) === 93) {
      this.i++;
      this.depth--;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.space();
      const c = this.t.charCodeAt(this.i++);
      if (c === 44) {
        this.space();
        continue;
      }
      if (c === 93) break;
      this.i--;
      this.fail("expected `,` or `]`");
    }
    this.depth--;
    return out;
  }

  private string(): string {
    const t = this.t;
    const start = this.i;
    let j = start + 1;
    let escaped = false;
    for (;;) {
      const c = t.charCodeAt(j);
      if (c === 34) break;
      if (c === 92) {
        escaped = true;
        j += 2;
        continue;
      }
      if (!(c >= 0x20)) {
        this.i = j;
        this.fail("unterminated string or control character in a string");
      }
      j++;
    }
    this.i = j + 1;
    // Escapes are rare: JSON.parse reads them (and checks them) for us.
    return escaped ? (JSON.parse(t.slice(start, j + 1)) as string) : t.slice(start + 1, j);
  }

  private word(w: string, v: boolean | null): boolean | null {
    if (!this.t.startsWith(w, this.i)) this.fail("unexpected token");
    this.i += w.length;
    return v;
  }

  private number(): number | bigint {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.t);
    if (!m) this.fail("unexpected token");
    const token = m![0];
    this.i += token.length;
    const n = Number(token);
    if (m![1] === undefined && m![2] === undefined && token.length >= LONG && !Number.isSafeInteger(n))
      return BigInt(token);
    return n;
  }
}

/**
 * JSON.stringify for API data: big integers (BigInt) as bare literals with their exact digits;
 * a value nested deeper than {@link MAX_NESTING} fails with a `too_deep` RunError. The common
 * value costs JSON.stringify only: the exact path runs when that one throws.
 */
export function stringifyJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return exact(value, 0) ?? "null";
  }
}

function exact(v: unknown, depth: number): string | undefined {
  switch (typeof v) {
    case "bigint":
      return v.toString();
    case "object": {
      if (v === null) return "null";
      if (depth >= MAX_NESTING) throw nestingError();
      if (Array.isArray(v)) {
        let s = "[";
        for (let i = 0; i < v.length; i++) s += (i ? "," : "") + (exact(v[i], depth + 1) ?? "null");
        return `${s}]`;
      }
      if (typeof (v as { toJSON?: unknown }).toJSON === "function") return JSON.stringify(v);
      let s = "{";
      let first = true;
      for (const k of Object.keys(v)) {
        const e = exact((v as Record<string, unknown>)[k], depth + 1);
        if (e === undefined) continue;
        s += `${first ? "" : ","}${JSON.stringify(k)}:${e}`;
        first = false;
      }
      return `${s}}`;
    }
    default:
      return JSON.stringify(v);
  }
}

/** True when `value` holds a BigInt anywhere (a big integer from {@link parseJson}). */
export function hasBigInt(value: unknown, depth = 0): boolean {
  if (typeof value === "bigint") return true;
  if (value === null || typeof value !== "object") return false;
  if (depth >= MAX_NESTING) throw nestingError();
  for (const v of Array.isArray(value) ? value : Object.values(value))
    if (hasBigInt(v, depth + 1)) return true;
  return false;
}

/**
 * A copy with every BigInt as the nearest number: for code that only knows JSON numbers (ajv's
 * `type: integer` refuses a BigInt). Own `__proto__` fields stay fields.
 */
export function withNumbers(value: unknown, depth = 0): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_NESTING) throw nestingError();
  if (Array.isArray(value)) return value.map((v) => withNumbers(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) setOwn(out, k, withNumbers(v, depth + 1));
  return out;
}

/**
 * A lone UTF-16 surrogate (JSON `"\ud800"`, valid JSON that JavaScript keeps in a string) has no
 * UTF-8 encoding: a UTF-8 file or database text would silently hold U+FFFD instead. Outputs that
 * write UTF-8 text refuse such a value with this message (jsonl, json and singer write it as the
 * JSON escape it came as).
 */
export const LONE_SURROGATE =
  "holds a lone UTF-16 surrogate (such as \\ud800 in JSON), which UTF-8 text cannot store; drop the field with `fields` or write jsonl";

const stringIsWellFormed = (String.prototype as unknown as { isWellFormed(this: string): boolean })
  .isWellFormed;

/** False when the string holds a lone UTF-16 surrogate (see {@link LONE_SURROGATE}). */
export function isWellFormed(s: string): boolean {
  return stringIsWellFormed.call(s);
}

/**
 * Whether JSON text written by stringifyJson escapes a lone surrogate: JSON.stringify writes one
 * as `\udXXX` and writes no other `\ud` escape (a backslash in the data is `\\`).
 */
export function escapesLoneSurrogate(json: string): boolean {
  return hasEscape(json, "\\ud");
}

/**
 * Whether JSON text holds the escape `seq` (`\u0000`, say): an occurrence whose backslash is not
 * itself escaped (`\\u0000` is a backslash, then `u0000`).
 */
export function hasEscape(json: string, seq: string): boolean {
  for (let i = json.indexOf(seq); i >= 0; i = json.indexOf(seq, i + 1)) {
    let j = i;
    while (j > 0 && json.charCodeAt(j - 1) === 92) j--;
    if ((i - j) % 2 === 0) return true;
  }
  return false;
}

/** The first field of the record whose value (at any depth) holds a lone surrogate. */
export function loneSurrogateField(record: Record<string, unknown>): string | undefined {
  for (const k of Object.keys(record)) {
    if (!isWellFormed(k)) return k;
    const v = record[k];
    if (
      typeof v === "string"
        ? !isWellFormed(v)
        : v !== null && typeof v === "object" && escapesLoneSurrogate(stringifyJson(v))
    )
      return k;
  }
  return undefined;
}
