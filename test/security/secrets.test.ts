// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${env.…}` templates
import { readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../cli/helpers.js";
import {
  closeServer,
  listenLocal,
  listFiles,
  type RunSummary,
  type StreamSummary,
  type TempProject,
  tempProject,
} from "../run/helpers.js";

/**
 * Attack class "secrets": an adversarial pipeline or API tries to get a secret (an env value, a
 * credential) printed, written to a report, or sent where it must not go, or to flood the
 * output with text from outside. Every test runs the real CLI against loopback servers and
 * checks every byte printed and every file written.
 */

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

interface Api {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

type Handler = (req: Seen, res: ServerResponse, api: Api) => void;

async function api(handler: Handler): Promise<Api> {
  const seen: Seen[] = [];
  const server = createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      const s: Seen = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
      seen.push(s);
      handler(s, res, out);
    });
  });
  const out: Api = { url: await listenLocal(server), seen, close: () => closeServer(server) };
  return out;
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

/** A secret as it may travel: raw, URL-encoded, form-encoded, base64. */
function forms(secret: string): string[] {
  const b64 = Buffer.from(secret).toString("base64");
  return [
    ...new Set([
      secret,
      encodeURIComponent(secret),
      new URLSearchParams({ x: secret }).toString().slice(2),
      b64,
      b64.replace(/=+$/, ""),
    ]),
  ];
}

let project: TempProject;
const servers: Api[] = [];
beforeAll(() => {
  project = tempProject("pipelines-security-");
});
afterAll(() => project.cleanup());
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: Handler): Promise<Api> {
  const a = await api(handler);
  servers.push(a);
  return a;
}

function pipeline(name: string, source: string[], streams: Record<string, string[]>): void {
  project.pipeline(
    name,
    [
      "source:",
      ...source.map((l) => `  ${l}`),
      ...(source.some((l) => l.startsWith("retry:"))
        ? []
        : ["  retry: { max_attempts: 1, initial_delay: 10ms, max_delay: 2s }"]),
      "streams:",
      ...Object.entries(streams).flatMap(([n, lines]) => [`  ${n}:`, ...lines.map((l) => `    ${l}`)]),
      "",
    ].join("\n"),
  );
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; every output is kept for the leak checks. */
async function cli(args: string[], env: Record<string, string>, printed: string[]): Promise<Outcome> {
  const r = await runCli(args, project.dir, env);
  printed.push(r.stdout, r.stderr);
  return r;
}

/** Every file the commands wrote (outputs, quarantines, reports, state), by relative path. */
function writtenFiles(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of listFiles(project.dir)) {
    if (f.startsWith(`pipelines${path.sep}`) || f.startsWith(`schemas${path.sep}`)) continue;
    out[f] = readFileSync(project.file(f), "utf8");
  }
  return out;
}

/** Where any form of any secret shows up in `printed` or in a written file. */
function leaks(secrets: string[], printed: string[]): string[] {
  const found: string[] = [];
  const places: [string, string][] = [
    ...printed.map((t, i) => [`output #${i}`, t] as [string, string]),
    ...Object.entries(writtenFiles()),
  ];
  for (const secret of secrets)
    for (const form of forms(secret))
      for (const [where, text] of places) {
        const at = text.indexOf(form);
        if (at >= 0) found.push(`${where}: ${text.slice(Math.max(0, at - 60), at + form.length + 20)}`);
      }
  return found;
}

function latestReport(name: string): { streams: { name: string; warnings: string[] }[] } {
  return JSON.parse(readFileSync(project.file(`reports/${name}/latest.json`), "utf8"));
}

function stream(out: Outcome, name: string): StreamSummary {
  const s = (JSON.parse(out.stdout) as RunSummary).streams.find((x) => x.name === name);
  if (!s) throw new Error(`no stream ${name}: ${out.stdout}`);
  return s;
}

