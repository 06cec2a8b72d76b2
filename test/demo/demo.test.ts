import diagnosticsChannel from "node:diagnostics_channel";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import type { Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runCli } from "../cli/helpers.js";
import { listFiles } from "../run/helpers.js";
import { htmlText, readCsv, readJsonl, readSqlite } from "./read-outputs.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

// What the demo API serves (src/demo/demo-api.ts), and which records break their schema:
//   github  180 issues; the title is null when the number is a multiple of 47 (47, 94, 141)
//   slack   150 messages, all valid
//   shop    420 orders; the total is a string when the order number is a multiple of 53 (53 … 371)
//   pokeapi 151 Pokémon, all valid
//   crm     95 contacts; the e-mail is not one when k % 31 == 30 (k = 30, 61, 92)
const multiples = (n: number, of: number) => Math.floor(n / of);
const EXPECTED = {
  github: { seen: 180, invalid: multiples(180, 47) },
  slack: { seen: 150, invalid: 0 },
  shop: { seen: 420, invalid: multiples(420, 53) },
  pokeapi: { seen: 151, invalid: 0 },
  crm: { seen: 95, invalid: 3 },
} as const;
type Demo = keyof typeof EXPECTED;
const PIPELINES = Object.keys(EXPECTED) as Demo[];
// Format 1.1 streams: analytics (60 days of 3 events, in 9 windows of 7 days, the last one of 4)
// and releases (a `values` list of 3 repositories with 5, 3 and 0 releases).
const WINDOWED = { pipeline: "analytics", events: 60 * 3, windows: 9 } as const;
const LISTED = { pipeline: "releases", releases: 5 + 3 + 0, repos: 3 } as const;
const ALL = [...PIPELINES, WINDOWED.pipeline, LISTED.pipeline];

interface WireRequest {
  origin: string;
  path: string;
  status?: number;
}

let root: string;
let demoDir: string;
let result: CliResult;
/** The repository's demo folder (names, sizes, times) before the run: a --dir run must not touch it. */
let repoDemoBefore: string;
const demoFolderState = () =>
  listFiles(path.join(REPO, "demo"))
    .map((f) => {
      const st = statSync(path.join(REPO, "demo", f));
      return `${f} ${st.size} ${st.mtimeMs}`;
    })
    .join("\n");
const wire: WireRequest[] = [];
const socketPeers: (string | undefined)[] = [];

// Every HTTP request undici makes in this process, and the peer of every TCP socket opened.
const requests = new WeakMap<object, WireRequest>();
const onRequest = (message: unknown) => {
  const { request } = message as { request: { origin: unknown; path: string } };
  const entry: WireRequest = { origin: String(request.origin), path: request.path };
  wire.push(entry);
  requests.set(request, entry);
};
const onHeaders = (message: unknown) => {
  const { request, response } = message as { request: object; response: { statusCode: number } };
  const entry = requests.get(request);
  if (entry) entry.status = response.statusCode;
};
const onSocket = (message: unknown) => {
  const { socket } = message as { socket: Socket };
  const i = socketPeers.push(undefined) - 1;
  socket.once("connect", () => {
    socketPeers[i] = socket.remoteAddress;
  });
};

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), "pipelines-demo-"));
  // A space in the folder: the commands the demo prints quote its paths.
  demoDir = path.join(root, "demo copy");
  // Only what the repository ships: its demo/ may also hold outputs of earlier runs.
  cpSync(path.join(REPO, "demo", "pipelines"), path.join(demoDir, "pipelines"), { recursive: true });
  cpSync(path.join(REPO, "demo", "schemas"), path.join(demoDir, "schemas"), { recursive: true });
  diagnosticsChannel.subscribe("undici:request:create", onRequest);
  diagnosticsChannel.subscribe("undici:request:headers", onHeaders);
  diagnosticsChannel.subscribe("net.client.socket", onSocket);
  repoDemoBefore = demoFolderState();
  try {
    // Relative to the working directory, like `pipelines demo --dir "demo copy"` typed in `root`.
    result = await runCli(["demo", "--dir", "demo copy"], root, {});
  } finally {
    diagnosticsChannel.unsubscribe("undici:request:create", onRequest);
    diagnosticsChannel.unsubscribe("undici:request:headers", onHeaders);
    diagnosticsChannel.unsubscribe("net.client.socket", onSocket);
  }
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const out = (...p: string[]) => path.join(demoDir, "out", ...p);
const report = (name: string) =>
  JSON.parse(readFileSync(path.join(demoDir, "reports", name, "latest.json"), "utf8")) as {
    pipeline: string;
    status: string;
    streams: {
      name: string;
      status: string;
      retries: Record<string, number>;
      records: { seen: number; valid: number; invalid: number; written: number };
      errors: { field: string; keyword: string; count: number }[];
      units?: { kind: string; total: number; done: number; committed: number } | null;
      partitions?: { total: number; done: number } | null;
    }[];
  };

