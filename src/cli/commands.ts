/**
 * The commands of the CLI as data: name, help text, arguments, options, and the module that runs
 * it (loaded lazily, so `--help` and `validate` start fast). main.ts turns this table into the
 * commander program; a new command is one entry here and one cmd-*.ts module.
 */
import { InvalidArgumentError } from "../vendor/cli-libs.js";
import type { CliIO } from "./io.js";

export interface OptionSpec {
  flags: string;
  description: string;
  /** Parses the value; gets the previous value (the default, or the last one for a repeated option). */
  parse?: (value: string, previous: unknown) => unknown;
  default?: unknown;
}

export interface CommandSpec {
  name: string;
  description: string;
  /** Positional arguments, as commander writes them (`<name>`, `[names...]`) with their help. */
  arguments?: [string, string][];
  options?: OptionSpec[];
  /** Runs the command with the positional values (in order) and the options; returns the exit code. */
  run(io: CliIO, args: unknown[], opts: Record<string, unknown>): Promise<number>;
}

/** A repeatable option: every value, in order. */
function collect(value: string, previous: unknown): string[] {
  return [...(previous as string[]), value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a whole number above 0, found \`${value}\``);
  return n;
}

/** Options of the program and of every command (before or after the command name). */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  {
    flags: "--project <dir>",
    description:
      "the project folder (default: the folder with the project config, from here upwards, else here)",
  },
];