describe("env secrets inside base_url", () => {
  it("a user name and password in base_url are refused: exit 2, positioned, the password never shown", async () => {
    const PASS = "pw-Userinfo-Secret+1";
    const server = await serve((_q, res) => json(res, 200, []));
    const port = new URL(server.url).port;
    pipeline("userinfo", [`base_url: "http://bob:\${env.PASS}@127.0.0.1:${port}/v1"`], {
      items: ["path: /items"],
    });
    pipeline("userinfo_literal", [`base_url: "http://bob:literal-Pass-77@127.0.0.1:${port}/v1"`], {
      items: ["path: /items"],
    });
    const printed: string[] = [];
    for (const name of ["userinfo", "userinfo_literal"]) {
      for (const args of [
        ["plan", name],
        ["plan", name, "--json"],
        ["run", name],
        ["validate", name],
      ]) {
        const r = await cli(args, { PASS }, printed);
        expect(r.code, `${args.join(" ")}: ${r.stdout}${r.stderr}`).toBe(2);
        expect(r.stderr).toContain(`pipelines/${name}.yaml:2:`);
        expect(r.stderr).toContain("source.base_url");
        expect(r.stderr).toContain("auth: { type: basic");
      }
    }
    expect(server.seen).toEqual([]);
    expect(leaks([PASS, "literal-Pass-77"], printed)).toEqual([]);
  });

  it("an env value in base_url's query is masked in plan, plan --json, errors and reports, and still sent", async () => {
    const K = "qk-Base/Query-Key9";
    const server = await serve((q, res) => {
      if (q.url.startsWith("/v1/items")) return json(res, 200, { data: [{ id: 1 }] });
      if (q.url.startsWith("/v1/text")) {
        res.writeHead(200, { "content-type": "text/plain" });
        return res.end(`not json, you asked for ${q.url}`);
      }
      json(res, 404, {
        error: `nothing at ${q.url}`,
        key: new URL(q.url, "http://x").searchParams.get("key"),
      });
    });
    pipeline("query_key", [`base_url: "${server.url}/v1?format=json&key=\${env.K}"`], {
      items: ["path: /items", "records: $.data"],
      with_params: ["path: /items", "params: { page: 1 }", "records: $.data"],
      missing: ["path: /missing", "params: { q: 2 }"],
      text: ["path: /text"],
    });
    const printed: string[] = [];
    const plan = await cli(["plan", "query_key"], { K }, printed);
    expect(plan.code, plan.stderr).toBe(0);
    // Masked, not everything: the host and the other parameters stay readable.
    expect(plan.stdout).toContain(`${server.url}/v1/items?format=json&key=***`);
    expect((await cli(["plan", "query_key", "--json"], { K }, printed)).code).toBe(0);
    const run = await cli(["run", "query_key", "--json"], { K }, printed);
    expect(run.code).toBe(1);
    expect(stream(run, "missing").error?.message).toContain("404");
    expect(stream(run, "text").error?.kind).toBe("not_json");
    await cli(["run", "query_key"], { K }, printed);
    // The key was sent with every request.
    expect(server.seen.length).toBeGreaterThanOrEqual(8);
    for (const q of server.seen) expect(new URL(q.url, "http://x").searchParams.get("key")).toBe(K);
    expect(leaks([K], printed)).toEqual([]);
  });

  it("a whole base_url from env with a key in its query: the key is masked in every request URL shown", async () => {
    const KEY = "qv-Whole/Url+Key8";
    const server = await serve((q, res) => {
      if (q.url.startsWith("/api/items")) return json(res, 200, { data: [{ id: 1 }] });
      json(res, 500, { error: `failed: ${q.url}` });
    });
    const QURL = `${server.url}/api?key=${KEY}`;
    pipeline("whole_url", ["base_url: ${env.QURL}"], {
      items: ["path: /items", "records: $.data"],
      with_params: ["path: /items", "params: { page: 1 }", "records: $.data"],
      failing: ["path: /fail", "params: { q: 1 }"],
    });
    const printed: string[] = [];
    expect((await cli(["plan", "whole_url"], { QURL }, printed)).code).toBe(0);
    expect((await cli(["plan", "whole_url", "--json"], { QURL }, printed)).code).toBe(0);
    const run = await cli(["run", "whole_url", "--json"], { QURL }, printed);
    expect(run.code).toBe(1);
    expect(stream(run, "failing").error?.message).toContain("500");
    await cli(["run", "whole_url"], { QURL }, printed);
    expect(server.seen.filter((q) => q.url.includes("key=")).length).toBe(server.seen.length);
    // As written (`+`), and as a URL parser reads it (a space).
    expect(leaks([KEY, KEY.replace("+", " "), QURL], printed)).toEqual([]);
  });
});

