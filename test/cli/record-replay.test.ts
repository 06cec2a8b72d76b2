// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${env.…}` templates
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  closeServer,
  listenLocal,
  listFiles,
  readJsonl,
  type TempProject,
  tempProject,
} from "../run/helpers.js";
import { runCli } from "./helpers.js";

/**
 * `pipelines run --record` then `pipelines test`: a loopback API that needs credentials, a
 * recording with none of them, and replays with the server stopped and no env set.
 */
const SECRETS = {
  API_KEY: "key-9f8e7d6c5b4a",
  HDR_SECRET: "hdr/secret+value 42",
  CLIENT_ID: "client-abc",
  CLIENT_SECRET: "csecret-1234567890",
  BASIC_USER: "bob",
  BASIC_PASS: "pa:ss-word-0987",
};
const ACCESS_TOKEN = "access-tok-5566778899";
const BASIC_B64 = Buffer.from(`${SECRETS.BASIC_USER}:${SECRETS.BASIC_PASS}`).toString("base64");
const CLIENT_B64 = Buffer.from(`${SECRETS.CLIENT_ID}:${SECRETS.CLIENT_SECRET}`).toString("base64");

const ITEMS = [
  { id: 1, name: "a", updated_at: "2024-01-01T00:00:00Z" },
  { id: 2, name: "b", updated_at: "2024-01-02T00:00:00Z" },
  { id: 3, name: "c", updated_at: "2024-01-03T00:00:00Z" },
];

let server: Server;
let base: string;
let project: TempProject;
let requests: string[];

function send(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
  res.writeHead(status, { "content-type": type });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
}

function handle(req: IncomingMessage, res: ServerResponse, body: string) {
  const url = new URL(req.url ?? "/", "http://x");
  requests.push(`${req.method} ${url.pathname}${url.search}`);
  const auth = req.headers.authorization ?? "";
  if (url.pathname === "/token") {
    // OAuth2 client credentials with HTTP Basic client auth.
    if (auth !== `Basic ${CLIENT_B64}`) return send(res, 401, { error: "invalid_client" });
    return send(res, 200, { access_token: ACCESS_TOKEN, token_type: "bearer", expires_in: 3600 });
  }
  if (url.pathname === "/items") {
    if (url.searchParams.get("api_key") !== SECRETS.API_KEY || req.headers["x-secret"] !== SECRETS.HDR_SECRET)
      return send(res, 401, { error: "bad key" });
    const since = url.searchParams.get("since") ?? "";
    const page = Number(url.searchParams.get("page") ?? 1);
    const rows = ITEMS.filter((r) => r.updated_at > since);
    const slice = rows.slice((page - 1) * 2, page * 2);
    // The API echoes the key in its next link: it must be named in the recording too.
    const next = page * 2 < rows.length ? `${base}/items?page=${page + 1}&api_key=${SECRETS.API_KEY}` : null;
    return send(res, 200, { data: slice, next, echo: SECRETS.API_KEY });
  }
  if (url.pathname === "/events.jsonl") {
    if (auth !== `Basic ${BASIC_B64}`) return send(res, 401, { error: "basic needed" });
    return send(res, 200, '{"id":1,"kind":"x"}\n{"id":2,"kind":"y"}\n', "application/x-ndjson");
  }
  if (url.pathname === "/things") {
    if (auth !== `Bearer ${ACCESS_TOKEN}`) return send(res, 401, { error: "token" });
    return send(res, 200, { things: [{ id: "t1" }, { id: "t2" }], body });
  }
  if (url.pathname === "/days") {
    if (auth !== `Basic ${BASIC_B64}`) return send(res, 401, { error: "basic needed" });
    const from = url.searchParams.get("from");
    return send(res, 200, { rows: [{ day: from, to: url.searchParams.get("to") }] });
  }
  send(res, 404, {});
}

beforeEach(async () => {
  requests = [];
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => handle(req, res, body));
  });
  base = await listenLocal(server);
  project = tempProject("pipelines-record-");
});
afterEach(async () => {
  vi.useRealTimers();
  if (server.listening) await closeServer(server);
  project.cleanup();
});

