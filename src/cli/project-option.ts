import path from "node:path";
import type { Command } from "../vendor/cli-libs.js";
import type { CliIO } from "./io.js";

const FLAGS = "--project <dir>";
const HELP = "the project folder (default: the folder with the project config, from here upwards, else here)";

/**
 * `--project <dir>`, before the command (`pipelines --project x run a`) or after it
 * (`pipelines run a --project x`): the command then reads and writes that project, while file
 * names in messages stay relative to the folder it was started in.
 */
export function projectOption(program: Command, io: CliIO): void {
  program.option(FLAGS, HELP);
  program.hook("preAction", (_program, action) => {
    const dir = (action.opts().project ?? program.opts().project) as string | undefined;
    if (dir) io.projectDir = path.resolve(io.cwd, dir);
  });
}

/** The same option on a command, so it may follow the command name. */
export function withProjectOption(command: Command): Command {
  return command.option(FLAGS, HELP);
}
