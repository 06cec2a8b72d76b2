import { createServer, type Server } from "node:http";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  closeServer,
  listenLocal,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "./helpers.js";

/**
 * A token endpoint that rate-limits (429 + Retry-After) is treated like the API itself: a short
 * wait is honoured, a wait longer than retry.max_delay fails at once, saying how long it asked.
 */
let server: Server;
let url: string;
let retryAfter = "1";
let tokenRequests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url?.startsWith("/oauth/token")) {
      tokenRequests++;
      if (tokenRequests === 1) return res.writeHead(429, { "retry-after": retryAfter }).end("{}");
      return res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ access_token: "tok", token_type: "Bearer", expires_in: 3600 }));
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: [{ id: 1 }] }));
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-token-wait-");
  tokenRequests = 0;
  p.pipeline(
    "p",
    `${sourceBlock(url, `auth: { type: oauth2, token_url: "${url}/oauth/token", grant_type: client_credentials, client_id: id, client_secret: "\${env.SECRET}" }`)}
streams:
  s: { path: /s, records: $.data }
`,
  );
});
afterEach(() => p.cleanup());

describe("the token endpoint's Retry-After", () => {
  it("within retry.max_delay: waited, then the token is fetched", async () => {
    retryAfter = "1";
    const t0 = Date.now();
    const r = await runPipeline(p.dir, "p", [], { SECRET: "shh" });
    expect(r.code, r.stderr).toBe(0);
    expect(tokenRequests).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
  });

  it("longer than retry.max_delay (2s here): fails at once, saying how long it asked", async () => {
    retryAfter = "3600";
    const t0 = Date.now();
    const r = await runPipeline(p.dir, "p", [], { SECRET: "shh" });
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(tokenRequests).toBe(1);
    const error = r.stream("s").error!;
    expect(error.kind).toBe("auth");
    expect(error.message).toContain(
      "answered 429; it asked to wait 1h00m (Retry-After: 3600), longer than retry.max_delay 2.00s",
    );
  });
});

/**
 * Token requests to the API's own origin count against its `rate_limit` (the API counts them
 * too); a token endpoint on another origin has its own limits and does not. With 1 request per
 * second, the first API request waits for the token request's slot: one wait in the summary.
 */
describe("token requests and the API's rate budget", () => {
  let other: Server;
  let otherUrl: string;
  beforeAll(async () => {
    other = createServer((_req, res) =>
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ access_token: "tok", token_type: "Bearer", expires_in: 3600 })),
    );
    otherUrl = await listenLocal(other);
  });
  afterAll(() => closeServer(other));

  const pipeline = (tokenOrigin: string) =>
    p.pipeline(
      "budget",
      `${sourceBlock(url, `auth: { type: oauth2, token_url: "${tokenOrigin}/oauth/token", grant_type: client_credentials, client_id: id, client_secret: "\${env.SECRET}" }\nrate_limit: { requests_per_second: 1 }`)}
streams:
  s: { path: /s, records: $.data }
`,
    );

  it("a token endpoint on the API's origin takes a slot: the API request waits for the next one", async () => {
    tokenRequests = 1; // no 429 from the endpoint this time
    pipeline(url);
    const r = await runPipeline(p.dir, "budget", [], { SECRET: "shh" });
    expect(r.code, r.stderr).toBe(0);
    expect(tokenRequests).toBe(2);
    expect(r.stream("s").rate_limit_waits.count).toBe(1);
  });

  it("a token endpoint on another origin is outside the budget: no wait", async () => {
    pipeline(otherUrl);
    const r = await runPipeline(p.dir, "budget", [], { SECRET: "shh" });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("s").rate_limit_waits.count).toBe(0);
  });
});
