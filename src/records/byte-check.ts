import { isDateTime, isDateTimeBytes, isEmail, isEmailBytes } from "../lang/fast-formats.js";
import { sameBytes } from "../shared/json-spans.js";
import { isInheritedName } from "../shared/json-text.js";
import { T_ARRAY, T_BOOLEAN, T_INTEGER, T_NULL, T_NUMBER, T_OBJECT, T_STRING } from "../shared/json-types.js";
import { ucs2length } from "../vendor/config-libs.js";

/**
 * Checks a canonical JSON record against its stream's JSON Schema from the record's bytes, without
 * parsing it, for the part of JSON Schema most record schemas use: `type`, `properties`,
 * `required`, `items`, `additionalProperties`, `enum` and `const` of strings, numbers, booleans
 * and null, `minLength`, `maxLength`, `pattern`, `minimum`, `maximum`, `exclusiveMinimum`,
 * `exclusiveMaximum`, `minItems`, `maxItems`, the string formats (`date-time` and `email` read
 * from the bytes, the others as ajv checks them), and annotations. `compileByteSchema` returns
 * null for a schema with anything else (a `$ref`, `anyOf`, `multipleOf`, a tuple of `items`,
 * `patternProperties`, an `enum` of objects…): such a stream's records are parsed and checked by
 * ajv as before. Every keyword is checked one-sidedly too: a value it cannot tell valid (a string
 * with escapes against `maxLength` is decoded first; a value not among an `enum`'s bytes) sends
 * the record to the parse, where ajv says what is wrong.
 *
 * The answer is one-sided: `check` says true only when the record is valid AND its statistics are
 * told by its top-level members' names and types (StreamQuality.checkMembers); false means "parse
 * it" — an invalid record, a number with an exponent or more than 15 digits (its parsed value may
 * be a big integer, or an integer written as `1e+21`), a field whose values the report still
 * collects examples of (`takesExample`), more than 256 members. The bytes must be one canonical
 * JSON object (shared/json-spans.ts: what stringifyJson writes for the value they parse to), so
 * they are valid JSON without white space, and valid UTF-8.
 */

const TYPE_BITS: Record<string, number> = {
  null: 1 << T_NULL,
  array: 1 << T_ARRAY,
  object: 1 << T_OBJECT,
  string: 1 << T_STRING,
  boolean: 1 << T_BOOLEAN,
  integer: 1 << T_INTEGER,
  number: (1 << T_INTEGER) | (1 << T_NUMBER),
};

/**
 * A format's check of a string, and of a JSON string's content from its bytes (null: unsure, ask
 * the string's check), which says the same without making the string.
 */
interface Format {
  text(s: string): boolean;
  bytes(b: Uint8Array, s: number, e: number): boolean | null;
}

/**
 * Another string format, as the record validator checks it (lang/ajv.ts recordStringFormat): the
 * same function, or null when the validator does not check it on strings alone.
 */
export type StringFormats = (name: string) => ((s: string) => boolean) | null;

const FORMATS: Record<string, Format> = {
  "date-time": { text: isDateTime, bytes: isDateTimeBytes },
  email: { text: isEmail, bytes: isEmailBytes },
};

/** Bounds of a string's length (in code points, as ajv counts), a number, an array's length. */
interface Limits {
  minLength: number;
  maxLength: number;
  pattern: RegExp | null;
  minimum: number;
  maximum: number;
  exclusiveMinimum: number;
  exclusiveMaximum: number;
  minItems: number;
  maxItems: number;
}

/** The limits given by a number (COUNT_KEYWORDS, NUMBER_KEYWORDS). */
type NumberLimit = Exclude<keyof Limits, "pattern">;

const NO_LIMITS: Limits = {
  minLength: 0,
  maxLength: Number.POSITIVE_INFINITY,
  pattern: null,
  minimum: Number.NEGATIVE_INFINITY,
  maximum: Number.POSITIVE_INFINITY,
  exclusiveMinimum: Number.NEGATIVE_INFINITY,
  exclusiveMaximum: Number.POSITIVE_INFINITY,
  minItems: 0,
  maxItems: Number.POSITIVE_INFINITY,
};

/** Powers of ten a double holds exactly (10^0 … 10^22). */
const POWERS_OF_TEN = Array.from({ length: 23 }, (_, k) => 10 ** k);

const COUNT_KEYWORDS = new Set(["minLength", "maxLength", "minItems", "maxItems"]);
const NUMBER_KEYWORDS = new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]);

