import { SafeScript } from "../vendor/config-libs.js";

/**
 * `filter`: a JSONPath filter expression on one record (`@.type != 'bot' && @.amount > 0`), run by
 * jsonpath-plus's safe evaluator (a jsep AST walk; native eval is never used). The expression is
 * parsed once; `@` is the record, as inside `$[?(…)]`. It is evaluated on its own, not spliced into
 * a path, so a `)]` in it cannot reach outside the filter. An expression that throws on a record
 * (`@.a.b` where `a` is missing) is false for that record, as in jsonpath-plus's filters.
 */
export interface RecordFilter {
  readonly source: string;
  test(record: unknown): boolean;
}

/** The expression as the evaluator reads it: jsonpath-plus's own `@` substitutions. */
function script(expr: string): string {
  return expr
    .replaceAll("@parentProperty", "_$_parentProperty")
    .replaceAll("@parent", "_$_parent")
    .replaceAll("@property", "_$_property")
    .replaceAll("@root", "_$_root")
    .replaceAll(/@([.\s)[]|$)/gu, "_$_v$1");
}

/** What the evaluator defines: `@` and jsonpath-plus's `@root`, `@parent`, `@property`, `@parentProperty`. */
const DEFINED = new Set(["_$_v", "_$_root", "_$_parent", "_$_property", "_$_parentProperty"]);

/**
 * Why an expression cannot work, or null: it does not parse, or it names something that is not
 * defined (`$.type`, `type`): that throws on every record, so every record would be dropped.
 */
export function checkFilter(expr: string): string | null {
  let ast: unknown;
  try {
    ast = new SafeScript(script(expr)).ast;
  } catch (err) {
    return `the filter expression does not parse: ${(err as Error).message}`;
  }
  const unknown = new Set<string>();
  undefinedNames(ast, unknown);
  if (!unknown.size) return null;
  const names = [...unknown].map((n) => `\`${n}\``);
  const list = names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)}` : names[0];
  return `the filter uses ${list}, which ${names.length > 1 ? "are" : "is"} not defined: the record is \`@\` (\`@.type\`)`;
}

/** The identifiers of a jsep AST that the evaluator does not define (a `.name` after a dot is a member). */
function undefinedNames(node: unknown, out: Set<string>): void {
  if (Array.isArray(node)) {
    for (const n of node) undefinedNames(n, out);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const n = node as {
    type?: string;
    name?: string;
    computed?: boolean;
    object?: unknown;
    property?: unknown;
  };
  if (n.type === "Identifier") {
    if (typeof n.name === "string" && !DEFINED.has(n.name)) out.add(n.name);
    return;
  }
  if (n.type === "MemberExpression") {
    undefinedNames(n.object, out);
    if (n.computed) undefinedNames(n.property, out);
    return;
  }
  for (const v of Object.values(n)) if (typeof v === "object") undefinedNames(v, out);
}

export function compileFilter(expr: string): RecordFilter {
  const compiled = new SafeScript(script(expr));
  const ctx: {
    _$_v: unknown;
    _$_root: unknown;
    _$_parent: null;
    _$_property: null;
    _$_parentProperty: null;
  } = { _$_v: null, _$_root: null, _$_parent: null, _$_property: null, _$_parentProperty: null };
  return {
    source: expr,
    test(record) {
      ctx._$_v = record;
      ctx._$_root = record;
      try {
        return !!compiled.runInNewContext(ctx);
      } catch {
        return false;
      }
    },
  };
}
