// Generates, from schemas/pipeline.schema.json, src/config/pipeline-types.gen.ts (the TypeScript
// types of the pipeline file) and src/config/defaults.gen.ts (every `default` the schema states,
// which the compilers use), so that both follow the one schema that validates the file.
// `node scripts/gen-types.mjs --check` exits 1 when a committed file is out of date.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const schemaPath = `${root}schemas/pipeline.schema.json`;
const outPath = `${root}src/config/pipeline-types.gen.ts`;
const defaultsPath = `${root}src/config/defaults.gen.ts`;
const BANNER = "// Generated from schemas/pipeline.schema.json by scripts/gen-types.mjs. Do not edit.";

/**
 * `{ definition: { key: default } }` for every property with a `default`: the root's properties
 * under `pipeline`, a definition that is a bag of properties (`paginateCommon`) as one, and the
 * properties of an object branch of a `oneOf` property, or of a nested object, under
 * `definition_property` (at any depth: `response_csv`).
 */
function schemaDefaults(schema) {
  const out = {};
  const add = (group, props) => {
    for (const [key, prop] of Object.entries(props ?? {})) {
      if (!prop || typeof prop !== "object") continue;
      if (prop.default !== undefined) (out[group] ??= {})[key] = prop.default;
      for (const branch of prop.oneOf ?? []) if (branch.properties) add(`${group}_${key}`, branch.properties);
      // A nested object's own keys (`response.csv.delimiter` → `response_csv.delimiter`).
      if (prop.properties) add(`${group}_${key}`, prop.properties);
    }
  };
  add("pipeline", schema.properties);
  for (const [name, def] of Object.entries(schema.definitions ?? {})) {
    const isPropertyBag = !def.type && !def.properties && !def.oneOf && !def.$ref && !def.pattern;
    add(name, isPropertyBag ? def : def.properties);
  }
  return out;
}

// A value as biome formats it (`[1, 2]`).
const literal = (value) =>
  Array.isArray(value) ? `[${value.map(literal).join(", ")}]` : JSON.stringify(value);

function defaultsSource(schema) {
  const lines = [
    BANNER,
    "// biome-ignore-all lint/suspicious/noTemplateCurlyInString: some defaults are templates (`table`)",
    "",
    "/** The `default` of every setting that has one in the format, by schema definition. */",
    "export const DEFAULTS = {",
  ];
  for (const [group, values] of Object.entries(schemaDefaults(schema))) {
    lines.push(`  ${group}: {`);
    for (const [key, value] of Object.entries(values)) lines.push(`    ${key}: ${literal(value)},`);
    lines.push("  },");
  }
  lines.push("} as const;", "");
  return lines.join("\n");
}

async function generate() {
  const { compile } = await import("json-schema-to-typescript");
  const schema = JSON.parse(await readFile(schemaPath, "utf8"));
  return compile(schema, "PipelineFile", {
    bannerComment: BANNER,
    additionalProperties: false,
    unreachableDefinitions: false,
    style: { semi: true, singleQuote: false },
  });
}

const check = process.argv.includes("--check");
// The defaults need no dev dependency: they are written (or checked) in every case.
{
  const text = defaultsSource(JSON.parse(await readFile(schemaPath, "utf8")));
  let existing = null;
  try {
    existing = await readFile(defaultsPath, "utf8");
  } catch {}
  if (check && existing !== text) {
    console.error(`${defaultsPath} is out of date: run npm run gen:types`);
    process.exit(1);
  }
  if (!check && existing !== text) await writeFile(defaultsPath, text);
}
let existing = null;
try {
  existing = await readFile(outPath, "utf8");
} catch {}
let text;
try {
  text = await generate();
} catch (err) {
  // json-schema-to-typescript is a dev dependency; an install without it keeps the committed file.
  if (existing && err?.code === "ERR_MODULE_NOT_FOUND") process.exit(0);
  throw err;
}
if (check) {
  if (existing !== text) {
    console.error(`${outPath} is out of date: run npm run gen:types`);
    process.exit(1);
  }
} else if (existing !== text) {
  await writeFile(outPath, text);
}
