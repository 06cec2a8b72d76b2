import path from "node:path";
import { fileURLToPath } from "node:url";
import { listPipelineNames } from "../config/load-pipeline.js";
import { makeProject } from "../config/project.js";
import { startDemoApi } from "../demo/demo-api.js";
import type { CliIO } from "./io.js";

export const DEMO_DIR = fileURLToPath(new URL("../../demo/", import.meta.url));

/**
 * `pipelines demo`: starts the demo API on 127.0.0.1 and runs the demo project's pipelines
 * against it — live progress, output files and HTML reports, no internet needed.
 */
export async function demoCommand(io: CliIO, opts: { dir?: string }): Promise<number> {
  const dir = path.resolve(io.cwd, opts.dir ?? DEMO_DIR);
  const api = await startDemoApi();
  try {
    const names = listPipelineNames(makeProject(dir, null, {}));
    io.stderr.write(
      `Demo API listening on ${api.url} (a local fake of GitHub, Slack, a shop, PokeAPI and an OAuth2 CRM)\n`,
    );
    io.stderr.write(
      `Running ${names.length} pipelines from ${path.relative(io.cwd, dir) || "."}: ${names.join(", ")}\n\n`,
    );
    const { runCommand } = await import("./cmd-run.js");
    const code = await runCommand(
      {
        ...io,
        projectDir: dir,
        env: {
          ...io.env,
          DEMO_API: api.url,
          DEMO_TOKEN: "demo-token-7d1c0b2e",
          DEMO_CLIENT_ID: api.clientId,
          DEMO_CLIENT_SECRET: api.clientSecret,
        },
      },
      names,
      {},
    );
    const rel = (p: string) => path.relative(io.cwd, path.join(dir, p)) || ".";
    // A path in a command to copy: quoted for a POSIX shell when it holds anything but safe characters.
    const arg = (p: string) => (/^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replaceAll("'", `'\\''`)}'`);
    io.stderr.write(
      `\nDemo done. Look at:\n  outputs   ${rel("out")}/ (jsonl, csv, sqlite, duckdb)\n  reports   ${rel("reports")}/<pipeline>/latest.html (open in a browser)\n  query     duckdb ${arg(rel("out/slack.duckdb"))} -c "SELECT user, count(*) AS messages FROM messages GROUP BY user ORDER BY messages DESC"\n  try       pipelines plan shop --project ${arg(rel(""))}   (no network; unset variables show as <unset>)\n`,
    );
    return code;
  } finally {
    await api.close();
  }
}
