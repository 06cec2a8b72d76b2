// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipelines in these tests use `${env.…}` templates
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, sourceBlock, type TempProject, tempProject } from "./helpers.js";

/**
 * APIs redirect: a renamed resource (GitHub answers 301 for a moved repository), a 307 to a
 * regional host, a 303 after a search POST. Redirects within the API's origin are followed with
 * its credentials; to an origin of `allowed_hosts` without them; to any other origin not at all.
 */
const TOKEN = "s3cr3t-redirect-token";
const ITEMS = [{ id: 1 }, { id: 2 }, { id: 3 }];

interface Seen {
  server: "api" | "other";
  method: string;
  path: string;
  auth: string | undefined;
}
let seen: Seen[] = [];
let api: Server;
let other: Server;
let apiUrl: string;
let otherUrl: string;

function listen(server: Server): Promise<string> {
  return new Promise((r) =>
    server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}
const note = (server: Seen["server"], req: IncomingMessage) =>
  seen.push({
    server,
    method: req.method ?? "",
    path: req.url ?? "",
    auth: req.headers.authorization,
  });

beforeAll(async () => {
  other = createServer((req, res) => {
    note("other", req);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: ITEMS }));
  });
  otherUrl = await listen(other);
  api = createServer((req, res) => {
    note("api", req);
    const path = (req.url ?? "/").split("?")[0];
    const redirect = (status: number, location: string) => res.writeHead(status, { location }).end();
    if (path === "/items") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: ITEMS }));
    } else if (path === "/moved") redirect(301, "/items");
    else if (path === "/hop1") redirect(302, "/hop2");
    else if (path === "/hop2") redirect(307, `${apiUrl}/items`);
    else if (path === "/search") redirect(303, "/items");
    else if (path === "/regional") redirect(307, `${otherUrl}/items`);
    else if (path === "/regional-search") redirect(307, `${otherUrl}/items`);
    else if (path === "/loop") redirect(302, "/loop");
    else if (path === "/nowhere") res.writeHead(301).end();
    else res.writeHead(404).end("{}");
  });
  apiUrl = await listen(api);
});
afterAll(async () => {
  await new Promise((r) => api.close(r));
  await new Promise((r) => other.close(r));
});

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-redirects-");
  seen = [];
});
afterEach(() => p.cleanup());

function pipeline(path: string, extra = "", stream = "") {
  p.pipeline(
    "r",
    `${sourceBlock(apiUrl, `auth: { type: bearer, token: "\${env.TOKEN}" }\n${extra}`)}
streams:
  items:
    path: ${path}
    records: $.data
${stream}`,
  );
  return runPipeline(p.dir, "r", [], { TOKEN });
}

describe("redirects", () => {
  it("within the API's origin: followed with the credentials, records written once", async () => {
    for (const path of ["/moved", "/hop1"]) {
      seen = [];
      const r = await pipeline(path);
      expect(r.code, r.stderr).toBe(0);
      expect(readJsonl(p.file("out/r/items.jsonl"))).toEqual(ITEMS);
      expect(seen.every((s) => s.server === "api" && s.auth === `Bearer ${TOKEN}`)).toBe(true);
      expect(seen.at(-1)?.path).toBe("/items");
      expect(r.stream("items").requests).toBe(seen.length);
      // A permanent redirect (301, 308) is a warning: the pipeline should use the new address.
      const warnings = r.stream("items").warnings.join("\n");
      if (path === "/moved")
        expect(warnings).toContain(
          `1 request was redirected permanently (${apiUrl}/moved → ${apiUrl}/items): the API moved`,
        );
      else expect(warnings).not.toContain("redirected");
    }
  });

  it("303 after a POST continues with a GET", async () => {
    const r = await pipeline("/search", "", "    method: POST\n    body: { query: x }\n");
    expect(r.code, r.stderr).toBe(0);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(["POST /search", "GET /items"]);
  });

  it("to another origin: an error naming it, and nothing is sent there", async () => {
    const r = await pipeline("/regional");
    expect(r.code).toBe(1);
    const error = r.stream("items").error!;
    expect(error.kind).toBe("cross_origin");
    expect(error.message).toContain(`redirects (307) to ${otherUrl}`);
    expect(error.message).toContain("allowed_hosts");
    expect(seen.filter((s) => s.server === "other")).toEqual([]);
  });

  it("to an origin of allowed_hosts: followed without the credentials", async () => {
    const r = await pipeline("/regional", `allowed_hosts: ["${otherUrl}"]`);
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(p.file("out/r/items.jsonl"))).toEqual(ITEMS);
    const there = seen.filter((s) => s.server === "other");
    expect(there).toHaveLength(1);
    expect(there[0].auth).toBeUndefined();
    expect(JSON.stringify(r.summary) + r.stderr).not.toContain(TOKEN);
  });

  it("a 307 to an allowed origin does not resend a body that holds a credential", async () => {
    const r = await pipeline(
      "/regional-search",
      `allowed_hosts: ["${otherUrl}"]`,
      '    method: POST\n    body: { api_key: "${env.TOKEN}", q: x }\n',
    );
    expect(r.code).toBe(1);
    expect(r.stream("items").error!.message).toContain("with its body, which holds a credential");
    expect(seen.filter((s) => s.server === "other")).toEqual([]);
    expect(JSON.stringify(r.summary) + r.stderr).not.toContain(TOKEN);
  });

  it("a redirect loop stops after 5 redirects; a 3xx without Location is an HTTP error", async () => {
    const loop = await pipeline("/loop");
    expect(loop.code).toBe(1);
    expect(loop.stream("items").error!.message).toContain("redirected more than 5 times");
    expect(seen).toHaveLength(6);

    seen = [];
    const nowhere = await pipeline("/nowhere");
    expect(nowhere.code).toBe(1);
    expect(nowhere.stream("items").error!.message).toContain("answered 301");
  });
});
