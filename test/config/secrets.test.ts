// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` template syntax
import { afterAll, describe, expect, it } from "vitest";
import { compilePlan } from "../../src/compile/compile-plan.js";
import { formatPlan, redactPlan } from "../../src/compile/show-plan.js";
import { ConfigError, formatIssue } from "../../src/config/errors.js";
import { loadPipelineText } from "../../src/config/load-pipeline.js";
import { issuesOf, loadOk, tempProject, yaml } from "./helpers.js";

const { project, cleanup } = tempProject();
afterAll(cleanup);

const GH_TOKEN = "ghp_SuperSecret123";
const PASSWORD = "hunter2-Pa$$word/+=";
const API_KEY = "ak_live_0123456789abcdef";
const HEADER_TOKEN = "hdr-Token-777";
const COOKIE = "session=c00kieMonster42";
const TENANT = "tenant-s3cr3t";

/** A secret in every form it could leak in: as is, URL-encoded, form-encoded, base64, JSON-escaped. */
function forms(secret: string, username?: string): string[] {
  const out = new Set([
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ x: secret }).toString().slice(2),
    Buffer.from(secret).toString("base64"),
    JSON.stringify(secret).slice(1, -1),
  ]);
  if (username !== undefined) out.add(Buffer.from(`${username}:${secret}`).toString("base64"));
  return [...out];
}

function expectNoSecrets(text: string, secrets: string[]): void {
  for (const s of secrets) expect(text, `leaked ${s}`).not.toContain(s);
}

const env = {
  GH_TOKEN,
  PASSWORD,
  API_KEY,
  HEADER_TOKEN,
  TENANT,
};

const PIPELINES: [string, string, string[]][] = [
  [
    "bearer token from env, Authorization and Cookie headers, env value in the path",
    yaml`
      source:
        base_url: https://api.x.test
        auth: { type: bearer, token: "\${env.GH_TOKEN}" }
        headers:
          Cookie: ${COOKIE}
      streams:
        issues:
          path: /tenants/\${env.TENANT}/issues
          headers:
            Authorization: "Bearer \${env.HEADER_TOKEN}"
            X-Trace: visible-value
    `,
    [...forms(GH_TOKEN), ...forms(HEADER_TOKEN), ...forms(COOKIE), ...forms(TENANT)],
  ],
  [
    "basic auth password",
    yaml`
      source:
        base_url: https://api.x.test
        auth: { type: basic, username: analyst, password: "\${env.PASSWORD}" }
      streams:
        a: { path: /a }
    `,
    forms(PASSWORD, "analyst"),
  ],
  [
    "api_key in the query",
    yaml`
      source:
        base_url: https://api.x.test
        auth: { type: api_key, name: api_key, value: "\${env.API_KEY}", in: query }
        params: { api_key: "\${env.API_KEY}" }
      streams:
        a: { path: /a, params: { q: 1 } }
    `,
    forms(API_KEY),
  ],
  [
    "literal Authorization header in the source",
    yaml`
      source:
        base_url: https://api.x.test
        headers:
          authorization: Token ${HEADER_TOKEN}
      streams:
        a: { path: /a }
    `,
    forms(HEADER_TOKEN),
  ],
  [
    "oauth2 client secret and refresh token",
    yaml`
      source:
        base_url: https://api.x.test
        auth:
          type: oauth2
          token_url: https://api.x.test/oauth/token
          grant_type: refresh_token
          client_id: my-client-id
          client_secret: "\${env.PASSWORD}"
          refresh_token: "\${env.GH_TOKEN}"
      streams:
        a: { path: /a }
    `,
    [...forms(PASSWORD, "my-client-id"), ...forms(GH_TOKEN)],
  ],
];

