import { mkdir, open, rename } from "node:fs/promises";
import path from "node:path";

/**
 * Writes a small file whole or not at all: to a temporary file beside it (`.<name>.<pid>.<time>.tmp`,
 * which the run lock's cleanup knows), synced, then renamed over the target. State files keep
 * mode 0600 (they may hold a refresh token). Node has no atomic write of its own; record outputs,
 * which stream, use outputs/atomic-file.ts.
 */
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
