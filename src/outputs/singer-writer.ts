import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, mkdir, open, rename, rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import { stringifyJson } from "../shared/json-text.js";
import { AtomicFile } from "./atomic-file.js";
import type { CommitState, RecordWriter, WriterContext } from "./writer.js";

/**
 * Singer messages (https://github.com/singer-io/getting-started/blob/master/docs/SPEC.md): per
 * stream a SCHEMA (the stream's JSON Schema, `key_properties` from `primary_key`,
 * `bookmark_properties` from the incremental cursor field), its RECORDs, and after its commit a
 * STATE whose value is `{"bookmarks": {<stream>: {<cursor field>: <value>}}}` for every stream
 * committed so far (a STATE replaces the previous one, so each carries them all).
 *
 * - To standard output (no `path`, or `run --singer`): messages go out as they come, so that a
 *   target loads while we fetch; a stream that fails sends no STATE, so the target's bookmark
 *   does not move past what it was told is done.
 * - To `path` (one file for all streams): each stream's messages are gathered in a temporary
 *   file and appended to the file when the stream commits (the first commit of a run replaces
 *   the previous run's file, unless `mode: append`), by a rename: never half-written.
 */
export async function openSingerWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  const toStdout = output.singer?.stdout ?? false;
  const chunk = toStdout ? null : await AtomicFile.create(output.path, ctx.runId, `stream-${ctx.stream}`);
  return new SingerWriter(output, ctx, chunk);
}

/** Where a run's standard-output messages go (`run --singer`). */
export interface SingerChannel {
  write(text: string): unknown;
  /** Resolves when the channel can take more (backpressure); absent for plain buffers. */
  drain?(): Promise<void>;
}

/**
 * Per run (by run id): where its standard-output messages go and the bookmarks committed so far.
 * A process may run several pipelines at once (`pipelines worker --schedules`): each run's STATE
 * carries its own streams' bookmarks only.
 */
const runs = new Map<string, { channel: SingerChannel | null; bookmarks: Bookmarks }>();
type Bookmarks = Record<string, Record<string, unknown>>;

/** `run`: the run's messages to `out` (null: Singer files only), starting from `saved` bookmarks (by stream). */
export function startSingerRun(runId: string, out: SingerChannel | null, saved: Bookmarks = {}): void {
  runs.set(runId, { channel: out, bookmarks: { ...saved } });
}

/** The run is over: its last STATE message (every bookmark), and nothing kept of it. */
export function endSingerRun(runId: string): string {
  const message = stateMessage(runId);
  runs.delete(runId);
  return message;
}

/** The run's channel and bookmarks; a run not started (a writer opened alone) gets fresh ones. */
function singerRun(runId: string): { channel: SingerChannel | null; bookmarks: Bookmarks } {
  let run = runs.get(runId);
  if (!run) runs.set(runId, (run = { channel: null, bookmarks: {} }));
  return run;
}

function stdoutChannel(runId: string): SingerChannel {
  return (
    singerRun(runId).channel ?? {
      write: (t: string) => process.stdout.write(t),
      drain: () => new Promise((resolve) => process.stdout.once("drain", () => resolve())),
    }
  );
}

/** A stream's saved positions, as the run keeps them (state-store.ts StreamState). */
export interface SingerPositions {
  cursor?: string | number;
  partitions?: Record<string, string | number>;
}

/**
 * Where a stream's positions go in its Singer bookmark: the cursor under the incremental cursor
 * field (`bookmark_properties`), or `cursor` for a stream without one (a windowed stream: the end
 * of its last committed window); a child stream's per-parent positions under `partitions`.
 */
export function bookmarkKeys(cursorField: string | null | undefined): { cursor: string; partitions: string } {
  const cursor = cursorField || "cursor";
  return { cursor, partitions: cursor === "partitions" ? "_partitions" : "partitions" };
}

/** A stream's bookmark from its positions; null when it has none. */
export function bookmarkOf(
  cursorField: string | null | undefined,
  p: SingerPositions,
): Record<string, unknown> | null {
  const keys = bookmarkKeys(cursorField);
  const b: Record<string, unknown> = {};
  if (p.cursor !== undefined) b[keys.cursor] = p.cursor;
  if (p.partitions && Object.keys(p.partitions).length) b[keys.partitions] = { ...p.partitions };
  return Object.keys(b).length ? b : null;
}

/** A stream's positions from its bookmark (what `--state FILE` gives); values of other types are left out. */
export function positionsOf(cursorField: string | null | undefined, bookmark: unknown): SingerPositions {
  if (typeof bookmark !== "object" || bookmark === null || Array.isArray(bookmark)) return {};
  const keys = bookmarkKeys(cursorField);
  const b = bookmark as Record<string, unknown>;
  const out: SingerPositions = {};
  const cursor = b[keys.cursor];
  if (typeof cursor === "string" || typeof cursor === "number") out.cursor = cursor;
  const parts = b[keys.partitions];
  if (typeof parts === "object" && parts !== null && !Array.isArray(parts)) {
    const kept: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(parts))
      if (typeof v === "string" || typeof v === "number") kept[k] = v;
    if (Object.keys(kept).length) out.partitions = kept;
  }
  return out;
}

/**
 * The run saved a stream's positions (its state store: a deferred parent cursor, a window, a
 * partition): its bookmark follows. On standard output a STATE goes out at once when it changed
 * (every message before it was sent); Singer files get it with the next commit, or at the end of
 * the run (finishSingerFiles).
 */
