// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${env.X}` is the file's template syntax
import { CliError, EXIT } from "../io.js";

/** What `init --header … --bearer-env …` sends once, and what it writes in the file instead. */
export interface InitCredentials {
  /** Headers for the probe request, env values filled in. */
  send: Record<string, string>;
  /** `source.headers` entries for the file: templates kept, no literal secret. */
  fileHeaders: [string, string][];
  /** The `auth:` line for the file, or null. */
  authLine: string | null;
  /** The values to mask in anything shown. */
  secrets: string[];
  /** What the user is told (env variables to set). */
  notes: string[];
}

const ENV_TEMPLATE = /\$\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}/g;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Header names whose literal value is a credential: written as an env template, never as is. */
const SECRET_HEADER = /auth|token|key|secret|cookie|session|password|signature|credential/i;

/** The env variable a header's literal secret goes to: `X-Api-Key` → `X_API_KEY`. */
export function envNameFor(header: string): string {
  return (
    header
      .toUpperCase()
      .replace(/[^A-Z0-9]+/g, "_")
      .replace(/^_+|_+$/g, "") || "API_HEADER"
  );
}

function fill(value: string, env: Record<string, string | undefined>, where: string): string {
  return value.replace(ENV_TEMPLATE, (_m, name: string) => {
    const v = env[name];
    if (v === undefined || v === "")
      throw new CliError(
        `${where}: environment variable \`${name}\` is ${v === "" ? "empty" : "not set"}; set it (or put it in .env)`,
        EXIT.config,
      );
    return v;
  });
}

/**
 * `--header 'Name: value'` (repeatable, `${env.X}` allowed) and `--bearer-env VAR`. A literal
 * value in a credential-like header is sent, but the file reads it from `${env.<NAME>}`.
 */
export function initCredentials(
  headers: string[],
  bearerEnv: string | undefined,
  env: Record<string, string | undefined>,
): InitCredentials {
  const out: InitCredentials = { send: {}, fileHeaders: [], authLine: null, secrets: [], notes: [] };
  for (const h of headers) {
    const colon = h.indexOf(":");
    const name = colon > 0 ? h.slice(0, colon).trim() : "";
    if (!HEADER_NAME.test(name))
      throw new CliError(
        "--header: expected `Name: value` (e.g. --header 'X-Api-Key: ${env.API_KEY}')",
        EXIT.config,
      );
    const written = h.slice(colon + 1).trim();
    const value = fill(written, env, `--header ${name}`);
    out.send[name] = value;
    const hasTemplate = written !== value || /\$\{/.test(written);
    if (hasTemplate) {
      out.fileHeaders.push([name, written]);
      out.secrets.push(...[...written.matchAll(ENV_TEMPLATE)].map((m) => env[m[1]] ?? "").filter(Boolean));
    } else if (SECRET_HEADER.test(name)) {
      const envName = envNameFor(name);
      out.fileHeaders.push([name, `\${env.${envName}}`]);
      out.secrets.push(value);
      out.notes.push(
        `the value of header \`${name}\` is not written to the file; the pipeline reads it from \`\${env.${envName}}\` (set ${envName} in the environment or in .env)`,
      );
    } else out.fileHeaders.push([name, written]);
  }
  if (bearerEnv !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(bearerEnv))
      throw new CliError(
        `--bearer-env: expected an environment variable name, found \`${bearerEnv}\``,
        EXIT.config,
      );
    const token = fill(`\${env.${bearerEnv}}`, env, "--bearer-env");
    out.send.Authorization = `Bearer ${token}`;
    out.secrets.push(token);
    out.authLine = `  auth: { type: bearer, token: "\${env.${bearerEnv}}" }`;
  }
  return out;
}

/** A header entry of the file's `source.headers` flow map. */
export function headersLine(entries: [string, string][]): string | null {
  if (!entries.length) return null;
  return `  headers: { ${entries.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(", ")} }`;
}
