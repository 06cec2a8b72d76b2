import { type ConfigErrorCode, closest } from "../errors.js";
import { isMap } from "../plain-values.js";
import { parseTemplate, type TemplatePart, type TemplateSyntaxError } from "../templates.js";
import { formatKeyPath, type KeyPath } from "../yaml-source.js";
import { emptyEnvProblem } from "./empty-env.js";

/**
 * Templates, wherever they are written (the pipeline file, the project config's `defaults`):
 * syntax, the namespaces a place allows, env variables that are set. One checker, one set of
 * messages; the loader places each finding in its file.
 */

/** A string to check, at its key path in the pipeline (`defaults.` left out). */
export interface TemplateSite {
  path: KeyPath;
  value: string;
}

/** A problem in `sites[site]`, at `offset` in its text (undefined: the string as a whole). */
export interface TemplateFinding {
  site: number;
  code: ConfigErrorCode;
  offset: number | undefined;
  message: string;
  expected?: string;
  found?: string;
  hint?: string;
}

export interface TemplateCheck {
  findings: TemplateFinding[];
  /** Names of the env variables the strings use. */
  envUsed: Set<string>;
  /** Key paths (formatted) whose value is a broken template: the format check skips them. */
  broken: Set<string>;
}

type Env = Record<string, string | undefined>;

// biome-ignore lint/suspicious/noTemplateCurlyInString: names the template syntax
const PARENT_HINT = " (`${parent.…}` needs a `parent` stream, in `path`, `params`, `headers` or `body`)";
const WINDOW_HINT =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: names the template syntax
  " (`${window.…}` needs `windows` on the stream, in `path`, `params`, `headers`, `body` or a field `value`)";
const KNOWN_NAMESPACES = ["env", "parent", "window", "stream", "pipeline", "run"];
const REQUEST_KEYS = new Set(["path", "params", "headers", "body"]);

/** `output.path` and `output.table` name a file or table per stream: `${stream}`, `${pipeline}`. */
function isOutputTemplate(at: KeyPath): boolean {
  return at[0] === "output" && (at[1] === "path" || at[1] === "table") && at.length === 2;
}

/** The namespaces templates at `at` may use; `streams` is the file's `streams` (any shape). */
export function allowedNamespaces(at: KeyPath, streams: unknown): string[] {
  if (isOutputTemplate(at)) return ["env", "stream", "pipeline"];
  // A computed field renders per record (the run's names too); a request, per page.
  const field = isFieldValue(at);
  if (!field && !(at[0] === "streams" && at.length >= 3 && REQUEST_KEYS.has(String(at[2])))) return ["env"];
  const ns = field ? ["env", "run", "pipeline", "stream"] : ["env"];
  if (hasKey(streams, at, "parent")) ns.push("parent");
  if (hasKey(streams, at, "windows")) ns.push("window");
  return ns;
}

/** `streams.<s>.fields.<f>.value` (a computed field: rendered per record). */
function isFieldValue(at: KeyPath): boolean {
  return at.length === 5 && at[0] === "streams" && at[2] === "fields" && at[4] === "value";
}

/** Whether the stream at `at` (`streams.<s>…`) has `key` (`parent`, `windows`). */
function hasKey(streams: unknown, at: KeyPath, key: string): boolean {
  if (!isMap(streams)) return false;
  const stream = streams[String(at[1])];
  return (
    !!stream &&
    typeof stream === "object" &&
    key in stream &&
    (stream as Record<string, unknown>)[key] !== undefined
  );
}

/** Whether the value at `at` keeps its `${parent…}`/`${stream}` templates after env is filled. */
export function keepsTemplates(at: KeyPath, streams: unknown): boolean {
  if (isOutputTemplate(at)) return true;
  if (isFieldValue(at)) return true;
  return (
    at[0] === "streams" &&
    at.length >= 3 &&
    REQUEST_KEYS.has(String(at[2])) &&
    allowedNamespaces(at, streams).length > 1
  );
}

/**
 * Checks every site; a missing env variable is reported at each place it is used (after the
 * other findings), with the list of every missing variable and where to set them (`envFile`).
 */
