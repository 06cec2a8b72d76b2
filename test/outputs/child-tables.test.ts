/** Which tables of a database are the child tables an earlier run made (nested: tables). */
import { describe, expect, it } from "vitest";
import { childTableName, existingChildFields } from "../../src/outputs/table-shape.js";

describe("existingChildFields", () => {
  const pk = ["id"];
  const child = ["id", "_index", "sku"];
  it("takes `<table>__<field>` tables with `_index` and the key; leaves out the rest", () => {
    const tables: [string, string[]][] = [
      ["orders__lines", child],
      ["orders__invalid", ["record_id", "record", "errors"]],
      ["orders__Invalid", child], // the invalid records' name, whatever its case
      ["orders__rejected_20261201T000000Z-abc123", child],
      ["orders__lines__staging_20261201T000000Z-abc123", child],
      ["orders__noindex", ["id", "sku"]],
      ["orders__nokey", ["_index", "sku"]],
      ["orders__id", child], // the key itself
      ["orders__", child],
      ["other__lines", child],
      ["orders__tags", child], // declared by the schema below
      ["orders__notes", ["id", "_index", "text"]],
      ["orders__rejected_reasons", child], // a field's name, not a rejected run's table
    ];
    const schema = { type: "object", properties: { tags: { type: "array", items: { type: "string" } } } };
    expect(existingChildFields("orders", tables, pk, schema)).toEqual(["lines", "notes", "rejected_reasons"]);
    expect(existingChildFields("orders", tables, pk, null)).toEqual([
      "lines",
      "tags",
      "notes",
      "rejected_reasons",
    ]);
  });

  it("a composite key: every key column is there", () => {
    const tables: [string, string[]][] = [
      ["t__a", ["k1", "k2", "_index"]],
      ["t__b", ["k1", "_index"]],
    ];
    expect(existingChildFields("t", tables, ["k1", "k2"], null)).toEqual(["a"]);
  });

  it("a field named `invalid` is never a child table", () => {
    expect(() => childTableName("orders", "Invalid")).toThrow(/the name of the table of invalid records/);
  });
});
