import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResponseRulePlan } from "../../src/compile/plan.js";
import type { HttpResponse } from "../../src/http/client.js";
import { ResponseRules } from "../../src/http/response-rules.js";
import {
  closeServer,
  listenLocal,
  readJsonl,
  runPipeline,
  sourceBlock,
  tempProject,
} from "../run/helpers.js";

const rule = (r: Partial<ResponseRulePlan>): ResponseRulePlan => ({
  at: "t",
  statuses: null,
  classes: null,
  match: null,
  hasEquals: false,
  equals: undefined,
  bodyContains: null,
  action: "fail",
  message: null,
  waitMs: null,
  ...r,
});
const res = (status: number, body: unknown): HttpResponse => ({
  status,
  headers: {},
  body: Buffer.from(typeof body === "string" ? body : JSON.stringify(body)),
  url: "http://x.test/",
  elapsedMs: 0,
});

describe("rule conditions", () => {
  it("status: a code, a list, a class", () => {
    const rules = new ResponseRules([
      rule({ at: "a", statuses: [404] }),
      rule({ at: "b", statuses: [400, 422] }),
      rule({ at: "c", classes: [5] }),
    ]);
    expect(rules.decide(res(404, {}))?.rule.at).toBe("a");
    expect(rules.decide(res(422, {}))?.rule.at).toBe("b");
    expect(rules.decide(res(503, {}))?.rule.at).toBe("c");
    expect(rules.decide(res(200, {}))).toBeNull();
  });
  it("match holds on a non-empty match; with equals, on an equal first match", () => {
    const rules = new ResponseRules([
      rule({ at: "eq", match: "$.error", hasEquals: true, equals: "ratelimited" }),
      rule({ at: "any", match: "$.errors" }),
    ]);
    expect(rules.decide(res(200, { error: "ratelimited" }))?.rule.at).toBe("eq");
    expect(rules.decide(res(200, { error: "other", errors: [1] }))?.rule.at).toBe("any");
    for (const empty of [null, false, "", [], {}])
      expect(rules.decide(res(200, { errors: empty }))).toBeNull();
    expect(rules.decide(res(200, "not json"))).toBeNull();
  });
  it("equals with a big integer: the same number only, never a string of its digits", () => {
    const big = rule({ at: "big", match: "$.code", hasEquals: true, equals: 12345678901234567890n });
    const text = rule({ at: "text", match: "$.code", hasEquals: true, equals: "12345678901234567890" });
    const body = (code: string) => res(200, `{"code":${code}}`);
    expect(new ResponseRules([big]).decide(body("12345678901234567890"))?.rule.at).toBe("big");
    expect(new ResponseRules([big]).decide(body('"12345678901234567890"'))).toBeNull();
    expect(new ResponseRules([text]).decide(body("12345678901234567890"))).toBeNull();
    expect(new ResponseRules([text]).decide(body('"12345678901234567890"'))?.rule.at).toBe("text");
  });
  it("body_contains reads the raw body; the first rule that holds wins", () => {
    const rules = new ResponseRules([
      rule({ at: "first", statuses: [400], bodyContains: "range too large" }),
      rule({ at: "second", statuses: [400] }),
    ]);
    expect(rules.decide(res(400, "the range too large, sorry"))?.rule.at).toBe("first");
    expect(rules.decide(res(400, "other"))?.rule.at).toBe("second");
  });
  it("a streamed body: only status conditions can hold", () => {
    const rules = new ResponseRules([rule({ at: "m", match: "$.x" }), rule({ at: "s", classes: [2] })]);
    expect(rules.decide(res(200, { x: 1 }), true)?.rule.at).toBe("s");
  });
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_q, r) => r.end();
const server = createServer((q, r) => handler(q, r));
let base = "";
beforeAll(async () => {
  base = await listenLocal(server);
});
afterAll(() => closeServer(server));
const project = tempProject("pipelines-rules-");
afterAll(() => project.cleanup());
const json = (r: ServerResponse, status: number, body: unknown) => {
  r.writeHead(status, { "content-type": "application/json" });
  r.end(JSON.stringify(body));
};

describe("APIs that say errors their own way", () => {
  it("a GraphQL API that throttles with a 200 is retried by a rule, counted against max_attempts", async () => {
    let calls = 0;
    handler = (_q, r) =>
      calls++ < 2
        ? json(r, 200, { errors: [{ message: "Throttled", extensions: { code: "THROTTLED" } }] })
        : json(r, 200, { data: { items: { nodes: [{ id: 1 }, { id: 2 }] } } });
    project.pipeline(
      "gql",
      `${sourceBlock(base)}
streams:
  items:
    path: /graphql
    method: POST
    body: { query: "{ items { nodes { id } } }" }
    records: $.data.items.nodes
    on_response:
      - { status: 200, match: "$.errors[0].extensions.code", equals: THROTTLED, action: retry, wait: 10ms }
      - { status: 200, match: $.errors, action: fail, message: "GraphQL errors" }
`,
    );
    const r = await runPipeline(project.dir, "gql");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("items").records.written).toBe(2);
    expect(r.stream("items").retries).toEqual({ on_response_200: 2 });
    calls = -10; // always throttled: 4 attempts, then the rule's error
    const failed = await runPipeline(project.dir, "gql");
    expect(failed.code).toBe(1);
    expect(failed.stream("items").error?.message).toMatch(
      /answered 200 \(\$\.errors\[0\]\.extensions\.code = THROTTLED\) after 4 attempts: \(on_response rule streams\.items\.on_response\[0\], action retry\)/,
    );
  });

  it("a Slack-style ok: false fails the stream with the rule's message; error_path still works", async () => {
    handler = (_q, r) => json(r, 200, { ok: false, error: "invalid_auth" });
    project.pipeline(
      "slack",
      `${sourceBlock(base, `on_response: [{ status: 200, match: $.ok, equals: false, action: fail, message: "check the Slack token" }]`)}
streams:
  users: { path: /users.list, records: $.members }
  legacy: { path: /users.list, records: $.members, error_path: $.error }
`,
    );
    const r = await runPipeline(project.dir, "slack");
    expect(r.stream("users").error?.message).toMatch(/\(\$\.ok = false\).*check the Slack token/);
    expect(r.stream("users").error?.kind).toBe("api_error");
    // Source rules come before error_path (the stream's last rule): the source rule decides here too.
    expect(r.stream("legacy").error?.message).toMatch(/check the Slack token/);
  });

  it("a per-parent 404 is ignored: an empty last page, counted ('2 partitions answered 404, ignored')", async () => {
    handler = (q, r) => {
      if (q.url === "/repos") return json(r, 200, [{ id: 1 }, { id: 2 }, { id: 3 }]);
      if (q.url === "/repos/2/hooks" || q.url === "/repos/3/hooks")
        return json(r, 404, { message: "Not Found" });
      return json(r, 200, [{ hook: 10 }]);
    };
    project.pipeline(
      "gh",
      `${sourceBlock(base)}
streams:
  repos: { path: /repos }
  hooks:
    parent: repos
    path: /repos/\${parent.id}/hooks
    on_response: [{ status: 404, action: ignore }]
    include_parent: { repo: id }
`,
    );
    const r = await runPipeline(project.dir, "gh");
    expect(r.code, r.stderr).toBe(0);
    const hooks = r.stream("hooks");
    expect(hooks.records.written).toBe(1);
    expect(hooks.warnings).toContain(
      "2 partitions answered 404, ignored (on_response: each ended as an empty last page)",
    );
    expect(readJsonl(project.file("out/gh/hooks.jsonl"))).toEqual([{ hook: 10, repo: 1 }]);
  });

  it("a 401 with refresh_auth gets one fresh token, then one more try", async () => {
    let tokens = 0;
    let apiCalls = 0;
    handler = (q, r) => {
      if (q.url === "/oauth/token") return json(r, 200, { access_token: `t${++tokens}`, expires_in: 3600 });
      apiCalls++;
      // The API refuses the first token (revoked early), with a 403 the built-in 401 handling would not refresh.
      if (q.headers.authorization === "Bearer t1") return json(r, 403, { error: "token revoked" });
      return json(r, 200, [{ id: 1 }]);
    };
    project.pipeline(
      "oa",
      `${sourceBlock(base, `auth: { type: oauth2, token_url: "${base}/oauth/token", grant_type: client_credentials, client_id: id, client_secret: s }`)}
streams:
  things:
    path: /things
    on_response: [{ status: 403, body_contains: "token revoked", action: refresh_auth }]
`,
    );
    const r = await runPipeline(project.dir, "oa");
    expect(r.code, r.stderr).toBe(0);
    expect(tokens).toBe(2);
    expect(apiCalls).toBe(2);
    expect(r.stream("things").retries).toEqual({ token_refresh: 1 });
  });
});

