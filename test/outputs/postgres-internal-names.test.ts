/**
 * PostgreSQL gives every table system columns (`xmin`, `ctid`, …) and the output stages a run's
 * rows with a column of its own (`_seq`): a field with one of these names is refused with an error
 * that names the field and the table, not a driver error about a staging table.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import type { Row } from "../../src/records/shape.js";
import { freshDatabase, tables } from "../pg/helpers.js";
import { runWriter } from "./helpers.js";

let url: string;
beforeAll(async () => {
  url = await freshDatabase("pg_names");
});

const load = (records: Row[], name: string, mode: OutputPlan["mode"]) =>
  runWriter(
    "postgres",
    mode,
    "/tmp/unused",
    records,
    {
      primaryKey: mode === "merge" ? ["id"] : null,
      output: { postgres: { url, schema: "public" }, stateKey: "p" },
    },
    name,
  );

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
