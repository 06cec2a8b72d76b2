// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${env.…}` templates
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { startApiServer, type TestServer } from "../server/api-server.js";
import { listFiles, type TempProject, tempProject } from "./helpers.js";

/**
 * Credential safety: pipelines with known secrets run (and fail) in every way we can provoke;
 * every byte printed and every file the runs wrote must be free of every secret, in every
 * encoding a secret travels in (raw, URL-encoded, form-encoded, base64).
 */

const S = {
  bearer: "bt-Secret/Token+1=",
  apiKey: "ak-Query/Key+2=&x",
  basicUser: "svc-user",
  basicPass: "bp-Pass:word/3+",
  clientSecret: "cs-ClientSecret4",
  refresh: "rt-Refresh/Token+5=",
  custom: "cx-Custom/Header+6=",
  apiKeyHeader: "ah-Header/Key+7=",
};
const CLIENT_ID = "client-7";

const ENV = {
  BEARER_TOKEN: S.bearer,
  BASIC_PASSWORD: S.basicPass,
  CLIENT_SECRET: S.clientSecret,
  REFRESH_TOKEN: S.refresh,
  CUSTOM_SECRET: S.custom,
  API_KEY: S.apiKeyHeader,
};

function forms(secret: string): string[] {
  const b64 = Buffer.from(secret).toString("base64");
  return [
    ...new Set([
      secret,
      encodeURIComponent(secret),
      new URLSearchParams({ x: secret }).toString().slice(2),
      b64,
      b64.replace(/=+$/, ""),
      Buffer.from(secret).toString("base64url"),
    ]),
  ];
}

let project: TempProject;
const servers: Record<string, TestServer> = {};
/** Everything printed by every command, in order. */
let printed = "";
const codes: Record<string, number> = {};

async function cli(args: string[]): Promise<number> {
  const code = await run(args, {
    stdout: { write: (s: string) => (printed += s) },
    stderr: { write: (s: string) => (printed += s) },
    cwd: project.dir,
    env: ENV,
  });
  printed += "\n";
  return code;
}

function pipelineText(
  source: string[],
  streams: Record<string, string[]>,
  validation: string[] = [],
): string {
  return [
    "source:",
    ...source.map((l) => `  ${l}`),
    "  retry: { max_attempts: 2, initial_delay: 10ms, max_delay: 2s }",
    "streams:",
    ...Object.entries(streams).flatMap(([name, lines]) => [`  ${name}:`, ...lines.map((l) => `    ${l}`)]),
    ...(validation.length ? ["validation:", ...validation.map((l) => `  ${l}`)] : []),
    "",
  ].join("\n");
}

/** Streams that fail in every way, plus two that succeed, for an API at `other` across origins. */
function streamsFor(other: TestServer, auth: "header" | "query"): Record<string, string[]> {
  return {
    ok: [
      "path: /cursor/items",
      "params: { n: 60, limit: 20 }",
      "records: $.data",
      "paginate: { type: cursor, cursor: $.next_cursor }",
    ],
    links: [
      "path: /link/items",
      "params: { n: 60, per_page: 20, relative: 1 }",
      "paginate: { type: link_header }",
    ],
    missing: ["path: /status/404", "params: { q: 1 }"],
    server_error: ["path: /status/503"],
    resets: ["path: /none/items", "params: { fail: 5, fail_kind: reset }"],
    not_json: ["path: /not-json"],
    cross_origin: [
      "path: /link/items",
      `params: { n: 60, per_page: 20, cross_origin: "${other.origin}" }`,
      "paginate: { type: link_header }",
    ],
    // The API answers with the request it got (credentials included) as its error message …
    echoed_error: ["path: /echo", `error_path: ${auth === "query" ? "$.url" : "$.headers.authorization"}`],
    // … and as records that fail their schema: they go to the quarantine file and the report.
    echoed_invalid: [
      "path: /echo",
      "schema: { type: object, required: [nope], properties: { nope: { type: string } } }",
    ],
  };
}

