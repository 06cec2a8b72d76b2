/** What data-quality checks find, per stream: shown in the summary and written into the report. */

export interface ErrorGroup {
  /** JSON Schema location, e.g. `#/properties/price/type`. */
  schema_path: string;
  /** The record field, e.g. `/price` (instance paths with array indexes folded to `*`). */
  field: string;
  keyword: string;
  message: string;
  count: number;
  /** What the schema expects, e.g. `number` or `one of a, b`. */
  expected: string | null;
  /** Counts by the JSON type actually found. */
  actual_types: Record<string, number>;
  /** Up to 5 examples: the record id (primary key, or its position in the stream) and the value. */
  examples: { record_id: string; value: unknown }[];
}

export interface DriftReport {
  policy: "warn" | "fail" | "ignore";
  /** True when drift was found and the policy is `fail`. */
  breached: boolean;
  new_fields: { field: string; count: number; examples: unknown[]; first_record: string }[];
  /** Schema properties never present in any record. */
  missing_fields: string[];
  type_changes: { field: string; expected: string[]; actual: Record<string, number> }[];
  /** Fields present but null in every record. */
  always_null: string[];
}

export interface FieldStats {
  name: string;
  in_schema: boolean;
  /** Records where the field is present (null included). */
  present: number;
  nulls: number;
  types: Record<string, number>;
}