describe("pipelines demo", () => {
  it("exits 0 after running every demo pipeline", () => {
    expect(result.stderr).toContain("Demo done");
    expect(result.code).toBe(0);
    for (const name of ALL) expect(result.stderr).toContain(`${name}: ok`);
  });

  it("writes the github issues (jsonl) without the invalid ones, which are quarantined", () => {
    const issues = readJsonl(out("github", "issues.jsonl"));
    expect(issues).toHaveLength(EXPECTED.github.seen - EXPECTED.github.invalid);
    const numbers = issues.map((i) => i.number as number);
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(numbers.filter((n) => n % 47 === 0)).toEqual([]);
    expect(issues.every((i) => typeof i.title === "string")).toBe(true);
    const quarantined = readJsonl(out("github", "issues.invalid.jsonl"));
    expect(quarantined.map((q) => (q.record as { number: number }).number)).toEqual([47, 94, 141]);
  });

  it("writes every slack message (duckdb), the empty page with a cursor notwithstanding; prints a query command", async () => {
    const { DuckDBInstance } = await import("@duckdb/node-api");
    const inst = await DuckDBInstance.create(out("slack.duckdb"), { access_mode: "READ_ONLY" });
    try {
      const conn = await inst.connect();
      const r = await conn.runAndReadAll("SELECT count(*) AS n, count(DISTINCT ts) AS d FROM messages");
      conn.closeSync();
      expect(r.getRowObjectsJS()).toEqual([
        { n: BigInt(EXPECTED.slack.seen), d: BigInt(EXPECTED.slack.seen) },
      ]);
    } finally {
      inst.closeSync();
    }
    expect(result.stderr).toMatch(
      /query {5}duckdb 'demo copy\/out\/slack\.duckdb' -c "SELECT user, count\(\*\) AS messages FROM messages/,
    );
    expect(result.stderr).toContain("try       pipelines plan shop --project 'demo copy'   (no network");
  });

  it("writes the shop orders (sqlite) without the invalid ones", () => {
    const orders = readSqlite(out("shop.db"), "orders");
    expect(orders).toHaveLength(EXPECTED.shop.seen - EXPECTED.shop.invalid);
    expect(orders.every((o) => typeof o.total === "number")).toBe(true);
    const ids = new Set(orders.map((o) => o.order_id));
    expect(ids.has("ORD-00053")).toBe(false);
    expect(ids.has("ORD-00052")).toBe(true);
    expect(readJsonl(out("shop.orders.invalid.jsonl"))).toHaveLength(EXPECTED.shop.invalid);
  });

  it("writes every pokemon (csv)", () => {
    const rows = readCsv(out("pokeapi", "pokemon.csv"));
    expect(rows).toHaveLength(EXPECTED.pokeapi.seen);
    expect(rows[0].name).toBe("bulbasaur");
    expect(new Set(rows.map((r) => r.name)).size).toBe(EXPECTED.pokeapi.seen);
  });

  it("writes the crm contacts (jsonl, OAuth2) without the invalid ones", () => {
    const contacts = readJsonl(out("crm", "contacts.jsonl"));
    expect(contacts).toHaveLength(EXPECTED.crm.seen - EXPECTED.crm.invalid);
    expect(contacts.every((c) => String(c.email).includes("@"))).toBe(true);
    expect(readJsonl(out("crm", "contacts.invalid.jsonl")).map((q) => q.record_id)).toEqual([
      "c_31",
      "c_62",
      "c_93",
    ]);
  });

  it("crm: meets the CRM's quota (429, Retry-After: 1) and a token that expires mid-run; the summary shows both", () => {
    const crm = wire.filter((w) => w.path.startsWith("/crm/contacts"));
    expect(crm.filter((w) => w.status === 429)).toHaveLength(1);
    expect(crm.filter((w) => w.status === 401).length).toBeGreaterThanOrEqual(1);
    const [contacts] = report("crm").streams;
    expect(contacts.retries.rate_limited).toBe(1);
    expect(contacts.retries.token_refresh).toBeGreaterThanOrEqual(1);
    // The end-of-run summary of the crm pipeline: the retries column and the wait under the table.
    const summary = result.stderr.slice(result.stderr.indexOf("\ncrm: ok"));
    const row = summary.split("\n").find((l) => /^ {2}contacts +ok /.test(l));
    expect(row).toContain("rate_limited×1");
    expect(row).toMatch(/token_refresh×\d/);
    // One pause of 1 s holds every request in flight: one wait of about 1 s, not one per request
    // (nor 2 s summed in a 1 s run).
    expect(summary).toMatch(/contacts: waited 1\.0\ds for rate limits \(1 time\)/);
  });

  it.each(PIPELINES)("%s: writes an HTML and a JSON report with the record counts", (name) => {
    expect(existsSync(path.join(demoDir, "reports", name, "latest.html"))).toBe(true);
    const r = report(name);
    expect(r.pipeline).toBe(name);
    expect(r.status).toBe("ok");
    const [stream] = r.streams;
    expect(stream.status).toBe("ok");
    const { seen, invalid } = EXPECTED[name];
    expect(stream.records).toMatchObject({ seen, invalid, valid: seen - invalid, written: seen - invalid });
  });

  it.each([
    ["github", "/title", "type"],
    ["shop", "/total", "type"],
    ["crm", "/email", "format"],
  ] as const)("%s: the report shows the invalid records by reason (%s %s)", (name, field, keyword) => {
    const [stream] = report(name).streams;
    expect(stream.errors).toMatchObject([{ field, keyword, count: EXPECTED[name].invalid }]);
    const html = htmlText(readFileSync(path.join(demoDir, "reports", name, "latest.html"), "utf8"));
    expect(html).toContain(`Invalid records by reason: ${field} ${keyword} ${EXPECTED[name].invalid}`);
  });

  it("the reports show the retries of the 503s the demo API injected", () => {
    const wire503 = wire.filter((w) => w.status === 503).length;
    // The demo API fails about 4% of distinct requests once (a seeded sequence): some of the ~35.
    expect(wire503).toBeGreaterThan(0);
    let reported = 0;
    for (const name of ALL) {
      const html = htmlText(readFileSync(path.join(demoDir, "reports", name, "latest.html"), "utf8"));
      for (const stream of report(name).streams) {
        const n = stream.retries.status_503 ?? 0;
        reported += n;
        if (n > 0) expect(html).toContain(`HTTP 503 ×${n}`);
      }
    }
    expect(reported).toBe(wire503);
  });

  it("analytics: a windowed export (7-day windows, 4 at a time), every event once, in order", () => {
    const events = readJsonl(out(WINDOWED.pipeline, "events.jsonl"));
    expect(events).toHaveLength(WINDOWED.events);
    const ids = events.map((e) => e.id as string);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]).toBe("2024-01-01-0");
    expect(ids.at(-1)).toBe("2024-02-29-2");
    expect([...ids].sort()).toEqual(ids);
    // No window was wider than the API accepts.
    expect(wire.filter((w) => w.path.startsWith("/analytics") && w.status === 400)).toEqual([]);
    const [stream] = report(WINDOWED.pipeline).streams;
    const n = WINDOWED.windows;
    expect(stream.units).toMatchObject({ kind: "windows", total: n, done: n, committed: n });
    const html = htmlText(
      readFileSync(path.join(demoDir, "reports", WINDOWED.pipeline, "latest.html"), "utf8"),
    );
    expect(html).toContain(`Windows ${n} of ${n} done, ${n} committed`);
  });

  it("releases: one stream looped over a listed set of repositories (values, write: false)", () => {
    const releases = readJsonl(out(LISTED.pipeline, "releases.jsonl"));
    expect(releases).toHaveLength(LISTED.releases);
    expect(releases.map((r) => r.repo)).toEqual([...Array(5).fill("widgets"), ...Array(3).fill("gadgets")]);
    expect(existsSync(out(LISTED.pipeline, "repos.jsonl"))).toBe(false);
    const [repos, children] = report(LISTED.pipeline).streams;
    expect(repos.records).toMatchObject({ seen: LISTED.repos, valid: LISTED.repos, written: 0 });
    expect(children.partitions).toMatchObject({ total: LISTED.repos, done: LISTED.repos });
    expect(children.records.written).toBe(LISTED.releases);
  });

  it("sends no request beyond loopback", () => {
    expect(wire.length).toBeGreaterThan(30);
    const origins = new Set(wire.map((w) => new URL(w.origin).hostname));
    expect([...origins]).toEqual(["127.0.0.1"]);
    expect(socketPeers.length).toBeGreaterThan(0);
    expect(new Set(socketPeers)).toEqual(new Set(["127.0.0.1"]));
  });

  it("leaves the repository's demo folder alone", () => {
    // Every output, report and state file went to --dir: the repository's demo folder is unchanged.
    expect(demoFolderState()).toBe(repoDemoBefore);
    expect(existsSync(path.join(demoDir, ".pipelines", "state"))).toBe(true);
    expect(result.stderr).toContain(path.join("demo copy", "reports"));
    expect(result.stderr).not.toContain(path.join(REPO, "demo", "out"));
  });
});