describe("a rule that decides a streamed export's 2xx by its status", () => {
  // An export still being prepared answers 202 with a status page larger than the socket's
  // buffers. The rule never reads that body: it must be given up, or it holds the connection
  // (the only one, with concurrency: 1) and the pool's close for good.
  const padding = " ".repeat(512 * 1024);
  const exportApi = (): Handler => {
    let calls = 0;
    return (_q, r) => {
      if (calls++ === 0) {
        r.writeHead(202, { "content-type": "application/json" });
        return r.end(`{"status":"preparing"}${padding}`);
      }
      r.writeHead(200, { "content-type": "application/x-ndjson" });
      r.end('{"id":1}\n{"id":2}\n');
    };
  };
  const pipeline = (rule: string) => `${sourceBlock(base, "concurrency: 1")}
streams:
  events:
    path: /export
    response: { format: jsonl }
    on_response: [${rule}]
`;

  it("retry: the next attempt gets the connection, and the export is read", async () => {
    handler = exportApi();
    project.pipeline("prep", pipeline("{ status: 202, action: retry, wait: 10ms }"));
    const r = await runPipeline(project.dir, "prep");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("events").retries).toEqual({ on_response_202: 1 });
    expect(readJsonl(project.file("out/prep/events.jsonl"))).toEqual([{ id: 1 }, { id: 2 }]);
  }, 20_000);

  it("fail: the run ends with the rule's error instead of waiting on the unread body", async () => {
    handler = exportApi();
    project.pipeline("prepfail", pipeline('{ status: 202, action: fail, message: "not ready yet" }'));
    const r = await runPipeline(project.dir, "prepfail");
    expect(r.code).toBe(1);
    expect(r.stream("events").error?.message).toMatch(/answered 202 after 1 attempt: "?not ready yet/);
  }, 20_000);
});

