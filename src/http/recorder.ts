/**
 * Record and replay (`pipelines run --record`, `pipelines test`): an HttpClient that keeps every
 * exchange of a run, and one that answers from kept exchanges with no network. Secrets are
 * replaced by their names (`${env.API_TOKEN}`, `${oauth.access_token}`) before anything is kept
 * or compared, so a recording holds none and requests match whatever the secrets' values are.
 */
import { interrupted, RunError } from "../shared/errors.js";
import { HttpClient, type HttpClientOptions, type HttpRequest, type HttpResponse } from "./client.js";

/** One exchange as a recording keeps it: named, bodies as text (or base64 when not UTF-8). */
export interface RecordedExchange {
  request: { method: string; url: string; headers: Record<string, string>; body?: string };
  response: {
    status: number;
    headers: Record<string, string>;
    body?: string;
    body_base64?: string;
    /** A jsonl/csv body the client streamed: replayed as a stream. */
    streamed?: boolean;
  };
}

/** Response headers not kept: they describe the bytes on the wire (the kept body is decoded) or a session. */
const DROPPED_RESPONSE_HEADERS = new Set([
  "content-encoding",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "set-cookie",
]);
/** Fields of a token response whose values are secrets learnt during the run. */
const TOKEN_FIELDS = ["access_token", "refresh_token", "id_token"];

/**
 * Replaces secret values, as written and as encoded in a URL, a form or a JSON string, by their
 * names; a `Basic` credential is decoded, named and shown as `Basic base64(<named>)`.
 */
export class SecretNamer {
  private pairs: [string, string][] = [];

  constructor(secrets: Iterable<[value: string, name: string]> = []) {
    for (const [value, name] of secrets) this.add(value, name);
  }

  add(value: string, name: string): void {
    if (value.length < 3 || this.pairs.some(([v]) => v === value)) return;
    const forms = new Set([
      value,
      encodeURIComponent(value),
      new URLSearchParams({ x: value }).toString().slice(2),
      JSON.stringify(value).slice(1, -1),
    ]);
    for (const f of forms) this.pairs.push([f, name]);
    this.pairs.sort((a, b) => b[0].length - a[0].length);
  }

  /** The name a secret value goes by, if it is one. */
  nameOf(value: string): string | undefined {
    return this.pairs.find(([v]) => v === value)?.[1];
  }

  text(value: string): string {
    let out = value;
    for (const [secret, name] of this.pairs) if (out.includes(secret)) out = out.split(secret).join(name);
    return out;
  }

  /**
   * A URL or a Location with its query values named however they were percent-encoded: an API
   * writing a link back may encode a secret its own way (`/` kept, lower-case escapes).
   */
  url(value: string): string {
    const named = this.text(value);
    const q = named.indexOf("?");
    if (q < 0) return named;
    const hash = named.indexOf("#", q);
    const end = hash < 0 ? named.length : hash;
    const parts = named
      .slice(q + 1, end)
      .split("&")
      .map((part) => {
        const eq = part.indexOf("=");
        const raw = part.slice(eq + 1);
        for (const v of [raw, raw.replace(/\+/g, " ")]) {
          let decoded: string;
          try {
            decoded = decodeURIComponent(v);
          } catch {
            continue;
          }
          const t = this.text(decoded);
          if (t !== decoded) return `${part.slice(0, eq + 1)}${t}`;
        }
        return part;
      });
    return `${named.slice(0, q + 1)}${parts.join("&")}${named.slice(end)}`;
  }

  header(value: string): string {
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(value.trim());
    if (basic) {
      const decoded = Buffer.from(basic[1], "base64").toString("utf8");
      const named = this.text(decoded);
      if (named !== decoded) return `Basic base64(${named})`;
    }
    return this.text(value);
  }

  headers(h: Record<string, string>, drop?: Set<string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(h)) {
      const name = k.toLowerCase();
      if (!drop?.has(name)) out[k] = name === "location" ? this.url(v) : this.header(v);
    }
    return out;
  }
}

/** The key two requests match on: method, URL and body, secrets named. */
export function exchangeKey(namer: SecretNamer, req: { method: string; url: string; body?: string }): string {
  return `${req.method} ${namer.text(req.url)}\n${namer.text(req.body ?? "")}`;
}

interface RawExchange {
  request: HttpRequest;
  status: number;
  headers: Record<string, string>;
  chunks: Buffer[];
  streamed: boolean;
}

/** An HttpClient that keeps every exchange of the run (call `recorded()` once the run is over). */
export class RecordingClient extends HttpClient {
  private readonly raw: RawExchange[] = [];
  /** Tokens named so far, by field. */
  private readonly tokens = new Map<string, number>();

  constructor(
    opts: HttpClientOptions,
    private readonly namer: SecretNamer,
  ) {
    super(opts);
  }