describe("a secret in a URL the API wrote, percent-encoded its own way", () => {
  it("a redirect's Location with the key partly or lower-case encoded: masked in errors and the report", async () => {
    const K = "qk-Red/Irect+Key5";
    const partly = "qk-Red/Irect%2BKey5";
    const lower = "qk-Red%2fIrect%2bKey5";
    const server = await serve((q, res) => {
      if (q.url.startsWith("/old")) {
        res.writeHead(301, { location: `/new?key=${partly}` });
        return res.end();
      }
      if (q.url.startsWith("/moved")) {
        res.writeHead(308, { location: `/gone?key=${lower}` });
        return res.end();
      }
      json(res, 500, { error: "nope" });
    });
    pipeline("odd_encoding", [`base_url: ${server.url}`], {
      old: ["path: /old", 'params: { key: "${env.K}" }'],
      moved: ["path: /moved", 'params: { key: "${env.K}" }'],
    });
    const printed: string[] = [];
    const run = await cli(["run", "odd_encoding", "--json"], { K }, printed);
    await cli(["run", "odd_encoding"], { K }, printed);
    expect(run.code).toBe(1);
    // Followed, with the key as the API wrote it.
    expect(server.seen.map((q) => q.url)).toContain(`/new?key=${partly}`);
    expect(stream(run, "old").error?.message).toContain("/new?key=***");
    expect(stream(run, "moved").error?.message).toContain("/gone?key=***");
    const everything = [...printed, ...Object.values(writtenFiles())].join("\n");
    expect([partly, lower, "qk-Red"].filter((v) => everything.includes(v))).toEqual([]);
    expect(leaks([K], printed)).toEqual([]);
  });
});

