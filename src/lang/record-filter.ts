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

/** Why an expression does not parse, or null. */
export function checkFilter(expr: string): string | null {
  try {
    new SafeScript(script(expr));
    return null;
  } catch (err) {
    return (err as Error).message;
  }
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
