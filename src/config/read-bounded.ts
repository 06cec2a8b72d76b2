import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { open } from "node:fs/promises";
import { ConfigError } from "./errors.js";

/**
 * Files read from disk are bounded: a regular file (never a FIFO or a device, which would block
 * or never end), at most `maxBytes` long. Opening with O_NONBLOCK makes a FIFO fail the check
 * instead of hanging; `noFollow` (files of the state folder) refuses a symbolic link, so a value
 * in the state folder never comes from a file outside it.
 */
export const KiB = 1024;
export const MiB = 1024 * 1024;

/** The largest files read at load (see the "Security model" in the README). */
export const MAX_BYTES = {
  /** Real pipeline files are 1–5 KiB; a YAML parse of 1 MiB takes under a second. */
  pipeline: MiB,
  /** `pipelines.config.*`, `.pipelinesrc*`. */
  projectConfig: MiB,
  dotenv: MiB,
  /** JSON Schemas of API objects run to hundreds of KiB at most; JSON.parse is linear. */
  recordSchema: 4 * MiB,
  /** Cursors and a refresh token: a few KiB; 100,000 partitions' positions: about 5 MiB. */
  state: 64 * MiB,
  lock: 4 * KiB,
} as const;

export type FileProblem = "missing" | "folder" | "not_regular" | "symlink" | "too_large";

/** Why a file was not read. `message` completes "<file> …" ("is a folder, not a file"). */
export class FileReadError extends Error {
  constructor(
    readonly file: string,
    readonly problem: FileProblem,
    message: string,
  ) {
    super(message);
  }
}

export function formatSize(n: number): string {
  if (n >= MiB) return `${+(n / MiB).toFixed(1)} MiB`;
  if (n >= KiB) return `${+(n / KiB).toFixed(1)} KiB`;
  return `${n} bytes`;
}

function openFlags(noFollow: boolean): number {
  return constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (noFollow ? (constants.O_NOFOLLOW ?? 0) : 0);
}

function openError(file: string, err: unknown, noFollow: boolean): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return new FileReadError(file, "missing", "does not exist");
  if (noFollow && code === "ELOOP") return new FileReadError(file, "symlink", "is a symbolic link");
  if (code === "EISDIR") return new FileReadError(file, "folder", "is a folder, not a file");
  return err;
}

function checkStats(file: string, st: Stats, what: string, maxBytes: number): void {
  if (st.isDirectory()) throw new FileReadError(file, "folder", "is a folder, not a file");
  if (!st.isFile()) throw new FileReadError(file, "not_regular", "is not a regular file");
  if (st.size > maxBytes) throw tooLarge(file, st.size, what, maxBytes);
}

function tooLarge(file: string, size: number, what: string, maxBytes: number): FileReadError {
  return new FileReadError(file, "too_large", tooLargeMessage(size, what, maxBytes));
}

/** "is 2.1 MiB; a pipeline file may be at most 1 MiB" */
export function tooLargeMessage(size: number, what: string, maxBytes: number): string {
  return `is ${formatSize(size)}; ${what} may be at most ${formatSize(maxBytes)}`;
}

/** The whole file in one read (the first), then small reads up to one byte past the limit. */
function chunkSize(size: number, done: number, maxBytes: number): number {
  return done === 0
    ? Math.min(Math.max(size, 4 * KiB), maxBytes) + 1
    : Math.min(64 * KiB, maxBytes - done + 1);
}

export interface ReadOptions {
  maxBytes: number;
  /** Names the file in the size message: "a pipeline file" may be at most 1 MiB. */
  what: string;
  noFollow?: boolean;
}

/** Reads a text file within the bounds; throws FileReadError (or an I/O error). */
export function readTextSync(file: string, opts: ReadOptions): string {
  let fd: number;
  try {
    fd = openSync(file, openFlags(opts.noFollow ?? false));
  } catch (err) {
    throw openError(file, err, opts.noFollow ?? false);
  }
  try {
    const st = fstatSync(fd);
    checkStats(file, st, opts.what, opts.maxBytes);
    // The file may grow between the check and the read: never more than maxBytes + 1 bytes.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(chunkSize(st.size, length, opts.maxBytes));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
      length += n;
      if (length > opts.maxBytes) throw tooLarge(file, length, opts.what, opts.maxBytes);
    }
    return Buffer.concat(chunks, length).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** readTextSync, without blocking the event loop (files of the state folder, during a run). */
export async function readText(file: string, opts: ReadOptions): Promise<string> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, openFlags(opts.noFollow ?? false));
  } catch (err) {
    throw openError(file, err, opts.noFollow ?? false);
  }
  try {
    const st = await fh.stat();
    checkStats(file, st, opts.what, opts.maxBytes);
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(chunkSize(st.size, length, opts.maxBytes));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
      length += bytesRead;
      if (length > opts.maxBytes) throw tooLarge(file, length, opts.what, opts.maxBytes);
    }
    return Buffer.concat(chunks, length).toString("utf8");
  } finally {
    await fh.close();
  }
}

/**
 * A pipeline file's text, or a ConfigError at its line 1 (too large, not a regular file).
 * `shown` is the file name used in messages.
 */
export function readPipelineText(file: string, shown: string): string {
  try {
    return readTextSync(file, { maxBytes: MAX_BYTES.pipeline, what: "a pipeline file" });
  } catch (err) {
    if (!(err instanceof FileReadError)) throw err;
    throw new ConfigError([
      {
        code: err.problem === "too_large" ? "file_too_large" : "not_a_file",
        file: shown,
        line: 1,
        column: 1,
        path: "",
        message: `the file ${err.message}`,
      },
    ]);
  }
}