describe("a POST body holding a secret is not resent to another origin by pagination", () => {
  async function setup(type: "next_url" | "link_header") {
    const other = await serve((_q, res) => json(res, 200, { data: [{ id: 2 }], next: null }));
    const main = await serve((_q, res) =>
      type === "next_url"
        ? json(res, 200, { data: [{ id: 1 }], next: `${other.url}/page2` })
        : json(res, 200, { data: [{ id: 1 }] }, { link: `<${other.url}/page2>; rel="next"` }),
    );
    return { main, other };
  }
  const paginate = {
    next_url: "paginate: { type: next_url, next: $.next }",
    link_header: "paginate: { type: link_header }",
  };

  for (const type of ["next_url", "link_header"] as const) {
    it(`${type} to an allowed_hosts origin: refused when the body holds a secret`, async () => {
      const BODY_SECRET = "bs-Body/Secret+3";
      const { main, other } = await setup(type);
      pipeline(`body_${type}`, [`base_url: ${main.url}`, `allowed_hosts: ["${other.url}"]`], {
        items: [
          "path: /search",
          "method: POST",
          'body: { q: x, token: "${env.BODY_SECRET}" }',
          "records: $.data",
          paginate[type],
        ],
      });
      const printed: string[] = [];
      const run = await cli(["run", `body_${type}`, "--json"], { BODY_SECRET }, printed);
      expect(run.code).toBe(1);
      const error = stream(run, "items").error!;
      expect(error.kind).toBe("cross_origin");
      expect(error.message).toContain("holds a credential");
      expect(main.seen).toHaveLength(1);
      expect(main.seen[0].body).toContain(BODY_SECRET);
      expect(other.seen).toEqual([]);
      expect(leaks([BODY_SECRET], printed)).toEqual([]);
    });
  }

  it("a body without a secret is followed to the allowed origin (the rule is not broader)", async () => {
    const { main, other } = await setup("next_url");
    pipeline("body_plain", [`base_url: ${main.url}`, `allowed_hosts: ["${other.url}"]`], {
      items: ["path: /search", "method: POST", "body: { q: x }", "records: $.data", paginate.next_url],
    });
    const run = await cli(["run", "body_plain", "--json"], {}, []);
    expect(run.code, run.stdout).toBe(0);
    expect(other.seen.map((q) => `${q.method} ${q.body}`)).toEqual(['POST {"q":"x"}']);
  });

  it("a pagination link that carries a secret is not followed to an allowed origin", async () => {
    const T = "pt-Param/Token+4";
    const other = await serve((_q, res) => json(res, 200, { data: [], next: null }));
    // The API echoes the request's query (the secret parameter) into its next link.
    const main = await serve((q, res) =>
      json(res, 200, { data: [{ id: 1 }], next: `${other.url}/page2?${q.url.split("?")[1]}` }),
    );
    pipeline("echoed_link", [`base_url: ${main.url}`, `allowed_hosts: ["${other.url}"]`], {
      items: ["path: /items", 'params: { token: "${env.T}" }', "records: $.data", paginate.next_url],
    });
    const printed: string[] = [];
    const run = await cli(["run", "echoed_link", "--json"], { T }, printed);
    expect(run.code).toBe(1);
    expect(stream(run, "items").error?.kind).toBe("cross_origin");
    expect(other.seen).toEqual([]);
    expect(leaks([T], printed)).toEqual([]);
  });

  it("nor one that carries it percent-encoded its own way (`/` kept, lower-case escapes)", async () => {
    const T = "pt-Own/Encoding+6";
    const other = await serve((_q, res) => json(res, 200, { data: [], next: null }));
    // The API writes the token back as an RFC 3986 encoder may: `/` as it is, `+` in lower case.
    const main = await serve((_q, res) =>
      json(res, 200, { data: [{ id: 1 }], next: `${other.url}/page2?token=pt-Own/Encoding%2b6` }),
    );
    pipeline("own_encoding", [`base_url: ${main.url}`, `allowed_hosts: ["${other.url}"]`], {
      items: ["path: /items", 'params: { token: "${env.T}" }', "records: $.data", paginate.next_url],
    });
    const printed: string[] = [];
    const run = await cli(["run", "own_encoding", "--json"], { T }, printed);
    expect(other.seen).toEqual([]);
    expect(run.code).toBe(1);
    expect(stream(run, "items").error?.kind).toBe("cross_origin");
    expect(stream(run, "items").error?.message).toContain("page2?token=***");
    expect(printed.join("\n")).not.toContain("pt-Own");
    expect(leaks([T], printed)).toEqual([]);
  });
});

describe("error bodies are masked before they are cut or their whitespace collapsed", () => {
  it("a secret at the 500-character cut, or in a 200-character non-JSON excerpt, is masked whole", async () => {
    const BEARER = "bt-Cut/Bearer+Sec18";
    const server = await serve((q, res) => {
      if (q.url === "/long") return json(res, 400, `${"x".repeat(486)} token=${BEARER}`);
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`${"y".repeat(186)} token=${BEARER}`);
    });
    pipeline("cut", [`base_url: ${server.url}`, 'auth: { type: bearer, token: "${env.BEARER}" }'], {
      long: ["path: /long"],
      text: ["path: /text"],
    });
    const printed: string[] = [];
    const run = await cli(["run", "cut", "--json"], { BEARER }, printed);
    await cli(["run", "cut"], { BEARER }, printed);
    expect(run.code).toBe(1);
    expect(stream(run, "long").error?.message).toContain("token=***");
    expect(stream(run, "text").error?.message).toContain("token=***");
    // Not even its first characters.
    expect(leaks([BEARER.slice(0, 5)], printed)).toEqual([]);
  });

  it("a secret holding two spaces is masked in an error body", async () => {
    const SPACED = "sp  aced  Secret-5";
    const server = await serve((q, res) => json(res, 500, { error: `bad trace ${q.headers["x-trace"]}` }));
    pipeline("spaced", [`base_url: ${server.url}`, 'headers: { X-Trace: "${env.SPACED}" }'], {
      items: ["path: /items"],
    });
    const printed: string[] = [];
    const run = await cli(["run", "spaced", "--json"], { SPACED }, printed);
    expect(run.code).toBe(1);
    expect(server.seen[0].headers["x-trace"]).toBe(SPACED);
    expect(stream(run, "items").error?.message).toContain("bad trace ***");
    expect(leaks([SPACED, SPACED.replace(/\s+/g, " ")], printed)).toEqual([]);
  });
});

