// Generates src/config/pipeline-types.gen.ts from schemas/pipeline.schema.json, so the
// TypeScript types of the pipeline file follow the one schema that validates it.
// `node scripts/gen-types.mjs --check` exits 1 when the committed file is out of date.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const schemaPath = `${root}schemas/pipeline.schema.json`;
const outPath = `${root}src/config/pipeline-types.gen.ts`;

async function generate() {
  const { compile } = await import("json-schema-to-typescript");
  const schema = JSON.parse(await readFile(schemaPath, "utf8"));
  return compile(schema, "PipelineFile", {
    bannerComment: "// Generated from schemas/pipeline.schema.json by scripts/gen-types.mjs. Do not edit.",
    additionalProperties: false,
    unreachableDefinitions: false,
    style: { semi: true, singleQuote: false },
  });
}

const check = process.argv.includes("--check");
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