beforeAll(async () => {
  project = tempProject("pipelines-secrets-");
  const other = await startApiServer({ host: "127.0.0.2" });
  servers.other = other;
  servers.bearer = await startApiServer({ auth: { bearer: S.bearer } });
  servers.apikey = await startApiServer({
    auth: { apiKey: { name: "api_key", value: S.apiKey, in: "query" } },
  });
  servers.apikeyHeader = await startApiServer({
    auth: { apiKey: { name: "X-Api-Key", value: S.apiKeyHeader, in: "header" } },
  });
  servers.basic = await startApiServer({ auth: { basic: { username: S.basicUser, password: S.basicPass } } });
  servers.oauth = await startApiServer({
    auth: {
      oauth2: {
        clientId: CLIENT_ID,
        clientSecret: S.clientSecret,
        refreshToken: S.refresh,
        rotateRefreshToken: true,
        tokenTtlSeconds: 3600,
      },
    },
  });
  servers.oauthFail = await startApiServer({
    auth: {
      oauth2: {
        clientId: CLIENT_ID,
        clientSecret: S.clientSecret,
        tokenTtlSeconds: 3600,
        failWith: { status: 400, error: "invalid_grant" },
      },
    },
  });
  const validation = ["invalid_records: skip", "max_invalid_ratio: 1"];

  project.pipeline(
    "bearer",
    pipelineText(
      [`base_url: ${servers.bearer.url}`, 'auth: { type: bearer, token: "${env.BEARER_TOKEN}" }'],
      streamsFor(other, "header"),
      validation,
    ),
  );
  project.pipeline(
    "apikey",
    pipelineText(
      // A literal auth field is a secret too.
      [
        `base_url: ${servers.apikey.url}`,
        `auth: { type: api_key, name: api_key, value: "${S.apiKey}", in: query }`,
      ],
      streamsFor(other, "query"),
      validation,
    ),
  );
  project.pipeline(
    "basic",
    pipelineText(
      [
        `base_url: ${servers.basic.url}`,
        `auth: { type: basic, username: ${S.basicUser}, password: "\${env.BASIC_PASSWORD}" }`,
      ],
      streamsFor(other, "header"),
      validation,
    ),
  );
  const oauthSource = (server: TestServer, grant: string) => [
    `base_url: ${server.url}`,
    "auth:",
    "  type: oauth2",
    `  token_url: ${server.url}/oauth/token`,
    `  grant_type: ${grant}`,
    `  client_id: ${CLIENT_ID}`,
    '  client_secret: "${env.CLIENT_SECRET}"',
    '  refresh_token: "${env.REFRESH_TOKEN}"',
  ];
  project.pipeline(
    "oauth",
    pipelineText(oauthSource(servers.oauth, "refresh_token"), streamsFor(other, "header"), validation),
  );
  project.pipeline(
    "oauth_cc",
    pipelineText(oauthSource(servers.oauth, "client_credentials"), streamsFor(other, "header"), validation),
  );
  project.pipeline(
    "oauth_fail",
    pipelineText(oauthSource(servers.oauthFail, "refresh_token"), { ok: streamsFor(other, "header").ok }),
  );

  // Pagination that crosses to an allowed origin: nothing secret may go there.
  const follow = {
    follow: [
      "path: /link/items",
      `params: { n: 60, per_page: 20, cross_origin: "${other.origin}" }`,
      "paginate: { type: link_header }",
    ],
  };
  const allowed = `allowed_hosts: ["${other.origin}"]`;
  project.pipeline(
    "cross_bearer",
    pipelineText(
      [
        `base_url: ${servers.bearer.url}`,
        'auth: { type: bearer, token: "${env.BEARER_TOKEN}" }',
        'headers: { X-Custom-Secret: "${env.CUSTOM_SECRET}" }',
        allowed,
      ],
      follow,
    ),
  );
  project.pipeline(
    "cross_apikey_header",
    pipelineText(
      [
        `base_url: ${servers.apikeyHeader.url}`,
        'auth: { type: api_key, name: X-Api-Key, value: "${env.API_KEY}" }',
        allowed,
      ],
      follow,
    ),
  );
  project.pipeline(
    "cross_apikey_query",
    pipelineText(
      [
        `base_url: ${servers.apikey.url}`,
        `auth: { type: api_key, name: api_key, value: "${S.apiKey}", in: query }`,
        allowed,
      ],
      follow,
    ),
  );
  project.pipeline(
    "cross_basic",
    pipelineText(
      [
        `base_url: ${servers.basic.url}`,
        `auth: { type: basic, username: ${S.basicUser}, password: "\${env.BASIC_PASSWORD}" }`,
        allowed,
      ],
      follow,
    ),
  );
  project.pipeline(
    "cross_oauth",
    pipelineText([...oauthSource(servers.oauth, "client_credentials"), allowed], follow),
  );

  for (const name of [
    "bearer",
    "apikey",
    "basic",
    "oauth",
    "oauth_cc",
    "oauth_fail",
    "cross_bearer",
    "cross_apikey_header",
    "cross_apikey_query",
    "cross_basic",
    "cross_oauth",
  ]) {
    codes[`plan ${name}`] = await cli(["plan", name]);
    codes[`plan --json ${name}`] = await cli(["plan", name, "--json"]);
    codes[`run ${name}`] = await cli(["run", name, "--json"]);
  }
  // Once more: the OAuth2 run starts from the rotated refresh token in the state file.
  codes["run oauth again"] = await cli(["run", "oauth", "--json"]);
});