const ENV = () => ({ ...SECRETS, API_BASE: base });

const ITEMS_PIPELINE = `
source:
  base_url: \${env.API_BASE}
  auth: { type: api_key, name: api_key, value: "\${env.API_KEY}", in: query }
  headers: { X-Secret: "\${env.HDR_SECRET}" }
  retry: { max_attempts: 2, initial_delay: 10ms, max_delay: 1s }
streams:
  items:
    path: /items
    records: $.data
    paginate: { type: next_url, next: $.next }
    primary_key: id
    incremental: { cursor_field: updated_at, param: since, initial: "2023-12-31T00:00:00Z" }
    fields:
      id: $.id
      name: $.name
      updated_at: $.updated_at
      _run_id: { value: "\${run.id}" }
      fetched_at: { value: "\${run.started_at}" }
output: { mode: merge }
`;

const BASIC_PIPELINE = `
source:
  base_url: \${env.API_BASE}
  auth: { type: basic, username: "\${env.BASIC_USER}", password: "\${env.BASIC_PASS}" }
streams:
  events:
    path: /events.jsonl
    response: { format: jsonl }
    primary_key: id
  days:
    path: /days
    records: $.rows
    params: { from: "\${window.start}", to: "\${window.end}" }
    windows: { step: 1d, start: 3d, end: now, format: date }
`;

const OAUTH_PIPELINE = `
source:
  base_url: \${env.API_BASE}
  auth:
    type: oauth2
    token_url: \${env.API_BASE}/token
    grant_type: client_credentials
    client_id: "\${env.CLIENT_ID}"
    client_secret: "\${env.CLIENT_SECRET}"
    client_auth: basic
streams:
  things:
    path: /things
    method: POST
    body: { want: all }
    records: $.things
`;

/** Every secret value, as written and as it may be encoded in a URL, a header or a body. */
function secretForms(): string[] {
  const values = [...Object.values(SECRETS).filter((v) => v.length > 3), ACCESS_TOKEN, BASIC_B64, CLIENT_B64];
  return values.flatMap((v) => [v, encodeURIComponent(v), new URLSearchParams({ x: v }).toString().slice(2)]);
}

function recordedFiles(): string[] {
  return listFiles(project.file("tests")).map((f) => path.join(project.file("tests"), f));
}

