import { ConfigError } from "../config/errors.js";
import { plural } from "../shared/format.js";
import { TerminalOutput } from "../shared/terminal.js";
import { VERSION } from "../shared/version.js";
import { Command, CommanderError, InvalidArgumentError } from "../vendor/cli-libs.js";
import { CliError, type CliIO, EXIT } from "./io.js";
import { projectOption, withProjectOption } from "./project-option.js";

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a whole number above 0, found \`${value}\``);
  return n;
}

/**
 * The CLI as a function: parses argv, runs one command, returns its exit code. Commands are
 * loaded lazily so `--help` and `validate` start fast. Only bin.ts calls process.exit.
 */
export async function run(argv: string[], cliIO: CliIO): Promise<number> {
  // Everything printed goes through terminalText: text from an API or a file cannot drive the
  // terminal (escape sequences, title, bell). JSON output stays valid (`\uXXXX` escapes).
  const io: CliIO = {
    ...cliIO,
    stdout: new TerminalOutput(cliIO.stdout),
    stderr: new TerminalOutput(cliIO.stderr),
  };
  let code: number = EXIT.ok;
  const program = new Command("pipelines")
    .description(
      "Declarative REST API ingestion: YAML pipeline files in, validated records and a report out.",
    )
    .version(VERSION, "-V, --version", "print the version")
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      getOutHelpWidth: () => io.stdout.columns ?? 100,
      getErrHelpWidth: () => io.stderr.columns ?? 100,
    })
    .addHelpText(
      "after",
      `
Exit codes: 0 success, 1 a run failed, 2 usage or config error (nothing was sent),
3 data-quality threshold or drift: fail breached.

A project is a folder with pipelines/ (one YAML file per pipeline) and schemas/.
Format reference: README.md ("Pipeline file format").
`,
    );

  projectOption(program, io);
  const command = (name: string, description: string) =>
    withProjectOption(program.command(name).description(description)).version(
      VERSION,
      "-V, --version",
      "print the version",
    );

  command("list", "list the pipelines of this project with their descriptions and streams").action(
    async () => {
      const { listCommand } = await import("./cmd-list.js");
      code = await listCommand(io);
    },
  );

  command(
    "validate",
    "check pipeline files (YAML, format, JSONPaths, schemas, templates, env vars); no network",
  )
    .argument("[names...]", "pipelines to check (all when none is named)")
    .action(async (names: string[]) => {
      const { validateCommand } = await import("./cmd-validate.js");
      code = await validateCommand(io, names);
    });

  command("plan", "print the compiled execution plan of a pipeline (secrets masked); no network")
    .argument("<name>", "pipeline name (pipelines/<name>.yaml)")
    .option("--json", "print the plan as JSON")
    .action(async (name: string, opts: { json?: boolean }) => {
      const { planCommand } = await import("./cmd-plan.js");
      code = await planCommand(io, name, opts);
    });

  command("run", "run pipelines: fetch every page, write the records, print a summary")
    .argument("<names...>", "pipelines to run, one after the other")
    .option("-s, --stream <name>", "run only this stream (and its parents); repeatable", collect, [])
    .option("--limit <n>", "stop each stream after n records (the output is still written)", positiveInt)
    .option("--max-pages <n>", "stop each stream after n pages", positiveInt)
    .option("--full-refresh", "ignore the saved incremental cursors (start from `initial`)")
    .option("--json", "print a JSON summary on stdout (progress stays on stderr)")
    .action(
      async (
        names: string[],
        opts: { stream: string[]; limit?: number; maxPages?: number; fullRefresh?: boolean; json?: boolean },
      ) => {
        const { runCommand } = await import("./cmd-run.js");
        code = await runCommand(io, names, opts);
      },
    );

  command("report", "print the summary of a pipeline's latest run report")
    .argument("<name>", "pipeline name")
    .option("--json", "print the report JSON")
    .option("--open", "print the path of the HTML report (to open in a browser)")
    .action(async (name: string, opts: { json?: boolean; open?: boolean }) => {
      const { reportCommand } = await import("./cmd-report.js");
      code = await reportCommand(io, name, opts);
    });

  command(
    "infer",
    "fetch a sample of records and write a draft JSON Schema to the file the stream's `schema:` names (else schemas/<pipeline>.<stream>.schema.json, and the line is added)",
  )
    .argument("<name>", "pipeline name")
    .option("-s, --stream <name>", "only this stream")
    .option("--sample <n>", "records to sample per stream", positiveInt, 500)
    .option("--force", "overwrite an existing schema file")
    .action(async (name: string, opts: { stream?: string; sample: number; force?: boolean }) => {
      const { inferCommand } = await import("./cmd-infer.js");
      code = await inferCommand(io, name, opts);
    });

  command(
    "init",
    "write a commented pipeline file; with --from-url, guess records and pagination from one request",
  )
    .argument("<name>", "pipeline name (pipelines/<name>.yaml)")
    .option("--from-url <url>", "probe this URL once (GET)")
    .option(
      "--header <header>",
      "send `Name: value` with the probe (repeatable; `$" + "{env.X}` allowed)",
      collect,
      [],
    )
    .option(
      "--bearer-env <var>",
      "send `Authorization: Bearer <$var>` with the probe; the file reads it from the env",
    )
    .option("--force", "overwrite an existing file")
    .action(
      async (
        name: string,
        opts: { fromUrl?: string; force?: boolean; header: string[]; bearerEnv?: string },
      ) => {
        const { initCommand } = await import("./cmd-init.js");
        code = await initCommand(io, name, opts);
      },
    );

  command("demo", "start a local demo API and run the demo pipelines against it (no internet needed)")
    .option("--dir <path>", "the demo project folder", undefined)
    .action(async (opts: { dir?: string }) => {
      const { demoCommand } = await import("./cmd-demo.js");
      code = await demoCommand(io, opts);
    });

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return EXIT.ok;
      // `pipelines` with no command prints the help as an error (exit code 1 from commander).
      if (err.code === "commander.help") return err.exitCode === 0 ? EXIT.ok : EXIT.config;
      return EXIT.config;
    }
    if (err instanceof ConfigError) {
      io.stderr.write(`${err.message}\n${plural(err.issues.length, "error")}; nothing was sent.\n`);
      return EXIT.config;
    }
    if (err instanceof CliError) {
      io.stderr.write(`error: ${err.message}\n`);
      return err.exitCode;
    }
    io.stderr.write(`internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return EXIT.runFailed;
  }
  return code;
}
