import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { compileRecordSchema } from "../records/ajv.js";
import { checkJsonPath } from "../records/jsonpath.js";
import { checkFormat, typesAt } from "./check-format.js";
import { readDotenv } from "./dotenv.js";
import { ConfigError, type ConfigIssue, closest } from "./errors.js";
import type { PipelineFile } from "./pipeline-types.gen.js";
import type { Project } from "./project.js";
import { basicCredential, Redactor, SENSITIVE_HEADERS } from "./secrets.js";
import { parseTemplate, renderTemplateSource, type TemplateSyntaxError } from "./templates.js";
import { formatDuration, parseDuration } from "./units.js";
import { formatKeyPath, type KeyPath, YamlSource } from "./yaml-source.js";

export interface LoadedPipeline {
  name: string;
  file: string;
  project: Project;
  /** The file with `${env.…}` filled in and project defaults merged under it. */
  config: PipelineFile;
  /** Record schemas by stream name, read and compiled once. */
  recordSchemas: Map<string, { schema: Record<string, unknown>; file: string | null }>;
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

/** File names in messages are relative to the directory the command runs in. */
function shownFrom(project: Project): string {
  return project.cwd ?? process.cwd();
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

/** Loads, checks and resolves one pipeline. Throws ConfigError with every issue found. */
export function loadPipeline(
  project: Project,
  name: string,
  env: Record<string, string | undefined>,
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
  return loadPipelineText(project, name, shown, readFileSync(file, "utf8"), env);
}

export function loadPipelineText(
  project: Project,
  name: string,
  shownFile: string,
  text: string,
  env: Record<string, string | undefined>,
): LoadedPipeline {
  const src = new YamlSource(shownFile, text);
  if (src.syntaxIssues.length) throw new ConfigError(src.syntaxIssues);
  const raw = src.toJS();
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError([
      src.issue("wrong_type", [], "a pipeline file is a map with `source` and `streams`"),
    ]);
  }
  const issues: ConfigIssue[] = [];
  const secrets = new Set<string>();
  const envUsed = new Set<string>();
  const missingEnv = new Map<string, { line: number; column: number; path: string }[]>();
  const brokenPaths = new Set<string>();
  const rawStreams = ((raw as any).streams ?? {}) as Record<string, any>;

  // 1. Templates: syntax, namespaces, env variables (positions from the YAML nodes).
  for (const s of src.strings()) {
    const at = formatKeyPath(s.path);
    // Where a template starts: exact when the source text is the value as written.
    const posOf = (offset: number | undefined) =>
      s.verbatim && offset !== undefined ? src.offsetToPos(s.offset + offset) : src.locate(s.path);
    const templateIssue = (code: ConfigIssue["code"], offset: number | undefined, message: string) => {
      const pos = posOf(offset);
      issues.push(src.issueAt(code, pos.line, pos.column, at, message));
      brokenPaths.add(at);
    };
    let parsed: ReturnType<typeof parseTemplate>;
    try {
      parsed = parseTemplate(s.value);
    } catch (err) {
      const e = err as TemplateSyntaxError;
      templateIssue("bad_template", e.offset, e.message);
      continue;
    }
    const allowed = allowedNamespaces(s.path, rawStreams);
    for (const part of parsed.parts) {
      if (typeof part === "string") continue;
      if (!allowed.includes(part.ns)) {
        const known = ["env", "parent", "stream", "pipeline"].includes(part.ns);
        const guess = closest(part.ns, allowed);
        templateIssue(
          known ? "bad_template" : "unknown_namespace",
          part.offset,
          known
            ? `\`${part.raw}\` cannot be used here; templates here may use ${allowed.map((n) => `\`\${${n}${n === "env" || n === "parent" ? ".…" : ""}}\``).join(", ")}${part.ns === "parent" ? PARENT_HINT : ""}`
            : `unknown template namespace \`${part.ns}\` in \`${part.raw}\`; use ${allowed.map((n) => `\`${n}\``).join(" or ")}${guess ? ` (did you mean \`${guess}\`?)` : ""}`,
        );
        continue;
      }
      if (part.ns === "env") {
        if (part.path.length !== 1) {
          templateIssue(
            "bad_template",
            part.offset,
            `\`${part.raw}\`: expected \`\${env.NAME}\` with one variable name`,
          );
          continue;
        }
        const varName = part.path[0];
        envUsed.add(varName);
        if (env[varName] === undefined) {
          missingEnv.set(varName, [...(missingEnv.get(varName) ?? []), { ...posOf(part.offset), path: at }]);
          brokenPaths.add(at);
        }
      } else if (part.ns === "parent" && part.path.length === 0) {
        templateIssue("bad_template", part.offset, `\`${part.raw}\`: expected \`\${parent.field}\``);
      } else if ((part.ns === "stream" || part.ns === "pipeline") && part.path.length) {
        templateIssue("bad_template", part.offset, `\`${part.raw}\`: expected \`\${${part.ns}}\``);
      }
    }
  }
  if (missingEnv.size) {
    const all = [...missingEnv.keys()];
    for (const [varName, places] of missingEnv) {
      for (const p of places) {
        issues.push(
          src.issueAt(
            "missing_env",
            p.line,
            p.column,
            p.path,
            `environment variable \`${varName}\` is not set`,
            {
              expected: `${varName} in the environment or in .env`,
              found: "not set",
              hint: `missing variables: ${all.join(", ")} (set them in the environment or in ${path.join(project.root, ".env")})`,
            },
          ),
        );
      }
    }
  }

  // 2. Fill env values; keep `${parent…}` (child requests) and `${stream}` (output.path) as templates.
  // Env values are secrets, except plain URLs used only as `base_url`/`token_url`/`allowed_hosts`
  // or in `output.path` (a URL with credentials or a query string stays secret).
  const envUses = new Map<string, boolean>();
  const fill = (value: string, keepTemplate: boolean, at: KeyPath = []): string => {
    let parsed: ReturnType<typeof parseTemplate>;
    try {
      parsed = parseTemplate(value);
    } catch {
      return value;
    }
    const parts = parsed.parts.map((p) => {
      if (typeof p === "string" || p.ns !== "env") return p;
      const v = env[p.path[0]];
      if (v === undefined) return "";
      // A number or boolean setting (`concurrency: ${env.N}`) is no secret either: masking "8"
      // would garble every count in the summary.
      const plainPlace = (isUrlPlace(at) && !/[@?]/.test(v)) || typedValue(v, value, at) !== undefined;
      envUses.set(v, (envUses.get(v) ?? true) && plainPlace);
      return v;
    });
    if (keepTemplate) return renderTemplateSource(parts);
    return parts.map((p) => (typeof p === "string" ? p : p.raw)).join("");
  };
  const resolveTree = (value: unknown, at: (string | number)[]): unknown => {
    if (typeof value === "string") return typed(fill(value, keepsTemplates(at, rawStreams), at), value, at);
    if (Array.isArray(value)) return value.map((v, i) => resolveTree(v, [...at, i]));
    if (value && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = resolveTree(v, [...at, k]);
      return out;
    }
    return value;
  };
  /**
   * `concurrency: ${env.N}`: a value that is one env template, where the format wants a number or
   * a boolean and no string, takes the type its text spells (`8`, `0.5`, `true`). Otherwise it
   * stays a string, and the format check names the type it wanted.
   */
  const typed = (filled: string, written: string, at: KeyPath): unknown =>
    filled === written ? filled : (typedValue(filled, written, at) ?? filled);
  const resolved = resolveTree(raw, []) as Record<string, any>;
  // Templates in the project config's `defaults`: same rules, positions are the config file's.
  const defaultsFile = project.configFile
    ? path.relative(shownFrom(project), project.configFile) || project.configFile
    : path.join(project.root, "(project config)");
  for (const [at, value] of stringsOf(project.defaults, ["defaults"])) {
    const issueIn = (code: ConfigIssue["code"], message: string, extra: Partial<ConfigIssue> = {}) => {
      issues.push({
        code,
        file: defaultsFile,
        line: 1,
        column: 1,
        path: formatKeyPath(at),
        message,
        ...extra,
      });
      brokenPaths.add(formatKeyPath(at.slice(1)));
    };
    let parsed: ReturnType<typeof parseTemplate>;
    try {
      parsed = parseTemplate(value);
    } catch (err) {
      issueIn("bad_template", (err as Error).message);
      continue;
    }
    // `defaults.output.path` may use `${stream}` and `${pipeline}` like a file's `output.path`.
    const allowed = allowedNamespaces(at.slice(1), {});
    for (const part of parsed.parts) {
      if (typeof part === "string") continue;
      if (!allowed.includes(part.ns) || (part.ns === "env" && part.path.length !== 1)) {
        issueIn(
          "bad_template",
          `\`${part.raw}\` cannot be used here; templates here may use ${allowed.map((n) => `\`\${${n}${n === "env" ? ".NAME" : ""}}\``).join(", ")}`,
        );
      } else if (part.ns === "env") {
        envUsed.add(part.path[0]);
        if (env[part.path[0]] === undefined)
          issueIn("missing_env", `environment variable \`${part.path[0]}\` is not set`, {
            expected: `${part.path[0]} in the environment or in .env`,
            found: "not set",
          });
      }
    }
  }
  // Resolved at the paths they take in the pipeline (`source.base_url`, `output.path`).
  const defaults = resolveTree(project.defaults, []) as Project["defaults"];
  // Only now is every use of an env value known (the file's and the defaults').
  for (const [v, plain] of envUses) if (!plain) secrets.add(v);
  for (const section of ["source", "output", "validation"] as const) {
    const d = defaults[section];
    if (d) resolved[section] = deepMerge(d, resolved[section] ?? {});
  }

  // Errors can quote values (found `…`, the source line): they are masked before they are
  // formatted, so that a long secret is never cut short into something that no longer matches.
  const literal = new Set(secrets);
  credentialValues(raw as Record<string, any>, literal, true);
  credentialValues(resolved, literal, true);
  for (const n of envUsed) if (env[n] !== undefined) literal.add(env[n]!);
  const errorRedactor = new Redactor(literal);

  // 3. The format (schemas/pipeline.schema.json).
  const inFile = (p: KeyPath) => src.locate(p).exact || p.length === 0;
  issues.push(
    ...checkFormat(
      resolved,
      src,
      (text) => errorRedactor.text(text),
      (p) => [...brokenPaths].some((b) => formatKeyPath(p) === b || formatKeyPath(p).startsWith(`${b}.`)),
      (p) =>
        !inFile(p) && project.configFile && hasPath(project.defaults, p)
          ? {
              file: defaultsFile,
              line: 1,
              column: 1,
              excerpt: undefined,
              hint: "this value comes from the project config's `defaults`",
            }
          : {},
    ),
  );

  // 4. Meaning: JSONPaths, schemas, parents, cross-key rules.
  const recordSchemas = new Map<string, { schema: Record<string, unknown>; file: string | null }>();
  checkSemantics(resolved, src, project, issues, recordSchemas);

  if (issues.length) throw new ConfigError(sortIssues(issues).map((i) => errorRedactor.value(i)));

  // 5. Secrets: env values, auth fields, sensitive headers.
  credentialValues(resolved, secrets, false);

  return {
    name,
    file: shownFile,
    project,
    config: resolved as PipelineFile,
    recordSchemas,
    redactor: new Redactor(secrets),
    envUsed: [...envUsed].sort(),
  };
}

