import { createReadStream } from "node:fs";
import { access, type FileHandle, link, mkdir, open, rename, rm } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { outputTempFile } from "../compile/layout.js";

// Below V8's large-object size (128 KiB): a joined chunk then lives and dies in the young
// generation. At 256 KiB every chunk went to the old generation, which grew until a full GC:
// peak RSS at 2,000,000 records was 15% above the 200,000 figure, now within 5%.
const FLUSH_AT = 64 * 1024;
// Every 8 MiB written, the disk is asked (without waiting) to write what it holds of the file, so
// the fsync of the commit has little left to do: the commit of a 34 MB output waited 12 ms for
// its fsync, 1 ms with this; of 340 MB, about 10 times as long. Same bytes, same durability.
const WRITEBACK_AT = 8 * 1024 * 1024;

/** Files replaced by a commit, still being removed (see `commit`). */
const removals = new Set<Promise<void>>();

/** Waits until every file replaced by a commit is removed (before the run lets go of its lock). */
export async function settleRemovals(): Promise<void> {
  while (removals.size) await Promise.all(removals);
}

/**
 * A file written beside its target under a temporary name and renamed into place on commit, so
 * a failed or killed run never leaves a half-written file under the real name. Writes are
 * buffered and awaited in large chunks (the disk writes one while the next fills): memory stays
 * flat and the disk sets the pace.
 */
export class AtomicFile {
  private handle: FileHandle | null = null;
  /** Text, or UTF-8 bytes made elsewhere (a record worker's JSON lines). */
  private parts: (string | Uint8Array)[] = [];
  private bytes = false;
  private pending = 0;
  /** Disk writes run one after the other, even when a caller does not await `write`. */
  private writing: Promise<void> = Promise.resolve();
  /** The last chunk's write while it runs (or failed), else null. */
  private busy: Promise<void> | null = null;
  /** Characters or bytes written since the last early writeback, and that writeback. */
  private unsynced = 0;
  private writeback: Promise<void> = Promise.resolve();
  private writebackError: unknown = null;
  readonly tmpPath: string;

  private constructor(
    readonly target: string,
    private readonly runId: string,
    tag: string,
  ) {
    this.tmpPath = outputTempFile(target, runId, tag);
  }

  /** `tag` tells apart several temporary files of one run for the same target. */
  static async create(target: string, runId: string, tag = ""): Promise<AtomicFile> {
    const f = new AtomicFile(target, runId, tag);
    await mkdir(path.dirname(target), { recursive: true });
    f.handle = await open(f.tmpPath, "w", 0o644);
    return f;
  }

  /**
   * Queues text (or its UTF-8 bytes). When the buffer is full it goes to the disk, and the next
   * one fills meanwhile: the caller waits only while the chunk before is still being written.
   */
  write(text: string | Uint8Array): Promise<void> | undefined {
    this.parts.push(text);
    if (typeof text !== "string") this.bytes = true;
    this.pending += text.length;
    if (this.pending < FLUSH_AT) return undefined;
    const before = this.busy;
    this.flush();
    return before ?? undefined;
  }