  override async send(req: HttpRequest, signal?: AbortSignal, onSent?: () => void): Promise<HttpResponse> {
    const res = await super.send(req, signal, onSent);
    const kept: RawExchange = {
      request: req,
      status: res.status,
      headers: res.headers,
      chunks: [],
      streamed: res.stream !== undefined,
    };
    this.raw.push(kept);
    if (!res.stream) {
      kept.chunks.push(res.body);
      this.learnTokens(res.body);
      return res;
    }
    // A streamed body is kept as the run reads it (all of it, or as far as --limit read).
    const inner = res.stream;
    return {
      ...res,
      stream: (async function* () {
        for await (const chunk of inner) {
          kept.chunks.push(chunk);
          yield chunk;
        }
      })(),
    };
  }

  /** OAuth tokens the run was given: named `${oauth.access_token}` (then `.2`, `.3` …). */
  private learnTokens(body: Buffer): void {
    if (body.length > 64 * 1024 || body[0] !== 0x7b) return;
    let json: unknown;
    try {
      json = JSON.parse(body.toString("utf8"));
    } catch {
      return;
    }
    for (const field of TOKEN_FIELDS) {
      const v = (json as Record<string, unknown>)[field];
      if (typeof v !== "string" || this.namer.nameOf(v)) continue;
      const n = (this.tokens.get(field) ?? 0) + 1;
      this.tokens.set(field, n);
      this.namer.add(v, `\${oauth.${field}${n > 1 ? `.${n}` : ""}}`);
    }
  }

  /** The exchanges so far with secrets named; `mask` is a last net for any secret left. */
  recorded(mask: (text: string) => string = (t) => t): RecordedExchange[] {
    const n = this.namer;
    return this.raw.map((x) => {
      const body = Buffer.concat(x.chunks);
      const text = body.toString("utf8");
      const isText = Buffer.from(text, "utf8").equals(body);
      return {
        request: {
          method: x.request.method,
          url: mask(n.url(x.request.url)),
          headers: mapValues(n.headers(x.request.headers), mask),
          ...(x.request.body === undefined ? {} : { body: mask(n.text(x.request.body)) }),
        },
        response: {
          status: x.status,
          headers: mapValues(n.headers(x.headers, DROPPED_RESPONSE_HEADERS), mask),
          ...(isText ? { body: mask(n.text(text)) } : { body_base64: body.toString("base64") }),
          ...(x.streamed ? { streamed: true } : {}),
        },
      };
    });
  }
}

function mapValues(h: Record<string, string>, f: (v: string) => string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k] = f(v);
  return out;
}

/**
 * An HttpClient that never opens a connection: each request gets the next recorded answer to the
 * same method, URL and body (secrets named); one with none fails, naming the request. `fill`
 * puts values back for the names in recorded answers (a next-page URL that held a key).
 */
export class ReplayClient extends HttpClient {
  private readonly queues = new Map<string, RecordedExchange[]>();
  private readonly lastOf = new Map<string, RecordedExchange>();
  private unusedCount: number;

  constructor(
    exchanges: RecordedExchange[],
    private readonly namer: SecretNamer,
    private readonly fill: (text: string) => string,
  ) {
    super({ timeoutMs: 1, maxResponseBytes: 1, connections: 1, userAgent: "replay" });
    for (const x of exchanges) {
      const key = exchangeKey(new SecretNamer(), x.request);
      const q = this.queues.get(key) ?? [];
      q.push(x);
      this.queues.set(key, q);
    }
    this.unusedCount = exchanges.length;
  }

  /** Recorded exchanges no request asked for (the pipeline now makes fewer requests). */
  get unused(): number {
    return this.unusedCount;
  }

  override async send(req: HttpRequest, signal?: AbortSignal): Promise<HttpResponse> {
    if (signal?.aborted) throw interrupted();
    const key = exchangeKey(this.namer, req);
    // Answers to one request come in recorded order (a 503, then the 200 of its retry); the last repeats.
    const next = this.queues.get(key)?.shift();
    if (next) this.unusedCount--;
    const x = next ?? this.lastOf.get(key);
    if (!x)
      throw new RunError(
        "invalid_request",
        `not in the recording: ${req.method} ${this.namer.text(req.url)}${req.body ? ` with body ${this.namer.text(req.body).slice(0, 200)}` : ""} (no recorded exchange has this method, URL and body; record again with \`pipelines run <name> --record\`)`,
      );
    this.lastOf.set(key, x);
    const r = x.response;
    const body =
      r.body_base64 !== undefined
        ? Buffer.from(r.body_base64, "base64")
        : Buffer.from(this.fill(r.body ?? ""));
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers)) headers[k] = this.fill(v);
    const streamed = r.streamed && req.streamed && r.status >= 200 && r.status < 300;
    return {
      status: r.status,
      headers,
      body: streamed ? Buffer.alloc(0) : body,
      url: req.url,
      elapsedMs: 0,
      ...(streamed ? { stream: oneChunk(body) } : {}),
    };
  }

  override async close(): Promise<void> {}
}

async function* oneChunk(body: Buffer): AsyncGenerator<Buffer> {
  if (body.length) yield body;
}
