import path from "node:path";
import { defaultQuarantinePath, singerOutputPath } from "../compile/layout.js";
import type { ExecutionPlan, StreamPlan } from "../compile/plan.js";
import { readText } from "../config/read-bounded.js";
import {
  bookmarkOf,
  endSingerRun,
  finishSingerFiles,
  noteSingerPositions,
  positionsOf,
  type SingerChannel,
  startSingerRun,
} from "../outputs/singer-writer.js";
import type { Output } from "../shared/output.js";
import { rawOutput } from "../shared/terminal.js";
import { type PipelineState, StateStore } from "../state/state-store.js";
import { CliError, EXIT } from "./io.js";

/** Singer bookmarks by stream: `{ <stream>: { <cursor field>: <value> } }`. */
type Bookmarks = Record<string, Record<string, unknown>>;

/**
 * `run <name> --singer`: every stream of the pipeline is written as Singer messages on standard
 * output, whatever its `output` says (nothing is written to the configured destination); the
 * quarantine goes to `out/<pipeline>/<stream>.invalid.jsonl`.
 */
export function singerPlan(plan: ExecutionPlan): ExecutionPlan {
  const streams = plan.streams.map(
    (s): StreamPlan => ({
      ...s,
      output: {
        format: "singer",
        mode: s.output.mode,
        path: singerOutputPath(plan.dirs.out, plan.pipeline, s.name),
        singer: { stdout: true },
        where: "standard output (Singer)",
        quarantine: defaultQuarantinePath(plan.dirs.out, plan.pipeline, s.name),
      },
    }),
  );
  return { ...plan, streams };
}

/** Whether any stream of the plan sends Singer messages to standard output. */
export function writesSingerToStdout(plan: ExecutionPlan): boolean {
  return plan.streams.some((s) => s.output.format === "singer" && s.output.singer?.stdout);
}

/**
 * A state store for `run --singer`: the stream positions live in memory for the run (the Singer
 * target keeps them: it gets a STATE message after each stream), and the state folder's file is
 * left alone — except its `auth`: a refresh token the server rotated during the run replaces the
 * saved one there (the old one no longer works, and no Singer message may carry it), and a
 * run's token comes from there even when `--state FILE` gives the positions.
 */
export class MemoryStateStore extends StateStore {
  private current: Promise<PipelineState>;
  /** The refresh token the file holds (as read, then as written here). */
  private savedToken: Promise<string | undefined>;
  private writes: Promise<void> = Promise.resolve();

  constructor(stateDir: string, pipeline: string, initial?: PipelineState) {
    super(stateDir, pipeline);
    const onDisk = super.read();
    this.savedToken = onDisk.then(
      (s) => s.auth?.refresh_token,
      () => undefined,
    );
    this.current = initial ? onDisk.then((s) => (s.auth ? { ...initial, auth: s.auth } : initial)) : onDisk;
  }

  override read(): Promise<PipelineState> {
    return this.current;
  }

  override update(change: (state: PipelineState) => PipelineState | undefined): Promise<void> {
    const next = this.current.then((s) => change(structuredClone(s)) ?? s);
    this.current = next;
    const written = next.then(async (s) => {
      this.saved(s);
      const token = s.auth?.refresh_token;
      if (token === undefined || token === (await this.savedToken)) return;
      this.savedToken = Promise.resolve(token);
      await this.saveAuth(s.auth);
    });
    return written;
  }

  /** The file's state with this `auth`, written in turn (its positions untouched). */
  private saveAuth(auth: PipelineState["auth"]): Promise<void> {
    const write = this.writes.then(async () => {
      const onDisk = await super.read();
      await this.store({ ...onDisk, auth, updated_at: new Date().toISOString() });
    });
    this.writes = write.catch(() => {});
    return write;
  }
}

/**
 * The state `--state FILE` gives (a Singer state: `{"bookmarks": {<stream>: {<field>: value}}}`,
 * the value of the last STATE message a target kept), as our state's cursors and as bookmarks.
 * Throws CliError (exit 2) for a file that cannot be read or has another shape.
 */
