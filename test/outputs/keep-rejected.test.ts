import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { openWriter } from "../../src/outputs/registry.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "pipelines-rejected-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const rows = [
  { id: 1, name: "a" },
  { id: 2, name: "b", extra: true },
];

describe("keepRejected: a rejected run keeps its records beside the target, which stays untouched", () => {
  for (const format of ["jsonl", "json", "csv"] as const) {
    it(format, async () => {
      const target = path.join(dir, `items.${format}`);
      writeFileSync(target, "previous content\n");
      const output: OutputPlan = { format, mode: "replace", path: target };
      const w = await openWriter(output, { runId: "r1", stream: "items", columns: null, primaryKey: ["id"] });
      for (const r of rows) await w.write(r);
      const kept = await w.keepRejected!();
      expect(kept).toBe(path.join(dir, `items.rejected-r1.${format}`));
      expect(readFileSync(target, "utf8")).toBe("previous content\n");
      const text = readFileSync(kept!, "utf8");
      if (format === "jsonl")
        expect(
          text
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l)),
        ).toEqual(rows);
      if (format === "json") expect(JSON.parse(text)).toEqual(rows);
      if (format === "csv") expect(text).toBe("id,name,extra\r\n1,a,\r\n2,b,true\r\n");
      expect(existsSync(path.join(dir, `.items.${format}.r1.body.tmp`))).toBe(false);
    });
  }

  it("sqlite keeps a <stream>__rejected_<run> table and leaves the stream's table as it was", async () => {
    const file = path.join(dir, "p.db");
    const output: OutputPlan = { format: "sqlite", mode: "replace", path: file };
    const first = await openWriter(output, { runId: "r0", stream: "items", columns: null, primaryKey: null });
    await first.write({ id: 9, name: "old" });
    await first.commit();
    const w = await openWriter(output, { runId: "r1", stream: "items", columns: null, primaryKey: null });
    for (const r of rows) await w.write(r);
    expect(await w.keepRejected!()).toBe(`${file} (table items__rejected_r1)`);
    const db = new Database(file, { readonly: true });
    expect(db.prepare("SELECT id, name FROM items").all()).toEqual([{ id: 9, name: "old" }]);
    expect(db.prepare("SELECT id, name FROM items__rejected_r1 ORDER BY id").all()).toEqual([
      { id: 1, name: "a" },
      { id: 2, name: "b" },
    ]);
    db.close();
  });

  it("sqlite names the rejected table after the stream even when its name holds `__staging_`", async () => {
    const file = path.join(dir, "p.db");
    const output: OutputPlan = { format: "sqlite", mode: "replace", path: file };
    const stream = "a__staging_b";
    const w = await openWriter(output, { runId: "r1", stream, columns: null, primaryKey: null });
    for (const r of rows) await w.write(r);
    expect(await w.keepRejected!()).toBe(`${file} (table a__staging_b__rejected_r1)`);
    const db = new Database(file, { readonly: true });
    expect(db.prepare("SELECT count(*) AS n FROM a__staging_b__rejected_r1").get()).toEqual({ n: 2 });
    db.close();
  });
});