export function noteSingerPositions(
  runId: string,
  stream: string,
  cursorField: string | null | undefined,
  p: SingerPositions,
): void {
  const run = runs.get(runId);
  if (!run) return;
  const positions = bookmarkOf(cursorField, p);
  if (!positions) return;
  // Keys of the bookmark that are not positions of ours (a `--state` file's) are passed on.
  const b = { ...run.bookmarks[stream], ...positions };
  if (JSON.stringify(run.bookmarks[stream]) === JSON.stringify(b)) return;
  run.bookmarks[stream] = b;
  run.channel?.write(stateMessage(runId));
}

/**
 * The end of a run's Singer files: each file this run wrote whose last STATE is not the run's
 * bookmarks now (positions saved after its last commit) gets one more STATE, appended as commits
 * append (a temporary file renamed over it).
 */
export async function finishSingerFiles(runId: string): Promise<void> {
  const message = stateMessage(runId);
  for (const [target, entry] of files) {
    if (entry.runId !== runId) continue;
    const next = entry.chain.then(async () => {
      if (entry.lastState === message) return;
      const chunk = await AtomicFile.create(target, runId, "state");
      try {
        const p = chunk.write(message);
        if (p) await p;
        await chunk.flush();
        await appendChunk(target, chunk, false);
      } catch (err) {
        await chunk.abort().catch(() => {});
        throw err;
      }
      entry.lastState = message;
    });
    entry.chain = next.catch(() => {});
    await next;
  }
}

/** The STATE message carrying every bookmark of the run so far. */
export function stateMessage(runId: string): string {
  return `${JSON.stringify({ type: "STATE", value: { bookmarks: singerRun(runId).bookmarks } })}\n`;
}

/** The SCHEMA message of a stream. */
export function schemaMessage(
  stream: string,
  schema: Record<string, unknown> | null | undefined,
  keys: string[] | null,
  cursorField: string | null | undefined,
): string {
  const msg: Record<string, unknown> = {
    type: "SCHEMA",
    stream,
    schema: schema ?? { type: "object", additionalProperties: true, properties: {} },
    key_properties: keys ?? [],
  };
  if (cursorField) msg.bookmark_properties = [cursorField];
  return `${JSON.stringify(msg)}\n`;
}

/** Per target file: commits one after the other, whether this run already wrote it, its last STATE. */
const files = new Map<string, { runId: string; chain: Promise<void>; lastState: string }>();

class SingerWriter implements RecordWriter {
  private readonly prefix: string;
  private readonly out: SingerChannel | null;
  private closed = false;

  constructor(
    private readonly output: OutputPlan,
    private readonly ctx: WriterContext,
    private readonly chunk: AtomicFile | null,
  ) {
    this.prefix = `{"type":"RECORD","stream":${JSON.stringify(ctx.stream)},"record":`;
    this.out = chunk ? null : stdoutChannel(ctx.runId);
    this.emit(schemaMessage(ctx.stream, ctx.schema, ctx.primaryKey, ctx.cursorField));
  }

  private emit(text: string): Promise<void> | undefined {
    if (this.chunk) return this.chunk.write(text);
    const ok = this.out!.write(text);
    if (ok === false && this.out!.drain) return this.out!.drain();
    return undefined;
  }

  write(record: Row): Promise<void> | undefined {
    return this.emit(`${this.prefix}${stringifyJson(record)}}\n`);
  }

  async commit(state?: CommitState | null): Promise<void> {
    const bookmark = state ? bookmarkOf(this.ctx.cursorField, state) : null;
    const run = singerRun(this.ctx.runId);
    if (bookmark) run.bookmarks[this.ctx.stream] = { ...run.bookmarks[this.ctx.stream], ...bookmark };
    const chunk = this.chunk;
    if (!chunk) {
      const p = this.emit(stateMessage(this.ctx.runId));
      if (p) await p;
      this.closed = true;
      return;
    }
    this.closed = true;
    // The place in the file is taken now, and the STATE written when the chunk's turn comes: the
    // last STATE in the file carries every stream committed before it (a STATE made before an
    // earlier stream's commit but appended after it lost that stream's bookmark).
    const target = this.output.path;
    const entry = files.get(target);
    const first = !entry || entry.runId !== this.ctx.runId;
    const prev = entry && !first ? entry.chain : Promise.resolve();
    const record = { runId: this.ctx.runId, chain: Promise.resolve(), lastState: entry?.lastState ?? "" };
    const next = prev.then(async () => {
      const message = stateMessage(this.ctx.runId);
      const p = chunk.write(message);
      if (p) await p;
      await chunk.flush();
      await appendChunk(target, chunk, first && this.output.mode !== "append");
      record.lastState = message;
    });
    record.chain = next.catch(() => {});
    files.set(target, record);
    await next;
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chunk?.abort();
  }
}

/** target := (replace ? "" : target) + chunk, through a temporary file and a rename. */
async function appendChunk(target: string, chunk: AtomicFile, replace: boolean): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = `${chunk.tmpPath}.all`;
  if (!replace)
    await copyFile(target, tmp).catch((err) => (err.code === "ENOENT" ? undefined : Promise.reject(err)));
  await chunk.close();
  await pipeline(createReadStream(chunk.tmpPath), createWriteStream(tmp, { flags: "a", mode: 0o644 }));
  const fh = await open(tmp, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, target);
  await chunk.abort();
  await rm(tmp, { force: true });
}
