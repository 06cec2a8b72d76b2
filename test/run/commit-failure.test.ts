/**
 * A commit that fails (here: merge into a SQLite table whose keys are not unique) fails the stream
 * and cleans up like any other failure: no staging table or temporary file is left, and the
 * previous table is exactly as it was.
 */
import { mkdirSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import {
  closeServer,
  listenLocal,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "./helpers.js";

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(
      JSON.stringify({
        items: [
          { id: 1, name: "a" },
          { id: 3, name: "c" },
        ],
      }),
    );
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
afterEach(() => p?.cleanup());

it("a failed merge commit leaves no staging table and the old rows untouched", async () => {
  p = tempProject();
  mkdirSync(p.file("out"), { recursive: true });
  const db = new Database(p.file("out/m.db"));
  db.exec("CREATE TABLE s (id INTEGER, name TEXT); INSERT INTO s VALUES (1, 'x'), (1, 'y');");
  db.close();
  p.pipeline(
    "m",
    `${sourceBlock(url)}\nstreams:\n  s:\n    path: /\n    records: $.items\n    primary_key: id\noutput: { format: sqlite, path: out/m.db, mode: merge }\n`,
  );
  const r = await runPipeline(p.dir, "m");
  expect(r.code).toBe(1);
  expect(r.stream("s").status).toBe("failed");
  const after = new Database(p.file("out/m.db"), { readonly: true });
  const tables = after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
    name: string;
  }[];
  const rows = after.prepare("SELECT id, name FROM s ORDER BY name").all();
  after.close();
  expect(tables.map((t) => t.name)).toEqual(["s"]);
  expect(rows).toEqual([
    { id: 1, name: "x" },
    { id: 1, name: "y" },
  ]);
  expect(readdirSync(p.file("out")).filter((f) => f.endsWith(".tmp"))).toEqual([]);
});
