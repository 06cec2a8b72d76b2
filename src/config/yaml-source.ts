import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  type YAMLMap,
} from "../vendor/config-libs.js";
import { ConfigError, type ConfigErrorCode, type ConfigIssue, excerptAt } from "./errors.js";
import { yamlHint } from "./yaml-hints.js";

export type KeyPath = ReadonlyArray<string | number>;

/**
 * How every pipeline file is read. `merge`: YAML merge keys (`<<: *defaults`), which YAML 1.2
 * dropped but analysts know from docker-compose and CI files; keys written beside a merge win.
 * `uniqueKeys: false`: yaml compares every key of a map with every other one (minutes for a map
 * of 100,000 keys, and SIGTERM waits for it); YamlSource finds repeated keys in one pass instead.
 */
export const YAML_OPTIONS = { uniqueKeys: false, prettyErrors: false, merge: true } as const;

/** A string scalar of the document with its key path and where its text starts. */
export interface StringNode {
  path: (string | number)[];
  value: string;
  offset: number;
  quoted: boolean;
  /** True when the source text at `offset` is the value as is (no escapes, no line folding). */
  verbatim: boolean;
}

export interface Position {
  file: string;
  line: number;
  column: number;
}

/** A parsed YAML file that can answer "where is this key path?" for error messages. */
export class YamlSource {
  readonly file: string;
  readonly text: string;
  readonly doc: Document.Parsed;
  readonly syntaxIssues: ConfigIssue[] = [];
  private readonly lineCounter = new LineCounter();

  constructor(file: string, text: string) {
    this.file = file;
    this.text = text;
    this.doc = parseDocument(text, { ...YAML_OPTIONS, lineCounter: this.lineCounter });
    const found: { offset: number; issue: ConfigIssue }[] = [];
    for (const err of this.doc.errors) {
      const { line, column } = this.offsetToPos(err.pos[0]);
      const code: ConfigErrorCode = err.code === "DUPLICATE_KEY" ? "duplicate_key" : "yaml_syntax";
      const message = err.message.split("\n")[0].replace(/ at line \d+, column \d+.*$/, "");
      found.push({ offset: err.pos[0], issue: this.issueAt(code, line, column, "", message) });
    }
    // A mistake the parser reports as a cascade (a tab, an unquoted template in `{ }`, an indent
    // one off) is one issue at the line to fix, saying what to do.
    const hint = this.doc.errors.length ? yamlHint(text, this.doc.errors[0].pos[0]) : null;
    if (hint) {
      const { line, column } = this.offsetToPos(hint.offset);
      found.length = 0;
      found.push({ offset: hint.offset, issue: this.issueAt("yaml_syntax", line, column, "", hint.message) });
    }
    for (const dup of this.duplicateKeys()) {
      const { line, column } = this.offsetToPos(dup.offset);
      const first = this.offsetToPos(dup.firstOffset);
      const key = dup.path[dup.path.length - 1];
      found.push({
        offset: dup.offset,
        issue: this.issueAt(
          "duplicate_key",
          line,
          column,
          formatKeyPath(dup.path),
          `duplicate key \`${key}\`: it is already set at line ${first.line}; a key may appear once in a map`,
          { expected: "each key once", found: `\`${key}\` twice` },
        ),
      });
    }
    for (const proto of this.protoKeys) {
      const { line, column } = this.offsetToPos(proto.offset);
      found.push({
        offset: proto.offset,
        issue: this.issueAt(
          "bad_value",
          line,
          column,
          formatKeyPath(proto.path),
          "a key cannot be `__proto__`: JavaScript reads it as the object's prototype, not as a key (rename it; a stream's name, a param, a header)",
          { expected: "another key", found: "`__proto__`" },
        ),
      });
    }
    found.sort((a, b) => a.offset - b.offset);
    this.syntaxIssues.push(...found.map((f) => f.issue));
  }

  /**
   * Keys repeated in a map, in one pass over the document (a set of keys per map), without
   * recursion (a deeply nested file must not overflow the stack). Merge keys (`<<`) may repeat.
   */
  /** Keys named `__proto__` (duplicateKeys finds them on its walk). */
  private readonly protoKeys: { path: (string | number)[]; offset: number }[] = [];

  private duplicateKeys(): { path: (string | number)[]; offset: number; firstOffset: number }[] {
    const dups: { path: (string | number)[]; offset: number; firstOffset: number }[] = [];
    const stack: { node: unknown; path: (string | number)[] }[] = [{ node: this.doc.contents, path: [] }];
    while (stack.length) {
      const { node, path } = stack.pop()!;
      if (isMap(node)) {
        const seen = new Map<string, number>();
        for (const pair of node.items) {
          if (!isPair(pair)) continue;
          if (isScalar(pair.key)) {
            const k = pair.key.value;
            if (typeof k === "symbol" || k === "<<") continue;
            const name = String(k);
            const offset = pair.key.range?.[0] ?? 0;
            if (name === "__proto__") this.protoKeys.push({ path: [...path, name], offset });
            const first = seen.get(name);
            if (first === undefined) seen.set(name, offset);
            else dups.push({ path: [...path, name], offset, firstOffset: first });
            stack.push({ node: pair.value, path: [...path, name] });
          }
        }
      } else if (isSeq(node)) {
        for (let i = 0; i < node.items.length; i++) stack.push({ node: node.items[i], path: [...path, i] });
      }
    }
    return dups;
  }