describe("ignore and positions (Rules across the 1.1 additions: checkpoints)", () => {
  // Two one-day windows, paged by a cursor. `gone` says which requests answer 404 (ignored).
  const windowsApi = (
    gone: (day: string, cursor: string | undefined) => boolean,
    hits: string[],
  ): Handler => {
    return (q, r) => {
      const u = new URL(q.url ?? "/", "http://x.test");
      const day = u.searchParams.get("day") ?? "";
      const cursor = u.searchParams.get("cursor") ?? undefined;
      hits.push(`${day}:${cursor ?? "-"}`);
      if (gone(day, cursor)) return json(r, 404, { message: "Not Found" });
      if (!cursor) return json(r, 200, { items: [{ id: `${day}-a` }], next: "2" });
      return json(r, 200, { items: [{ id: `${day}-b` }], next: null });
    };
  };
  const pipeline = () => `${sourceBlock(base)}
streams:
  events:
    path: /events
    params: { day: "\${window.start}" }
    records: $.items
    paginate: { type: cursor, cursor: $.next }
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-03, format: date }
    on_response: [{ status: 404, action: ignore }]
output: { mode: append }
`;

  it("a window ignored on its first page is done; one ignored after its first page is fetched again next run", async () => {
    const hits: string[] = [];
    // 2024-01-01 has nothing (404 at once): complete. 2024-01-02 answers its first page, then 404.
    handler = windowsApi(
      (day, cursor) => day === "2024-01-01" || (day === "2024-01-02" && cursor === "2"),
      hits,
    );
    project.pipeline("ign", pipeline());
    const first = await runPipeline(project.dir, "ign");
    expect(first.code, first.stderr).toBe(0);
    expect(readJsonl(project.file("out/ign/events.jsonl"))).toEqual([{ id: "2024-01-02-a" }]);
    const units = (first.stream("events") as unknown as { units: { incomplete: number } }).units;
    expect(units.incomplete).toBe(1);
    // The next run fetches 2024-01-02 again (its second page was never read), not 2024-01-01.
    hits.length = 0;
    handler = windowsApi(() => false, hits);
    const second = await runPipeline(project.dir, "ign");
    expect(second.code, second.stderr).toBe(0);
    expect(hits).toEqual(["2024-01-02:-", "2024-01-02:2"]);
  });
});

