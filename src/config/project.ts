import { readFile, realpath } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Loader } from "../vendor/config-libs.js";
import { importModule } from "../vendor/load-bundle.js";
import { ConfigError, type ConfigIssue, closest, excerptAt } from "./errors.js";
import { MAX_BYTES, tooLargeMessage } from "./read-bounded.js";

/** Where a project keeps its files, from the cosmiconfig `pipelines` config (or defaults). */
export interface Project {
  root: string;
  /** Where the command runs; file names in messages are relative to it (default: process.cwd()). */
  cwd?: string;
  configFile: string | null;
  pipelinesDir: string;
  schemasDir: string;
  outDir: string;
  reportsDir: string;
  stateDir: string;
  /** Where a key path of the project config is written (line 1, column 1 when unknown: a JS config). */
  placeOf?: PlaceOf;
  /** Merged under every pipeline's `source`, `output` and `validation`. */
  defaults: {
    source?: Record<string, unknown>;
    output?: Record<string, unknown>;
    validation?: Record<string, unknown>;
  };
  /** `queue: { redis: ${env.REDIS_URL} }`: distributed runs (src/queue/); the URL as written (env unfilled). */
  queue?: { redis: string; prefix?: string };
}

/** The line and column of a key path in the project config (`key`: of the key, not its value). */
export type PlaceOf = (path: ReadonlyArray<string | number>, key?: boolean) => Place;
/** A place in the project config, with its source line to show under the message. */
export interface Place {
  line: number;
  column: number;
  excerpt: string | undefined;
}

const DIR_KEYS = ["pipelinesDir", "schemasDir", "outDir", "reportsDir", "stateDir"] as const;
const DIR_DEFAULTS: Record<(typeof DIR_KEYS)[number], string> = {
  pipelinesDir: "pipelines",
  schemasDir: "schemas",
  outDir: "out",
  reportsDir: "reports",
  stateDir: ".pipelines/state",
};
const DEFAULT_KEYS = ["source", "output", "validation"];

export const SEARCH_PLACES = [
  "package.json",
  ".pipelinesrc",
  ".pipelinesrc.json",
  ".pipelinesrc.yaml",
  ".pipelinesrc.yml",
  ".pipelinesrc.js",
  ".pipelinesrc.mjs",
  ".pipelinesrc.cjs",
  "pipelines.config.json",
  "pipelines.config.yaml",
  "pipelines.config.yml",
  "pipelines.config.js",
  "pipelines.config.mjs",
  "pipelines.config.cjs",
];

/**
 * Finds the project config from `dir` upwards; without one, `dir` is the project root. File names
 * in messages are relative to `cwd` (default: `dir`).
 */
export async function loadProject(dir: string, cwd = dir): Promise<Project> {
  const { cosmiconfig, defaultLoaders } = await import("../vendor/config-libs.js");
  // A YAML or JSON config is bounded like a pipeline file (package.json is the project's own).
  const bounded =
    (load: Loader): Loader =>
    (filepath, content) => {
      const size = Buffer.byteLength(content);
      if (path.basename(filepath) !== "package.json" && size > MAX_BYTES.projectConfig)
        throw new Error(`the file ${tooLargeMessage(size, "a project config", MAX_BYTES.projectConfig)}`);
      return load(filepath, content);
    };
  const explorer = cosmiconfig("pipelines", {
    searchPlaces: SEARCH_PLACES,
    // JavaScript configs are imported by importModule, not by cosmiconfig's import(): the bundled
    // CLI runs in a vm.Script, where Node 20 allows import() only behind an experimental flag.
    loaders: {
      ".js": importConfig,
      ".mjs": importConfig,
      ".cjs": importConfig,
      ".json": bounded(defaultLoaders[".json"]),
      ".yaml": bounded(defaultLoaders[".yaml"]),
      ".yml": bounded(defaultLoaders[".yml"]),
      noExt: bounded(defaultLoaders.noExt),
    },
    searchStrategy: "global",
    cache: false,
  });
  let found: { config: unknown; filepath: string; isEmpty?: boolean } | null;
  try {
    found = await explorer.search(dir);
  } catch (err) {
    const e = err as Error & { filepath?: string; mark?: { line: number; column: number } };
    throw new ConfigError([
      {
        code: "project_config",
        file: e.filepath ?? dir,
        line: (e.mark?.line ?? 0) + 1,
        column: (e.mark?.column ?? 0) + 1,
        path: "",
        message: `project config does not load: ${e.message.split("\n")[0]}`,
      },
    ]);
  }
  if (!found || found.isEmpty) return makeProject(dir, null, {}, cwd);
  const placeOf = await placesIn(found.filepath);
  return makeProject(path.dirname(found.filepath), found.filepath, found.config, cwd, placeOf);
}

/**
 * Where keys are written in a YAML or JSON project config (in package.json: under `pipelines`);
 * undefined for a JavaScript config, whose values have no place in a file.
 */
async function placesIn(file: string): Promise<PlaceOf | undefined> {
  if (/\.[cm]?js$/.test(file)) return undefined;
  const text = await readFile(file, "utf8").catch(() => null);
  if (text === null) return undefined;
  const { YamlSource } = await import("./yaml-source.js");
  const src = new YamlSource(file, text);
  const prefix = path.basename(file) === "package.json" ? ["pipelines"] : [];
  return (at, key) => {
    const { line, column } = src.locate([...prefix, ...at], { key });
    return { line, column, excerpt: excerptAt(text, line, column) };
  };
}