  /** The document's value; a merge of a non-map or an alias loop is a positioned config error. */
  toJS(): unknown {
    try {
      return this.doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      const at = this.badMergeOffset() ?? this.firstAliasOffset() ?? 0;
      const { line, column } = this.offsetToPos(at);
      const message = (err as Error).message.split("\n")[0];
      throw new ConfigError([
        this.issueAt("yaml_syntax", line, column, "", `${message} (YAML anchors, aliases and \`<<\` merges)`),
      ]);
    }
  }

  /** Where a merge (`<<`) takes something that is not a map. */
  private badMergeOffset(): number | undefined {
    const walk = (node: unknown, seen: Set<unknown>): number | undefined => {
      if (seen.has(node)) return undefined;
      seen.add(node);
      if (isMap(node)) {
        for (const p of node.items) {
          if (!isPair(p)) continue;
          const k = isScalar(p.key) ? p.key.value : undefined;
          if (k === "<<" || (typeof k === "symbol" && k.description === "<<")) {
            for (const src of isSeq(p.value) ? p.value.items : [p.value]) {
              const target = isAlias(src) ? src.resolve(this.doc) : src;
              if (!isMap(target)) return (src as Node | null)?.range?.[0];
            }
          }
          const found = walk(p.value, seen);
          if (found !== undefined) return found;
        }
      } else if (isSeq(node)) {
        for (const item of node.items) {
          const found = walk(item, seen);
          if (found !== undefined) return found;
        }
      }
      return undefined;
    };
    return walk(this.doc.contents, new Set());
  }

  private firstAliasOffset(): number | undefined {
    const walk = (node: unknown): number | undefined => {
      if (isAlias(node)) return node.range?.[0];
      const items = isMap(node)
        ? node.items.map((p) => (isPair(p) ? p.value : null))
        : isSeq(node)
          ? node.items
          : [];
      for (const item of items) {
        const found = walk(item);
        if (found !== undefined) return found;
      }
      return undefined;
    };
    return walk(this.doc.contents);
  }

  offsetToPos(offset: number): { line: number; column: number } {
    const p = this.lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  }

  /**
   * Position of the value at `path` (or of its key with `key: true`). A path that is not in the
   * file (a default, say) gives the position of its nearest ancestor that is.
   */
  locate(path: KeyPath, opts: { key?: boolean } = {}): { line: number; column: number; exact: boolean } {
    let node: unknown = this.doc.contents;
    let offset = (node as Node | null)?.range?.[0] ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = this.pairOf(node, String(seg));
        if (!pair) return { ...this.offsetToPos(offset), exact: false };
        const keyNode = pair.key as Node;
        const valueNode = pair.value as Node | null;
        if (last && opts.key) return { ...this.offsetToPos(keyNode.range?.[0] ?? offset), exact: true };
        offset = valueNode?.range?.[0] ?? keyNode.range?.[0] ?? offset;
        node = valueNode;
      } else if (isSeq(node) && typeof seg === "number" && node.items[seg]) {
        node = node.items[seg];
        offset = (node as Node).range?.[0] ?? offset;
      } else {
        return { ...this.offsetToPos(offset), exact: false };
      }
    }
    return { ...this.offsetToPos(offset), exact: true };
  }

  /** The pair of `key` in a map, also when it comes from a merge (`<<: *anchor`): then the anchor's. */
  private pairOf(map: YAMLMap, key: string): Pair | undefined {
    const own = map.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key);
    if (own) return own as Pair;
    for (const p of map.items) {
      // With `merge`, yaml reads the key `<<` as Symbol("<<").
      const k = isPair(p) && isScalar(p.key) ? p.key.value : undefined;
      if (!isPair(p) || (k !== "<<" && !(typeof k === "symbol" && k.description === "<<"))) continue;
      const sources = isSeq(p.value) ? p.value.items : [p.value];
      for (const s of sources) {
        const target = isAlias(s) ? s.resolve(this.doc) : s;
        const found = isMap(target) ? this.pairOf(target, key) : undefined;
        if (found) return found;
      }
    }
    return undefined;
  }

  /** The string scalar nodes of the document, with their key paths and source offsets. */
  *strings(): Generator<StringNode> {
    const text = this.text;
    const walk = function* (node: unknown, path: (string | number)[]): Generator<StringNode> {
      if (isMap(node)) {
        for (const pair of node.items) {
          if (!isPair(pair) || !isScalar(pair.key)) continue;
          yield* walk(pair.value, [...path, String(pair.key.value)]);
        }
      } else if (isSeq(node)) {
        for (let i = 0; i < node.items.length; i++) yield* walk(node.items[i], [...path, i]);
      } else if (isScalar(node) && typeof node.value === "string") {
        const quoted = node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE";
        const offset = (node.range?.[0] ?? 0) + (quoted ? 1 : 0);
        yield { path, value: node.value, offset, quoted, verbatim: text.startsWith(node.value, offset) };
      }
    };
    yield* walk(this.doc.contents, []);
  }

  issueAt(
    code: ConfigErrorCode,
    line: number,
    column: number,
    path: string,
    message: string,
    extra: Partial<ConfigIssue> = {},
  ): ConfigIssue {
    return {
      code,
      file: this.file,
      line,
      column,
      path,
      message,
      excerpt: excerptAt(this.text, line, column),
      ...extra,
    };
  }

  issue(
    code: ConfigErrorCode,
    path: KeyPath,
    message: string,
    extra: Partial<ConfigIssue> & { key?: boolean } = {},
  ): ConfigIssue {
    const { key, ...rest } = extra;
    const { line, column } = this.locate(path, { key });
    return this.issueAt(code, line, column, formatKeyPath(path), message, rest);
  }
}

export function formatKeyPath(path: KeyPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