/** Keywords that do not constrain a value. */
const ANNOTATIONS = new Set([
  "$schema",
  "$id",
  "$comment",
  "title",
  "description",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
]);

/** One schema (a property's, an array's items') as the check reads it. */
interface Node {
  /** Allowed types as bits (1 << T_*); 0: any. */
  readonly types: number;
  readonly format: Format | null;
  readonly props: Map<string, Node> | null;
  /** Required property → its bit; `allRequired` has every bit. */
  readonly required: Map<string, number> | null;
  readonly allRequired: number;
  /** Null: any. */
  readonly items: Node | null;
  /** Null: no bounds. */
  readonly limits: Limits | null;
  /** `enum` or `const`: each allowed value as its canonical JSON's UTF-8 bytes; null: any value. */
  readonly consts: readonly Uint8Array[] | null;
  /** `additionalProperties: false`: a member `properties` does not list makes the object invalid. */
  readonly closed: boolean;
  /** `additionalProperties` as a schema: the members `properties` does not list; null: any. */
  readonly additional: Node | null;
  /** The member names last read in an object of this schema, by position (most records repeat them). */
  readonly seen: SeenName[];
}

interface SeenName {
  bytes: Uint8Array;
  name: string;
  node: Node;
  /** Whether the schema lists it (`properties`). */
  listed: boolean;
  /** Its bit in the object's `required` (0: not required). */
  bit: number;
}

const ANY: Node = node(0, null, null, [], null);

type NodeExtras = Partial<Pick<Node, "limits" | "consts" | "closed" | "additional">>;

function node(
  types: number,
  format: Node["format"],
  props: Node["props"],
  required: string[],
  items: Node | null,
  extras: NodeExtras = {},
): Node {
  const req = required.length ? new Map(required.map((r, k) => [r, 1 << k])) : null;
  return {
    types,
    format,
    props,
    required: req,
    allRequired: req ? (1 << required.length) - 1 : 0,
    items,
    limits: extras.limits ?? null,
    consts: extras.consts ?? null,
    closed: extras.closed ?? false,
    additional: extras.additional ?? null,
    seen: [],
  };
}

/**
 * The schema as the byte check reads it, or null when it uses something the check does not know.
 * `formats`: the string formats other than `date-time` and `email` (none without it).
 */
export function compileByteSchema(schema: unknown, formats: StringFormats | null = null): ByteSchema | null {
  // Its own root without a schema: the record's names are remembered apart from nested objects'.
  const root = schema === true ? node(0, null, null, [], null) : compileNode(schema, 0, formats);
  // A root that allows no object refuses every record: ajv says why, record by record. An enum
  // of the root's is of objects, which the check does not compare.
  if (!root || (root.types !== 0 && (root.types & (1 << T_OBJECT)) === 0) || root.consts !== null)
    return null;
  return { root };
}

export interface ByteSchema {
  readonly root: Node;
}

function compileNode(s: unknown, depth: number, formats: StringFormats | null): Node | null {
  if (s === true) return ANY;
  if (!s || typeof s !== "object" || Array.isArray(s) || depth > 16) return null;
  const o = s as Record<string, unknown>;
  let types = 0;
  let format: Node["format"] = null;
  let props: Map<string, Node> | null = null;
  let required: string[] = [];
  let items: Node | null = null;
  let limits: Limits | null = null;
  let consts: Uint8Array[] | null = null;
  let closed = false;
  let additional: Node | null = null;
  for (const [k, v] of Object.entries(o)) {
    if (ANNOTATIONS.has(k)) continue;
    if (k === "type") {
      for (const t of Array.isArray(v) ? v : [v]) {
        const bit = typeof t === "string" ? TYPE_BITS[t] : undefined;
        if (bit === undefined || !Object.hasOwn(TYPE_BITS, t as string)) return null;
        types |= bit;
      }
    } else if (k === "format") {
      if (typeof v !== "string") return null;
      if (Object.hasOwn(FORMATS, v)) format = FORMATS[v];
      else {
        const text = formats?.(v);
        if (!text) return null;
        format = { text, bytes: () => null };
      }
    } else if (k === "properties") {
      if (!v || typeof v !== "object" || Array.isArray(v)) return null;
      props = new Map();
      for (const [name, sub] of Object.entries(v as Record<string, unknown>)) {
        // ajv reads `data[name]`: a record without `constructor` is checked with the inherited one.
        if (isInheritedName(name)) return null;
        const n = compileNode(sub, depth + 1, formats);
        if (!n) return null;
        props.set(name, n);
      }
    } else if (k === "required") {
      if (!Array.isArray(v) || v.length > 30 || !v.every((r) => typeof r === "string")) return null;
      required = [...new Set(v as string[])];
    } else if (k === "items") {
      items = compileNode(v, depth + 1, formats);
      if (!items) return null;
    } else if (k === "additionalProperties") {
      if (v === false) closed = true;
      else if (v !== true) {
        additional = compileNode(v, depth + 1, formats);
        if (!additional) return null;
      }
    } else if (k === "enum" || k === "const") {
      const values = k === "enum" ? v : [v];
      if (!Array.isArray(values)) return null;
      // A value with no bytes to compare (an object, a long number) is left out: a record that
      // holds it matches none, and is parsed for ajv to check.
      const bytes = values.map(constBytes).filter((b) => b !== null);
      // Both keywords: a value must be in both lists.
      consts = consts ? consts.filter((c) => isOneOf(bytes, c, 0, c.length)) : bytes;
    } else if (COUNT_KEYWORDS.has(k) || NUMBER_KEYWORDS.has(k)) {
      if (typeof v !== "number" || !Number.isFinite(v)) return null;
      if (COUNT_KEYWORDS.has(k) && (!Number.isInteger(v) || v < 0)) return null;
      limits ??= { ...NO_LIMITS };
      limits[k as NumberLimit] = v;
    } else if (k === "pattern") {
      if (typeof v !== "string") return null;
      limits ??= { ...NO_LIMITS };
      try {
        // As ajv compiles it (its `unicodeRegExp` option, on by default).
        limits.pattern = new RegExp(v, "u");
      } catch {
        return null;
      }
    } else return null;
  }
  return node(types, format, props, required, items, {
    limits,
    consts,
    closed,
    additional,
  });
}

