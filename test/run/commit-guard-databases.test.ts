import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type SyncServer, startSyncServer } from "../sync/sync-server.js";
import { runPipeline, type TempProject, tempProject } from "./helpers.js";

/** An API whose list can go empty (an outage answering 200 with no rows). */
let count = 5;
let api: SyncServer;
let project: TempProject;
beforeAll(async () => {
  api = await startSyncServer(() => ({
    body: { items: Array.from({ length: count }, (_, i) => ({ id: i + 1 })) },
  }));
});
afterAll(async () => {
  await api.close();
  project?.cleanup();
});
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  count = 5;
});

const pipeline = (format: string) => `
source:
  base_url: ${api.url}
streams:
  items:
    path: /items
    records: $.items
output:
  format: ${format}
  mode: replace
`;

async function rows(file: string, from: string): Promise<number> {
  const db = await DuckDBInstance.create(file.endsWith(".parquet") ? ":memory:" : file);
  const c = await db.connect();
  try {
    const r = await c.runAndReadAll(`SELECT count(*)::INTEGER FROM ${from}`);
    return Number(r.getRows()[0][0]);
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

describe("the commit guard protects database and Parquet targets", () => {
  it.each([
    ["duckdb", "out/test.duckdb", "items"],
    ["parquet", "out/test/items.parquet", "read_parquet('FILE')"],
  ])("%s: an empty replace over a table with rows is refused, the rows stay", async (format, rel, from) => {
    project.pipeline("test", pipeline(format));
    const file = project.file(rel);
    const source = from.replace("FILE", file);
    expect((await runPipeline(project.dir, "test")).code).toBe(0);
    expect(await rows(file, source)).toBe(5);
    count = 0;
    const r = await runPipeline(project.dir, "test");
    expect(r.code, r.stderr).toBe(3);
    const s = r.stream("items") as ReturnType<typeof r.stream> & { suspicions: { code: string }[] };
    expect(s.suspicions.map((x) => x.code)).toContain("empty_replace");
    expect(await rows(file, source)).toBe(5);
  });
});
