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
  const segments: Segment[] = [];
  const negatives: [number, number, number][] = [];
  let simple = true;
  let multi = false;
  let i = 1;
  const fail = (msg: string): never => {
    throw new Error(`${msg} at character ${i + 1} of \`${path}\``);
  };
  while (i < path.length) {
    const c = path[i];
    if (c === ".") {
      let recursive = false;
      if (path[i + 1] === ".") {
        recursive = true;
        simple = false;
        multi = true;
        i += 2;
        if (path[i] === "[") continue;
      } else {
        i += 1;
      }
      if (path[i] === "*") {
        simple = false;
        multi = true;
        i++;
        continue;
      }
      if (path[i] === "^" || path[i] === "~") {
        simple = false;
        i++;
        continue;
      }
      NAME.lastIndex = i;
      const m = NAME.exec(path);
      if (!m) fail(recursive ? "expected a name, `*` or `[` after `..`" : "expected a name or `*` after `.`");
      const name = m![0];
      i += name.length;
      if (path[i] === "(" && name.startsWith("@") === false && path.slice(i, i + 2) === "()")
        fail("unexpected `()`");
      segments.push({ kind: "key", key: name });
      continue;
    }
    if (c === "[") {
      const close = findBracketEnd(path, i);
      if (close < 0) fail("unclosed `[`");
      const inner = path.slice(i + 1, close).trim();
      if (inner === "") fail("empty `[]`");
      if (inner === "*") {
        simple = false;
        multi = true;
      } else if (inner.startsWith("?(") || inner.startsWith("(")) {
        if (!inner.endsWith(")")) fail("a filter or script must end with `)`");
        const expr = inner.startsWith("?(") ? inner.slice(2, -1) : inner.slice(1, -1);
        if (!expr.trim()) fail("empty filter expression");
        checkScript(expr, path);
        simple = false;
        if (inner.startsWith("?(")) multi = true;
      } else if (/^-?\d+$/.test(inner)) {
        const n = Number(inner);
        segments.push({ kind: "index", index: n });
        if (n < 0) negatives.push([i, close, n]);
      } else if (/^(-?\d+)?:(-?\d+)?(:-?\d+)?$/.test(inner)) {
        simple = false;
        multi = true;
      } else {
        const names = splitUnion(inner);
        if (!names) fail(`\`[${inner}]\` is not a name, index, slice, \`*\` or filter`);
        if (names!.length === 1 && typeof names![0] === "string") {
          segments.push({ kind: "key", key: names![0] as string });
        } else {
          simple = false;
          multi = true;
        }
      }
      i = close + 1;
      continue;
    }
    if (c === "^" || c === "~") {
      simple = false;
      i++;
      continue;
    }
    fail(`unexpected \`${c}\``);
  }
  let libraryPath = path;
  for (const [open, close, n] of negatives.reverse()) {
    libraryPath = `${libraryPath.slice(0, open)}[${n}:${n === -1 ? "" : n + 1}]${libraryPath.slice(close + 1)}`;
  }
  return { segments: simple ? segments : null, multi, libraryPath };
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