/**
 * The canonical JSON bytes of an `enum` or `const` value a record's bytes can be compared with:
 * a string, a boolean, null, or a number as the check reads one (at most 15 digits, no exponent:
 * written so by stringifyJson); null for anything else.
 */
function constBytes(v: unknown): Uint8Array | null {
  if (v === null || typeof v === "boolean" || typeof v === "string") return Buffer.from(JSON.stringify(v));
  if (typeof v !== "number" || !Number.isFinite(v) || Object.is(v, -0)) return null;
  const text = String(v);
  return /^-?\d+(\.\d+)?$/.test(text) && text.replace(/\D/g, "").length <= 15 ? Buffer.from(text) : null;
}

export const MAX_BYTE_MEMBERS = 256;

/**
 * Checks records of one stream (one per thread: it remembers member names by position). After a
 * true `check`, `names`, `types`, `values` and `count` hold the record's top-level members.
 */
export class ByteChecker {
  readonly names: string[] = [];
  readonly types = new Uint8Array(MAX_BYTE_MEMBERS);
  /** Per top-level member: where its value's bytes start and end (2k, 2k + 1). */
  readonly values = new Int32Array(2 * MAX_BYTE_MEMBERS);
  count = 0;
  /** The type of the value `value` read last. */
  private type = 0;
  /** The number of items of the array `array` read last. */
  private items = 0;

  constructor(
    private readonly schema: ByteSchema,
    /**
     * Whether a top-level field the schema does not list may still get a value as a report
     * example; null when the stream keeps no examples (StreamQuality.keepsExamples).
     */
    private readonly takesExample:
      | ((name: string, value: Uint8Array, start: number, end: number, type: number) => boolean)
      | null,
  ) {}

  /** Whether the canonical JSON object in [start, end) is valid and told by its members (see top). */
  check(b: Buffer, start: number, end: number): boolean {
    this.count = 0;
    return this.object(b, start, this.schema.root, true) === end;
  }

  /** Where the object at `i` ends; -1: invalid or unsure. `top`: the record's own members. */
  private object(b: Buffer, i: number, n: Node, top: boolean): number {
    let have = 0;
    let k = 0;
    i++;
    if (b[i] !== 0x7d) {
      // Names matter to the record's own members and to objects with properties or required ones.
      const named = top || n.props !== null || n.required !== null || n.closed || n.additional !== null;
      for (;;) {
        const seen = named ? nameAt(n, k, b, i + 1) : null;
        if (seen !== null && n.closed && !seen.listed) return -1;
        const at = (seen ? i + 1 + seen.bytes.length : stringEnd(b, i + 1)) + 2;
        i = this.value(b, at, seen?.node ?? ANY);
        if (i < 0) return -1;
        if (top && seen) {
          if (k === MAX_BYTE_MEMBERS) return -1;
          if (!seen.listed && this.type !== T_NULL && this.takesExample?.(seen.name, b, at, i, this.type))
            return -1;
          this.names[k] = seen.name;
          this.types[k] = this.type;
          this.values[2 * k] = at;
          this.values[2 * k + 1] = i;
        }
        if (seen) have |= seen.bit;
        k++;
        if (b[i] !== 0x2c) break;
        i++;
      }
    }
    if (have !== n.allRequired) return -1;
    if (top) this.count = k;
    this.type = T_OBJECT;
    return i + 1;
  }

