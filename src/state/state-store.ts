import { stateFile } from "../compile/layout.js";
import { FileReadError, MAX_BYTES, readText } from "../config/read-bounded.js";
import { writeAtomic } from "../shared/atomic-write.js";

/** One JSON file per pipeline in the state folder. */
export interface PipelineState {
  version: 1;
  updated_at?: string;
  /** Incremental cursors by stream. */
  streams?: Record<string, StreamState>;
  /** A rotated OAuth2 refresh token (the file is written with mode 0600). */
  auth?: { refresh_token?: string };
}

/** One stream's saved position(s). */
export interface StreamState {
  /** The v1 cursor; for a windowed stream, the end of its last committed window. */
  cursor?: string | number;
  /** Per partition (format 1.1): partition key → position. */
  partitions?: Record<string, string | number>;
  /** Checkpointed file outputs: path → committed length in bytes (longer files are cut back). */
  files?: Record<string, number>;
  updated_at?: string;
}

/**
 * A state file that cannot be used: not a regular file (a symbolic link is refused too, so state
 * never comes from outside the state folder), too large, not JSON, or not of the shape above.
 * It is never discarded (that would reset the cursors: a silent full reload); the run stops
 * before anything is sent (cmd-run reads the state first) and the user fixes or moves the file.
 * `problem` completes "state file <file> …" and never quotes the file (it may hold a token).
 */
export class StateFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`state file ${file} ${problem}`);
  }
}

/**
 * Reads and replaces a pipeline's state file atomically (temp file, fsync, rename). Updates are
 * serialized, so a token rotation mid-run and the cursors at the end never overwrite each other.
 */
export class StateStore {
  private queue: Promise<unknown> = Promise.resolve();
  /** The state as last written by this store (the run lock keeps other writers away). */
  private last: PipelineState | null = null;
  readonly file: string;

  constructor(stateDir: string, pipeline: string) {
    this.file = stateFile(stateDir, pipeline);
  }

  /** The state; `{ version: 1 }` when there is no file yet. Throws StateFileError. */
  async read(): Promise<PipelineState> {
    let text: string;
    try {
      text = await readText(this.file, { maxBytes: MAX_BYTES.state, what: "a state file", noFollow: true });
    } catch (err) {
      if (!(err instanceof FileReadError)) throw err;
      if (err.problem === "missing") return { version: 1 };
      throw new StateFileError(this.file, err.message);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      // Only the position: V8 may quote the text, and the file may hold a refresh token.
      const at = /position (\d+)/.exec((err as Error).message);
      throw new StateFileError(
        this.file,
        `is not valid JSON${at ? ` (${positionIn(text, Number(at[1]))})` : ""}`,
      );
    }
    const problem = checkState(parsed);
    if (problem) throw new StateFileError(this.file, `has an unexpected shape: ${problem}`);
    return { version: 1, ...(parsed as Partial<PipelineState>) };
  }

  update(change: (state: PipelineState) => PipelineState | undefined): Promise<void> {
    const next = this.queue.then(async () => {
      const current = this.last ?? (await this.read());
      const updated = change(current) ?? current;
      updated.updated_at = new Date().toISOString();
      await this.store(updated);
      this.last = updated;
      this.saved(updated);
    });
    this.queue = next.catch(() => {});
    return next;
  }

  private readonly listeners: ((state: PipelineState) => void)[] = [];

  /** `listener` is told each state an update saved (a run's Singer bookmarks follow it). */
  onUpdate(listener: (state: PipelineState) => void): void {
    this.listeners.push(listener);
  }

  /** An update saved `state`: the listeners are told. */
  protected saved(state: PipelineState): void {
    for (const listener of this.listeners) listener(state);
  }

  /** Where an update goes: the state file (RedisStateStore: its key in Redis). */
  protected async store(updated: PipelineState): Promise<void> {
    // Many partitions: no indentation (100,000 partitions stay a few MB, written fast).
    const big = Object.values(updated.streams ?? {}).some((s) => s.partitions);
    await writeAtomic(this.file, `${big ? JSON.stringify(updated) : JSON.stringify(updated, null, 2)}\n`);
  }
}

/** A map whose values all pass `ok`, or undefined; else what is wrong (one value, never quoted). */
function mapProblem(v: unknown, at: string, what: string, ok: (x: unknown) => boolean): string | null {
  if (v === undefined) return null;
  if (!isMap(v)) return `\`${at}\`: expected a map, found ${kind(v)}`;
  for (const [k, x] of Object.entries(v))
    if (!ok(x)) return `\`${at}${keyOf(k)}\`: expected ${what}, found ${kind(x)}`;
  return null;
}

function positionIn(text: string, offset: number): string {
  const before = text.slice(0, offset).split("\n");
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** "a list", "a string", "null": what a value is, never what it says. */
function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  return `a ${typeof v}`;
}

/** A key path for messages; a stream name read from the file is shown escaped. */
function keyOf(name: string): string {
  return /^[A-Za-z0-9_-]{1,100}$/.test(name)
    ? `.${name}`
    : `[${JSON.stringify(name.slice(0, 100)).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}]`;
}

/**
 * What is wrong with a parsed state file, or null. Only the keys this version reads are checked
 * (unknown keys are kept as they are): `version`, `updated_at`, `streams.<name>.cursor` and
 * `.updated_at`, `auth.refresh_token`.
 */
export function checkState(v: unknown): string | null {
  const expected = (key: string, what: string, found: unknown) =>
    `\`${key}\`: expected ${what}, found ${kind(found)}`;
  if (!isMap(v)) return `expected a map like {"version": 1, "streams": {…}}, found ${kind(v)}`;
  if (v.version !== undefined && v.version !== 1)
    return `\`version\`: expected 1, found ${typeof v.version === "number" ? v.version : kind(v.version)} (written by another version of pipelines?)`;
  if (v.updated_at !== undefined && typeof v.updated_at !== "string")
    return expected("updated_at", "a string", v.updated_at);
  if (v.streams !== undefined) {
    if (!isMap(v.streams)) return expected("streams", "a map", v.streams);
    for (const [name, s] of Object.entries(v.streams)) {
      const at = `streams${keyOf(name)}`;
      if (!isMap(s)) return expected(at, "a map", s);
      const c = s.cursor;
      if (
        c !== undefined &&
        c !== null &&
        typeof c !== "string" &&
        !(typeof c === "number" && Number.isFinite(c))
      )
        return expected(`${at}.cursor`, "a string or a number", c);
      if (s.updated_at !== undefined && typeof s.updated_at !== "string")
        return expected(`${at}.updated_at`, "a string", s.updated_at);
      const problem =
        mapProblem(
          s.partitions,
          `${at}.partitions`,
          "a string or a number",
          (x) => typeof x === "string" || (typeof x === "number" && Number.isFinite(x)),
        ) ??
        mapProblem(
          s.files,
          `${at}.files`,
          "a length in bytes",
          (x) => Number.isSafeInteger(x) && (x as number) >= 0,
        );
      if (problem) return problem;
    }
  }
  if (v.auth !== undefined) {
    if (!isMap(v.auth)) return expected("auth", "a map", v.auth);
    if (v.auth.refresh_token !== undefined && typeof v.auth.refresh_token !== "string")
      return expected("auth.refresh_token", "a string", v.auth.refresh_token);
  }
  return null;
}
