/**
 * Secrets are masked before anything is formatted. A Redactor knows every secret value of a
 * pipeline (env values, auth fields, sensitive headers) and their encoded forms, and replaces
 * them with `***` in any text or value.
 */
import { MAX_NESTING, nestingError, setOwn } from "./json-text.js";

export const MASK = "***";
export const SENSITIVE_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);
/** Shorter values are masked where they stand in config, but not searched for in free text. */
const MIN_SEARCH_LENGTH = 3;

export class Redactor {
  private needles: string[] = [];
  private pattern: RegExp | null = null;

  constructor(secrets: Iterable<string>) {
    this.add(secrets);
  }

  /** Learn more secrets (an access token fetched during the run, say). */
  add(secrets: Iterable<string>): void {
    const set = new Set<string>(this.needles);
    for (const s of secrets) {
      if (typeof s !== "string" || s.length < MIN_SEARCH_LENGTH) continue;
      set.add(s);
      for (const variant of encodings(s)) if (variant.length >= MIN_SEARCH_LENGTH) set.add(variant);
    }
    if (set.size === this.needles.length) return;
    this.needles = [...set].sort((a, b) => b.length - a.length);
    this.pattern = new RegExp(
      this.needles.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"),
      "g",
    );
  }

  get size(): number {
    return this.needles.length;
  }

  /** The length of the longest text masked (0: none). */
  get longest(): number {
    return this.needles[0]?.length ?? 0;
  }

  text(value: string): string {
    return this.pattern ? value.replace(this.pattern, MASK) : value;
  }

  /** A deep copy of `value` with every secret masked in strings and keys. */
  value<T>(value: T): T {
    if (!this.pattern) return value;
    return redactDeep(value, (s) => this.text(s)) as T;
  }
}

function redactDeep(value: unknown, mask: (s: string) => string, depth = 0): unknown {
  if (typeof value === "string") return mask(value);
  if (value && typeof value === "object") {
    if (depth >= MAX_NESTING) throw nestingError();
    if (Array.isArray(value)) return value.map((v) => redactDeep(v, mask, depth + 1));
    const out: Record<string, unknown> = {};
    // setOwn: a record's `__proto__` field stays a field (an assignment would set the prototype).
    for (const [k, v] of Object.entries(value)) setOwn(out, mask(k), redactDeep(v, mask, depth + 1));
    return out;
  }
  return value;
}

function encodings(s: string): string[] {
  const json = JSON.stringify(s).slice(1, -1);
  const out = [
    encodeURIComponent(s),
    new URLSearchParams({ x: s }).toString().slice(2),
    json,
    // As other JSON encoders write it, when an API echoes a secret in a body: Python and PHP
    // write non-ASCII as `\u00e9`, PHP also `/` as `\/`, Go `<>&` as `\u003c`, .NET in capitals.
    json.replace(/\//g, "\\/"),
    unicodeEscaped(json, /[^\x00-\x7f]/g),
    unicodeEscaped(json.replace(/\//g, "\\/"), /[^\x00-\x7f]/g),
    unicodeEscaped(json, /[<>&\u2028\u2029]/g),
    unicodeEscaped(json, /[^\x20-\x7e]|[<>&'+`]/g, true),
  ];
  return out.filter((v) => v !== s);
}

function unicodeEscaped(json: string, chars: RegExp, capitals = false): string {
  return json.replace(chars, (c) => {
    const hex = c.charCodeAt(0).toString(16).padStart(4, "0");
    return `\\u${capitals ? hex.toUpperCase() : hex}`;
  });
}

/** `Basic base64(user:pass)` must be masked too: add the encoded credential. */
export function basicCredential(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString("base64");
}

/**
 * A database URL is a secret, and so is its password on its own (a driver error may quote it,
 * percent-decoded or not). `url` may still be a template when the config failed before filling.
 */
export function databaseUrlSecrets(url: string): string[] {
  const out = [url];
  try {
    const u = new URL(url);
    for (const [k, v] of u.searchParams) if (/pass|secret|key|token/i.test(k) && v) out.push(v);
    if (u.password) out.push(u.password);
    // Throws for a `%` that starts no escape (`50%off`): the password is then masked as written.
    if (u.password) out.push(decodeURIComponent(u.password));
  } catch {
    // Not a URL: the value itself stays masked.
  }
  return out;
}