  private array(b: Buffer, i: number, items: Node): number {
    i++;
    let count = 0;
    if (b[i] !== 0x5d) {
      for (;;) {
        i = this.value(b, i, items);
        if (i < 0) return -1;
        count++;
        if (b[i] !== 0x2c) break;
        i++;
      }
    }
    this.items = count;
    return i + 1;
  }

  /** Where the value at `i` ends, `type` set; -1: invalid or unsure. */
  private value(b: Buffer, i: number, n: Node): number {
    const c = b[i];
    let end: number;
    let t: number;
    if (c === 0x22) {
      end = stringEnd(b, i + 1) + 1;
      t = T_STRING;
      if (
        n.format &&
        (n.types === 0 || n.types & (1 << T_STRING)) &&
        !formatHolds(n.format, b, i + 1, end - 1)
      )
        return -1;
    } else if (c === 0x7b) {
      // An object is never among an enum's values here (constBytes): no need to read it.
      if ((n.types !== 0 && (n.types & (1 << T_OBJECT)) === 0) || n.consts !== null) return -1;
      end = this.object(b, i, n, false);
      t = T_OBJECT;
    } else if (c === 0x5b) {
      if ((n.types !== 0 && (n.types & (1 << T_ARRAY)) === 0) || n.consts !== null) return -1;
      end = this.array(b, i, n.items ?? ANY);
      t = T_ARRAY;
    } else if (c === 0x74) {
      end = i + 4;
      t = T_BOOLEAN;
    } else if (c === 0x66) {
      end = i + 5;
      t = T_BOOLEAN;
    } else if (c === 0x6e) {
      end = i + 4;
      t = T_NULL;
    } else {
      // A canonical number: -?digits, then a fraction (a number, not an integer) or an exponent (unsure).
      end = i;
      if (b[end] === 0x2d) end++;
      let digits = 0;
      t = T_INTEGER;
      for (;;) {
        const d = b[end];
        if (d >= 0x30 && d <= 0x39) digits++;
        else if (d === 0x2e) t = T_NUMBER;
        else if (d === 0x65 || d === 0x45) return -1;
        else break;
        end++;
      }
      if (digits > 15) return -1;
    }
    if (end < 0) return -1;
    if (n.types !== 0 && (n.types & (1 << t)) === 0) return -1;
    this.type = t;
    return n.consts === null && n.limits === null ? end : this.bounded(b, i, end, n, t);
  }

  /** `end` when the value in [i, end), of type `t`, is within `n`'s enum and limits; else -1. */
  private bounded(b: Buffer, i: number, end: number, n: Node, t: number): number {
    if (n.consts !== null && !isOneOf(n.consts, b, i, end)) return -1;
    const l = n.limits;
    if (l === null) return end;
    if (t === T_STRING) {
      // A character takes 1 to 12 bytes (a surrogate pair written as two `\u` escapes): counted
      // only when the byte length does not tell.
      const bytes = end - i - 2;
      if (bytes > l.maxLength || Math.ceil(bytes / 12) < l.minLength) {
        const len = codePoints(b, i + 1, end - 1);
        if (len < l.minLength || len > l.maxLength) return -1;
      }
      if (l.pattern !== null && !l.pattern.test(stringAt(b, i + 1, end - 1))) return -1;
    } else if (t === T_INTEGER || t === T_NUMBER) {
      const x = numberAt(b, i, end);
      if (x < l.minimum || x > l.maximum || x <= l.exclusiveMinimum || x >= l.exclusiveMaximum) return -1;
    } else if (t === T_ARRAY) {
      if (this.items < l.minItems || this.items > l.maxItems) return -1;
    }
    return end;
  }
}

/** Whether the value in [s, e) is one of `consts`' bytes. */
function isOneOf(consts: readonly Uint8Array[], b: Uint8Array, s: number, e: number): boolean {
  for (const c of consts) if (sameBytes(b, s, e, c)) return true;
  return false;
}