describe("secrets in plans", () => {
  it.each(PIPELINES)("%s: masked in the plan, its text and its JSON", (_name, text, secrets) => {
    const loaded = loadOk(project, text, env);
    const plan = compilePlan(loaded);
    // The compiled plan holds the real values (the run needs them)...
    expect(JSON.stringify(plan)).toContain(secrets[0]);
    // ...the plan as shown does not.
    const redacted = redactPlan(plan, loaded.redactor);
    const json = JSON.stringify(redacted);
    const pretty = JSON.stringify(redacted, null, 2);
    const shown = formatPlan(redacted);
    for (const out of [json, pretty, shown]) expectNoSecrets(out, secrets);
    expect(json).toContain('"***"');
    // The text shows headers and bearer/basic/api_key auth with their masks; oauth2 is described
    // without its credentials at all.
    if (redacted.auth.type !== "oauth2") expect(shown).toContain("***");
    else expect(shown).toContain("oauth2 refresh_token from https://api.x.test/oauth/token");
    // Redacting does not touch the plan it was given.
    expect(JSON.stringify(plan)).toContain(secrets[0]);
  });

  it("keeps what is not secret readable", () => {
    const loaded = loadOk(project, PIPELINES[0][1], env);
    const redacted = redactPlan(compilePlan(loaded), loaded.redactor);
    expect(redacted.streams[0].request.headers).toEqual({
      Cookie: "***",
      Authorization: "***",
      "X-Trace": "visible-value",
    });
    expect(redacted.auth).toEqual({ type: "bearer", token: "***", scheme: "Bearer" });
    expect(redacted.streams[0].request.url).toBe("https://api.x.test/tenants/***/issues");
    expect(formatPlan(redacted)).toContain("bearer (Authorization: Bearer ***)");
  });

  it("masks the api_key query parameter and the auth value", () => {
    const loaded = loadOk(project, PIPELINES[2][1], env);
    const redacted = redactPlan(compilePlan(loaded), loaded.redactor);
    expect(redacted.auth).toEqual({ type: "api_key", name: "api_key", value: "***", in: "query" });
    expect(redacted.streams[0].request.params).toEqual({ api_key: "***", q: "1" });
  });

  it("the loaded redactor masks secrets in any text (for logs and errors)", () => {
    const loaded = loadOk(project, PIPELINES[1][1], env);
    const line = `GET https://api.x.test/a?p=${encodeURIComponent(PASSWORD)} with Basic ${Buffer.from(`analyst:${PASSWORD}`).toString("base64")}`;
    const masked = loaded.redactor.text(line);
    expectNoSecrets(masked, forms(PASSWORD, "analyst"));
    expect(masked).toBe("GET https://api.x.test/a?p=*** with Basic ***");
  });
});

describe("secrets in config errors", () => {
  function errorText(text: string, envValues: Record<string, string>): string {
    try {
      loadPipelineText(project, "leaky", "pipelines/leaky.yaml", text, envValues);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return `${err.message}\n${JSON.stringify(err.issues)}\n${err.issues.map(formatIssue).join("\n")}`;
    }
    throw new Error("expected a config error");
  }

  it("an env value that fails a pattern is not quoted", () => {
    const text = yaml`
      source:
        base_url: \${env.BASE}
      streams:
        a: { path: /a }
    `;
    const out = errorText(text, { BASE: `not a url ${GH_TOKEN}` });
    expect(out).toContain("bad_url");
    expect(out).toContain("found `***`");
    expectNoSecrets(out, forms(GH_TOKEN));
  });

  it("an env value longer than the quoted part of a message is not quoted either", () => {
    const long = `tok_${"A1b2C3d4".repeat(10)}`;
    const text = yaml`
      source:
        base_url: https://x.test
        auth: { type: bearer, token: x, scheme: "\${env.SCHEME}" }
      streams:
        a: { path: /a }
    `;
    const out = errorText(text, { SCHEME: `${long} !` });
    const issues = issuesOf(project, text, { SCHEME: `${long} !` });
    expect(issues.map((i) => i.path)).toEqual(["source.auth.scheme"]);
    expectNoSecrets(out, [long, long.slice(0, 30)]);
  });

  it("a literal token on a line with an error is masked in the excerpt", () => {
    const text = yaml`
      source:
        base_url: https://x.test
        auth: { type: bearer, token: ${GH_TOKEN}, tokn: x }
      streams:
        a: { path: /a }
    `;
    const out = errorText(text, {});
    expect(out).toContain("unknown key `tokn`");
    expect(out).toContain("token: ***");
    expectNoSecrets(out, forms(GH_TOKEN));
  });

  it("a credential under a mistyped auth key is masked too (the error is about that very line)", () => {
    const text = yaml`
      source:
        base_url: https://x.test
        auth:
          type: bearer
          tokn: ${GH_TOKEN}
      streams:
        a: { path: /a }
    `;
    const out = errorText(text, {});
    expect(out).toContain("unknown key `tokn`");
    expect(out).toContain("tokn: ***");
    expectNoSecrets(out, forms(GH_TOKEN));
  });

  it("an env value quoted in a JSONPath error is masked", () => {
    const text = yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, records: "\${env.RECORDS}" }
    `;
    const out = errorText(text, { RECORDS: `$.data[${GH_TOKEN}` });
    expect(out).toContain("bad_jsonpath");
    expectNoSecrets(out, forms(GH_TOKEN));
  });
});
