import type { StreamPlan } from "../compile/plan.js";
import { fillTemplate, parseTemplate, type TemplatePart } from "../config/templates.js";
import type { PageRequest } from "../http/paginators/paginator.js";
import { getPath, type Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { stringifyJson } from "../shared/json-text.js";
import { joinUrl } from "../shared/url.js";
import type { Window } from "./windows.js";

/**
 * A child stream's request with `${parent.…}` templates, parsed once and filled per parent record.
 * A value substituted into the path is percent-encoded as one path segment, except when the path
 * starts with the template and the value is an absolute URL or a path starting with `/` (a
 * parent's `url` or `comments_url` field): that value is the URL, used as is.
 */
export function compileRequestTemplate(
  stream: StreamPlan,
  baseUrl: string,
): (parent: Row, parentId: string, window?: Window | null) => PageRequest {
  const r = stream.request;
  const path = parseTemplate(r.url).parts;
  const params = Object.entries(r.params).map(
    ([k, v]) =>
      [k, Array.isArray(v) ? v.map((x) => parseTemplate(x).parts) : parseTemplate(v).parts] as const,
  );
  const headers = Object.entries(r.headers).map(([k, v]) => [k, parseTemplate(v).parts] as const);
  const body = compileBody(r.body);
  return (parent, parentId, window) => {
    const lookup = (encode: boolean) => (ns: string, p: string[]) => {
      if (ns === "window" && window) {
        const v = p[0] === "start" ? window.start : p[0] === "end" ? window.end : window.last;
        return encode ? encodeURIComponent(v) : v;
      }
      if (ns !== "parent") return "";
      const v = getPath(parent, p);
      if (v === undefined || v === null || v === "") {
        throw new RunError(
          "partition",
          `\`\${parent.${p.join(".")}}\` is ${v === undefined ? "missing" : "empty"} in parent record ${parentId}`,
        );
      }
      const s = typeof v === "object" ? stringifyJson(v) : String(v);
      return encode ? encodeURIComponent(s) : s;
    };
    const fill = (parts: TemplatePart[], encode = false) => fillTemplate(parts, lookup(encode));
    return {
      method: r.method,
      url: joinUrl(baseUrl, fillPath(path, lookup(false), parentId)),
      params: Object.fromEntries(
        params.map(([k, v]) => [
          k,
          Array.isArray(v) && Array.isArray(v[0])
            ? (v as TemplatePart[][]).map((x) => fill(x))
            : fill(v as TemplatePart[]),
        ]),
      ),
      headers: Object.fromEntries(headers.map(([k, v]) => [k, fill(v)])),
      body: body ? body(lookup(false)) : r.body,
    };
  };
}

type Lookup = (ns: string, p: string[]) => unknown;

const URL_LIKE = /^(https?:\/\/|\/)/i;

/**
 * The path with parent values percent-encoded as path segments. A value that would be a whole
 * `.` or `..` segment fails the partition: URL parsers resolve such segments (encoded or not), so
 * the request would go to another resource than the one the template names.
 */
function fillPath(parts: TemplatePart[], lookup: Lookup, parentId: string): string {
  let out = "";
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (typeof p === "string") {
      out += p;
      continue;
    }
    const value = String(lookup(p.ns, p.path));
    if (p.ns === "window") {
      out += encodeURIComponent(value);
      continue;
    }
    if (i === 0 && URL_LIKE.test(value)) {
      out += value;
      continue;
    }
    const next = parts[i + 1];
    const wholeSegment =
      (out === "" || out.endsWith("/")) &&
      (next === undefined || (typeof next === "string" && /^([/?#]|$)/.test(next)));
    if (wholeSegment && (value === "." || value === "..")) {
      throw new RunError(
        "partition",
        `\`\${parent.${p.path.join(".")}}\` is \`${value}\` in parent record ${parentId}: a \`${value}\` path segment would change the request's path`,
      );
    }
    out += encodeURIComponent(value);
  }
  return out;
}

function compileBody(body: unknown): ((lookup: Lookup) => unknown) | null {
  if (body === null || body === undefined) return null;
  if (typeof body === "string") {
    const parts = parseTemplate(body).parts;
    return (lookup) => fillTemplate(parts, lookup);
  }
  if (Array.isArray(body)) {
    const items = body.map(compileBody);
    return (lookup) => items.map((f, i) => (f ? f(lookup) : body[i]));
  }
  if (typeof body === "object") {
    const entries = Object.entries(body as Record<string, unknown>).map(
      ([k, v]) => [k, compileBody(v), v] as const,
    );
    return (lookup) => Object.fromEntries(entries.map(([k, f, v]) => [k, f ? f(lookup) : v]));
  }
  return null;
}
