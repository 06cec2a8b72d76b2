import { readFileSync } from "node:fs";

/**
 * Reads a `.env` file: `NAME=value` lines, `#` comments, optional `export `, single or double
 * quotes (double quotes understand \n). Returns {} when the file does not exist.
 */
// Not util.parseEnv (Node 20.12+): it cuts `a#b` to `a` (a `#` in a password) and `"x \"y\""` at the \".
export function readDotenv(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return {};
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
