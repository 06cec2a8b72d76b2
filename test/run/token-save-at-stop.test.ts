/**
 * Ctrl-C while the token endpoint is rotating the refresh token (a refresh after a 401): the
 * request is read to its end and the new refresh token saved (test/http/auth/oauth2.test.ts) —
 * and the run ends only after that save, so the state file holds it when the command returns
 * (the lock is released after it, and the next run starts from it).
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { closeServer, listenLocal, type TempProject, tempProject } from "./helpers.js";

let server: Server;
let url: string;
let onTokenAsked: () => void = () => {};

let tokenRequests = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (req.url === "/oauth/token") {
      req.resume();
      const n = ++tokenRequests;
      if (n === 1) return json(200, { access_token: "at-1", refresh_token: "rt-2", expires_in: 3600 });
      // The refresh after the 401: the endpoint rotates the refresh token, and answers slowly.
      onTokenAsked();
      setTimeout(
        () => json(200, { access_token: "at-2", refresh_token: "rt-rotated-3", expires_in: 3600 }),
        400,
      );
      return;
    }
    // The first token is refused (revoked on the server's side): a refresh.
    if (req.headers.authorization === "Bearer at-1") return json(401, { error: "token revoked" });
    json(200, { data: [{ id: 1 }] });
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-token-save-");
  tokenRequests = 0;
});
afterEach(() => p.cleanup());

it("the rotated refresh token is in the state file when an interrupted run returns", async () => {
  p.pipeline(
    "p",
    `source:
  base_url: ${url}
  auth:
    type: oauth2
    token_url: ${url}/oauth/token
    grant_type: refresh_token
    client_id: c
    client_secret: "\${env.SECRET}"
    refresh_token: "\${env.RT}"
streams:
  items: { path: /items, records: $.data }
`,
  );
  const controller = new AbortController();
  onTokenAsked = () => controller.abort(new Error("interrupted by SIGINT"));
  let stderr = "";
  const code = await run(["run", "p"], {
    stdout: { write: () => {} },
    stderr: { write: (t: string) => (stderr += t) },
    cwd: p.dir,
    env: { SECRET: "client-secret-1", RT: "rt-initial-1" },
    signal: controller.signal,
  });
  expect(code, stderr).not.toBe(0); // bin.ts makes it 130
  expect(stderr).toContain("INTERRUPTED");
  const state = JSON.parse(readFileSync(p.file(".pipelines/state/p.json"), "utf8"));
  expect(tokenRequests).toBe(2);
  expect(state.auth?.refresh_token).toBe("rt-rotated-3");
});
