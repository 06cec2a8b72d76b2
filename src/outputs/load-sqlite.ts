import { RunError } from "../shared/errors.js";

/**
 * The SQLite writer, imported on first use: better-sqlite3 is a native module that `npm ci`
 * compiles when no prebuilt binary fits the machine, and a failed build must only stop the
 * streams that write SQLite, with what to do about it.
 */
export async function loadSqliteWriter(): Promise<typeof import("./sqlite-writer.js")> {
  try {
    return await import("./sqlite-writer.js");
  } catch (err) {
    const first = String((err as Error)?.message ?? err).split("\n")[0];
    throw new RunError(
      "output",
      `the sqlite output needs the better-sqlite3 package, which did not load (${first}); run \`npm rebuild better-sqlite3\` where pipelines is installed (it needs a C++ compiler and Python when no prebuilt binary fits), or write jsonl, json or csv`,
    );
  }
}