/** Auth keys that name or configure a credential rather than hold one. */
const AUTH_PUBLIC_KEYS = new Set([
  "type",
  "in",
  "client_auth",
  "token_url",
  "scheme",
  "name",
  "grant_type",
  "refresh_before",
  "scope",
]);

/**
 * Every credential value a config holds: auth fields (and the Basic credentials they make) and
 * sensitive headers (with the token after the scheme). With `literalOnly`, values still written
 * as templates are skipped (a config that failed before its templates were filled).
 */
function credentialValues(cfg: Record<string, any>, out: Set<string>, literalOnly: boolean): void {
  const keep = (v: unknown): v is string => typeof v === "string" && !(literalOnly && v.includes("${"));
  const auth = cfg?.source?.auth;
  if (auth && typeof auth === "object") {
    for (const [k, v] of Object.entries(auth)) if (!AUTH_PUBLIC_KEYS.has(k) && keep(v)) out.add(v);
    if (auth.type === "basic" && keep(auth.username) && (auth.password === undefined || keep(auth.password)))
      out.add(basicCredential(auth.username, auth.password ?? ""));
    if (auth.type === "oauth2" && keep(auth.client_id) && keep(auth.client_secret))
      out.add(basicCredential(auth.client_id, auth.client_secret));
  }
  const maps = [cfg?.source?.headers, ...Object.values(cfg?.streams ?? {}).map((s: any) => s?.headers)];
  for (const h of maps) {
    if (!h || typeof h !== "object") continue;
    for (const [k, v] of Object.entries(h)) {
      if (!SENSITIVE_HEADERS.has(k.toLowerCase()) || !keep(v)) continue;
      out.add(v);
      const token = v.split(/\s+/).slice(1).join(" ");
      if (token) out.add(token);
    }
  }
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: names the template syntax
const PARENT_HINT = " (`${parent.…}` needs a `parent` stream, in `path`, `params`, `headers` or `body`)";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const REQUEST_KEYS = new Set(["path", "params", "headers", "body"]);

function allowedNamespaces(at: KeyPath, streams: Record<string, any>): string[] {
  if (at[0] === "output" && (at[1] === "path" || at[1] === "table") && at.length === 2)
    return ["env", "stream", "pipeline"];
  if (at[0] === "streams" && at.length >= 3 && REQUEST_KEYS.has(String(at[2]))) {
    const stream = streams[String(at[1])];
    if (stream && typeof stream === "object" && stream.parent !== undefined) return ["env", "parent"];
  }
  return ["env"];
}

const URL_PLACES = ["source.base_url", "source.auth.token_url", "output.path"];
function isUrlPlace(at: KeyPath): boolean {
  const p = at.filter((x) => typeof x === "string").join(".");
  return URL_PLACES.includes(p) || p === "source.allowed_hosts";
}

function keepsTemplates(at: KeyPath, streams: Record<string, any>): boolean {
  if (at[0] === "output" && (at[1] === "path" || at[1] === "table") && at.length === 2) return true;
  return (
    at[0] === "streams" &&
    at.length >= 3 &&
    REQUEST_KEYS.has(String(at[2])) &&
    allowedNamespaces(at, streams).includes("parent")
  );
}

/** Every string in a plain value, with its key path. */
function stringsOf(value: unknown, at: (string | number)[]): [(string | number)[], string][] {
  if (typeof value === "string") return [[at, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringsOf(v, [...at, i]));
  if (value && typeof value === "object")
    return Object.entries(value).flatMap(([k, v]) => stringsOf(v, [...at, k]));
  return [];
}

function deepMerge(base: Record<string, any>, over: Record<string, any>): Record<string, any> {
  if (!over || typeof over !== "object" || Array.isArray(over)) return over;
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = base[k];
    out[k] =
      b && typeof b === "object" && !Array.isArray(b) && v && typeof v === "object" && !Array.isArray(v)
        ? deepMerge(b, v)
        : v;
  }
  return out;
}

function hasPath(obj: unknown, p: KeyPath): boolean {
  let cur: any = obj;
  for (const seg of p) {
    if (!cur || typeof cur !== "object" || !(seg in cur)) return false;
    cur = cur[seg];
  }
  return true;
}

/**
 * The number or boolean an env value stands for, where the value is written as one env template
 * alone and the format wants a number or a boolean and no string there; else undefined.
 */
function typedValue(value: string, written: string, at: KeyPath): number | boolean | undefined {
  if (!/^\s*\$\{\s*env\.[A-Za-z_][A-Za-z0-9_]*\s*\}\s*$/.test(written)) return undefined;
  const types = typesAt(at);
  if (types.size === 0 || types.has("string")) return undefined;
  const text = value.trim();
  if (types.has("integer") && /^-?\d+$/.test(text)) return Number(text);
  if (types.has("number") && text !== "" && Number.isFinite(Number(text))) return Number(text);
  if (types.has("boolean") && (text === "true" || text === "false")) return text === "true";
  return undefined;
}

/**
 * In file order, and each mistake once: text merged into several places (`<<: *anchor`) is
 * checked at each of them, but written once; the issue names the other places in its hint.
 */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  const byPlace = new Map<string, { issue: ConfigIssue; also: string[] }>();
  for (const issue of issues) {
    const key = `${issue.file}:${issue.line}:${issue.column}:${issue.code}:${issue.message}`;
    const seen = byPlace.get(key);
    if (!seen) byPlace.set(key, { issue, also: [] });
    else if (issue.path && issue.path !== seen.issue.path && !seen.also.includes(issue.path))
      seen.also.push(issue.path);
  }
  const out = [...byPlace.values()].map(({ issue, also }) => {
    if (!also.length) return issue;
    const merged = `also at ${also.map((p) => `\`${p}\``).join(", ")}, which merge${also.length === 1 ? "s" : ""} this text`;
    return { ...issue, hint: issue.hint ? `${issue.hint}; ${merged}` : merged };
  });
  return out.sort((a, b) =>
    a.file === b.file ? a.line - b.line || a.column - b.column : a.file < b.file ? -1 : 1,
  );
}

const PAGINATE_PATHS = ["cursor", "has_more", "done", "next", "total", "total_pages"];

function checkSemantics(
  cfg: Record<string, any>,
  src: YamlSource,
  project: Project,
  issues: ConfigIssue[],
  recordSchemas: LoadedPipeline["recordSchemas"],
): void {
  const streams = (cfg.streams && typeof cfg.streams === "object" ? cfg.streams : {}) as Record<string, any>;
  const names = Object.keys(streams);
  const jsonPath = (p: KeyPath, value: unknown) => {
    if (typeof value !== "string") return;
    const err = checkJsonPath(value);
    if (err)
      issues.push(
        src.issue("bad_jsonpath", p, `JSONPath does not parse: ${err}`, {
          found: value,
          expected: "a JSONPath like `$.data`",
        }),
      );
  };

  const base = cfg.source?.base_url;
  // Only a base_url that has the format's shape (the format check reports the others once).
  if (typeof base === "string" && /^https?:\/\/[^\s/?#]+[^\s]*$/.test(base)) {
    try {
      new URL(base);
    } catch {
      issues.push(src.issue("bad_url", ["source", "base_url"], `\`${base}\` is not a valid URL`));
    }
  }
  const auth = cfg.source?.auth;
  if (
    auth?.type === "api_key" &&
    (auth.in ?? "header") === "header" &&
    typeof auth.name === "string" &&
    auth.name !== "" &&
    !HEADER_NAME.test(auth.name)
  )
    issues.push(
      src.issue(
        "bad_value",
        ["source", "auth", "name"],
        `the key is sent as a header (\`in: header\`): expected an HTTP header name, found \`${auth.name}\``,
      ),
    );
  const retry = cfg.source?.retry;
  if (retry && typeof retry === "object") {
    const ms = (v: unknown) => {
      try {
        return typeof v === "string" || typeof v === "number" ? parseDuration(v) : null;
      } catch {
        return null;
      }
    };
    const initial = ms(retry.initial_delay ?? "1s");
    const max = ms(retry.max_delay ?? "60s");
    if (initial !== null && max !== null && initial > max)
      issues.push(
        src.issue(
          "conflict",
          ["source", "retry", retry.initial_delay !== undefined ? "initial_delay" : "max_delay"],
          `\`initial_delay\` (${formatDuration(initial)}) is longer than \`max_delay\` (${formatDuration(max)}): the first wait cannot exceed the longest one`,
        ),
      );
  }
  const hosts = cfg.source?.allowed_hosts;
  if (Array.isArray(hosts)) {
    hosts.forEach((h, i) => {
      if (typeof h !== "string") return;
      try {
        new URL(h.includes("://") ? h : `https://${h}`);
      } catch {
        issues.push(
          src.issue(
            "bad_url",
            ["source", "allowed_hosts", i],
            `\`${h}\` is not an origin like \`https://cdn.example.com\``,
          ),
        );
      }
    });
  }

  const outputFormat = cfg.output?.format ?? "jsonl";
  const outputPath = cfg.output?.path;
  if (
    typeof outputPath === "string" &&
    outputFormat !== "sqlite" &&
    outputFormat !== "duckdb" &&
    names.length > 1 &&
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal `${stream}` placeholder
    !outputPath.includes("${stream}")
  ) {
    issues.push(
      src.issue(
        "conflict",
        ["output", "path"],
        `every stream would write to the same file: add \`\${stream}\` to the path (e.g. \`out/\${pipeline}/\${stream}.${outputFormat}\`)`,
      ),
    );
  }

  for (const name of names) {
    const s = streams[name];
    if (!s || typeof s !== "object") continue;
    const at = (...rest: (string | number)[]) => ["streams", name, ...rest];
    jsonPath(at("records"), s.records);
    jsonPath(at("error_path"), s.error_path);
    if (s.fields && typeof s.fields === "object")
      for (const [f, p] of Object.entries(s.fields)) jsonPath(at("fields", f), p);
    const pg = s.paginate;
    if (pg && typeof pg === "object") {
      for (const k of PAGINATE_PATHS) jsonPath(at("paginate", k), pg[k]);
      if (pg.type === "cursor") {
        if (pg.in === "header" && typeof pg.param === "string" && !HEADER_NAME.test(pg.param))
          issues.push(
            src.issue(
              "bad_value",
              at("paginate", "param"),
              `\`in: header\` sends the cursor as a header: expected an HTTP header name, found \`${pg.param}\``,
            ),
          );
        if (pg.cursor === undefined && pg.cursor_header === undefined)
          issues.push(
            src.issue(
              "missing_key",
              at("paginate"),
              "a cursor paginator needs `cursor` (a JSONPath in the body) or `cursor_header`",
              { key: true },
            ),
          );
        if (pg.cursor !== undefined && pg.cursor_header !== undefined)
          issues.push(
            src.issue(
              "conflict",
              at("paginate", "cursor_header"),
              "give `cursor` or `cursor_header`, not both",
              { key: true },
            ),
          );
        if (pg.in === "body" && (s.method ?? "GET") !== "POST")
          issues.push(
            src.issue(
              "conflict",
              at("paginate", "in"),
              "`in: body` sends the cursor in a JSON body: it needs `method: POST`",
            ),
          );
      }
      if (pg.type === "page" && (pg.size_param === undefined) !== (pg.size === undefined))
        issues.push(
          src.issue(
            "missing_key",
            at("paginate", pg.size_param === undefined ? "size" : "size_param"),
            "`size_param` and `size` go together: give both or neither",
            { key: true },
          ),
        );
    }
    if (s.body !== undefined && (s.method ?? "GET") !== "POST")
      issues.push(
        src.issue("conflict", at("body"), "a `body` is sent only with `method: POST`", { key: true }),
      );
    if (s.incremental?.in === "body" && (s.method ?? "GET") !== "POST")
      issues.push(src.issue("conflict", at("incremental", "in"), "`in: body` needs `method: POST`"));

    // Output field names the other keys refer to, when they are known without data.
    if (s.fields && typeof s.fields === "object" && !s.flatten) {
      const fieldNames = new Set([...Object.keys(s.fields), ...Object.keys(s.include_parent ?? {})]);
      const keys = Array.isArray(s.primary_key)
        ? s.primary_key
        : typeof s.primary_key === "string"
          ? [s.primary_key]
          : [];
      keys.forEach((k: string, i: number) => {
        if (typeof k === "string" && k !== "" && !fieldNames.has(k)) {
          const g = closest(k, fieldNames);
          issues.push(
            src.issue(
              "bad_value",
              Array.isArray(s.primary_key) ? at("primary_key", i) : at("primary_key"),
              `\`${k}\` is not an output field${g ? ` (did you mean \`${g}\`?)` : ""}; fields are ${[...fieldNames].join(", ")}`,
            ),
          );
        }
      });
      const cf = s.incremental?.cursor_field;
      if (typeof cf === "string" && !fieldNames.has(cf)) {
        const g = closest(cf, fieldNames);
        issues.push(
          src.issue(
            "bad_value",
            at("incremental", "cursor_field"),
            `\`${cf}\` is not an output field${g ? ` (did you mean \`${g}\`?)` : ""}; fields are ${[...fieldNames].join(", ")}`,
          ),
        );
      }
    }
    if (cfg.output?.nested === "tables" && s.primary_key === undefined)
      issues.push(
        src.issue(
          "missing_key",
          at(),
          "`output.nested: tables` links child rows to their parent by primary key: this stream needs `primary_key`",
          { key: true },
        ),
      );
    if ((cfg.output?.mode ?? "replace") === "merge" && s.primary_key === undefined)
      issues.push(
        src.issue(
          "missing_key",
          at(),
          "`output.mode: merge` upserts by primary key: this stream needs `primary_key`",
          { key: true },
        ),
      );

    // Parents.
    if (s.parent !== undefined && typeof s.parent === "string") {
      if (s.parent === name)
        issues.push(src.issue("parent_cycle", at("parent"), `stream \`${name}\` cannot be its own parent`));
      else if (!streams[s.parent]) {
        const g = closest(
          s.parent,
          names.filter((n) => n !== name),
        );
        issues.push(
          src.issue(
            "unknown_parent",
            at("parent"),
            `no stream \`${s.parent}\`${g ? ` (did you mean \`${g}\`?)` : ""}; streams are ${names.join(", ")}`,
          ),
        );
      }
    }
    if (s.include_parent !== undefined && s.parent === undefined)
      issues.push(
        src.issue("conflict", at("include_parent"), "`include_parent` needs `parent`", { key: true }),
      );
    if (s.on_partition_error !== undefined && s.parent === undefined)
      issues.push(
        src.issue(
          "conflict",
          at("on_partition_error"),
          "`on_partition_error` applies to child streams (with `parent`)",
          { key: true },
        ),
      );

    // Record schema.
    if (
      s.schema !== undefined &&
      (typeof s.schema === "string" || (typeof s.schema === "object" && !Array.isArray(s.schema)))
    ) {
      let schema: Record<string, unknown> | null = null;
      let schemaFile: string | null = null;
      if (typeof s.schema === "string") {
        if (!/^[A-Za-z0-9._-][A-Za-z0-9._/-]*$/.test(s.schema) || s.schema.split("/").includes("..")) {
          issues.push(
            src.issue(
              "schema_missing",
              at("schema"),
              `\`${s.schema}\` is not a file name in the schemas folder`,
            ),
          );
        } else {
          schemaFile = path.join(project.schemasDir, s.schema);
          let text: string | null = null;
          try {
            text = readFileSync(schemaFile, "utf8");
          } catch {
            const available = existsSync(project.schemasDir)
              ? readdirSync(project.schemasDir).filter((f) => f.endsWith(".json"))
              : [];
            const g = closest(s.schema, available);
            issues.push(
              src.issue(
                "schema_missing",
                at("schema"),
                `schema file \`${s.schema}\` not found in ${path.relative(shownFrom(project), project.schemasDir) || "."}${g ? ` (did you mean \`${g}\`?)` : ""}`,
              ),
            );
          }
          if (text !== null) {
            try {
              schema = JSON.parse(text);
            } catch (err) {
              issues.push(
                src.issue(
                  "schema_invalid",
                  at("schema"),
                  `schema file \`${s.schema}\` is not valid JSON: ${(err as Error).message}`,
                ),
              );
            }
          }
        }
      } else schema = s.schema;
      if (schema) {
        try {
          compileRecordSchema(schema);
          recordSchemas.set(name, { schema, file: schemaFile });
        } catch (err) {
          issues.push(
            src.issue("schema_invalid", at("schema"), `schema does not compile: ${(err as Error).message}`),
          );
        }
      }
    }
  }

  // Parent cycles (a → b → a).
  const reported = new Set<string>();
  for (const start of names) {
    const chain: string[] = [start];
    let cur = streams[start]?.parent;
    while (typeof cur === "string" && streams[cur] && cur !== start && !chain.includes(cur)) {
      chain.push(cur);
      cur = streams[cur]?.parent;
    }
    if (cur === start && chain.length > 1 && !chain.some((c) => reported.has(c))) {
      for (const c of chain) reported.add(c);
      issues.push(
        src.issue(
          "parent_cycle",
          ["streams", start, "parent"],
          `parent cycle: ${[...chain, start].join(" → ")}`,
        ),
      );
    }
  }
}
