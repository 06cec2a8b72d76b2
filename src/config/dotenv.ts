import { ConfigError } from "./errors.js";
import { FileReadError, MAX_BYTES, readTextSync } from "./read-bounded.js";

/**
 * Reads a `.env` file: `NAME=value` lines, `#` comments, optional `export `, single or double
 * quotes (double quotes understand \n). Returns {} when the file does not exist; a `.env` that is
 * too large or not a regular file is a config error.
 */
// Not util.parseEnv (Node 20.12+): it cuts `a#b` to `a` (a `#` in a password) and `"x \"y\""` at the \".
export function readDotenv(file: string): Record<string, string> {
  let text: string;
  try {
    text = readTextSync(file, { maxBytes: MAX_BYTES.dotenv, what: "a .env file" });
  } catch (err) {
    if (!(err instanceof FileReadError) || err.problem === "missing") return {};
    throw new ConfigError([
      {
        code: err.problem === "too_large" ? "file_too_large" : "not_a_file",
        file,
        line: 1,
        column: 1,
        path: "",
        message: `the file ${err.message}`,
      },
    ]);
  }
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2];
    if (value.startsWith('"') && value.lastIndexOf('"') > 0) {
      value = value.slice(1, value.lastIndexOf('"')).replaceAll("\\n", "\n").replaceAll('\\"', '"');
    } else if (value.startsWith("'") && value.lastIndexOf("'") > 0) {
      value = value.slice(1, value.lastIndexOf("'"));
    } else {
      value = value.replace(/\s+#.*$/, "").trim();
    }
    out[m[1]] = value;
  }
  return out;
}