/** The place of a key path of the project config's `defaults` (line 1, column 1 when unknown). */
export function defaultsPlace(project: Project, at: ReadonlyArray<string | number>): Place {
  return project.placeOf?.(["defaults", ...at]) ?? { line: 1, column: 1, excerpt: undefined };
}

export function makeProject(
  root: string,
  configFile: string | null,
  config: unknown,
  cwd?: string,
  placeOf?: PlaceOf,
): Project {
  const issues: ConfigIssue[] = [];
  // Named as pipeline files are: relative to where the command runs.
  const file = configFile ? path.relative(cwd ?? process.cwd(), configFile) || configFile : root;
  const bad = (at: string[], message: string, key = false, hint?: string) =>
    issues.push({
      code: "project_config",
      file,
      ...(placeOf?.(at, key) ?? { line: 1, column: 1, excerpt: undefined }),
      path: at.join("."),
      message,
      ...(hint ? { hint } : {}),
    });
  const unknown = (at: string[], what: string, allowed: string[]) => {
    const name = at[at.length - 1];
    const guess = closest(name, allowed);
    bad(
      at,
      `unknown ${what} \`${name}\`${guess ? ` (did you mean \`${guess}\`?)` : ""}; use one of ${allowed.join(", ")}`,
      true,
      guess ? `did you mean \`${guess}\`?` : undefined,
    );
  };
  const cfg = (config ?? {}) as Record<string, unknown>;
  if (typeof cfg !== "object" || Array.isArray(cfg)) bad([], "expected a map of settings");
  const known = new Set<string>([...DIR_KEYS, "defaults", "queue", "$schema"]);
  for (const key of Object.keys(cfg))
    if (!known.has(key)) unknown([key], "setting", [...DIR_KEYS, "defaults", "queue"]);
  const dirs = { ...DIR_DEFAULTS };
  for (const key of DIR_KEYS) {
    const v = cfg[key];
    if (v === undefined) continue;
    if (typeof v !== "string" || !v) bad([key], `expected a directory path, found ${JSON.stringify(v)}`);
    else dirs[key] = v;
  }
  const defaults = (cfg.defaults ?? {}) as Project["defaults"];
  if (typeof defaults !== "object" || Array.isArray(defaults))
    bad(["defaults"], "expected a map with source, output, validation");
  else
    for (const [k, v] of Object.entries(defaults)) {
      if (!DEFAULT_KEYS.includes(k)) unknown(["defaults", k], "section", DEFAULT_KEYS);
      else if (!v || typeof v !== "object" || Array.isArray(v)) bad(["defaults", k], "expected a map");
    }
  const queue = queueSetting(cfg.queue, (key, message) => bad(key.split("."), message));
  if (issues.length) throw new ConfigError(issues);
  const abs = (p: string) => path.resolve(root, p);
  return {
    root,
    ...(cwd === undefined ? {} : { cwd }),
    configFile,
    pipelinesDir: abs(dirs.pipelinesDir),
    schemasDir: abs(dirs.schemasDir),
    outDir: abs(dirs.outDir),
    reportsDir: abs(dirs.reportsDir),
    stateDir: abs(dirs.stateDir),
    ...(placeOf ? { placeOf } : {}),
    defaults,
    ...(queue ? { queue } : {}),
  };
}

/** `queue: { redis: <url or ${env.NAME}>, prefix?: <key prefix> }`. */
function queueSetting(v: unknown, bad: (key: string, message: string) => void): Project["queue"] | undefined {
  if (v === undefined) return undefined;
  const q = v as Record<string, unknown>;
  if (!q || typeof q !== "object" || Array.isArray(q)) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own `${env.…}` syntax, shown to the user
    bad("queue", "expected a map: `queue: { redis: ${env.REDIS_URL} }`");
    return undefined;
  }
  for (const k of Object.keys(q))
    if (k !== "redis" && k !== "prefix") bad(`queue.${k}`, "unknown setting; use redis, prefix");
  if (typeof q.redis !== "string" || !q.redis) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own `${env.…}` syntax, shown to the user
    bad("queue.redis", "expected the Redis URL (`redis://host:6379/0`), usually `${env.REDIS_URL}`");
    return undefined;
  }
  // Filled only as the whole value: a `${env.…}` inside the URL would be used as written.
  if (q.redis.includes("${") && !/^\$\{env\.[A-Za-z_][A-Za-z0-9_]*\}$/.test(q.redis))
    bad(
      "queue.redis",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own `${env.…}` syntax, shown to the user
      "`${env.…}` is filled only as the whole value: put the whole URL in the variable (`redis: ${env.REDIS_URL}`)",
    );
  if (q.prefix !== undefined && (typeof q.prefix !== "string" || !/^[A-Za-z0-9_.-]+$/.test(q.prefix)))
    bad("queue.prefix", "expected a key prefix of letters, digits, `_`, `.` and `-`");
  return { redis: q.redis, ...(typeof q.prefix === "string" ? { prefix: q.prefix } : {}) };
}

/** Loads a `.js`, `.mjs` or `.cjs` project config: its default export (or `module.exports`). */
async function importConfig(filepath: string): Promise<unknown> {
  const mod = await importModule(pathToFileURL(await realpath(filepath)).href);
  return mod.default;
}

/** File names in messages are relative to the directory the command runs in. */
export function shownFrom(project: Project): string {
  return project.cwd ?? process.cwd();
}
