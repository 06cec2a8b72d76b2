import { RunError } from "../../shared/errors.js";
import type { PageRequest } from "./paginator.js";

/** What undici accepts in a header value (RFC 9110 field-value): no CR, LF, NUL or other controls. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Where a pagination value goes, separate from how it is computed (Airbyte's request option):
 * a query parameter, a top-level JSON body field, or a header.
 */
export type Placement = "query" | "body" | "header";

export function inject(
  req: PageRequest,
  where: Placement,
  name: string,
  value: string | number,
): PageRequest {
  switch (where) {
    case "query":
      return { ...req, params: { ...req.params, [name]: String(value) } };
    case "header": {
      // A value from the API (a cursor) with a line break would be refused by the HTTP client,
      // and that refusal looks like a connection reset: say what it is, once, without retrying.
      const text = String(value);
      if (!HEADER_VALUE.test(text)) {
        const shown = JSON.stringify(text.length > 60 ? `${text.slice(0, 59)}…` : text);
        throw new RunError(
          "invalid_request",
          `cannot send ${shown} in header ${name}: a header value cannot hold line breaks or other control characters`,
        );
      }
      return { ...req, headers: { ...req.headers, [name]: text } };
    }
    case "body":
      return { ...req, body: setBodyPath(req.body, name.includes(".") ? name.split(".") : [name], value) };
  }
}

type JsonMap = Record<string, unknown>;
const isMap = (v: unknown): v is JsonMap => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A copy of the body with `value` at `path` (`variables.after` → `{variables: {after: …}}`),
 * maps created where missing or not maps; the request's own body is never changed (a paginator
 * builds each page's request from the same base). Keys are set as own data properties, so a
 * `__proto__` segment is a plain field, not the prototype.
 */
export function setBodyPath(body: unknown, path: string[], value: unknown): JsonMap {
  const root: JsonMap = isMap(body) ? { ...body } : {};
  let at = root;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i];
    const inner = Object.hasOwn(at, k) ? at[k] : undefined;
    const copy: JsonMap = isMap(inner) ? { ...inner } : {};
    Object.defineProperty(at, k, { value: copy, enumerable: true, writable: true, configurable: true });
    at = copy;
  }
  const last = path[path.length - 1];
  Object.defineProperty(at, last, { value, enumerable: true, writable: true, configurable: true });
  return root;
}
