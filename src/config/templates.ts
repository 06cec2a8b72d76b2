import { stringifyJson } from "../shared/json-text.js";

/**
 * Templates in strings: `${env.NAME}`, `${parent.a.b}`, and in `output.path` only `${stream}` and
 * `${pipeline}`. `$${` is a literal `${`.
 */
export type TemplatePart = string | { ns: string; path: string[]; raw: string; offset?: number };

export interface ParsedTemplate {
  parts: TemplatePart[];
  /** True when the string has at least one `${…}` reference. */
  dynamic: boolean;
}

export class TemplateSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const REF = /^([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_-]+)*)$/;

export function parseTemplate(text: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let literal = "";
  let dynamic = false;
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("$${", i)) {
      literal += "${";
      i += 3;
      continue;
    }
    if (text.startsWith("${", i)) {
      const end = text.indexOf("}", i + 2);
      if (end < 0)
        throw new TemplateSyntaxError(`unterminated template \`${text.slice(i)}\`: missing \`}\``, i);
      const inner = text.slice(i + 2, end).trim();
      const m = REF.exec(inner);
      if (!m) {
        throw new TemplateSyntaxError(
          `template \`\${${inner}}\` does not parse: expected \`\${env.NAME}\` or \`\${parent.field}\``,
          i,
        );
      }
      if (literal) parts.push(literal);
      literal = "";
      parts.push({
        ns: m[1],
        path: m[2] ? m[2].slice(1).split(".") : [],
        raw: text.slice(i, end + 1),
        offset: i,
      });
      dynamic = true;
      i = end + 1;
      continue;
    }
    literal += text[i];
    i++;
  }
  if (literal || parts.length === 0) parts.push(literal);
  return { parts, dynamic };
}

/** Escape a literal so that it survives another parse: `${` → `$${`. */
export function escapeTemplate(text: string): string {
  // A function replacement: in a replacement string `$$` would mean one `$`.
  return text.replaceAll("${", () => "$${");
}

/** Render parts back to template syntax (references kept, literals escaped). */
export function renderTemplateSource(parts: TemplatePart[]): string {
  return parts.map((p) => (typeof p === "string" ? escapeTemplate(p) : p.raw)).join("");
}

/** Fill a parsed template: `lookup` gives the value of a reference (undefined → empty string). */
export function fillTemplate(parts: TemplatePart[], lookup: (ns: string, path: string[]) => unknown): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "string") out += p;
    else {
      const v = lookup(p.ns, p.path);
      // stringifyJson: a value read from a record may hold big integers (JSON.stringify throws on them).
      out += v === undefined || v === null ? "" : typeof v === "object" ? stringifyJson(v) : String(v);
    }
  }
  return out;
}
