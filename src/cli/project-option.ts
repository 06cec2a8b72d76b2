import path from "node:path";
import type { Command } from "../vendor/cli-libs.js";
import type { CliIO } from "./io.js";

/**
 * `--project <dir>` (a global option of the command table), before the command
 * (`pipelines --project x run a`) or after it (`pipelines run a --project x`): the command then
 * reads and writes that project, while file names in messages stay relative to the folder it
 * was started in.
 */
export function useProjectOption(program: Command, io: CliIO): void {
  program.hook("preAction", (_program, action) => {
    const dir = (action.opts().project ?? program.opts().project) as string | undefined;
    if (dir) io.projectDir = path.resolve(io.cwd, dir);
  });
}
