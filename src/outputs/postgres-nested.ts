import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import type { ColumnDef, TableLoad } from "./postgres-copy.js";
import { checkMetadataNames } from "./postgres-sql.js";
import {
  type ColumnType,
  INDEX_COLUMN,
  isArrayOfObjects,
  METADATA_COLUMNS,
  schemaColumnTypes,
  typeOfValues,
} from "./table-shape.js";

/**
 * `nested: tables` for PostgreSQL: an array-of-objects field becomes a child table
 * `<table>__<field>` whose rows carry the parent's primary key and `_index`; its staging rows
 * carry the parent's `_seq` (`_parent_seq`) so a repeated key drops the older child rows.
 */

/** A child row waiting for its COPY: the parent's `_seq`, the row, how errors name the record. */
export type ChildRow = [string, Row, () => string];

/** Adds the rows the items of `row[field]` make to `out`; refuses what is no array of objects. */
export function childRowsOf(
  row: Row,
  field: string,
  load: TableLoad,
  pk: string[],
  seq: string,
  id: () => string,
  redact: (s: string) => string,
  out: ChildRow[],
): void {
  const items = Object.hasOwn(row, field) ? row[field] : undefined;
  if (items === null || items === undefined) return;
  if (!Array.isArray(items))
    throw new RunError(
      "output",
      redact(`record ${id()}: field \`${field}\` is a child table (nested: tables) but holds no array`),
    );
  for (let j = 0; j < items.length; j++) {
    const item = items[j];
    if (!item || typeof item !== "object" || Array.isArray(item))
      throw new RunError(
        "output",
        redact(
          `record ${id()}: item ${j} of \`${field}\` is not an object, so it cannot be a row of child table ${load.target}`,
        ),
      );
    // As DuckDB (duckdb-writer.ts): an item's own field with a name the child table sets itself
    // would be overwritten — silently changed data — so it is refused.
    for (const k of [...pk, INDEX_COLUMN])
      if (Object.hasOwn(item, k))
        throw new RunError(
          "output",
          redact(
            `record ${id()}: the items of \`${field}\` have a field \`${k}\`, a column child table ${load.target} sets itself (the parent's primary key, \`${INDEX_COLUMN}\`); rename it with \`fields\``,
          ),
        );
    const child: Row = { ...(item as Row) };
    for (const k of pk) child[k] = row[k];
    child[INDEX_COLUMN] = j;
    out.push([seq, child, id]);
  }
}

/** Takes out of `fresh` the fields whose values in `rows` are all arrays of objects; those. */
export function arrayFields(
  rows: Row[],
  fresh: Set<string>,
  plainFields: Set<string>,
  pk: string[],
): string[] {
  const found: string[] = [];
  for (const name of [...fresh]) {
    if (plainFields.has(name) || pk.includes(name)) continue;
    const values = rows.map((r) => (Object.hasOwn(r, name) ? r[name] : undefined));
    const some = values.filter((v) => v !== null && v !== undefined);
    if (some.length && some.every(isArrayOfObjects)) {
      found.push(name);
      fresh.delete(name);
    }
  }
  return found;
}

/** Columns for the fields the items of `field` in `rows` bring that `load` has none for yet. */
export function newItemColumns(
  rows: Row[],
  field: string,
  load: TableLoad,
  typeChanges: string[],
): ColumnDef[] {
  const fields = new Set<string>();
  for (const row of rows) {
    const items = Object.hasOwn(row, field) ? row[field] : undefined;
    if (!Array.isArray(items)) continue;
    for (const item of items)
      if (item && typeof item === "object" && !Array.isArray(item))
        for (const k in item as Row) if (!load.columns.has(k)) fields.add(k);
  }
  const cols: ColumnDef[] = [];
  for (const k of fields) {
    if ((METADATA_COLUMNS as readonly string[]).includes(k) && load.meta)
      throw new RunError(
        "output",
        `field \`${k}\` of the items of \`${field}\` has the name of a metadata column`,
      );
    const values: unknown[] = [];
    for (const row of rows) {
      const items = Object.hasOwn(row, field) ? row[field] : undefined;
      if (Array.isArray(items))
        for (const it of items) if (it && typeof it === "object") values.push((it as Row)[k]);
    }
    cols.push(load.columnFor(k, typeOfValues(values) ?? "json", typeChanges, false));
  }
  return cols;
}

/** The columns child table `load` starts with: the parent's key, `_index`, the items' schema fields. */
export function childColumns(
  load: TableLoad,
  field: string,
  items: Record<string, unknown> | null,
  pk: string[],
  keyType: (k: string) => ColumnType | null,
  typeChanges: string[],
): ColumnDef[] {
  const cols: ColumnDef[] = [];
  for (const k of pk) cols.push(load.columnFor(k, keyType(k), typeChanges));
  cols.push(load.columnFor(INDEX_COLUMN, "bigint", typeChanges));
  if (!items) return cols;
  for (const [k, t] of schemaColumnTypes(items)) {
    if (pk.includes(k) || k === INDEX_COLUMN || (METADATA_COLUMNS as readonly string[]).includes(k))
      throw new RunError(
        "output",
        `field \`${k}\` of the items of \`${field}\` has the name of a column child table ${load.target} sets itself (the parent's primary key, \`${INDEX_COLUMN}\`, metadata)`,
      );
    cols.push(load.columnFor(k, t, typeChanges));
  }
  return cols;
}

/**
 * Columns for `fresh` fields of the parent table: typed by the schema, else by the batch's
 * values (only nulls so far: jsonb, which holds any later value). A metadata column's name is
 * refused.
 */
export function fieldColumns(
  rows: Row[],
  fresh: Set<string>,
  main: TableLoad,
  schemaTypes: Map<string, ColumnType>,
  typeChanges: string[],
): ColumnDef[] {
  const cols: ColumnDef[] = [];
  for (const name of fresh) {
    if (main.meta) checkMetadataNames([name], main.target);
    const fromSchema = schemaTypes.get(name);
    const wanted =
      fromSchema ?? typeOfValues(rows.map((r) => (Object.hasOwn(r, name) ? r[name] : undefined))) ?? "json";
    cols.push(main.columnFor(name, wanted, typeChanges, fromSchema !== undefined));
  }
  return cols;
}
