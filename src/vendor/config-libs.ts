// The third-party libraries of the config path (every command but `--help`), behind one module,
// so that what we take from each package is listed in one place. The build bundles them with
// the rest of the CLI (scripts/bundle.mjs).
import _Ajv from "ajv";
import _Ajv2020 from "ajv/dist/2020.js";
import _ucs2length from "ajv/dist/runtime/ucs2length.js";
import _addFormats from "ajv-formats";
import { JSONPath as _JSONPath } from "jsonpath-plus";

export type { ErrorObject, Options as AjvOptions, ValidateFunction } from "ajv";
export type { Loader } from "cosmiconfig";
export { cosmiconfig, defaultLoaders } from "cosmiconfig";
export { JSONPath } from "jsonpath-plus";
export type { Document, Node, Pair, Scalar, YAMLMap } from "yaml";
export { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from "yaml";

// ajv and ajv-formats are CommonJS with a `default` export; unwrap it under NodeNext.
const unwrap = <T>(mod: { default: T }): T => (mod as { default?: T }).default ?? (mod as unknown as T);
export const Ajv = unwrap(_Ajv);
export const Ajv2020 = unwrap(_Ajv2020);
export const addFormats = unwrap(_addFormats);
/** How ajv counts a string's length for `minLength`/`maxLength` (code points; the byte check's too). */
export const ucs2length = unwrap(_ucs2length);

/** jsonpath-plus's safe evaluator (jsep AST, no native eval), for `filter` expressions. */
export const SafeScript = (
  _JSONPath as unknown as {
    prototype: {
      safeVm: {
        Script: new (code: string) => { readonly ast: unknown; runInNewContext(ctx: object): unknown };
      };
    };
  }
).prototype.safeVm.Script;
