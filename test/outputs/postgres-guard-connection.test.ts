// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files with `${env.…}` templates
/**
 * The commit guard looks at a PostgreSQL table on a second connection. When that connection is
 * refused (here: a role allowed one connection, which the writer holds), the stream fails — it
 * must never take the table it could not look at for an empty one: an empty `replace` then
 * emptied a table of 10 rows, exit 0.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, query } from "../pg/helpers.js";
import { runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "../sync/sync-server.js";

let server: SyncServer;
let project: TempProject;
let url: string;
let body: unknown[] = [];

beforeAll(async () => {
  const admin = await freshDatabase("pg_guard_conn");
  const role = `one_conn_${Math.random().toString(36).slice(2, 8)}`;
  const db = new URL(admin).pathname.slice(1);
  await query(admin, `CREATE ROLE ${role} LOGIN CONNECTION LIMIT 1`);
  await query(admin, `ALTER DATABASE "${db}" OWNER TO ${role}`);
  await query(admin, `ALTER SCHEMA public OWNER TO ${role}`);
  const u = new URL(admin);
  u.username = role;
  u.password = "";
  url = u.toString();
  server = await startSyncServer(() => ({ body }));
  project = tempProject("pipelines-pg-guard-");
});
afterAll(() => {
  server.close();
  project.cleanup();
});

describe("postgres: the commit guard's connection refused", () => {
  it("an empty replace fails (exit 1, the reason said) and leaves the table's rows", async () => {
    project.pipeline(
      "g",
      `source: { base_url: ${server.url}, retry: { max_attempts: 1 } }\nstreams:\n  rows: { path: /rows }\noutput: { format: postgres, url: "\${env.PGURL}", mode: replace }\n`,
    );
    body = Array.from({ length: 10 }, (_, i) => ({ id: i }));
    const first = await runPipeline(project.dir, "g", [], { PGURL: url });
    expect(first.code, first.stderr).toBe(0);
    // The run history (advisory: a fresh checkout has none) would refuse the empty run by itself.
    rmSync(project.file(".pipelines/state/.history"), { recursive: true, force: true });
    body = [];
    const second = await runPipeline(project.dir, "g", [], { PGURL: url });
    expect(second.code, second.stderr).toBe(1);
    expect(second.stderr).toContain('cannot look at table "public"."rows" before the commit');
    expect(
      await query(url.replace(/\/\/[^@]*@/, `//pipelines@`), "SELECT count(*)::int AS n FROM rows"),
    ).toEqual([{ n: 10 }]);
  });
});
