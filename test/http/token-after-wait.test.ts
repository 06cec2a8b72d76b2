import { createServer } from "node:http";
import { expect, it } from "vitest";
import { closeServer, listenLocal } from "../run/helpers.js";
import { session } from "./budget-session.js";

/**
 * Credentials go on a request before it waits for its budget slot (a token refresh needs a slot
 * of its own). A token that ages out during that wait must not go out: the request gives up its
 * slot, the token is refreshed, and the request takes a new slot (src/http/attempt.ts). Tokens
 * here live 3 s (refreshed 0.5 s early); 4 requests at 1 a second wait up to 4 s for a slot.
 */
it("a request whose token aged out while it waited for its rate-limit slot renews it first: no 401", async () => {
  const issued = new Map<string, number>();
  const seen: string[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    if (req.url === "/token") {
      const token = `t${++n}`;
      issued.set(token, Date.now());
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ access_token: token, expires_in: 3 }));
      return;
    }
    const token = (req.headers.authorization ?? "").replace("Bearer ", "");
    const at = issued.get(token);
    const valid = at !== undefined && Date.now() - at < 3000;
    seen.push(`${req.url} ${token} ${valid ? "valid" : "expired"}`);
    if (!valid) res.writeHead(401).end("expired");
    else res.writeHead(200, { "content-type": "application/json" }).end('{"data":[]}');
  });
  const url = await listenLocal(server);
  const s = session(
    url,
    `concurrency: 4\nrate_limit: { requests_per_second: 1 }\nauth:\n  type: oauth2\n  token_url: ${url}/token\n  grant_type: client_credentials\n  client_id: a\n  client_secret: b\n  refresh_before: 500ms`,
  );
  try {
    const results = await Promise.all([1, 2, 3, 4].map((i) => s.get(i)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(
      seen.filter((x) => x.endsWith("expired")),
      seen.join("\n"),
    ).toEqual([]);
    expect(seen).toHaveLength(4);
    expect(n).toBeGreaterThan(1); // a token was renewed for the requests that waited
  } finally {
    await s.close();
    await closeServer(server);
  }
}, 30_000);
