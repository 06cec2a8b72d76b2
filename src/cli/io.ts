import type { Output } from "../shared/output.js";

export type { Output };

/** Everything a command touches of the outside world, so tests can run the CLI in-process. */
export interface CliIO {
  stdout: Output;
  stderr: Output;
  cwd: string;
  /** The project folder given with `--project <dir>` (default: found from `cwd` upwards). */
  projectDir?: string;
  env: Record<string, string | undefined>;
  /** Aborted on SIGINT/SIGTERM by the bin; a run stops; nothing more commits after it. */
  signal?: AbortSignal;
}

export const EXIT = { ok: 0, runFailed: 1, config: 2, quality: 3 } as const;

/** An error that ends the command with a given exit code and message (no stack). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** A run refused because its pipeline's run lock is held by a run still going (a schedule skips it). */
export class StillRunningError extends CliError {}