describe("the first run, as the README tells it", () => {
  const readme = readFileSync(path.join(REPO, "README.md"), "utf8");
  const pkg = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as {
    bin: Record<string, string>;
    scripts: Record<string, string>;
  };

  it("the first shell block is exactly `npm ci` and `npm run demo`", () => {
    const block = /^```(?:sh|bash|shell|console)\n([\s\S]*?)^```/m.exec(readme);
    expect(block).not.toBeNull();
    const commands = block![1]
      .split("\n")
      .map((l) => l.replace(/(^|\s)#.*$/, "").trim())
      .filter(Boolean);
    expect(commands).toEqual(["npm ci", "npm run demo"]);
  });

  it("no other code block comes before it", () => {
    const first = /^```(\w*)/m.exec(readme);
    expect(["sh", "bash", "shell", "console"]).toContain(first?.[1]);
  });

  it("`npm run demo` runs the built CLI's demo command, which `npm ci` builds", () => {
    expect(pkg.bin.pipelines).toBe("dist/cli/bin.js");
    expect(pkg.scripts.demo).toMatch(/^node (\.\/)?dist\/cli\/bin\.js demo$/);
    // npm ci runs `prepare`, which must build dist/.
    expect(pkg.scripts.prepare).toMatch(/\bnpm run build\b/);
    expect(pkg.scripts.build).toContain("tsc -p tsconfig.build.json");
    const tsconfig = readFileSync(path.join(REPO, "tsconfig.build.json"), "utf8");
    expect(tsconfig).toMatch(/"outDir"\s*:\s*"(\.\/)?dist"/);
    expect(existsSync(path.join(REPO, "src", "cli", "bin.ts"))).toBe(true);
  });
});
