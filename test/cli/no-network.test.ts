// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` template syntax
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeFiles, yaml } from "../config/helpers.js";
import { runCli } from "./helpers.js";

/** validate, plan and list never send a request: a local server counts what reaches it. */
describe("no request is sent by list, validate and plan", () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];
  let dir: string;
  let cleanup: () => void;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"access_token":"t","expires_in":3600,"data":[]}');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    ({ dir, cleanup } = tempDir("pipelines-nonet-"));
    writeFiles(dir, {
      "pipelines/valid.yaml": yaml`
        source:
          base_url: ${base}/api
          allowed_hosts: ["${base}"]
          auth:
            type: oauth2
            token_url: ${base}/oauth/token
            grant_type: client_credentials
            client_id: id
            client_secret: "\${env.CLIENT_SECRET}"
        streams:
          things:
            path: /things
            paginate: { type: next_url, next: $.next }
            schema: { type: object, properties: { id: { type: integer } } }
          details:
            parent: things
            path: ${base}/api/things/\${parent.id}
      `,
      "pipelines/invalid.yaml": yaml`
        source:
          base_url: ${base}/api
          timeout: fast
        streams:
          things:
            path: /things
            schema: { $ref: "${base}/remote.schema.json" }
      `,
      "pipelines/missing-env.yaml": yaml`
        source:
          base_url: ${base}/api
          auth: { type: bearer, token: "\${env.NOT_SET_ANYWHERE}" }
        streams:
          things: { path: /things }
      `,
    });
  });

  afterAll(async () => {
    cleanup();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("sends nothing for valid and invalid files", async () => {
    const env = { CLIENT_SECRET: "s3cret" };
    const results = [
      await runCli(["list"], dir, env),
      await runCli(["validate"], dir, env),
      await runCli(["validate", "valid"], dir, env),
      await runCli(["validate", "invalid", "missing-env"], dir, env),
      await runCli(["plan", "valid"], dir, env),
      await runCli(["plan", "valid", "--json"], dir, env),
      await runCli(["plan", "invalid"], dir, env),
      await runCli(["plan", "missing-env"], dir, env),
    ];
    // The commands did run: the valid file passes, the invalid ones fail as config errors; plan
    // needs no env value (unset ones show as <unset>).
    expect(results.map((r) => r.code)).toEqual([0, 2, 0, 2, 0, 0, 2, 0]);
    expect(results[1].stdout).toContain("ok   valid (2 streams: things, details)");
    expect(results[1].stderr).toContain("error[bad_duration]");
    expect(results[1].stderr).toContain("error[schema_invalid]");
    expect(results[1].stderr).toContain("error[missing_env]");
    expect(results[5].stdout).toContain(`"tokenUrl": "${base}/oauth/token"`);
    expect(seen).toEqual([]);

    // The control: the server does count a request that is sent.
    await fetch(`${base}/control`);
    expect(seen).toEqual(["GET /control"]);
  });
});