export const COMMANDS: CommandSpec[] = [
  {
    name: "list",
    description: "list the pipelines of this project with their descriptions and streams",
    run: async (io) => (await import("./cmd-list.js")).listCommand(io),
  },
  {
    name: "validate",
    description: "check pipeline files (YAML, format, JSONPaths, schemas, templates, env vars); no network",
    arguments: [["[names...]", "pipelines to check (all when none is named)"]],
    run: async (io, [names]) => (await import("./cmd-validate.js")).validateCommand(io, names as string[]),
  },
  {
    name: "plan",
    description: "print the compiled execution plan of a pipeline (secrets masked); no network",
    arguments: [["<name>", "pipeline name (pipelines/<name>.yaml)"]],
    options: [{ flags: "--json", description: "print the plan as JSON" }],
    run: async (io, [name], opts) =>
      (await import("./cmd-plan.js")).planCommand(io, name as string, opts as { json?: boolean }),
  },
  {
    name: "run",
    description: "run pipelines: fetch every page, write the records, print a summary",
    arguments: [["<names...>", "pipelines to run, one after the other"]],
    options: [
      {
        flags: "-s, --stream <name>",
        description: "run only this stream (and its parents); repeatable",
        parse: collect,
        default: [],
      },
      {
        flags: "--limit <n>",
        description:
          "stop each stream after n records (a replace output that has records is kept: the run is written beside as <name>.preview.<ext>)",
        parse: positiveInt,
      },
      {
        flags: "--max-pages <n>",
        description: "stop each stream after n pages (as --limit)",
        parse: positiveInt,
      },
      {
        flags: "--commit-partial",
        description:
          "commit what the run got even when the commit guard would keep it beside (empty, cut short by --limit/--max-pages, volume drop)",
      },
      {
        flags: "--preview [n]",
        description:
          "print the first n records of each stream as a table (default 20); writes and commits nothing",
        parse: positiveInt,
      },
      { flags: "--full-refresh", description: "ignore the saved incremental cursors (start from `initial`)" },
      { flags: "--json", description: "print a JSON summary on stdout (progress stays on stderr)" },
      {
        flags: "--singer",
        description: "write every stream as Singer messages on stdout instead of its output (a Singer tap)",
      },
      {
        flags: "--state <file>",
        description: "with --singer: start from this Singer state (the last STATE a target kept)",
      },
      {
        flags: "--record [dir]",
        description:
          "keep the run's HTTP exchanges (secrets named), its state and clock for `pipelines test`, and write the first snapshots (default folder: tests/<pipeline>/)",
      },
      {
        flags: "--queue",
        description: "run the requests on `pipelines worker` processes (project config `queue`)",
      },
    ],
    run: async (io, [names], opts) =>
      (await import("./cmd-run.js")).runCommand(
        io,
        names as string[],
        opts as unknown as import("./cmd-run.js").RunCommandOptions & { stream: string[] },
      ),
  },
  {
    name: "test",
    description:
      "replay recorded runs (`run --record`) with no network and compare the outputs with their snapshots",
    arguments: [
      ["[names...]", "pipelines (tests/<name>/) or recording folders (all under tests/ when none)"],
    ],
    options: [{ flags: "--update", description: "rewrite the snapshots from this replay" }],
    run: async (io, [names], opts) =>
      (await import("./cmd-test.js")).testCommand(io, names as string[], opts as { update?: boolean }),
  },
  {
    name: "report",
    description: "print the summary of a pipeline's latest run report",
    arguments: [["<name>", "pipeline name"]],
    options: [
      { flags: "--json", description: "print the report JSON" },
      { flags: "--open", description: "print the path of the HTML report (to open in a browser)" },
    ],
    run: async (io, [name], opts) =>
      (await import("./cmd-report.js")).reportCommand(
        io,
        name as string,
        opts as { json?: boolean; open?: boolean },
      ),
  },
  {
    name: "infer",
    description:
      "fetch a sample of records and write a draft JSON Schema to the file the stream's `schema:` names (else schemas/<pipeline>.<stream>.schema.json, and the line is added)",
    arguments: [["<name>", "pipeline name"]],
    options: [
      { flags: "-s, --stream <name>", description: "only this stream" },
      {
        flags: "--sample <n>",
        description: "records to sample per stream",
        parse: positiveInt,
        default: 500,
      },
      { flags: "--force", description: "overwrite an existing schema file" },
    ],
    run: async (io, [name], opts) =>
      (await import("./cmd-infer.js")).inferCommand(
        io,
        name as string,
        opts as { stream?: string; sample: number; force?: boolean },
      ),
  },
  {
    name: "init",
    description:
      "write a commented pipeline file; with --from-url, guess records and pagination from one request",
    arguments: [["<name>", "pipeline name (pipelines/<name>.yaml)"]],
    options: [
      { flags: "--from-url <url>", description: "probe this URL once (GET)" },
      {
        flags: "--header <header>",
        description: "send `Name: value` with the probe (repeatable; `$" + "{env.X}` allowed)",
        parse: collect,
        default: [],
      },
      {
        flags: "--bearer-env <var>",
        description: "send `Authorization: Bearer <$var>` with the probe; the file reads it from the env",
      },
      { flags: "--force", description: "overwrite an existing file" },
    ],
    run: async (io, [name], opts) =>
      (await import("./cmd-init.js")).initCommand(
        io,
        name as string,
        opts as { fromUrl?: string; force?: boolean; header: string[]; bearerEnv?: string },
      ),
  },
  {
    name: "worker",
    description: "take jobs of queue runs (`run --queue`) from Redis until Ctrl-C (project config `queue`)",
    options: [
      { flags: "--concurrency <n>", description: "jobs at once", parse: positiveInt, default: 4 },
      { flags: "--schedules", description: "also start the pipelines that have a `schedule`" },
    ],
    run: async (io, _args, opts) =>
      (await import("./cmd-worker.js")).workerCommand(
        io,
        opts as { concurrency: number; schedules?: boolean },
      ),
  },
  {
    name: "status",
    description: "show the queue: workers, running runs, queued jobs, next scheduled times",
    options: [{ flags: "--json", description: "print the status as JSON" }],
    run: async (io, _args, opts) =>
      (await import("./cmd-status.js")).statusCommand(io, opts as { json?: boolean }),
  },
  {
    name: "demo",
    description: "start a local demo API and run the demo pipelines against it (no internet needed)",
    options: [{ flags: "--dir <path>", description: "the demo project folder" }],
    run: async (io, _args, opts) => (await import("./cmd-demo.js")).demoCommand(io, opts as { dir?: string }),
  },
];
