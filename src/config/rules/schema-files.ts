import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { compileRecordSchema } from "../../lang/ajv.js";
import { closest } from "../errors.js";
import type { Stream } from "../pipeline-types.gen.js";
import { type Project, shownFrom } from "../project.js";
import { FileReadError, MAX_BYTES, readTextSync } from "../read-bounded.js";
import type { KeyPath } from "../yaml-source.js";
import { type RuleIssue, ruleIssue } from "./rule.js";

/** Record schemas by stream name, read and compiled once. */
export type RecordSchemas = Map<string, { schema: Record<string, unknown>; file: string | null }>;

/**
 * `streams.<name>.schema`: a file in the project's schemas folder (or a schema written inline)
 * that is JSON and compiles. Reads the files: returns the schemas with the issues. A missing file
 * is an issue that says how to draft it (`pipelines infer <pipeline>`). With `missingOk` (`infer`
 * itself, which writes the files) a file that is missing or unusable leaves the stream without one.
 */
export function readRecordSchemas(
  streams: Record<string, Stream>,
  project: Project,
  pipeline = "<pipeline>",
  missingOk = false,
): { schemas: RecordSchemas; issues: RuleIssue[] } {
  const schemas: RecordSchemas = new Map();
  const issues: RuleIssue[] = [];
  for (const [name, s] of Object.entries(streams)) {
    if (!s || typeof s !== "object") continue;
    const at = ["streams", name, "schema"];
    const written: unknown = s.schema;
    let found: {
      schema: Record<string, unknown> | null;
      file: string | null;
      issue?: RuleIssue;
    };
    if (typeof written === "string") found = readSchemaFile(written, project, at, pipeline);
    else if (written && typeof written === "object" && !Array.isArray(written))
      found = { schema: written as Record<string, unknown>, file: null };
    else continue;
    // `infer` replaces a schema file: one missing, unreadable or not compiling does not stop it.
    if (found.issue && !(missingOk && found.file)) issues.push(found.issue);
    if (!found.schema) continue;
    try {
      compileRecordSchema(found.schema);
      schemas.set(name, { schema: found.schema, file: found.file });
    } catch (err) {
      if (missingOk && found.file) continue;
      issues.push(ruleIssue("schema_invalid", at, `schema does not compile: ${(err as Error).message}`));
    }
  }
  return { schemas, issues };
}

function readSchemaFile(
  name: string,
  project: Project,
  at: KeyPath,
  pipeline: string,
): { schema: Record<string, unknown> | null; file: string | null; issue?: RuleIssue } {
  if (!/^[A-Za-z0-9._-][A-Za-z0-9._/-]*$/.test(name) || name.split("/").includes(".."))
    return {
      schema: null,
      file: null,
      issue: ruleIssue("schema_missing", at, `\`${name}\` is not a file name in the schemas folder`),
    };
  const file = path.join(project.schemasDir, name);
  let text: string;
  try {
    text = readTextSync(file, { maxBytes: MAX_BYTES.recordSchema, what: "a record schema" });
  } catch (err) {
    const problem = err instanceof FileReadError && err.problem !== "missing" ? err.message : null;
    if (problem)
      return {
        schema: null,
        file,
        issue: ruleIssue("schema_invalid", at, `schema file \`${name}\` ${problem}`),
      };
    const available = existsSync(project.schemasDir)
      ? readdirSync(project.schemasDir).filter((f) => f.endsWith(".json"))
      : [];
    const g = closest(name, available);
    const dir = path.relative(shownFrom(project), project.schemasDir) || ".";
    return {
      schema: null,
      file,
      issue: ruleIssue(
        "schema_missing",
        at,
        `schema file \`${name}\` not found in ${dir}${g ? ` (did you mean \`${g}\`?)` : ""}; draft it from real records with \`pipelines infer ${pipeline}\``,
      ),
    };
  }
  try {
    return { schema: JSON.parse(text), file };
  } catch (err) {
    return {
      schema: null,
      file,
      issue: ruleIssue(
        "schema_invalid",
        at,
        `schema file \`${name}\` is not valid JSON: ${(err as Error).message}`,
      ),
    };
  }
}
