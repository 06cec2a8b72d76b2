import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { ConfigError, type ConfigIssue } from "../../src/config/errors.js";
import { type LoadedPipeline, loadPipelineText } from "../../src/config/load-pipeline.js";
import { makeProject, type Project } from "../../src/config/project.js";

/** A temporary folder, removed by `cleanup()`. */
export function tempDir(prefix = "pipelines-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `files` (relative path → text) under `dir`, creating folders. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(dir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}

/** A project in a temp dir with a `schemas/` folder holding `schemas`. */
export function tempProject(schemas: Record<string, string> = {}): {
  dir: string;
  project: Project;
  cleanup: () => void;
} {
  const { dir, cleanup } = tempDir();
  mkdirSync(path.join(dir, "schemas"), { recursive: true });
  writeFiles(
    dir,
    Object.fromEntries(Object.entries(schemas).map(([name, text]) => [path.join("schemas", name), text])),
  );
  return { dir, project: makeProject(dir, null, {}), cleanup };
}

/** Loads `text` as pipeline `name`; returns the issues of the ConfigError it throws (or []). */
export function issuesOf(
  project: Project,
  text: string,
  env: Record<string, string | undefined> = {},
  name = "test",
): ConfigIssue[] {
  try {
    loadPipelineText(project, name, `pipelines/${name}.yaml`, text, env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
}

/** Loads `text`, failing the test with the formatted issues when it does not load. */
export function loadOk(
  project: Project,
  text: string,
  env: Record<string, string | undefined> = {},
  name = "test",
): LoadedPipeline {
  try {
    return loadPipelineText(project, name, `pipelines/${name}.yaml`, text, env);
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`expected ${name} to load, got:\n${err.message}`);
    throw err;
  }
}

/** Strips the common indentation of a template literal (so YAML cases can be indented in code). */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = strings.reduce((out, s, i) => out + s + (i < values.length ? String(values[i]) : ""), "");
  const lines = text
    .replace(/^\n/, "")
    .replace(/\n[ \t]*$/, "\n")
    .split("\n");
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.match(/^ */)![0].length));
  return lines.map((l) => l.slice(indent)).join("\n");
}

/** The ConfigError `fn` throws; the test fails when it throws nothing or anything else. */
export function configErrorOf(fn: () => unknown): ConfigError {
  let thrown: unknown;
  expect(() => {
    try {
      fn();
    } catch (err) {
      thrown = err;
      throw err;
    }
  }).toThrow(ConfigError);
  return thrown as ConfigError;
}
