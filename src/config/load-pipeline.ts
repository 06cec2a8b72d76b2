import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { Redactor } from "../shared/secrets.js";
import { checkFormat } from "./check-format.js";
import { credentialValues } from "./credentials.js";
import { readDotenv } from "./dotenv.js";
import { ConfigError, type ConfigIssue, closest, sortIssues } from "./errors.js";
import type { PipelineFile } from "./pipeline-types.gen.js";
import { hasPath, isMap, stringsOf } from "./plain-values.js";
import { defaultsPlace, type Project, shownFrom } from "./project.js";
import { readPipelineText } from "./read-bounded.js";
import { resolveConfig } from "./resolve-env.js";
import { checkComponents, streamsOf } from "./rules/index.js";
import type { RuleIssue } from "./rules/rule.js";
import { type RecordSchemas, readRecordSchemas } from "./rules/schema-files.js";
import { checkTemplates, type TemplateSite } from "./rules/templates.js";
import { userinfoIssues } from "./url-secrets.js";
import { formatKeyPath, type KeyPath, YamlSource } from "./yaml-source.js";

export interface LoadedPipeline {
  name: string;
  file: string;
  project: Project;
  /** The file with `${env.…}` filled in and project defaults merged under it. */
  config: PipelineFile;
  /** Record schemas by stream name, read and compiled once. */
  recordSchemas: RecordSchemas;
  redactor: Redactor;
  /** Names of the env variables the file uses. */
  envUsed: string[];
}

const NAME = /^[A-Za-z0-9._-]+$/;

/** A pipeline name is a file name; refused before any file is opened. */
export function checkPipelineName(name: string): ConfigIssue | null {
  if (typeof name === "string" && NAME.test(name) && !name.includes("..") && name !== ".") return null;
  return {
    code: "bad_name",
    file: "(command line)",
    line: 1,
    column: 1,
    path: "",
    message: `pipeline name \`${name}\` is not a file name: use letters, digits, \`-\`, \`_\` and \`.\` (no \`/\` or \`..\`)`,
    expected: "[A-Za-z0-9._-]+",
    found: String(name),
  };
}

export function listPipelineNames(project: Project): string[] {
  if (!existsSync(project.pipelinesDir)) return [];
  // `x.yaml` and `x.yml` are one pipeline (`.yaml` is read): list it once.
  const names = readdirSync(project.pipelinesDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => f.replace(/\.ya?ml$/, ""))
    .filter((n) => checkPipelineName(n) === null);
  return [...new Set(names)].sort();
}

export function pipelineFile(project: Project, name: string): string | null {
  for (const ext of [".yaml", ".yml"]) {
    const f = path.join(project.pipelinesDir, name + ext);
    if (existsSync(f)) return f;
  }
  return null;
}

export function readEnv(project: Project, env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return { ...readDotenv(path.join(project.root, ".env")), ...env };
}

/** How lenient a load is: `missingSchemas` (for `infer`) loads a stream whose schema file is missing without it. */
export interface LoadOptions {
  missingSchemas?: boolean;
}