/**
 * The value JSON.parse gives the canonical number in [s, e) (at most 15 digits, no exponent: as
 * `value` passed it): its digits as an exact integer divided by an exact power of ten, rounded
 * once to the double nearest the decimal. Every number of a checked record is such a number (a
 * longer one or one with an exponent leaves its record to the parse): scalarAt reads them so.
 */
export function numberAt(b: Uint8Array, s: number, e: number): number {
  let m = 0;
  let fraction = -1;
  for (let j = b[s] === 0x2d ? s + 1 : s; j < e; j++) {
    const d = b[j];
    if (d === 0x2e) fraction = 0;
    else {
      m = m * 10 + (d - 0x30);
      if (fraction >= 0) fraction++;
    }
  }
  const x = fraction > 0 ? m / POWERS_OF_TEN[fraction] : m;
  return b[s] === 0x2d ? -x : x;
}

/**
 * The length of the JSON string whose content is [s, e) as ajv counts it (its ucs2length: code
 * points, a lone surrogate one): the UTF-8 bytes that start a character (the bytes are valid
 * UTF-8); decoded when it has escapes.
 */
function codePoints(b: Buffer, s: number, e: number): number {
  let n = 0;
  for (let j = s; j < e; j++) {
    const c = b[j];
    if (c === 0x5c) return ucs2length(stringAt(b, s, e));
    if ((c & 0xc0) !== 0x80) n++;
  }
  return n;
}

/** Whether the JSON string whose content is [s, e) has the format. */
function formatHolds(f: Format, b: Buffer, s: number, e: number): boolean {
  return f.bytes(b, s, e) ?? f.text(stringAt(b, s, e));
}

/** The index of the quote that ends the string whose first byte (after its quote) is at `i`. */
function stringEnd(b: Buffer, i: number): number {
  for (;;) {
    const q = b.indexOf(0x22, i);
    let s = q;
    while (b[s - 1] === 0x5c) s--;
    if ((q - s) % 2 === 0) return q;
    i = q + 1;
  }
}

/** Buffer's own slicing methods (what `toString` calls once its arguments are checked). */
interface Slices {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

/** The string whose bytes (inside its quotes) are [s, e). */
export function stringAt(b: Buffer, s: number, e: number): string {
  let ascii = true;
  for (let j = s; j < e; j++) {
    const c = b[j];
    if (c >= 0x80 || c === 0x5c) {
      ascii = false;
      break;
    }
  }
  const slices = b as unknown as Slices;
  if (ascii) return slices.latin1Slice(s, e);
  const text = slices.utf8Slice(s, e);
  return text.includes("\\") ? (JSON.parse(`"${text}"`) as string) : text;
}

/**
 * A checked record's scalar value whose bytes (type `type`, as the checker gives it) are [s, e),
 * as the record's parse gives it: a string, a number (numberAt), a boolean or null; undefined for
 * an array or an object (jsonTextAt gives their JSON).
 */
export function scalarAt(
  b: Buffer,
  type: number,
  s: number,
  e: number,
): string | number | boolean | null | undefined {
  switch (type) {
    case T_STRING:
      return stringAt(b, s + 1, e - 1);
    case T_INTEGER:
    case T_NUMBER:
      return numberAt(b, s, e);
    case T_BOOLEAN:
      return b[s] === 0x74; // `true`
    case T_NULL:
      return null;
    default:
      return undefined;
  }
}

/** The JSON text of bytes [s, e) (a checked record's array or object: as stringifyJson writes it). */
export function jsonTextAt(b: Buffer, s: number, e: number): string {
  return (b as unknown as Slices).utf8Slice(s, e);
}

/**
 * The member name whose bytes start at `s` (after its quote) in an object of schema `n`, the
 * `k`-th: the one at that position in the last object when its bytes are there again.
 */
function nameAt(n: Node, k: number, b: Buffer, s: number): SeenName {
  const last = n.seen[k];
  if (last) {
    const a = last.bytes;
    const len = a.length;
    let j = 0;
    while (j < len && a[j] === b[s + j]) j++;
    if (j === len && b[s + len] === 0x22 && b[s + len - 1] !== 0x5c) return last;
  }
  const e = stringEnd(b, s);
  const name = stringAt(b, s, e);
  const listed = n.props?.get(name);
  const seen: SeenName = {
    bytes: Uint8Array.prototype.slice.call(b, s, e), // a copy: the page is not kept
    name,
    node: listed ?? n.additional ?? ANY,
    listed: listed !== undefined,
    bit: n.required?.get(name) ?? 0,
  };
  if (k < MAX_BYTE_MEMBERS) n.seen[k] = seen;
  return seen;
}
