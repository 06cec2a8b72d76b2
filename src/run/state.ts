import { mkdir, open, readFile, rename } from "node:fs/promises";
import path from "node:path";

/** One JSON file per pipeline in the state folder. */
export interface PipelineState {
  version: 1;
  updated_at?: string;
  /** Incremental cursors by stream. */
  streams?: Record<string, { cursor: string | number; updated_at: string }>;
  /** A rotated OAuth2 refresh token (the file is written with mode 0600). */
  auth?: { refresh_token?: string };
}

/**
 * Reads and replaces a pipeline's state file atomically (temp file, fsync, rename). Updates are
 * serialized, so a token rotation mid-run and the cursors at the end never overwrite each other.
 */
export class StateStore {
  private queue: Promise<unknown> = Promise.resolve();
  readonly file: string;

  constructor(stateDir: string, pipeline: string) {
    this.file = path.join(stateDir, `${pipeline}.json`);
  }

  async read(): Promise<PipelineState> {
    try {
      const parsed = JSON.parse(await readFile(this.file, "utf8"));
      return parsed && typeof parsed === "object" ? { version: 1, ...parsed } : { version: 1 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1 };
      throw new Error(
        `state file ${this.file} is not valid JSON (${(err as Error).message}); move it away to start afresh`,
      );
    }
  }

  update(change: (state: PipelineState) => PipelineState | undefined): Promise<void> {
    const next = this.queue.then(async () => {
      const current = await this.read();
      const updated = change(current) ?? current;
      updated.updated_at = new Date().toISOString();
      await writeAtomic(this.file, `${JSON.stringify(updated, null, 2)}\n`);
    });
    this.queue = next.catch(() => {});
    return next;
  }
}

export async function writeAtomic(file: string, text: string, mode = 0o600): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await open(tmp, "w", mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}