  flush(): Promise<void> {
    const handle = this.handle;
    if (this.parts.length && handle) {
      const parts = this.parts;
      // One chunk of bytes (a page's lines) goes as it is: no copy.
      const bytes = !this.bytes
        ? null
        : parts.length === 1
          ? (parts[0] as Uint8Array)
          : Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : p)));
      const text = bytes ? "" : (parts as string[]).join("");
      this.parts = [];
      this.pending = 0;
      this.bytes = false;
      this.unsynced += bytes ? bytes.length : text.length;
      const early = this.unsynced >= WRITEBACK_AT;
      if (early) this.unsynced = 0;
      const done = this.writing.then(async () => {
        await (bytes ? handle.write(bytes) : handle.write(text));
        // Not awaited here: the next writes go on while the disk catches up. Its failure is kept
        // for `close` and `commit`: Linux reports a write-back error once per open file, so the
        // commit's own fsync would then succeed over pages that never reached the disk.
        if (early)
          this.writeback = this.writeback.then(() =>
            handle.datasync().catch((err: unknown) => {
              this.writebackError ??= err;
            }),
          );
      });
      this.writing = this.busy = done;
      // A failed write is reported by the next `write`, `flush`, `close` or `commit`; this handler
      // only keeps it from being an unhandled rejection until then.
      done.then(
        () => {
          if (this.busy === done) this.busy = null;
        },
        () => {},
      );
    }
    return this.writing;
  }

  /** Flush and close, keeping the temporary file (to read it back); `abort` removes it. */
  async close(): Promise<void> {
    await this.flush();
    await this.writeback;
    if (this.handle) {
      const handle = this.handle;
      this.handle = null;
      await handle.close();
    }
    if (this.writebackError) throw this.writebackError;
  }

  /** Flush, fsync, close and rename over the target (or over `target`, for rejected records). */
  async commit(target: string = this.target): Promise<void> {
    await this.flush();
    await this.writeback;
    if (this.writebackError) throw this.writebackError;
    if (this.handle) {
      await this.handle.sync();
      await this.handle.close();
      this.handle = null;
    }
    await replace(this.tmpPath, target, this.runId);
  }

  /** Drop everything: the target is untouched. */
  async abort(): Promise<void> {
    this.parts = [];
    await this.writing.catch(() => {});
    await this.writeback;
    if (this.handle) {
      await this.handle.close().catch(() => {});
      this.handle = null;
    }
    await rm(this.tmpPath, { force: true });
  }
}

/**
 * Renames `tmp` over `target`. A rename over a file frees that file's blocks before it returns
 * (7 ms for a 34 MB output here, more for larger ones), while the run could be writing its state
 * and report: the file replaced is linked aside first (`.<target>.<run id>.replaced.tmp`, which
 * the next run removes if this one is killed) and removed in the background. Where a link
 * cannot be made, a plain rename.
 */
async function replace(tmp: string, target: string, runId: string): Promise<void> {
  const aside = outputTempFile(target, runId, "replaced");
  const linked = await link(target, aside).then(
    () => true,
    () => false,
  );
  try {
    await rename(tmp, target);
  } catch (err) {
    // The target was not replaced: nothing to remove later, and no link left beside it.
    if (linked) await rm(aside, { force: true }).catch(() => {});
    throw err;
  }
  if (!linked) return;
  const removal: Promise<void> = rm(aside, { force: true })
    .catch(() => {})
    .finally(() => removals.delete(removal));
  removals.add(removal);
}

export async function fileExists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** The lines of a text file, streamed (`\n`, `\r\n` or `\r` end a line; the last may have none). */
export async function* readLines(file: string): AsyncGenerator<string> {
  const input = createReadStream(file, { encoding: "utf8", highWaterMark: 64 * 1024 });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    let first = true;
    for await (const line of lines) {
      yield first && line.charCodeAt(0) === 0xfeff ? line.slice(1) : line;
      first = false;
    }
  } finally {
    lines.close();
    input.destroy();
  }
}

/**
 * Reads byte spans of a file as UTF-8 text, through a window of {@link SpanReader.BLOCK} bytes:
 * spans asked in rising order cost one read per block rather than one per span.
 */
export class SpanReader {
  static readonly BLOCK = 1024 * 1024;
  private window = Buffer.alloc(0);
  private start = 0;

  private constructor(private handle: FileHandle | null) {}

  static async open(file: string): Promise<SpanReader> {
    return new SpanReader(await open(file, "r"));
  }

  async read(offset: number, length: number): Promise<string> {
    // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: performance only: a wider test re-reads the window more often; the spans returned are the same
    if (offset < this.start || offset + length > this.start + this.window.length) {
      if (!this.handle) throw new Error("the span reader is closed");
      const size = Math.max(SpanReader.BLOCK, length);
      // Stryker disable next-line ConditionalExpression: performance only: a new buffer for every window, the same bytes
      if (this.window.length !== size) this.window = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const { bytesRead } = await this.handle.read(this.window, got, size - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < length) throw new Error(`unexpected end of file reading ${length} bytes at ${offset}`);
      this.start = offset;
      if (got < size) this.window = this.window.subarray(0, got);
    }
    return this.window.toString("utf8", offset - this.start, offset - this.start + length);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
  }
}