describe("pipelines run --record and pipelines test", () => {
  it("records with no secret in the files, then replays with the server stopped and no env", async () => {
    project.pipeline("items", ITEMS_PIPELINE);
    project.pipeline("basic", BASIC_PIPELINE);
    project.pipeline("oauth", OAUTH_PIPELINE);
    for (const name of ["items", "basic", "oauth"]) {
      const r = await runCli(["run", name, "--record"], project.dir, ENV());
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`tests/${name}/recording.json`);
      expect(r.stderr).toMatch(/snapshots written/);
    }
    const files = recordedFiles();
    expect(files.map((f) => path.relative(project.dir, f))).toEqual(
      expect.arrayContaining([
        "tests/items/recording.json",
        "tests/items/snapshots/items.jsonl",
        "tests/basic/snapshots/events.jsonl",
        "tests/basic/snapshots/days.jsonl",
        "tests/oauth/snapshots/things.jsonl",
      ]),
    );
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      for (const secret of secretForms()) expect(text, `${secret} in ${f}`).not.toContain(secret);
    }
    const items = readFileSync(project.file("tests/items/recording.json"), "utf8");
    expect(items).toContain("api_key=${env.API_KEY}");
    expect(items).toContain('"${env.HDR_SECRET}"');
    expect(readFileSync(project.file("tests/oauth/recording.json"), "utf8")).toContain(
      "${oauth.access_token}",
    );
    expect(readFileSync(project.file("tests/basic/recording.json"), "utf8")).toContain(
      "Basic base64(${env.BASIC_USER}:${env.BASIC_PASS})",
    );

    await closeServer(server);
    const before = requests.length;
    const t = await runCli(["test"], project.dir, {});
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/test items \(tests\/items\): ok, 3 records as in the snapshots/);
    expect(t.stderr).toMatch(/test oauth .*: ok/);
    expect(t.stderr).toMatch(/3 tests passed/);
    expect(requests.length).toBe(before);
  });

  it("a changed response fails the test record by record; --update takes it; a new request names itself", async () => {
    project.pipeline("items", ITEMS_PIPELINE);
    expect((await runCli(["run", "items", "--record"], project.dir, ENV())).code).toBe(0);
    await closeServer(server);
    const file = project.file("tests/items/recording.json");
    const rec = JSON.parse(readFileSync(file, "utf8"));
    rec.exchanges[0].response.body = rec.exchanges[0].response.body.replace('"name":"b"', '"name":"B"');
    writeFileSync(file, JSON.stringify(rec, null, 2));

    const failed = await runCli(["test", "items"], project.dir, {});
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("FAILED: the outputs differ from the snapshots");
    expect(failed.stderr).toContain('~ record id=2: name: "b" → "B"');

    const updated = await runCli(["test", "items", "--update"], project.dir, {});
    expect(updated.code, updated.stderr).toBe(0);
    expect(readFileSync(project.file("tests/items/snapshots/items.jsonl"), "utf8")).toContain('"name":"B"');
    expect((await runCli(["test", "items"], project.dir, {})).code).toBe(0);

    // The pipeline now sends another parameter: that request is not in the recording.
    project.pipeline(
      "items",
      ITEMS_PIPELINE.replace("    records: $.data", "    params: { size: 2 }\n    records: $.data"),
    );
    const unmatched = await runCli(["test", "items"], project.dir, {});
    expect(unmatched.code).toBe(1);
    expect(unmatched.stderr).toContain("not in the recording: GET http://127.0.0.1:");
    expect(unmatched.stderr).toContain("/items?size=2&since=");
    expect(unmatched.stderr).not.toContain(SECRETS.API_KEY);
  });

  it("an incremental and a windowed `end: now` pipeline replay identically on a later day, from the recorded state", async () => {
    project.pipeline("items", ITEMS_PIPELINE);
    project.pipeline("basic", BASIC_PIPELINE);
    // A first run saves a cursor; the recorded run starts from it (only records after it).
    expect((await runCli(["run", "items"], project.dir, ENV())).code).toBe(0);
    ITEMS.push({ id: 4, name: "d", updated_at: "2024-01-04T00:00:00Z" });
    try {
      const r = await runCli(["run", "items", "--record"], project.dir, ENV());
      expect(r.code, r.stderr).toBe(0);
      expect((await runCli(["run", "basic", "--record"], project.dir, ENV())).code).toBe(0);
    } finally {
      ITEMS.pop();
    }
    const rec = JSON.parse(readFileSync(project.file("tests/items/recording.json"), "utf8"));
    expect(rec.state.streams.items.cursor).toBe("2024-01-03T00:00:00Z");
    const snap = readJsonl(project.file("tests/items/snapshots/items.jsonl")) as Record<string, string>[];
    expect(snap.map((x) => x.id)).toEqual([4]);
    expect(snap[0]._run_id).toBe(rec.run_id);
    expect(snap[0].fetched_at).toBe(rec.started_at);

    // Later: the project's state moved on, and the clock is three days ahead.
    const stateFile = project.file(".pipelines/state/items.json");
    const state = JSON.parse(readFileSync(stateFile, "utf8"));
    state.streams.items.cursor = "2030-01-01T00:00:00Z";
    writeFileSync(stateFile, JSON.stringify(state));
    const stateText = readFileSync(stateFile, "utf8");
    const outFile = project.file("out/items/items.jsonl");
    const outText = existsSync(outFile) ? readFileSync(outFile, "utf8") : null;
    await closeServer(server);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 3 * 86_400_000);
    const t = await runCli(["test", "items", "basic"], project.dir, {});
    vi.useRealTimers();
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/test basic .*: ok, \d+ records as in the snapshots/);
    // Nothing of the project was touched.
    expect(readFileSync(stateFile, "utf8")).toBe(stateText);
    expect(existsSync(outFile) ? readFileSync(outFile, "utf8") : null).toBe(outText);
  });
});