describe("ignore after the first page of an incremental stream", () => {
  it("keeps the records, does not save the cursor (the unread pages are fetched next run), and says why", async () => {
    const seen: string[] = [];
    let gone = true;
    handler = (q, r) => {
      const u = new URL(q.url ?? "/", "http://x.test");
      const page = u.searchParams.get("page") ?? "1";
      seen.push(`${u.searchParams.get("since") ?? "-"}:${page}`);
      if (page === "2" && gone) return json(r, 503, { error: "shard unavailable" });
      if (page === "1") return json(r, 200, [{ id: 1, updated: "2024-01-01T00:00:00Z" }]);
      if (page === "2") return json(r, 200, [{ id: 2, updated: "2024-01-02T00:00:00Z" }]);
      return json(r, 200, []);
    };
    project.pipeline(
      "inc",
      `${sourceBlock(base)}
streams:
  items:
    path: /items
    paginate: { type: page, page_param: page, size_param: per_page, size: 1 }
    incremental: { cursor_field: updated, param: since, initial: "2023-12-31T00:00:00Z" }
    on_response: [{ status: 503, action: ignore }]
`,
    );
    const first = await runPipeline(project.dir, "inc");
    expect(first.code, first.stderr).toBe(0);
    expect(first.stream("items").records.written).toBe(1);
    expect(first.stream("items").stop_reason?.code).toBe("ignored_later");
    expect(first.stream("items").warnings.join("\n")).toContain(
      "incremental cursor not saved (an `ignore` rule ended the stream after its first page)",
    );
    seen.length = 0;
    gone = false;
    const second = await runPipeline(project.dir, "inc");
    expect(second.code, second.stderr).toBe(0);
    // Starts from the initial value again: page 2's record is not lost.
    expect(seen[0]).toBe("2023-12-31T00:00:00Z:1");
    expect(second.stream("items").records.written).toBe(2);
  });
});

describe("a rule's wait longer than retry.max_delay", () => {
  it("fails at once, naming the rule (not 'the API asked')", async () => {
    let calls = 0;
    handler = (_q, r) => {
      calls++;
      json(r, 200, { error: "ratelimited" });
    };
    project.pipeline(
      "longwait",
      `${sourceBlock(base)}
streams:
  a:
    path: /a
    on_response: [{ status: 200, match: $.error, equals: ratelimited, action: retry, wait: 5s }]
`,
    );
    const r = await runPipeline(project.dir, "longwait");
    expect(r.code).toBe(1);
    expect(calls).toBe(1);
    expect(r.stream("a").error).toMatchObject({
      kind: "rate_limit_wait",
      message: expect.stringContaining(
        "answered 200; on_response rule streams.a.on_response[0] waits 5.00s (wait: 5s), longer than retry.max_delay 2.00s",
      ),
    });
  });
});

describe("ignore after the first page of a JSON lines export (link_header pages)", () => {
  it("is cut short too: stop ignored_later, the records before it kept", async () => {
    handler = (q, r) => {
      if (q.url === "/export") {
        r.writeHead(200, {
          "content-type": "application/x-ndjson",
          link: `<${base}/export?page=2>; rel="next"`,
        });
        return r.end('{"id":1}\n{"id":2}\n');
      }
      json(r, 404, { message: "expired" });
    };
    project.pipeline(
      "jl",
      `${sourceBlock(base)}
streams:
  events:
    path: /export
    response: { format: jsonl }
    paginate: { type: link_header }
    on_response: [{ status: 404, action: ignore }]
`,
    );
    const r = await runPipeline(project.dir, "jl");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("events").stop_reason?.code).toBe("ignored_later");
    expect(readJsonl(project.file("out/jl/events.jsonl"))).toEqual([{ id: 1 }, { id: 2 }]);
  });
});