describe("a secret an API echoes JSON-escaped its own way is masked", () => {
  /** PHP's json_encode: `\/` and `\uXXXX` for every non-ASCII character. */
  const php = (v: string) =>
    JSON.stringify(v)
      .replace(/\//g, "\\/")
      .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  /** Go's encoding/json: `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`. */
  const go = (v: string) =>
    JSON.stringify(v).replace(/[<>&]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

  it("PHP (`\\/`, `\\u00e9`) and Go (`\\u0026`) escapes in an error body", async () => {
    const TOKEN = "bt/Php+Go&Esc<7>";
    const KEY = "qk-clé/Ünïcode9";
    const server = await serve((q, res) => {
      const token = String(q.headers.authorization).slice("Bearer ".length);
      const key = new URL(q.url, "http://x").searchParams.get("key") ?? "";
      res.writeHead(401, { "content-type": "application/json" });
      if (q.url.startsWith("/php")) return res.end(`{"error":${php(`bad token ${token} or key ${key}`)}}`);
      res.end(`{"error":${go(`bad token ${token}`)}}`);
    });
    pipeline("escaped", [`base_url: ${server.url}`, 'auth: { type: bearer, token: "${env.TOKEN}" }'], {
      php: ["path: /php", 'params: { key: "${env.KEY}" }'],
      go: ["path: /go"],
    });
    const printed: string[] = [];
    const run = await cli(["run", "escaped", "--json"], { TOKEN, KEY }, printed);
    await cli(["run", "escaped"], { TOKEN, KEY }, printed);
    expect(run.code).toBe(1);
    expect(stream(run, "php").error?.message).toContain("bad token *** or key ***");
    expect(stream(run, "go").error?.message).toContain("bad token ***");
    const escaped = [php(TOKEN), php(KEY), go(TOKEN)].map((v) => v.slice(1, -1));
    expect(escaped.filter((v) => printed.join("\n").includes(v))).toEqual([]);
    expect(leaks([TOKEN, KEY, ...escaped], printed)).toEqual([]);
  });
});

describe("text from outside is capped in every message", () => {
  const BIG = 2_000_000;
  /** Printed text and every written file stay small whatever the API sent. */
  function expectSmall(printed: string[]): void {
    expect(printed.reduce((n, t) => n + t.length, 0)).toBeLessThan(60_000);
    // Reports (the outputs hold the API's data as it is).
    for (const f of listFiles(project.file("reports")))
      expect(statSync(project.file(path.join("reports", f))).size, f).toBeLessThan(100_000);
  }

  it("a 2 MB error_path value", async () => {
    const server = await serve((_q, res) => json(res, 200, { error: "e".repeat(BIG), data: [] }));
    pipeline("big_error", [`base_url: ${server.url}`], { items: ["path: /items", "error_path: $.error"] });
    const printed: string[] = [];
    const run = await cli(["run", "big_error", "--json"], {}, printed);
    await cli(["run", "big_error"], {}, printed);
    expect(run.code).toBe(1);
    expect(stream(run, "items").error?.kind).toBe("api_error");
    expectSmall(printed);
  });

  it("a 2 MB OAuth error_description", async () => {
    const server = await serve((q, res) =>
      q.url === "/token"
        ? json(res, 400, { error: "invalid_client", error_description: "d".repeat(BIG) })
        : json(res, 200, []),
    );
    pipeline(
      "big_oauth",
      [
        `base_url: ${server.url}`,
        `auth: { type: oauth2, token_url: "${server.url}/token", grant_type: client_credentials, client_id: c, client_secret: "\${env.CS}" }`,
      ],
      { items: ["path: /items"] },
    );
    const printed: string[] = [];
    const run = await cli(["run", "big_oauth", "--json"], { CS: "cs-Client/Secret6" }, printed);
    await cli(["run", "big_oauth"], { CS: "cs-Client/Secret6" }, printed);
    expect(run.code).toBe(1);
    expect(printed.join("")).toContain("invalid_client");
    expectSmall(printed);
  });

  it("a 100 kB next_url pointer, and a 200 kB parent key of a failed partition", async () => {
    const server = await serve((q, res) => {
      if (q.url === "/items")
        return json(res, 200, { data: [{ id: 1 }], next: `/items?c=${"a".repeat(100_000)}` });
      if (q.url === "/parents") return json(res, 200, [{ id: "k".repeat(200_000) }]);
      json(res, 404, { error: "no such thing" });
    });
    pipeline("big_pointer", [`base_url: ${server.url}`], {
      items: ["path: /items", "records: $.data", "paginate: { type: next_url, next: $.next }"],
      parents: ["path: /parents", "primary_key: id"],
      children: [
        "parent: parents",
        "path: /children",
        'params: { of: "${parent.id}" }',
        "on_partition_error: skip",
      ],
    });
    const printed: string[] = [];
    const run = await cli(["run", "big_pointer", "--json"], {}, printed);
    await cli(["run", "big_pointer"], {}, printed);
    expect(run.code).toBe(1);
    expect(stream(run, "items").error?.message).toContain("/items?c=aaaa");
    expect(latestReport("big_pointer").streams.find((s) => s.name === "children")).toBeTruthy();
    expectSmall(printed);
  });
});

describe("rate_limit.remaining_header values that are not numbers", () => {
  for (const [label, value] of [
    ["unknown", "unknown"],
    ["empty", ""],
  ] as const) {
    it(`\`${label}\` is ignored (no wait until reset) with one warning in the summary and the report`, async () => {
      const server = await serve((q, res) => {
        const page = Number(new URL(q.url, "http://x").searchParams.get("cursor") ?? "0");
        json(
          res,
          200,
          { data: [{ id: page }], next_cursor: page < 2 ? String(page + 1) : null },
          { "x-ratelimit-remaining": value, "x-ratelimit-reset": "1" },
        );
      });
      const name = `remaining_${label}`;
      pipeline(
        name,
        [
          `base_url: ${server.url}`,
          "rate_limit: { remaining_header: X-RateLimit-Remaining, reset_header: X-RateLimit-Reset }",
        ],
        { items: ["path: /items", "records: $.data", "paginate: { type: cursor, cursor: $.next_cursor }"] },
      );
      const run = await cli(["run", name, "--json"], {}, []);
      expect(run.code, run.stdout).toBe(0);
      expect(server.seen).toHaveLength(3);
      const s = stream(run, "items");
      expect(s.rate_limit_waits.count).toBe(0);
      const warnings = s.warnings.filter((w) => w.includes("x-ratelimit-remaining"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain("3 responses");
      expect(warnings[0]).toContain("not a number");
      expect(latestReport(name).streams[0].warnings).toEqual(s.warnings);
    });
  }
});

describe("run --record and pipelines test: a recording holds no secret", () => {
  it("a token the API echoes in a header, a cookie and the body is named or dropped; the test replays without it", async () => {
    const token = "tok-Rec0rded+Secret/42";
    const key = "qk-0987654321";
    const a = await serve((req, res) => {
      const echoed = req.headers.authorization ?? "";
      json(
        res,
        200,
        { items: [{ id: 1, seen: echoed.length }], echo: echoed, key },
        { "x-echo": echoed, "set-cookie": `session=${token}; HttpOnly` },
      );
    });
    pipeline("rec", [`base_url: ${a.url}`, 'auth: { type: bearer, token: "${env.REC_TOKEN}" }'], {
      items: ["path: /items", 'params: { key: "${env.REC_KEY}" }', "records: $.items"],
    });
    const printed: string[] = [];
    const env = { REC_TOKEN: token, REC_KEY: key };
    const r = await cli(["run", "rec", "--record"], env, printed);
    expect(r.code, r.stderr).toBe(0);
    const recording = readFileSync(project.file("tests/rec/recording.json"), "utf8");
    expect(recording).toContain("Bearer ${env.REC_TOKEN}");
    expect(recording).toContain("key=${env.REC_KEY}");
    expect(recording).not.toContain("set-cookie");
    await a.close();
    const t = await cli(["test", "rec"], {}, printed);
    expect(t.code, t.stderr).toBe(0);
    expect(leaks([token, key], printed)).toEqual([]);
  });
});

describe("run --record: a key the API wrote back percent-encoded its own way", () => {
  it("in a redirect's Location and the request that followed it: named, and the test replays", async () => {
    const key = "qk-Rec/Redirect+7";
    const partly = "qk-Rec/Redirect%2b7";
    const a = await serve((req, res) => {
      if (req.url.startsWith("/old")) {
        res.writeHead(301, { location: `/new?key=${partly}` });
        return res.end();
      }
      json(res, 200, { items: [{ id: 1 }] });
    });
    pipeline("rec_redirect", [`base_url: ${a.url}`], {
      items: ["path: /old", 'params: { key: "${env.REC_KEY}" }', "records: $.items"],
    });
    const printed: string[] = [];
    const r = await cli(["run", "rec_redirect", "--record"], { REC_KEY: key }, printed);
    expect(r.code, r.stderr).toBe(0);
    expect(a.seen.map((q) => q.url)).toContain(`/new?key=${partly}`);
    const recording = readFileSync(project.file("tests/rec_redirect/recording.json"), "utf8");
    expect(recording).not.toContain("qk-Rec");
    await a.close();
    const t = await cli(["test", "rec_redirect"], {}, printed);
    expect(t.code, t.stderr).toBe(0);
    expect(printed.join("\n")).not.toContain("qk-Rec");
  });
});

describe("page workers: nothing secret crosses into a worker thread", () => {
  it("the messages posted to the thread hold no token, header value or query key", async () => {
    const token = "tok-W0rker+Secret/7";
    const key = "qk-workers-1234";
    const a = await serve((req, res) => {
      const c = Number(new URL(req.url, "http://x").searchParams.get("cursor") ?? 0);
      const items = Array.from({ length: 20 }, (_, k) => ({ id: c * 20 + k }));
      json(res, 200, { items, next: c < 5 ? String(c + 1) : null });
    });
    pipeline(
      "pagew",
      [`base_url: ${a.url}`, 'auth: { type: bearer, token: "${env.W_TOKEN}" }', "workers: 2"],
      {
        items: [
          "path: /items",
          'params: { key: "${env.W_KEY}" }',
          'headers: { X-Api-Key: "${env.W_KEY}" }',
          "records: $.items",
          "paginate: { type: cursor, cursor: $.next }",
        ],
      },
    );
    const { Worker } = await import("node:worker_threads");
    const { serialize } = await import("node:v8");
    const post = Worker.prototype.postMessage;
    const posted: Buffer[] = [];
    Worker.prototype.postMessage = function (this: InstanceType<typeof Worker>, m: unknown, t?: never) {
      posted.push(serialize(m));
      return post.call(this, m, t);
    };
    const printed: string[] = [];
    process.env.PIPELINES_PAGE_WORKER_AFTER = "0"; // small pages: a worker after two of them
    try {
      const r = await cli(["run", "pagew"], { W_TOKEN: token, W_KEY: key }, printed);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      Worker.prototype.postMessage = post;
      delete process.env.PIPELINES_PAGE_WORKER_AFTER;
    }
    expect(posted.length).toBeGreaterThan(3); // the session's init and pages 3 to 6
    const sent = Buffer.concat(posted).toString("latin1");
    expect(sent).toContain('"id":40'); // page 3's body went over
    expect(
      forms(token)
        .concat(forms(key))
        .filter((s) => sent.includes(s)),
    ).toEqual([]);
    expect(leaks([token, key], printed)).toEqual([]);
  });
});
