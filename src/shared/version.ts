import { readFileSync } from "node:fs";

/**
 * The tool's version, from package.json (`dist/<folder>/` and the bundle in `dist/app/` are both
 * two folders below it): shown by `--version`, in reports and in the User-Agent.
 */
export const VERSION: string = JSON.parse(
  readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
).version;