afterAll(async () => {
  project.cleanup();
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

/** Access and refresh tokens the OAuth2 server issued during the runs. */
function issuedTokens(): { access: string[]; refresh: string[] } {
  const access = new Set<string>();
  const refresh = new Set<string>();
  for (const q of servers.oauth.requests) {
    const a = q.headers.authorization;
    if (a?.startsWith("Bearer ")) access.add(a.slice(7));
    if (q.path === "/oauth/token") {
      const rt = new URLSearchParams(q.body).get("refresh_token");
      if (rt && rt !== S.refresh) refresh.add(rt);
    }
  }
  const latest = servers.oauth.refreshToken();
  if (latest && latest !== S.refresh) refresh.add(latest);
  return { access: [...access], refresh: [...refresh] };
}

/** Every secret by name; the user name of basic auth is not one, but `user:password` is. */
function secretsToFind(opts: { rotated: boolean }): Record<string, string> {
  const { access, refresh } = issuedTokens();
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(S)) if (name !== "basicUser") out[name] = value;
  out.basicCredential = `${S.basicUser}:${S.basicPass}`;
  for (const [i, t] of access.entries()) out[`access token ${i}`] = t;
  if (opts.rotated) for (const [i, t] of refresh.entries()) out[`rotated refresh token ${i}`] = t;
  return out;
}

function findLeaks(text: string, secrets: Record<string, string>): string[] {
  const leaks: string[] = [];
  for (const [name, secret] of Object.entries(secrets)) {
    for (const form of forms(secret)) {
      const at = text.indexOf(form);
      if (at >= 0)
        leaks.push(`${name} (${form}) near: ${text.slice(Math.max(0, at - 80), at + form.length + 40)}`);
    }
  }
  return leaks;
}

describe("no secret leaves the process", () => {
  it("the runs happened: successes and every kind of failure", () => {
    expect(codes).toMatchObject({
      "run bearer": 1,
      "run apikey": 1,
      "run basic": 1,
      "run oauth": 1,
      "run oauth_cc": 1,
      "run oauth_fail": 1,
      "run oauth again": 1,
      "run cross_bearer": 0,
      "run cross_apikey_header": 0,
      "run cross_apikey_query": 0,
      "run cross_basic": 0,
      "run cross_oauth": 0,
    });
    for (const name of ["bearer", "apikey", "basic", "oauth", "oauth_cc"]) {
      expect(codes[`plan ${name}`]).toBe(0);
      // The streams that should succeed did: the credentials were sent.
      expect(
        readFileSync(project.file(`out/${name}/ok.jsonl`), "utf8")
          .split("\n")
          .filter(Boolean),
      ).toHaveLength(60);
      expect(
        readFileSync(project.file(`out/${name}/links.jsonl`), "utf8")
          .split("\n")
          .filter(Boolean),
      ).toHaveLength(60);
      // The echoed records were quarantined.
      expect(listFiles(project.file(`out/${name}`))).toContain("echoed_invalid.invalid.jsonl");
    }
    for (const kind of ["404", "503", "not JSON", "pagination leads to", "invalid_grant", "error at $."]) {
      expect(printed).toContain(kind);
    }
    expect(printed).toContain("***");
    const tokens = issuedTokens();
    expect(tokens.access.length).toBeGreaterThanOrEqual(2);
    expect(tokens.refresh.length).toBeGreaterThanOrEqual(2);
  });

  it("no request to another origin carried a secret", () => {
    const secrets = secretsToFind({ rotated: true });
    // Five pipelines followed the link: pages 3 of 3 came from the other origin.
    expect(servers.other.requests.filter((q) => q.status === 200)).toHaveLength(5);
    for (const q of servers.other.requests) expect(q.headers.authorization).toBeUndefined();
    expect(findLeaks(JSON.stringify(servers.other.requests), secrets)).toEqual([]);
    // While the API's own origin got them.
    expect(servers.bearer.requests.some((q) => q.headers["x-custom-secret"] === S.custom)).toBe(true);
    expect(servers.apikeyHeader.requests.some((q) => q.headers["x-api-key"] === S.apiKeyHeader)).toBe(true);
  });

  it("nothing printed on stdout or stderr holds a secret", () => {
    expect(findLeaks(printed, secretsToFind({ rotated: true }))).toEqual([]);
  });

  it("no file the runs wrote holds a secret (the state file only the rotated refresh token)", () => {
    const always = secretsToFind({ rotated: false });
    const all = secretsToFind({ rotated: true });

    const written = listFiles(project.dir).filter(
      (f) => !f.startsWith(`pipelines${path.sep}`) && !f.startsWith(`schemas${path.sep}`),
    );
    // Outputs, quarantines, reports and state were all written.
    expect(written.some((f) => f.startsWith(`out${path.sep}`))).toBe(true);
    expect(written.some((f) => f.endsWith(".invalid.jsonl"))).toBe(true);
    expect(written.some((f) => f.startsWith(`reports${path.sep}`) && f.endsWith(".html"))).toBe(true);
    const stateFile = path.join(".pipelines", "state", "oauth.json");
    expect(written).toContain(stateFile);

    const leaks: string[] = [];
    for (const f of written) {
      const text = readFileSync(project.file(f), "utf8");
      const secrets = f === stateFile ? always : all;
      for (const leak of findLeaks(text, secrets)) leaks.push(`${f}: ${leak}`);
    }
    expect(leaks).toEqual([]);

    // The state file does hold the current refresh token: the next run needs it.
    const state = JSON.parse(readFileSync(project.file(stateFile), "utf8"));
    expect(state.auth.refresh_token).toBe(servers.oauth.refreshToken());
  });
});
