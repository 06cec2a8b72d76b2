// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files with `${env.…}` templates
/**
 * A postgres pipeline through the CLI (plan, run), against the test cluster (test/pg/), with the
 * connection URL from the environment (`url: ${env.DATABASE_URL}`) and a password in it: the plan
 * and every message show the server without the password; driver errors are masked and exit 1;
 * the incremental state is committed into the database with the rows.
 */
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { runCli } from "../cli/helpers.js";
import { freshDatabase, query, tables } from "../pg/helpers.js";
import { runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import {
  changedSince,
  type Item,
  isoAt,
  makeItems,
  pageOf,
  type SyncServer,
  startSyncServer,
} from "../sync/sync-server.js";

const PASSWORD = "s3cret-Pa55word";
let items: Item[] = [];
let server: SyncServer;
let project: TempProject;
/** The database URL with pw_user's password, on a database pw_user owns. */
let dbUrl: string;
let adminDbUrl: string;

beforeAll(async () => {
  adminDbUrl = await freshDatabase("pgrun");
  const db = new URL(adminDbUrl).pathname.slice(1);
  await query(adminDbUrl, `ALTER DATABASE "${db}" OWNER TO pw_user`);
  await query(adminDbUrl, "ALTER SCHEMA public OWNER TO pw_user");
  const u = new URL(inject("pgPasswordUrl"));
  expect(decodeURIComponent(u.password)).toBe(PASSWORD);
  u.pathname = `/${db}`;
  dbUrl = u.toString();
  server = await startSyncServer((req) =>
    req.rawPath === "/items"
      ? { body: { items: pageOf(changedSince(items, req.query.since), req.query) } }
      : { status: 404, body: {} },
  );
});
afterAll(() => server.close());
beforeEach(() => {
  items = makeItems(12);
  server.requests.length = 0;
  project = tempProject("pipelines-pgrun-");
  project.pipeline(
    "p",
    [
      "source:",
      `  base_url: ${server.url}`,
      "  retry: { max_attempts: 1 }",
      "streams:",
      "  items:",
      "    path: /items",
      "    records: $.items",
      "    paginate: { type: page, size_param: per_page, size: 5 }",
      "    primary_key: id",
      '    incremental: { cursor_field: updated_at, param: since, initial: "2024-01-01T00:00:00Z" }',
      "output:",
      "  format: postgres",
      "  url: ${env.DATABASE_URL}",
      "  mode: merge",
      "",
    ].join("\n"),
  );
});
afterEach(() => project.cleanup());

const cli = (args: string[], env: Record<string, string>) => runCli(args, project.dir, env);

/** Every file the run left in the project (reports, state), read as text. */
function projectText(): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const f = path.join(dir, name);
      if (statSync(f).isDirectory()) walk(f);
      else out.push(readFileSync(f, "utf8"));
    }
  };
  walk(project.dir);
  return out.join("\n");
}

const noPassword = (...texts: string[]) => {
  for (const t of texts) {
    expect(t).not.toContain(PASSWORD);
    expect(t).not.toContain(encodeURIComponent(PASSWORD));
  }
};

describe("postgres pipeline through the CLI", () => {
  it("plan masks the URL; run writes the table and commits the state into the database", async () => {
    const env = { DATABASE_URL: dbUrl };
    const plan = await cli(["plan", "p"], env);
    expect(plan.code, plan.stderr).toBe(0);
    const shown = `postgres://pw_user@127.0.0.1:${new URL(dbUrl).port}${new URL(dbUrl).pathname}`;
    expect(plan.stdout).toContain(`postgres ${shown} table "public"."items"`);
    noPassword(plan.stdout, plan.stderr);

    const first = await runPipeline(project.dir, "p", [], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`items: wrote ${shown} table "public"."items"`);
    const rows = await query<Item>(dbUrl, "SELECT id, name FROM items ORDER BY id");
    expect(rows.map((r) => Number(r.id))).toEqual(items.map((r) => r.id));
    const state = await query<{ state: { cursor: string } }>(
      dbUrl,
      "SELECT state FROM _pipelines_state WHERE pipeline = 'p' AND stream = 'items'",
    );
    expect(state[0].state.cursor).toBe(isoAt(12));
    noPassword(first.stdout, first.stderr, projectText());

    // The state folder is lost: the database's state says where to start.
    rmSync(project.file(".pipelines/state"), { recursive: true, force: true });
    items.push({ id: 13, name: "item-13", value: 130, updated_at: isoAt(30) });
    server.requests.length = 0;
    const second = await runPipeline(project.dir, "p", [], env);
    expect(second.code, second.stderr).toBe(0);
    expect(new Set(server.requests.map((r) => r.query.since))).toEqual(new Set([isoAt(12)]));
    expect(second.stream("items").records.written).toBe(2);
    expect(await tables(dbUrl)).toEqual(["_pipelines_state", "items"]);
  });

  it("a wrong password: exit 1, the error names the server without any password, nothing written", async () => {
    const wrong = dbUrl.replace(encodeURIComponent(PASSWORD), "Wr0ng-Pa55word");
    const r = await runPipeline(project.dir, "p", [], { DATABASE_URL: wrong });
    expect(r.code).toBe(1);
    expect(r.stream("items").status).toBe("failed");
    expect(r.stderr).toMatch(
      /cannot connect to PostgreSQL at postgres:\/\/pw_user@127\.0\.0\.1:\d+\/.*password authentication failed/,
    );
    noPassword(r.stdout, r.stderr, projectText());
    expect(r.stdout + r.stderr + projectText()).not.toContain("Wr0ng-Pa55word");
  });

  it("a server that is not there: exit 1, masked", async () => {
    const refused = `postgres://pw_user:${encodeURIComponent(PASSWORD)}@127.0.0.1:1/db?sslmode=disable`;
    const r = await runPipeline(project.dir, "p", [], { DATABASE_URL: refused });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/connection refused/);
    noPassword(r.stdout, r.stderr, projectText());
  });
});
