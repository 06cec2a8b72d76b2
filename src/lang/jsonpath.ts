import { JSONPath } from "../vendor/config-libs.js";

/**
 * JSONPath, compiled once per run. Simple member paths (`$.a.b`, `$['x'][0]`) become direct
 * property walks; anything else goes through jsonpath-plus with its safe evaluator (never native
 * eval).
 */
export interface CompiledPath {
  readonly source: string;
  /** True when the path can match several values (wildcard, slice, filter, union, `..`). */
  readonly multi: boolean;
  /** Every match, in document order. */
  all(json: unknown): unknown[];
  /** The first match, or undefined. */
  first(json: unknown): unknown;
  /** The member names of a path made only of them (`$.a.b` → ["a", "b"], `$` → []), else null. */
  readonly keys: readonly string[] | null;
}

type Segment = { kind: "key"; key: string } | { kind: "index"; index: number };

interface Analysis {
  segments: Segment[] | null;
  multi: boolean;
  /** The path for jsonpath-plus: a negative index `[-2]` (which it does not match) as `[-2:-1]`. */
  libraryPath: string;
}

/** Checks the syntax of a path; returns an error message, or null when it parses. */
export function checkJsonPath(path: string): string | null {
  try {
    analyse(path);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

const cache = new Map<string, CompiledPath>();

export function compileJsonPath(path: string): CompiledPath {
  const hit = cache.get(path);
  if (hit) return hit;
  const { segments, multi, libraryPath } = analyse(path);
  let compiled: CompiledPath;
  if (segments) {
    const walk = (json: unknown): unknown => {
      let cur: unknown = json;
      for (const s of segments) {
        if (cur === null || typeof cur !== "object") return undefined;
        if (s.kind === "index") {
          if (Array.isArray(cur)) {
            // `[-1]` is the last element (RFC 9535), as `[-1:]` is in jsonpath-plus.
            cur = cur[s.index < 0 ? cur.length + s.index : s.index];
            continue;
          }
          // On an object, jsonpath-plus reads `[0]` as the member "0".
          if (s.index < 0 || !Object.hasOwn(cur, String(s.index))) return undefined;
          cur = (cur as Record<string, unknown>)[String(s.index)];
        } else {
          if (!Object.hasOwn(cur, s.key)) return undefined;
          cur = (cur as Record<string, unknown>)[s.key];
        }
      }
      return cur;
    };
    compiled = {
      source: path,
      multi: false,
      keys: segments.every((s) => s.kind === "key") ? segments.map((s) => (s as { key: string }).key) : null,
      first: walk,
      all: (json) => {
        const v = walk(json);
        return v === undefined ? [] : [v];
      },
    };
  } else {
    const run = (json: unknown, wrap: boolean): unknown =>
      JSONPath({ path: libraryPath, json: json as object, wrap, eval: "safe", ignoreEvalErrors: true });
    compiled = {
      source: path,
      multi,
      keys: null,
      all: (json) => {
        if (json === null || typeof json !== "object") return path === "$" ? [json] : [];
        const r = run(json, true);
        return Array.isArray(r) ? r : [];
      },
      first: (json) => {
        if (json === null || typeof json !== "object") return undefined;
        const r = run(json, true) as unknown[] | undefined;
        return Array.isArray(r) ? r[0] : undefined;
      },
    };
  }
  cache.set(path, compiled);
  return compiled;
}

// A member name after `.`: what jsonpath-plus reads there, including non-ASCII letters
// (`$.données`) and leading digits (`$.1x`).
const NAME = /[\p{L}\p{N}_$-]+/uy;

function analyse(path: string): Analysis {
  if (typeof path !== "string" || !path.startsWith("$")) {
    throw new Error(`a JSONPath starts with \`$\` (e.g. \`$.data\`), found \`${path}\``);
  }
  const st: ParseState = { path, i: 1, segments: [], negatives: [], simple: true, multi: false };
  while (st.i < path.length) {
    const c = path[st.i];
    if (c === ".") readDot(st);
    else if (c === "[") readBracket(st);
    else if (c === "^" || c === "~") {
      st.simple = false;
      st.i++;
    } else fail(st, `unexpected \`${c}\``);
  }
  let libraryPath = path;
  for (const [open, close, n] of st.negatives.reverse()) {
    libraryPath = `${libraryPath.slice(0, open)}[${n}:${n === -1 ? "" : n + 1}]${libraryPath.slice(close + 1)}`;
  }
  return { segments: st.simple ? st.segments : null, multi: st.multi, libraryPath };
}

/** Where the analysis of a path is: position, the segments so far, and what the path is. */
interface ParseState {
  readonly path: string;
  i: number;
  segments: Segment[];
  /** `[-n]` indexes: `[` position, `]` position, n (rewritten for jsonpath-plus). */
  negatives: [number, number, number][];
  /** Only names and indexes so far: a direct walk can read it. */
  simple: boolean;
  multi: boolean;
}

function fail(st: ParseState, msg: string): never {
  throw new Error(`${msg} at character ${st.i + 1} of \`${st.path}\``);
}

/** `.name`, `.*`, `..name`, `..*`, `..[`, `.^`, `.~` at `st.i`. */
function readDot(st: ParseState): void {
  const path = st.path;
  let recursive = false;
  if (path[st.i + 1] === ".") {
    recursive = true;
    st.simple = false;
    st.multi = true;
    st.i += 2;
    if (path[st.i] === "[") return;
  } else {
    st.i += 1;
  }
  if (path[st.i] === "*") {
    st.simple = false;
    st.multi = true;
    st.i++;
    return;
  }
  if (path[st.i] === "^" || path[st.i] === "~") {
    st.simple = false;
    st.i++;
    return;
  }
  NAME.lastIndex = st.i;
  const m = NAME.exec(path);
  if (!m) fail(st, recursive ? "expected a name, `*` or `[` after `..`" : "expected a name or `*` after `.`");
  const name = m[0];
  st.i += name.length;
  if (path[st.i] === "(" && name.startsWith("@") === false && path.slice(st.i, st.i + 2) === "()")
    fail(st, "unexpected `()`");
  st.segments.push({ kind: "key", key: name });
}

/** `[...]` at `st.i`: `*`, a filter or script, an index, a slice, or quoted names. */
function readBracket(st: ParseState): void {
  const path = st.path;
  const close = findBracketEnd(path, st.i);
  if (close < 0) fail(st, "unclosed `[`");
  const inner = path.slice(st.i + 1, close).trim();
  if (inner === "") fail(st, "empty `[]`");
  if (inner === "*") {
    st.simple = false;
    st.multi = true;
  } else if (inner.startsWith("?(") || inner.startsWith("(")) {
    if (!inner.endsWith(")")) fail(st, "a filter or script must end with `)`");
    const expr = inner.startsWith("?(") ? inner.slice(2, -1) : inner.slice(1, -1);
    if (!expr.trim()) fail(st, "empty filter expression");
    checkScript(expr, path);
    st.simple = false;
    if (inner.startsWith("?(")) st.multi = true;
  } else if (/^-?\d+$/.test(inner)) {
    const n = Number(inner);
    st.segments.push({ kind: "index", index: n });
    if (n < 0) st.negatives.push([st.i, close, n]);
  } else if (/^(-?\d+)?:(-?\d+)?(:-?\d+)?$/.test(inner)) {
    st.simple = false;
    st.multi = true;
  } else {
    const names = splitUnion(inner);
    if (!names) fail(st, `\`[${inner}]\` is not a name, index, slice, \`*\` or filter`);
    if (names.length === 1 && typeof names[0] === "string") {
      st.segments.push({ kind: "key", key: names[0] });
    } else {
      st.simple = false;
      st.multi = true;
    }
  }
  st.i = close + 1;
}

/** Index of the `]` closing the `[` at `start`, skipping quoted strings and parentheses. */
function findBracketEnd(path: string, start: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let j = start + 1; j < path.length; j++) {
    const ch = path[j];
    if (quote) {
      if (ch === "\\") j++;
      else if (ch === quote) quote = null;
      continue;
    }
    if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "]" && depth === 0) return j;
  }
  return -1;
}

