/**
 * PostgreSQL gives every table system columns (`xmin`, `ctid`, …) and the output stages a run's
 * rows with a column of its own (`_seq`): a field with one of these names is refused with an error
 * that names the field and the table, not a driver error about a staging table.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { openWriter } from "../../src/outputs/registry.js";
import type { Row } from "../../src/records/shape.js";
import { freshDatabase, tables } from "../pg/helpers.js";

let url: string;
beforeAll(async () => {
  url = await freshDatabase("pg_names");
});

let n = 0;
async function load(records: Row[], name: string, mode: OutputPlan["mode"]): Promise<void> {
  const output: OutputPlan = {
    format: "postgres",
    mode,
    path: "/tmp/unused",
    postgres: { url, schema: "public" },
    table: { name, metadataColumns: true, nested: "json" },
    stateKey: "p",
  };
  const writer = await openWriter(output, {
    runId: `N${++n}`,
    stream: "items",
    columns: null,
    primaryKey: mode === "merge" ? ["id"] : null,
  });
  try {
    for (const r of records) await writer.write(r);
    await writer.commit(null);
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

describe.each(["replace", "merge", "append"] as const)("mode %s", (mode) => {
  it.each(["_seq", "xmin", "ctid"])(
    "a field named %s is refused naming the field and the table",
    async (field) => {
      const table = `t_${field}_${mode}`;
      await expect(load([{ id: 1, [field]: "x" }], table, mode)).rejects.toThrow(
        new RegExp(
          `field "${field}" has a name PostgreSQL .*\\(table ${table}\\): rename it with \`fields\``,
        ),
      );
      expect(await tables(url)).not.toContain(table);
    },
  );
});
