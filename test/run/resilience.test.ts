// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${env.…}` templates
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { afterAll, it as base, describe, expect } from "vitest";
import { run } from "../../src/cli/main.js";
import {
  dataset,
  type FaultOptions,
  type RecordedRequest,
  startApiServer,
  type TestServer,
} from "../server/api-server.js";
import { readJsonl, runPipeline, type TempProject, tempProject } from "./helpers.js";

const N = 120;

interface Fixtures {
  /** A temporary project, removed after the test. */
  project: TempProject;
  /** Starts a test API server, closed after the test. */
  server: (opts?: Parameters<typeof startApiServer>[0]) => Promise<TestServer>;
  /** The output file of a stream of pipeline `p`. */
  out: (stream?: string) => string;
}

// Fixtures rather than shared variables: the tests of this file run concurrently (most of
// their time goes into waiting for retries and rate limits).
const it = base.extend<Fixtures>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads the fixtures a fixture needs from this pattern
  project: async ({}, use) => {
    const project = tempProject("pipelines-resilience-");
    await use(project);
    project.cleanup();
  },
  // biome-ignore lint/correctness/noEmptyPattern: as above
  server: async ({}, use) => {
    const started: TestServer[] = [];
    await use(async (opts = {}) => {
      const s = await startApiServer(opts);
      started.push(s);
      return s;
    });
    await Promise.all(started.map((s) => s.close()));
  },
  out: async ({ project }, use) => {
    await use((stream = "items") => project.file(`out/p/${stream}.jsonl`));
  },
});

function pipeline(baseUrl: string, source: string[], streams: Record<string, string[]>): string {
  return [
    "source:",
    `  base_url: ${baseUrl}`,
    ...source.map((l) => `  ${l}`),
    "streams:",
    ...Object.entries(streams).flatMap(([name, lines]) => [`  ${name}:`, ...lines.map((l) => `    ${l}`)]),
    "",
  ].join("\n");
}

const CHAOS_SOURCE = [
  "timeout: 500ms",
  "retry: { max_attempts: 6, initial_delay: 10ms, max_delay: 5s }",
  "rate_limit: { remaining_header: x-ratelimit-remaining, reset_header: x-ratelimit-reset }",
];

const CHAOS: Omit<FaultOptions, "seed"> = {
  rate: 0.3,
  kinds: ["500", "502", "503", "504", "reset", "slow", "truncate", "429-seconds", "429-date", "403-reset"],
  slowMs: 1500,
  retryAfterSeconds: 0.2,
  truncateStyle: "mixed",
};

const STYLES: Record<string, string[]> = {
  none: ["path: /none/items", `params: { n: ${N} }`],
  cursor: [
    "path: /cursor/items",
    `params: { n: ${N}, limit: 10 }`,
    "records: $.data",
    "paginate: { type: cursor, cursor: $.next_cursor, has_more: $.has_more }",
  ],
  cursor_header: [
    "path: /cursor-header/items",
    `params: { n: ${N}, limit: 10 }`,
    "paginate: { type: cursor, cursor_header: X-Next-Cursor }",
  ],
  cursor_body: [
    "path: /cursor-body/search",
    "method: POST",
    `body: { limit: 10, n: ${N} }`,
    "records: $.results",
    "paginate: { type: cursor, cursor: $.paging.next.after, in: body }",
  ],
  offset: [
    "path: /offset/items",
    `params: { n: ${N} }`,
    "records: $.items",
    "paginate: { type: offset, limit: 10, total: $.total }",
  ],
  page: [
    "path: /page/items",
    `params: { n: ${N} }`,
    "records: $.results",
    "paginate: { type: page, size_param: per_page, size: 10 }",
  ],
  link_header: ["path: /link/items", `params: { n: ${N}, per_page: 10 }`, "paginate: { type: link_header }"],
  next_url: [
    "path: /next/items",
    `params: { n: ${N}, limit: 10, relative: 1 }`,
    "records: $.results",
    "paginate: { type: next_url, next: $.next }",
  ],
};

