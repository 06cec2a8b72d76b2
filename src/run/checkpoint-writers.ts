import { type FileHandle, mkdir, open, stat, truncate } from "node:fs/promises";
import path from "node:path";
import type { OutputPlan } from "../compile/plan.js";
import { openWriter } from "../outputs/registry.js";
import type { CommitState, RecordWriter, WriterContext } from "../outputs/writer.js";
import type { Row } from "../records/shape.js";
import { stringifyJson } from "../shared/json-text.js";

/**
 * Writers that commit many times in one run (format 1.1 "Checkpoints"). `checkpoint()` makes
 * everything written so far part of the output and returns the file lengths to save in the
 * state (path → bytes), or null when the output keeps no length (merge, databases).
 * `durable()` makes those bytes survive a power cut (called before the state is written).
 */
export interface CheckpointWriter extends RecordWriter {
  /** `state`: database outputs write it in the commit's own transaction (`_pipelines_state`). */
  checkpoint(state?: CommitState | null): Promise<Record<string, number> | null>;
  durable(): Promise<void>;
}

const FLUSH_AT = 64 * 1024;

/**
 * Whether a checkpointed output keeps its committed length in the state: an `append` to a file
 * whose commits only add bytes at its end (jsonl, csv). Any other output is replaced whole by each
 * commit (a rename) or commits in a database's own transaction: a length saved for it would cut a
 * committed file (a DuckDB database, a Parquet file) back to a size it had before.
 */
export function keepsLength(output: Pick<OutputPlan, "mode" | "format">): boolean {
  return output.mode === "append" && (output.format === "jsonl" || output.format === "csv");
}

/**
 * The output files a checkpointed stream appends to are cut back to the length its state
 * committed: bytes beyond it were written after the last commit of a killed run.
 */
export async function cutBackTo(files: Record<string, number> | undefined, target: string): Promise<void> {
  const committed = files?.[target];
  if (committed === undefined) return;
  try {
    if ((await stat(target)).size > committed) await truncate(target, committed);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/**
 * `jsonl` + `append` (no primary key): records are appended to the target itself, in large
 * writes; a checkpoint is a flush and the file's length. abort() cuts the file back to the last
 * checkpoint, so a failed stream leaves what it committed and nothing more.
 */
export async function openAppendWriter(output: OutputPlan): Promise<CheckpointWriter> {
  await mkdir(path.dirname(output.path), { recursive: true });
  let handle: FileHandle | null = await open(output.path, "a", 0o644);
  let length = (await handle.stat()).size;
  let committed = length;
  let parts: string[] = [];
  let pending = 0;
  let writing: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    if (parts.length && handle) {
      const chunk = parts.join("");
      const h = handle;
      parts = [];
      pending = 0;
      length += Buffer.byteLength(chunk);
      writing = writing.then(async () => {
        await h.write(chunk);
      });
    }
    return writing;
  };
  return {
    write(record: Row) {
      const text = `${stringifyJson(record)}\n`;
      parts.push(text);
      pending += text.length;
      return pending >= FLUSH_AT ? flush() : undefined;
    },
    async checkpoint() {
      await flush();
      committed = length;
      return { [output.path]: committed };
    },
    // Syncs and the close go through the same chain as the writes: a state save's sync that
    // comes after the commit closed the file finds no handle, instead of a closed one (EBADF).
    async durable() {
      writing = writing.then(async () => {
        await handle?.sync();
      });
      await writing;
    },
    async commit() {
      // Queued at once, behind the last write: a save asked for from now on runs after the close.
      flush();
      writing = writing.then(async () => {
        const h = handle;
        handle = null;
        await h?.sync();
        await h?.close();
      });
      await writing;
    },
    async abort() {
      parts = [];
      await writing.catch(() => {});
      await handle?.close().catch(() => {});
      handle = null;
      await truncate(output.path, committed).catch(() => {});
    },
  };
}

/**
 * Any other format and mode: one ordinary writer per commit (its atomic commit is the
 * checkpoint), opened when the next record comes. With `append`, the length after each commit
 * is saved, so a file committed just before a kill (state not yet saved) is cut back.
 */
export function openPerCommitWriter(output: OutputPlan, ctx: WriterContext): CheckpointWriter {
  let inner: RecordWriter | null = null;
  let opening: Promise<RecordWriter> | null = null;
  let duplicates = 0;
  const current = (): Promise<RecordWriter> => {
    opening ??= openWriter(output, ctx).then((w) => (inner = w));
    return opening;
  };
  const lengths = async (): Promise<Record<string, number> | null> => {
    if (!keepsLength(output)) return null;
    try {
      return { [output.path]: (await stat(output.path)).size };
    } catch {
      return null;
    }
  };
  const commitInner = async (state?: CommitState | null): Promise<void> => {
    // sqlite saves the position with the rows (and the next run reads it there): a unit without
    // records commits it too.
    if (state && output.format === "sqlite" && !inner && !opening) await current();
    const w = inner ?? (opening ? await opening : null);
    inner = null;
    opening = null;
    if (!w) return;
    duplicates += w.duplicates?.() ?? 0;
    await w.commit(state);
  };
  return {
    write(record: Row) {
      if (inner) return inner.write(record);
      return current().then((w) => w.write(record));
    },
    duplicates: () => duplicates + (inner?.duplicates?.() ?? 0),
    async checkpoint(state?: CommitState | null) {
      await commitInner(state);
      return lengths();
    },
    async durable() {
      // Each inner commit already synced and renamed its file.
    },
    async commit() {
      await commitInner();
    },
    async abort() {
      const w = inner ?? (opening ? await opening.catch(() => null) : null);
      inner = null;
      opening = null;
      await w?.abort();
    },
    // `replace` (one commit): a run the commit guard refuses is kept beside as a preview, as
    // the writer of a stream without units keeps it (an empty one when no record came).
    async keepRejected() {
      const w = inner ?? (await current());
      inner = null;
      opening = null;
      if (w.keepRejected) return w.keepRejected();
      await w.abort();
      return null;
    },
  };
}

/** `write: false`: nothing is written, nothing is created. */
export function nullWriter(): CheckpointWriter {
  return {
    write: () => undefined,
    checkpoint: async () => null,
    durable: async () => {},
    commit: async () => {},
    abort: async () => {},
  };
}