/** Loads, checks and resolves one pipeline. Throws ConfigError with every issue found. */
export function loadPipeline(
  project: Project,
  name: string,
  env: Record<string, string | undefined>,
  opts: LoadOptions = {},
): LoadedPipeline {
  const bad = checkPipelineName(name);
  if (bad) throw new ConfigError([bad]);
  const file = pipelineFile(project, name);
  if (!file) {
    const names = listPipelineNames(project);
    const guess = closest(name, names);
    throw new ConfigError([
      {
        code: "not_found",
        file: path.join(path.relative(shownFrom(project), project.pipelinesDir) || ".", `${name}.yaml`),
        line: 1,
        column: 1,
        path: "",
        message: `no pipeline \`${name}\`${guess ? ` (did you mean \`${guess}\`?)` : ""}; ${names.length ? `pipelines here: ${names.join(", ")}` : `no pipeline files in ${project.pipelinesDir}`}`,
      },
    ]);
  }
  const shown = path.relative(shownFrom(project), file) || file;
  return loadPipelineText(project, name, shown, readPipelineText(file, shown), env, opts);
}

/**
 * Checks and resolves a pipeline file's text, in phases; every issue found is thrown at once
 * (ConfigError), in file order, with the values it quotes masked.
 */
export function loadPipelineText(
  project: Project,
  name: string,
  shownFile: string,
  text: string,
  env: Record<string, string | undefined>,
  opts: LoadOptions = {},
): LoadedPipeline {
  const { src, raw } = readYaml(shownFile, text);
  const templates = checkTemplatesIn(src, raw, project, env);
  const { config, secrets } = resolveConfig(raw, project.defaults, env);
  const errorRedactor = redactorForErrors(raw, config, secrets, templates.envUsed, env);
  const format = checkFormatOf(config, src, project, templates.broken, errorRedactor);
  // Typed for the rules, which also run where the format check failed (see rules/rule.ts).
  const cfg = config as unknown as PipelineFile;
  const components = [...placeIssues(src, checkComponents(cfg)), ...userinfoIssues(config, src)];
  const schemas = readRecordSchemas(streamsOf(cfg), project, name, opts.missingSchemas);
  const issues = [...templates.issues, ...format, ...components, ...placeIssues(src, schemas.issues)];
  if (issues.length) throw new ConfigError(sortIssues(issues).map((i) => errorRedactor.value(i)));
  // Secrets: env values, auth fields, sensitive headers.
  credentialValues(cfg, secrets, false);
  return {
    name,
    file: shownFile,
    project,
    config: cfg,
    recordSchemas: schemas.schemas,
    redactor: new Redactor(secrets),
    envUsed: [...templates.envUsed].sort(),
  };
}

/** Phase 1: the YAML, with positions; a file that is no map stops here. */
function readYaml(shownFile: string, text: string): { src: YamlSource; raw: Record<string, unknown> } {
  const src = new YamlSource(shownFile, text);
  if (src.syntaxIssues.length) throw new ConfigError(src.syntaxIssues);
  const raw = src.toJS();
  if (!isMap(raw))
    throw new ConfigError([
      src.issue("wrong_type", [], "a pipeline file is a map with `source` and `streams`"),
    ]);
  return { src, raw };
}

/** The project config file as messages name it (positions: defaultsPlace). */
function defaultsFileOf(project: Project): string {
  return project.configFile
    ? path.relative(shownFrom(project), project.configFile) || project.configFile
    : path.join(project.root, "(project config)");
}

/**
 * Phase 2: templates in the file's strings (positions from the YAML nodes) and in the project
 * config's `defaults` (checked at the paths they take in the pipeline).
 */
function checkTemplatesIn(
  src: YamlSource,
  raw: Record<string, unknown>,
  project: Project,
  env: Record<string, string | undefined>,
): { issues: ConfigIssue[]; envUsed: Set<string>; broken: Set<string> } {
  const strings = [...src.strings()];
  const defaults = stringsOf(project.defaults, []);
  const sites: TemplateSite[] = [
    ...strings.map((s) => ({ path: s.path, value: s.value })),
    ...defaults.map(([at, value]) => ({ path: at, value })),
  ];
  const check = checkTemplates(sites, raw.streams ?? {}, env, path.join(project.root, ".env"));
  const defaultsFile = defaultsFileOf(project);
  const issues = check.findings.map(({ site, code, offset, message, ...extra }): ConfigIssue => {
    const s = strings[site];
    if (!s)
      return {
        code,
        file: defaultsFile,
        ...defaultsPlace(project, sites[site].path),
        path: formatKeyPath(["defaults", ...sites[site].path]),
        message,
        ...extra,
      };
    // Where a template starts: exact when the source text is the value as written.
    const pos = s.verbatim && offset !== undefined ? src.offsetToPos(s.offset + offset) : src.locate(s.path);
    return src.issueAt(code, pos.line, pos.column, formatKeyPath(s.path), message, extra);
  });
  return { issues, envUsed: check.envUsed, broken: check.broken };
}

/**
 * Errors can quote values (found `…`, the source line): they are masked before they are
 * formatted, so that a long secret is never cut short into something that no longer matches.
 */
function redactorForErrors(
  raw: unknown,
  config: unknown,
  envSecrets: Set<string>,
  envUsed: Set<string>,
  env: Record<string, string | undefined>,
): Redactor {
  const literal = new Set(envSecrets);
  credentialValues(raw, literal, true);
  credentialValues(config, literal, true);
  for (const n of envUsed) if (env[n] !== undefined) literal.add(env[n]!);
  return new Redactor(literal);
}

/**
 * Phase 3: the format (schemas/pipeline.schema.json), on the resolved config; a value that is a
 * broken template is reported once (as a template), and a value from the project defaults is
 * reported in the project config file.
 */
function checkFormatOf(
  config: unknown,
  src: YamlSource,
  project: Project,
  broken: Set<string>,
  errorRedactor: Redactor,
): ConfigIssue[] {
  const inFile = (p: KeyPath) => src.locate(p).exact || p.length === 0;
  const isBroken = (p: KeyPath) => {
    const at = formatKeyPath(p);
    return [...broken].some((b) => at === b || at.startsWith(`${b}.`));
  };
  const fromDefaults = (p: KeyPath): Partial<ConfigIssue> =>
    !inFile(p) && project.configFile && hasPath(project.defaults, p)
      ? {
          file: defaultsFileOf(project),
          ...defaultsPlace(project, p),
          hint: "this value comes from the project config's `defaults`",
        }
      : {};
  return checkFormat(config, src, (text) => errorRedactor.text(text), isBroken, fromDefaults);
}

/** Component rules' issues at their places in the file. */
function placeIssues(src: YamlSource, issues: RuleIssue[]): ConfigIssue[] {
  return issues.map(({ code, path: at, message, ...extra }) => src.issue(code, at, message, extra));
}