/**
 * Fault decisions are a pure function of (seed, request, attempt): these seeds give every style at
 * least one fault, and the eight styles together every kind (checked after the last one).
 */
const SEEDS: Record<string, number> = { none: 1 };
const DEFAULT_SEED = 4;
const kindsSeen = new Set<string>();
let stylesRun = 0;
afterAll(() => {
  if (stylesRun === Object.keys(STYLES).length)
    expect([...kindsSeen].sort()).toEqual(Object.keys(CAUSE).sort());
});

/** The retry cause the executor must report for each fault kind. */
const CAUSE: Record<string, string> = {
  "500": "status_500",
  "502": "status_502",
  "503": "status_503",
  "504": "status_504",
  reset: "reset",
  slow: "timeout",
  truncate: "truncated",
  "429-seconds": "rate_limited",
  "429-date": "rate_limited",
  "403-reset": "rate_limited",
};

// Concurrent: each style has its own server and project (most of the time goes into waits).
describe.concurrent("chaos: the output under faults is byte-identical to a fault-free run", () => {
  it.for(Object.keys(STYLES))("%s", async (style, { expect }) => {
    const api = await startApiServer();
    const proj = tempProject("pipelines-chaos-");
    try {
      const file = proj.file("out/p/items.jsonl");
      proj.pipeline("p", pipeline(api.url, CHAOS_SOURCE, { items: STYLES[style] }));

      const clean = await runPipeline(proj.dir, "p");
      expect(clean.code, clean.stderr).toBe(0);
      expect(clean.stream("items").retries).toEqual({});
      const expected = readFileSync(file);
      expect(readJsonl(file)).toEqual(dataset("items", N));

      rmSync(file);
      api.reset();
      api.setFaults({ ...CHAOS, seed: SEEDS[style] ?? DEFAULT_SEED });
      const chaos = await runPipeline(proj.dir, "p");
      expect(chaos.code, chaos.stderr).toBe(0);
      expect(readFileSync(file).equals(expected)).toBe(true);

      // Every injected fault cost exactly one retry, counted under its cause.
      const injected = api.stats().faultsInjected;
      const want: Record<string, number> = {};
      for (const [kind, n] of Object.entries(injected)) want[CAUSE[kind]] = (want[CAUSE[kind]] ?? 0) + n;
      const s = chaos.stream("items");
      expect(Object.values(want).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      expect(s.retries).toEqual(want);
      expect(s.requests).toBe(api.stats().requests);
      for (const kind of Object.keys(injected)) kindsSeen.add(kind);
      stylesRun++;
    } finally {
      proj.cleanup();
      await api.close();
    }
  });
});

/** Calls `fn` with each request the server records (before it answers it), and its number. */
function onRequest(api: TestServer, fn: (n: number, rec: RecordedRequest) => void): void {
  const push = api.requests.push.bind(api.requests);
  let count = 0;
  api.requests.push = (...recs: RecordedRequest[]) => {
    const n = push(...recs);
    for (const rec of recs) fn(++count, rec);
    return n;
  };
}

const gap = (api: TestServer, i: number) => api.requests[i + 1].at - api.requests[i].at;
/** Timers may fire a hair early against Date.now(). */
const TOLERANCE_MS = 15;

describe.concurrent("Retry-After and reset headers", () => {
  function statusPipeline(
    url: string,
    path: string,
    retry = "{ max_attempts: 4, initial_delay: 10ms, max_delay: 5s }",
  ) {
    return pipeline(
      url,
      [
        `retry: ${retry}`,
        "rate_limit: { remaining_header: x-ratelimit-remaining, reset_header: x-ratelimit-reset }",
      ],
      {
        items: [`path: ${path}`],
      },
    );
  }

  it("Retry-After in seconds with decimals is honoured", async ({ project, server, out, expect }) => {
    const api = await server({ faults: { rate: 0, kinds: [], retryAfterSeconds: 0.35 } });
    project.pipeline("p", statusPipeline(api.url, "/none/items?n=5&fail=1&fail_kind=429-seconds"));
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(api.requests.map((q) => q.status)).toEqual([429, 200]);
    expect(gap(api, 0)).toBeGreaterThanOrEqual(350 - TOLERANCE_MS);
    expect(r.stream("items").retries).toEqual({ rate_limited: 1 });
    expect(r.stream("items").rate_limit_waits.count).toBe(1);
    expect(readJsonl(out())).toEqual(dataset("items", 5));
  });

  it("Retry-After as an HTTP date is honoured", async ({ project, server, expect }) => {
    const api = await server({ faults: { rate: 0, kinds: [], retryAfterSeconds: 1 } });
    project.pipeline("p", statusPipeline(api.url, "/none/items?n=5&fail=1&fail_kind=429-date"));
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(api.requests.map((q) => q.status)).toEqual([429, 200]);
    // The date is at least 1 s after the 429, rounded up to a whole second.
    const date = Math.ceil((api.requests[0].at + 1000) / 1000) * 1000;
    expect(api.requests[1].at).toBeGreaterThanOrEqual(date - TOLERANCE_MS);
  });

  it("a 403 with remaining 0 waits until the reset time", async ({ project, server, expect }) => {
    const api = await server({ faults: { rate: 0, kinds: [], retryAfterSeconds: 0.5 } });
    project.pipeline("p", statusPipeline(api.url, "/none/items?n=5&fail=1&fail_kind=403-reset"));
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(api.requests.map((q) => q.status)).toEqual([403, 200]);
    const reset = Math.ceil((api.requests[0].at + 500) / 1000) * 1000;
    expect(api.requests[1].at).toBeGreaterThanOrEqual(reset - TOLERANCE_MS);
    expect(r.stream("items").retries).toEqual({ rate_limited: 1 });
  });

  it("a 403 is not retried when no reset headers are configured", async ({ project, server, expect }) => {
    const api = await server({ faults: { rate: 0, kinds: [], retryAfterSeconds: 0.2 } });
    project.pipeline(
      "p",
      pipeline(api.url, ["retry: { max_attempts: 4, initial_delay: 10ms, max_delay: 5s }"], {
        items: ["path: /none/items?n=5&fail=1&fail_kind=403-reset"],
      }),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    expect(api.requests).toHaveLength(1);
    expect(r.stream("items").error?.message).toContain("403");
  });

  it("Retry-After: 0 still waits the backoff delay", async ({ project, server, expect }) => {
    const api = await server();
    project.pipeline(
      "p",
      statusPipeline(
        api.url,
        "/status/503?retry_after=0",
        "{ max_attempts: 2, initial_delay: 300ms, max_delay: 5s }",
      ),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    expect(api.requests).toHaveLength(2);
    expect(gap(api, 0)).toBeGreaterThanOrEqual(300 - TOLERANCE_MS);
  });

  it.for([
    ["in seconds", "120", "2m00s"],
    ["as a date", encodeURIComponent(new Date(Date.now() + 3_600_000).toUTCString()), "Retry-After"],
  ])(
    "a Retry-After longer than max_delay (%s) fails at once, saying how long the API asked",
    async ([_n, value, shown], { project, server, expect }) => {
      const api = await server();
      project.pipeline(
        "p",
        statusPipeline(
          api.url,
          `/status/429?retry_after=${value}`,
          "{ max_attempts: 5, initial_delay: 10ms, max_delay: 2s }",
        ),
      );
      const r = await runPipeline(project.dir, "p");
      expect(r.code).toBe(1);
      expect(api.requests).toHaveLength(1);
      const e = r.stream("items").error;
      expect(e?.kind).toBe("rate_limit_wait");
      expect(e?.message).toContain("asked to wait");
      expect(e?.message).toContain(shown);
      expect(e?.message).toContain("max_delay");
    },
  );
});

describe.concurrent("failing requests", () => {
  it("a 404 fails at once; the message names status, method, URL and the body", async ({
    project,
    server,
    expect,
  }) => {
    const api = await server();
    project.pipeline(
      "p",
      pipeline(api.url, ["retry: { max_attempts: 5, initial_delay: 10ms, max_delay: 2s }"], {
        items: ["path: /nothing/here", "params: { q: 1 }"],
      }),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    expect(api.requests).toHaveLength(1);
    const e = r.stream("items").error;
    expect(e?.kind).toBe("http");
    expect(e?.message).toContain("404");
    expect(e?.message).toContain(`GET ${api.url}/nothing/here?q=1`);
    expect(e?.message).toContain('"error":"not_found"');
    expect(e?.message).toContain("1 attempt");
    expect(r.stderr).toContain("404");
  });

  it("exhausted retries on a status name the attempt count", async ({ project, server, expect }) => {
    const api = await server();
    project.pipeline(
      "p",
      pipeline(api.url, ["retry: { max_attempts: 3, initial_delay: 10ms, max_delay: 2s }"], {
        items: ["path: /status/503"],
      }),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    expect(api.requests).toHaveLength(3);
    const s = r.stream("items");
    expect(s.error?.message).toContain("503");
    expect(s.error?.message).toContain("after 3 attempts");
    expect(s.retries).toEqual({ status_503: 2 });
  });

  it("exhausted retries on connection resets name the attempt count", async ({ project, server, expect }) => {
    const api = await server();
    project.pipeline(
      "p",
      pipeline(api.url, ["retry: { max_attempts: 3, initial_delay: 10ms, max_delay: 2s }"], {
        items: ["path: /none/items?fail=5&fail_kind=reset"],
      }),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    expect(api.requests).toHaveLength(3);
    const s = r.stream("items");
    expect(s.error?.kind).toBe("transport");
    expect(s.error?.message).toContain("after 3 attempts");
    expect(s.retries).toEqual({ reset: 2 });
  });

  it.for(["content-length", "chunked"] as const)(
    "a truncated body (%s) is retried as truncated",
    async (style, { project, server, out, expect }) => {
      const api = await server({ faults: { rate: 0, kinds: [], truncateStyle: style } });
      project.pipeline(
        "p",
        pipeline(api.url, ["retry: { max_attempts: 3, initial_delay: 10ms, max_delay: 2s }"], {
          items: ["path: /none/items?n=50&fail=1&fail_kind=truncate"],
        }),
      );
      const r = await runPipeline(project.dir, "p");
      expect(r.code, r.stderr).toBe(0);
      expect(r.stream("items").retries).toEqual({ truncated: 1 });
      expect(readJsonl(out())).toEqual(dataset("items", 50));
    },
  );

  it("an API that refuses connections is retried, then fails naming the attempts", async ({
    project,
    server,
    expect,
  }) => {
    const gone = await server();
    const url = gone.url;
    await gone.close();
    project.pipeline(
      "p",
      pipeline(url, ["retry: { max_attempts: 3, initial_delay: 10ms, max_delay: 2s }"], {
        items: ["path: /none/items"],
      }),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    const s = r.stream("items");
    expect(s.error?.kind).toBe("transport");
    expect(s.error?.message).toContain(`GET ${url}/none/items`);
    expect(s.error?.message).toContain("after 3 attempts");
    expect(s.error?.message).toContain("ECONNREFUSED");
    expect(s.retries).toEqual({ connect: 2 });
  });

  it("a response slower than the timeout is retried as a timeout", async ({
    project,
    server,
    out,
    expect,
  }) => {
    const api = await server({ faults: { rate: 0, kinds: [], slowMs: 2000 } });
    project.pipeline(
      "p",
      pipeline(
        api.url,
        ["timeout: 300ms", "retry: { max_attempts: 3, initial_delay: 10ms, max_delay: 2s }"],
        {
          items: ["path: /none/items?n=50&fail=1&fail_kind=slow"],
        },
      ),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("items").retries).toEqual({ timeout: 1 });
    expect(readJsonl(out())).toEqual(dataset("items", 50));
  });
});

describe.concurrent("OAuth2", () => {
  const CLIENT = { clientId: "client-1", clientSecret: "cs-oauth-secret-42" };

  function oauthSource(url: string, extra: string[] = []): string[] {
    return [
      "retry: { max_attempts: 4, initial_delay: 10ms, max_delay: 2s }",
      "auth:",
      "  type: oauth2",
      `  token_url: ${url}/oauth/token`,
      `  client_id: ${CLIENT.clientId}`,
      `  client_secret: "\${env.CLIENT_SECRET}"`,
      ...extra.map((l) => `  ${l}`),
    ];
  }
  const ENV = { CLIENT_SECRET: CLIENT.clientSecret };
  const cursorStream = (n = N) => [
    "path: /cursor/items",
    `params: { n: ${n}, limit: 10 }`,
    "records: $.data",
    "paginate: { type: cursor, cursor: $.next_cursor }",
  ];

  it.for(["body", "basic"] as const)(
    "client_credentials (client auth %s) fetches a token before the first request",
    async (clientAuth, { project, server, out, expect }) => {
      const api = await server({ auth: { oauth2: { ...CLIENT, tokenTtlSeconds: 3600, clientAuth } } });
      project.pipeline(
        "p",
        pipeline(
          api.url,
          oauthSource(api.url, ["grant_type: client_credentials", `client_auth: ${clientAuth}`]),
          {
            items: cursorStream(),
          },
        ),
      );
      const r = await runPipeline(project.dir, "p", [], ENV);
      expect(r.code, r.stderr).toBe(0);
      expect(readJsonl(out())).toEqual(dataset("items", N));
      expect(api.requests[0].path).toBe("/oauth/token");
      expect(api.requests.slice(1).every((q) => q.path === "/cursor/items" && q.status === 200)).toBe(true);
      expect(api.requests.slice(1).every((q) => /^Bearer at_/.test(q.headers.authorization ?? ""))).toBe(
        true,
      );
      expect(api.stats().tokensIssued).toBe(1);
      if (clientAuth === "basic") expect(api.requests[0].body).not.toContain("client_secret");
      else expect(api.requests[0].headers.authorization).toBeUndefined();
    },
  );

  it("a token expired mid-run gives a 401, one refresh, and the request is retried", async ({
    project,
    server,
    out,
    expect,
  }) => {
    const api = await server({ auth: { oauth2: { ...CLIENT, tokenTtlSeconds: 3600 } } });
    let data = 0;
    onRequest(api, (_n, rec) => {
      if (rec.path !== "/oauth/token" && ++data === 4) api.expireTokens();
    });
    project.pipeline(
      "p",
      pipeline(api.url, oauthSource(api.url, ["grant_type: client_credentials"]), { items: cursorStream() }),
    );
    const r = await runPipeline(project.dir, "p", [], ENV);
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(out())).toEqual(dataset("items", N));
    expect(api.stats().tokensIssued).toBe(2);
    expect(api.requests.filter((q) => q.status === 401)).toHaveLength(1);
    expect(api.requests.map((q) => (q.path === "/oauth/token" ? "token" : q.status))).toEqual([
      "token",
      200,
      200,
      200,
      401,
      "token",
      ...Array(9).fill(200),
    ]);
    expect(r.stream("items").retries).toEqual({ token_refresh: 1 });
  });

  it("many streams hitting 401 at once make only one token request", async ({
    project,
    server,
    out,
    expect,
  }) => {
    const api = await server({ latencyMs: 25, auth: { oauth2: { ...CLIENT, tokenTtlSeconds: 3600 } } });
    let data = 0;
    onRequest(api, (_n, rec) => {
      if (rec.path !== "/oauth/token" && ++data === 15) api.expireTokens();
    });
    const streams: Record<string, string[]> = {};
    for (let i = 1; i <= 6; i++) streams[`s${i}`] = cursorStream(60);
    project.pipeline(
      "p",
      pipeline(
        api.url,
        [...oauthSource(api.url, ["grant_type: client_credentials"]), "concurrency: 6"],
        streams,
      ),
    );
    const r = await runPipeline(project.dir, "p", [], ENV);
    expect(r.code, r.stderr).toBe(0);
    for (let i = 1; i <= 6; i++) expect(readJsonl(out(`s${i}`))).toEqual(dataset("items", 60));
    expect(api.requests.filter((q) => q.status === 401).length).toBeGreaterThan(1);
    expect(api.stats().tokensIssued).toBe(2);
    expect(api.requests.filter((q) => q.path === "/oauth/token")).toHaveLength(2);
  });

  it("a rotated refresh token is saved to the state file and the next run starts from it", async ({
    project,
    server,
    out,
    expect,
  }) => {
    const initial = "rt-initial-secret-7";
    const api = await server({
      auth: { oauth2: { ...CLIENT, refreshToken: initial, rotateRefreshToken: true, tokenTtlSeconds: 3600 } },
    });
    let data = 0;
    onRequest(api, (_n, rec) => {
      if (rec.path !== "/oauth/token" && ++data === 3) api.expireTokens();
    });
    project.pipeline(
      "p",
      pipeline(api.url, oauthSource(api.url, ["grant_type: refresh_token", 'refresh_token: "${env.RT}"']), {
        items: cursorStream(50),
      }),
    );
    const env = { ...ENV, RT: initial };
    const stateFile = project.file(".pipelines/state/p.json");
    const saved = () => JSON.parse(readFileSync(stateFile, "utf8")).auth?.refresh_token as string | undefined;
    const sentTokens = () =>
      api.requests
        .filter((q) => q.path === "/oauth/token")
        .map((q) => new URLSearchParams(q.body).get("refresh_token"));

    // Run 1: two token requests (start, and after the expiry), each rotating the refresh token.
    const first = await runPipeline(project.dir, "p", [], env);
    expect(first.code, first.stderr).toBe(0);
    expect(readJsonl(out())).toEqual(dataset("items", 50));
    const run1 = sentTokens();
    expect(run1).toHaveLength(2);
    expect(run1[0]).toBe(initial);
    expect(run1[1]).not.toBe(initial);
    expect(saved()).toBe(api.refreshToken());
    expect(saved()).not.toBe(initial);
    expect((statSync(stateFile).mode & 0o777).toString(8)).toBe("600");

    // Run 2, same environment (whose token is now revoked): starts from the saved one.
    api.reset();
    const before = saved();
    const second = await runPipeline(project.dir, "p", [], env);
    expect(second.code, second.stderr).toBe(0);
    expect(sentTokens()[0]).toBe(before);
    expect(saved()).toBe(api.refreshToken());

    // Without the state file, the revoked token from the environment is refused.
    rmSync(stateFile);
    const third = await runPipeline(project.dir, "p", [], env);
    expect(third.code).toBe(1);
    expect(third.stream("items").error?.message).toContain("invalid_grant");
    expect(third.stream("items").error?.message).toContain("refresh token revoked");
  });

  it("run --singer saves a rotated refresh token to the state file (and nothing else), and the next --singer run starts from it", async ({
    project,
    server,
    expect,
  }) => {
    const initial = "rt-initial-secret-8";
    const api = await server({
      auth: { oauth2: { ...CLIENT, refreshToken: initial, rotateRefreshToken: true, tokenTtlSeconds: 3600 } },
    });
    project.pipeline(
      "p",
      pipeline(api.url, oauthSource(api.url, ["grant_type: refresh_token", 'refresh_token: "${env.RT}"']), {
        items: cursorStream(20),
      }),
    );
    const env = { ...ENV, RT: initial };
    const singer = async (args: string[] = []) => {
      let stdout = "";
      let stderr = "";
      const code = await run(["run", "p", "--singer", ...args], {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
        cwd: project.dir,
        env,
      });
      return { code, stdout, stderr };
    };
    const stateFile = project.file(".pipelines/state/p.json");
    const sentTokens = () =>
      api.requests
        .filter((q) => q.path === "/oauth/token")
        .map((q) => new URLSearchParams(q.body).get("refresh_token"));

    const first = await singer();
    expect(first.code, first.stderr).toBe(0);
    expect(sentTokens()).toEqual([initial]);
    const rotated = api.refreshToken();
    expect(rotated).not.toBe(initial);
    // The token is the file's, never a Singer message's; the positions stay the target's.
    const saved = JSON.parse(readFileSync(stateFile, "utf8"));
    expect(saved.auth?.refresh_token).toBe(rotated);
    expect(saved.streams).toBeUndefined();
    expect(first.stdout).not.toContain(rotated);
    expect(first.stdout).not.toContain(initial);

    // The next run, given the positions in a Singer state file: its token is the saved one.
    api.reset();
    writeFileSync(project.file("singer-state.json"), JSON.stringify({ bookmarks: {} }));
    const second = await singer(["--state", "singer-state.json"]);
    expect(second.code, second.stderr).toBe(0);
    expect(sentTokens()).toEqual([rotated]);
    expect(JSON.parse(readFileSync(stateFile, "utf8")).auth?.refresh_token).toBe(api.refreshToken());
  });

  it("a short-lived token is refreshed ahead of its expiry (half its lifetime), without 401s", async ({
    project,
    server,
    out,
    expect,
  }) => {
    const api = await server({ latencyMs: 60, auth: { oauth2: { ...CLIENT, tokenTtlSeconds: 1 } } });
    project.pipeline(
      "p",
      pipeline(api.url, oauthSource(api.url, ["grant_type: client_credentials"]), {
        items: cursorStream(200),
      }),
    );
    const r = await runPipeline(project.dir, "p", [], ENV);
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(out())).toEqual(dataset("items", 200));
    // 20 pages of 60 ms or more: past the 0.5 s refresh point at least twice.
    expect(api.stats().tokensIssued).toBeGreaterThanOrEqual(3);
    expect(api.requests.filter((q) => q.status === 401)).toEqual([]);
    expect(r.stream("items").retries).toEqual({});
  });

  it.for(["503", "reset", "429-seconds"])(
    "a token request that fails with %s is retried",
    async (kind, { project, server, out, expect }) => {
      const api = await server({
        faults: { rate: 0, kinds: [], retryAfterSeconds: 0.1 },
        auth: { oauth2: { ...CLIENT, tokenTtlSeconds: 3600 } },
      });
      project.pipeline(
        "p",
        pipeline(
          api.url,
          oauthSource(api.url, ["grant_type: client_credentials"]).map((l) =>
            l.startsWith("  token_url:") ? `${l}?fail=1&fail_kind=${kind}` : l,
          ),
          { items: cursorStream(30) },
        ),
      );
      const r = await runPipeline(project.dir, "p", [], ENV);
      expect(r.code, r.stderr).toBe(0);
      expect(readJsonl(out())).toEqual(dataset("items", 30));
      const tokenRequests = api.requests.filter((q) => q.path === "/oauth/token");
      expect(tokenRequests).toHaveLength(2);
      expect(tokenRequests[0].fault).toBe(kind);
      expect(api.stats().tokensIssued).toBe(1);
    },
  );

  it("a failing token endpoint fails the run with its error and no secret", async ({
    project,
    server,
    expect,
  }) => {
    const api = await server({
      auth: {
        oauth2: { ...CLIENT, tokenTtlSeconds: 3600, failWith: { status: 400, error: "invalid_grant" } },
      },
    });
    project.pipeline(
      "p",
      pipeline(api.url, oauthSource(api.url, ["grant_type: client_credentials"]), { items: cursorStream() }),
    );
    const r = await runPipeline(project.dir, "p", [], ENV);
    expect(r.code).toBe(1);
    const e = r.stream("items").error;
    expect(e?.kind).toBe("auth");
    expect(e?.message).toMatch(/^token endpoint answered 400 invalid_grant: /);
    expect(api.requests.every((q) => q.path === "/oauth/token")).toBe(true);
    expect(r.stdout + r.stderr).not.toContain(CLIENT.clientSecret);
    expect(r.stdout + r.stderr).toContain("invalid_grant");
  });
});

describe.concurrent("rate budget", () => {
  const streams = {
    a: [
      "path: /page/items",
      "params: { n: 60 }",
      "records: $.results",
      "paginate: { type: page, size_param: per_page, size: 10, total_pages: $.total_pages }",
    ],
    b: [
      "path: /page/items",
      "params: { n: 60 }",
      "records: $.results",
      "paginate: { type: page, size_param: per_page, size: 10, total_pages: $.total_pages }",
    ],
  };

  it.for([
    ["4 connections", 0, 4],
    // One connection and a slow API: requests queue for the connection after the budget.
    ["1 connection, 120 ms latency", 120, 1],
  ] as const)(
    "requests_per_second keeps a rate-limited API almost free of 429s (%s)",
    async ([_name, latencyMs, concurrency], { project, server, out, expect }) => {
      const api = await server({ latencyMs, rateLimit: { perSecond: 5, style: "429-retry-after-seconds" } });
      project.pipeline(
        "p",
        pipeline(
          api.url,
          [
            "retry: { max_attempts: 6, initial_delay: 10ms, max_delay: 5s }",
            "rate_limit: { requests_per_second: 5 }",
            `concurrency: ${concurrency}`,
          ],
          streams,
        ),
      );
      const r = await runPipeline(project.dir, "p");
      expect(r.code, r.stderr).toBe(0);
      expect(readJsonl(out("a"))).toEqual(dataset("items", 60));
      expect(readJsonl(out("b"))).toEqual(dataset("items", 60));
      expect(api.stats().rateLimited).toBeLessThanOrEqual(3);
      // The budget made the streams wait: 12 requests at 5 per second.
      const waits = r.summary.streams.reduce((a, s) => a + s.rate_limit_waits.count, 0);
      expect(waits).toBeGreaterThan(0);
    },
  );

  it.for([
    ["403-reset-epoch", 403],
    ["429-reset-delta", 429],
  ] as const)(
    "remaining/reset headers (%s) pause the run before the API refuses",
    async ([style, status], { project, server, out, expect }) => {
      const api = await server({ rateLimit: { perSecond: 4, style } });
      project.pipeline(
        "p",
        pipeline(
          api.url,
          [
            "retry: { max_attempts: 6, initial_delay: 10ms, max_delay: 5s }",
            "rate_limit: { remaining_header: X-RateLimit-Remaining, reset_header: X-RateLimit-Reset }",
            "concurrency: 1",
          ],
          { a: streams.a },
        ),
      );
      const r = await runPipeline(project.dir, "p");
      expect(r.code, r.stderr).toBe(0);
      expect(readJsonl(out("a"))).toEqual(dataset("items", 60));
      // One request at a time: after the one that left 0, the client waits for the reset.
      expect(api.requests.filter((q) => q.status === status)).toEqual([]);
      expect(r.stream("a").rate_limit_waits.count).toBeGreaterThan(0);
    },
  );

  it("without a configured budget the run still completes, with retries", async ({
    project,
    server,
    out,
    expect,
  }) => {
    const api = await server({ rateLimit: { perSecond: 5, style: "429-retry-after-seconds" } });
    project.pipeline(
      "p",
      pipeline(api.url, ["retry: { max_attempts: 8, initial_delay: 10ms, max_delay: 5s }"], streams),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(out("a"))).toEqual(dataset("items", 60));
    expect(readJsonl(out("b"))).toEqual(dataset("items", 60));
    expect(api.stats().rateLimited).toBeGreaterThan(0);
    const retried = r.summary.streams.reduce((a, s) => a + (s.retries.rate_limited ?? 0), 0);
    expect(retried).toBe(api.stats().rateLimited);
  });
});