export function checkTemplates(
  sites: readonly TemplateSite[],
  streams: unknown,
  env: Env,
  envFile: string,
): TemplateCheck {
  const check: TemplateCheck = { findings: [], envUsed: new Set(), broken: new Set() };
  const missing = new Map<string, { site: number; offset: number | undefined }[]>();
  sites.forEach((s, site) => {
    const found = (code: ConfigErrorCode, offset: number | undefined, message: string) => {
      check.findings.push({ site, code, offset, message });
      check.broken.add(formatKeyPath(s.path));
    };
    let parts: TemplatePart[];
    try {
      parts = parseTemplate(s.value).parts;
    } catch (err) {
      const e = err as TemplateSyntaxError;
      found("bad_template", e.offset, e.message);
      return;
    }
    const allowed = allowedNamespaces(s.path, streams);
    for (const part of parts) {
      if (typeof part === "string") continue;
      const problem = partProblem(part, allowed);
      if (problem) found(problem.code, part.offset, problem.message);
      else if (part.ns === "env") {
        const name = part.path[0];
        check.envUsed.add(name);
        const empty = emptyEnvProblem(name, env[name], s.path);
        if (empty) found("missing_env", part.offset, empty);
        if (env[name] !== undefined) continue;
        missing.set(name, [...(missing.get(name) ?? []), { site, offset: part.offset }]);
        check.broken.add(formatKeyPath(s.path));
      }
    }
  });
  const all = [...missing.keys()];
  for (const [name, places] of missing)
    for (const { site, offset } of places)
      check.findings.push({
        site,
        code: "missing_env",
        offset,
        message: `environment variable \`${name}\` is not set`,
        expected: `${name} in the environment or in .env`,
        found: "not set",
        hint: `missing variables: ${all.join(", ")} (set them in the environment or in ${envFile})`,
      });
  return check;
}

/** What is wrong with one `${…}` reference where `allowed` namespaces may be used, if anything. */
function partProblem(
  part: Exclude<TemplatePart, string>,
  allowed: string[],
): { code: ConfigErrorCode; message: string } | null {
  if (!allowed.includes(part.ns)) {
    if (!KNOWN_NAMESPACES.includes(part.ns)) {
      const guess = closest(part.ns, allowed);
      return {
        code: "unknown_namespace",
        message: `unknown template namespace \`${part.ns}\` in \`${part.raw}\`; use ${allowed.map((n) => `\`${n}\``).join(" or ")}${guess ? ` (did you mean \`${guess}\`?)` : ""}`,
      };
    }
    const uses = allowed
      .map((n) => `\`\${${n}${n === "stream" || n === "pipeline" ? "" : ".…"}}\``)
      .join(", ");
    return {
      code: "bad_template",
      message: `\`${part.raw}\` cannot be used here; templates here may use ${uses}${part.ns === "parent" ? PARENT_HINT : part.ns === "window" ? WINDOW_HINT : ""}`,
    };
  }
  if (part.ns === "env" && part.path.length !== 1)
    return {
      code: "bad_template",
      message: `\`${part.raw}\`: expected \`\${env.NAME}\` with one variable name`,
    };
  if (part.ns === "parent" && part.path.length === 0)
    return { code: "bad_template", message: `\`${part.raw}\`: expected \`\${parent.field}\`` };
  if (part.ns === "window" && (part.path.length !== 1 || !["start", "end", "last"].includes(part.path[0])))
    return {
      code: "bad_template",
      message: `\`${part.raw}\`: expected \`\${window.start}\`, \`\${window.end}\` or \`\${window.last}\``,
    };
  if (part.ns === "run" && (part.path.length !== 1 || !["id", "started_at"].includes(part.path[0])))
    return {
      code: "bad_template",
      message: `\`${part.raw}\`: expected \`\${run.id}\` or \`\${run.started_at}\``,
    };
  if ((part.ns === "stream" || part.ns === "pipeline") && part.path.length)
    return { code: "bad_template", message: `\`${part.raw}\`: expected \`\${${part.ns}}\`` };
  return null;
}