export async function readSingerState(
  file: string,
  plan: ExecutionPlan,
  cwd: string,
): Promise<{ state: PipelineState; bookmarks: Bookmarks }> {
  const shown = path.relative(cwd, file) || file;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readText(file, { maxBytes: 16 * 1024 * 1024, what: "a Singer state file" }));
  } catch (err) {
    const why = err instanceof SyntaxError ? "is not valid JSON" : (err as Error).message;
    throw new CliError(`--state ${shown} ${why}; nothing was sent`, EXIT.config);
  }
  const bookmarks = isMap(parsed) && isMap(parsed.bookmarks) ? parsed.bookmarks : null;
  if (!isMap(parsed) || (parsed.bookmarks !== undefined && !bookmarks))
    throw new CliError(
      `--state ${shown} is not a Singer state: expected {"bookmarks": {"<stream>": {"<cursor field>": value}}}; nothing was sent`,
      EXIT.config,
    );
  const kept: Bookmarks = {};
  for (const [name, b] of Object.entries(bookmarks ?? {})) if (isMap(b)) kept[name] = b;
  const streams: NonNullable<PipelineState["streams"]> = {};
  for (const s of plan.streams) {
    const positions = positionsOf(s.incremental?.cursorField, kept[s.name]);
    if (positions.cursor !== undefined || positions.partitions)
      streams[s.name] = { ...positions, updated_at: new Date().toISOString() };
  }
  return { state: { version: 1, streams }, bookmarks: kept };
}

/**
 * Bookmarks from our saved state: each stream's positions (singer-writer.ts bookmarkOf): the
 * cursor under the incremental cursor field (`cursor` for a windowed stream), a child stream's
 * per-parent positions under `partitions`.
 */
export function bookmarksOf(state: PipelineState, plan: ExecutionPlan): Bookmarks {
  const out: Bookmarks = {};
  for (const s of plan.streams) {
    const saved = state.streams?.[s.name];
    const b = saved ? bookmarkOf(s.incremental?.cursorField, saved) : null;
    if (b) out[s.name] = b;
  }
  return out;
}

/**
 * The run's Singer bookmarks follow every position its state store saves for a Singer stream (a
 * parent's cursor saved once its children are done, each window's or partition's position).
 */
export function watchSingerPositions(store: StateStore, runId: string, plan: ExecutionPlan): void {
  const singer = plan.streams.filter((s) => s.output.format === "singer");
  if (!singer.length) return;
  store.onUpdate((state) => {
    for (const s of singer) {
      const positions = state.streams?.[s.name];
      if (positions) noteSingerPositions(runId, s.name, s.incremental?.cursorField, positions);
    }
  });
}

/** Whether any stream of the plan writes Singer messages (to a file or to standard output). */
export function writesSinger(plan: ExecutionPlan): boolean {
  return plan.streams.some((s) => s.output.format === "singer");
}

/**
 * A run's Singer messages start from `bookmarks`; those to standard output go to the command's
 * (`stdout`, with its backpressure), none when `stdout` is null (Singer files only).
 */
export function startSingerOutput(runId: string, stdout: Output | null, bookmarks: Bookmarks): void {
  if (!stdout) {
    startSingerRun(runId, null, bookmarks);
    return;
  }
  const channel: SingerChannel = { write: (t) => stdout.write(t) };
  // The stream under the CLI's TerminalOutput tells when it drained (the wrapper has no events).
  const emitter = rawOutput(stdout) as Output & { once?: (event: string, fn: () => void) => unknown };
  if (typeof emitter.once === "function") {
    const once = emitter.once.bind(emitter);
    channel.drain = () => new Promise<void>((resolve) => once("drain", resolve));
  }
  startSingerRun(runId, channel, bookmarks);
}

/**
 * Ends the Singer output: the last message on standard output is a STATE with every bookmark,
 * and so is the last of each Singer file the run wrote.
 */
export async function endSingerOutput(runId: string, stdout: Output | null): Promise<void> {
  try {
    await finishSingerFiles(runId);
  } finally {
    const state = endSingerRun(runId);
    if (stdout) stdout.write(state);
  }
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
