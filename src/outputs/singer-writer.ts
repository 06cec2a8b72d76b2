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

/** Per target file: commits one after the other, and whether this run already wrote it. */
const files = new Map<string, { runId: string; chain: Promise<void> }>();

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
    if (state && this.ctx.cursorField)
      singerRun(this.ctx.runId).bookmarks[this.ctx.stream] = { [this.ctx.cursorField]: state.cursor };
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
    const next = prev.then(async () => {
      const p = chunk.write(stateMessage(this.ctx.runId));
      if (p) await p;
      await chunk.flush();
      await appendChunk(target, chunk, first && this.output.mode !== "append");
    });
    files.set(target, { runId: this.ctx.runId, chain: next.catch(() => {}) });
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
