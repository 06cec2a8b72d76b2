import { compileRecordSchema, type ValidateFunction } from "../lang/ajv.js";
import { setOwn } from "../shared/json-text.js";
import { type JsonType, jsonType } from "./quality-errors.js";

/**
 * Infers a draft JSON Schema from sample records: types (null included), `required` for the
 * fields present in every record, string formats seen in every value (date-time, date, email,
 * uri, uuid), nested objects and array items.
 */
interface Node {
  count: number;
  types: Set<JsonType>;
  formats: Map<string, number>;
  strings: number;
  props: Map<string, Node> | null;
  objects: number;
  items: Node | null;
}

const FORMATS: [string, RegExp][] = [
  ["date-time", /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$/],
  ["date", /^\d{4}-\d{2}-\d{2}$/],
  ["email", /^[^\s@]+@[^\s@]+\.[^\s@]+$/],
  ["uri", /^https?:\/\/[^\s]+$/],
  ["uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i],
];

/**
 * A value counts for a format only when it also passes the check the runner will apply (ajv-formats):
 * the patterns above are looser (`2024-02-30`, `10:00Z` without seconds), and a draft schema must
 * accept the very records it was inferred from.
 */
let formatChecks: Map<string, ValidateFunction> | null = null;
function passesFormat(name: string, value: string): boolean {
  formatChecks ??= new Map(FORMATS.map(([f]) => [f, compileRecordSchema({ type: "string", format: f })]));
  return formatChecks.get(name)!(value) as boolean;
}

function newNode(): Node {
  return { count: 0, types: new Set(), formats: new Map(), strings: 0, props: null, objects: 0, items: null };
}

export class SchemaInferrer {
  private readonly root = newNode();
  records = 0;

  add(record: unknown): void {
    this.records++;
    observe(this.root, record);
  }

  schema(title: string): Record<string, unknown> {
    return {
      $schema: "http://json-schema.org/draft-07/schema#",
      title,
      description: `Inferred by \`pipelines infer\` from ${this.records} record${this.records === 1 ? "" : "s"}. Review before use.`,
      ...toSchema(this.root),
    };
  }
}

function observe(node: Node, value: unknown): void {
  node.count++;
  const t = jsonType(value);
  node.types.add(t);
  if (t === "string") {
    node.strings++;
    for (const [name, re] of FORMATS) {
      if (re.test(value as string) && passesFormat(name, value as string))
        node.formats.set(name, (node.formats.get(name) ?? 0) + 1);
    }
  } else if (t === "object") {
    node.objects++;
    node.props ??= new Map();
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      let child = node.props.get(k);
      if (!child) node.props.set(k, (child = newNode()));
      observe(child, v);
    }
  } else if (t === "array") {
    node.items ??= newNode();
    for (const v of value as unknown[]) observe(node.items, v);
  }
}

function toSchema(node: Node): Record<string, unknown> {
  const types = [...node.types];
  // integer and number together are number.
  const merged = types.includes("number") ? types.filter((t) => t !== "integer") : types;
  const order: JsonType[] = ["object", "array", "string", "integer", "number", "boolean", "null"];
  merged.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const out: Record<string, unknown> = {};
  if (merged.length === 1) out.type = merged[0];
  else if (merged.length > 1) out.type = merged;
  if (node.strings > 0) {
    const format = FORMATS.find(([name]) => node.formats.get(name) === node.strings)?.[0];
    if (format) out.format = format;
  }
  if (node.props) {
    const props: Record<string, unknown> = {};
    const required: string[] = [];
    for (const [k, child] of node.props) {
      setOwn(props, k, toSchema(child));
      if (child.count === node.objects) required.push(k);
    }
    out.properties = props;
    if (required.length) out.required = required;
  }
  if (node.items && node.items.count > 0) out.items = toSchema(node.items);
  return out;
}
