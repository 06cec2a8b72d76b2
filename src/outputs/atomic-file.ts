import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";

const FLUSH_AT = 256 * 1024;

/**
 * A file written beside its target under a temporary name and renamed into place on commit, so
 * a failed or killed run never leaves a half-written file under the real name. Writes are
 * buffered and awaited in large chunks: memory stays flat and the disk sets the pace.
 */
export class AtomicFile {
  private handle: FileHandle | null = null;
  private parts: string[] = [];
  private pending = 0;
  readonly tmpPath: string;

  private constructor(
    readonly target: string,
    runId: string,
  ) {
    this.tmpPath = path.join(path.dirname(target), `.${path.basename(target)}.${runId}.tmp`);
  }

  static async create(target: string, runId: string): Promise<AtomicFile> {
    const f = new AtomicFile(target, runId);
    await mkdir(path.dirname(target), { recursive: true });
    f.handle = await open(f.tmpPath, "w", 0o644);
    return f;
  }

  /** Queues text; resolves at once unless the buffer is full, then waits for the disk. */
  write(text: string): Promise<void> | undefined {
    this.parts.push(text);
    this.pending += text.length;
    if (this.pending >= FLUSH_AT) return this.flush();
    return undefined;
  }

  async flush(): Promise<void> {
    if (!this.parts.length || !this.handle) return;
    const chunk = this.parts.join("");
    this.parts = [];
    this.pending = 0;
    await this.handle.write(chunk);
  }

  /** Flush, fsync, close and rename over the target. */
  async commit(): Promise<void> {
    await this.flush();
    if (this.handle) {
      await this.handle.sync();
      await this.handle.close();
      this.handle = null;
    }
    await rename(this.tmpPath, this.target);
  }

  /** Drop everything: the target is untouched. */
  async abort(): Promise<void> {
    this.parts = [];
    if (this.handle) {
      await this.handle.close().catch(() => {});
      this.handle = null;
    }
    await rm(this.tmpPath, { force: true });
  }
}
