import { ConfigError } from "../config/errors.js";
import { plural } from "../shared/format.js";
import { TerminalOutput } from "../shared/terminal.js";
import { VERSION } from "../shared/version.js";
import { Command, CommanderError } from "../vendor/cli-libs.js";
import { COMMANDS, type CommandSpec, GLOBAL_OPTIONS, type OptionSpec } from "./commands.js";
import { CliError, type CliIO, EXIT } from "./io.js";
import { useProjectOption } from "./project-option.js";

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
  const program = newProgram(io);
  for (const o of GLOBAL_OPTIONS) addOption(program, o);
  useProjectOption(program, io);
  for (const spec of COMMANDS)
    addCommand(program, spec, async (args, opts) => {
      code = await spec.run(io, args, opts);
    });
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    return exitCodeFor(err, io);
  }
  return code;
}

function newProgram(io: CliIO): Command {
  return new Command("pipelines")
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
}

/** One entry of the command table as a commander subcommand. */
function addCommand(
  program: Command,
  spec: CommandSpec,
  action: (args: unknown[], opts: Record<string, unknown>) => Promise<void>,
): void {
  const cmd = program
    .command(spec.name)
    .description(spec.description)
    .version(VERSION, "-V, --version", "print the version");
  const positional = spec.arguments ?? [];
  for (const [name, description] of positional) cmd.argument(name, description);
  // A global option may come before the command or after it.
  for (const o of [...(spec.options ?? []), ...GLOBAL_OPTIONS]) addOption(cmd, o);
  // commander calls the action with the positional values, then the options, then the command.
  cmd.action((...values: unknown[]) =>
    action(values.slice(0, positional.length), values[positional.length] as Record<string, unknown>),
  );
}

function addOption(cmd: Command, o: OptionSpec): void {
  if (o.parse) cmd.option(o.flags, o.description, o.parse, o.default);
  else cmd.option(o.flags, o.description);
}

/** The exit code for an error out of parsing or a command, with its message printed. */
function exitCodeFor(err: unknown, io: CliIO): number {
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