/** `'a'`, `"a"`, `'a','b'`, `0,1` → list of names/indexes; null when it is none of those. */
function splitUnion(inner: string): (string | number)[] | null {
  const out: (string | number)[] = [];
  const re = /\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(-?\d+))\s*(,|$)/y;
  let pos = 0;
  while (pos < inner.length) {
    re.lastIndex = pos;
    const m = re.exec(inner);
    if (!m) return null;
    if (m[3] !== undefined) out.push(Number(m[3]));
    else out.push((m[1] ?? m[2]).replace(/\\(.)/g, "$1"));
    pos = re.lastIndex;
    if (m[4] === "" && pos < inner.length) return null;
  }
  return out.length ? out : null;
}

type ScriptCtor = new (code: string) => unknown;
const SafeScript = (JSONPath as unknown as { prototype: { safeVm: { Script: ScriptCtor } } }).prototype.safeVm
  .Script;

function checkScript(expr: string, path: string): void {
  // The same rewriting jsonpath-plus applies before its safe evaluator parses the expression.
  const script = expr
    .replaceAll("@parentProperty", "_$_parentProperty")
    .replaceAll("@parent", "_$_parent")
    .replaceAll("@property", "_$_property")
    .replaceAll("@root", "_$_root")
    .replaceAll("@path", "_$_path")
    .replace(/@([.\s)[])/g, "_$_v$1")
    .replace(/@$/, "_$_v");
  try {
    new SafeScript(script);
  } catch (err) {
    throw new Error(`filter \`${expr}\` in \`${path}\` does not parse: ${(err as Error).message}`);
  }
}
