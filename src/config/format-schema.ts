import { readFileSync } from "node:fs";
import type { KeyPath } from "./yaml-source.js";

/** The parts of a JSON Schema node the format's checks read. */
export interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  oneOf?: SchemaNode[];
  anyOf?: SchemaNode[];
  allOf?: SchemaNode[];
  const?: unknown;
  discriminator?: unknown;
  definitions?: Record<string, SchemaNode>;
}

/** schemas/pipeline.schema.json, the format of a pipeline file. */
// Read at run time: the schema ships beside dist/ (package.json `files`), it is not compiled in.
export const PIPELINE_SCHEMA = JSON.parse(
  readFileSync(new URL("../../schemas/pipeline.schema.json", import.meta.url), "utf8"),
) as SchemaNode;

/** The node a `$ref` (`#/definitions/x`) points to in the format. */
function resolveRef(ref: string): SchemaNode | undefined {
  let node: unknown = PIPELINE_SCHEMA;
  for (const k of ref.replace(/^#\//, "").split("/"))
    node = node && typeof node === "object" ? (node as Record<string, unknown>)[k] : undefined;
  return node as SchemaNode | undefined;
}

/**
 * The JSON types the format accepts at a key path (every branch of a `oneOf` counted), e.g.
 * `["integer"]` at `source.concurrency`. Empty when the path is not in the format.
 */
export function typesAt(path: KeyPath): Set<string> {
  const out = new Set<string>();
  const deref = (node: SchemaNode | undefined): SchemaNode | undefined => {
    for (let i = 0; node?.$ref && i < 20; i++) node = resolveRef(node.$ref);
    return node;
  };
  const visit = (raw: SchemaNode | undefined, i: number): void => {
    const node = deref(raw);
    if (!node || typeof node !== "object") return;
    for (const branches of [node.oneOf, node.anyOf, node.allOf])
      if (Array.isArray(branches)) for (const b of branches) visit(b, i);
    if (i === path.length) {
      for (const t of [node.type ?? []].flat()) out.add(t);
      return;
    }
    const seg = path[i];
    if (typeof seg === "number") {
      if (node.items) visit(node.items, i + 1);
    } else if (node.properties && Object.hasOwn(node.properties, seg)) visit(node.properties[seg], i + 1);
    else if (node.additionalProperties && typeof node.additionalProperties === "object")
      visit(node.additionalProperties, i + 1);
  };
  visit(PIPELINE_SCHEMA, 0);
  return out;
}

/** The `type` names of a discriminated definition (`auth`, `paginate`). */
export function typeNames(definition: "auth" | "paginate"): string[] {
  const defs = PIPELINE_SCHEMA.definitions ?? {};
  return (defs[definition].oneOf ?? []).map(
    (b) => defs[b.$ref!.split("/").pop()!].properties!.type.const as string,
  );
}
