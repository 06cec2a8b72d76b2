/**
 * A commit whose rename fails leaves the target as it was and nothing beside it: the link to the
 * file it would have replaced (AtomicFile.commit links it aside first) is removed again.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { listDir, tempDir } from "./helpers.js";

const failRename = { next: false };
vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...real,
    rename: async (from: string, to: string) => {
      if (failRename.next) {
        failRename.next = false;
        throw Object.assign(new Error("EIO: i/o error, rename"), { code: "EIO" });
      }
      return real.rename(from, to);
    },
  };
});

const { AtomicFile, settleRemovals } = await import("../../src/outputs/atomic-file.js");

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

it("a failed rename leaves the old target and no link to it beside it", async () => {
  const target = path.join(dir, "out.txt");
  writeFileSync(target, "old");
  const f = await AtomicFile.create(target, "20260101T000000Z-aaaaaa", "body");
  await f.write("new");
  failRename.next = true;
  await expect(f.commit()).rejects.toThrow("EIO");
  await settleRemovals();
  expect(readFileSync(target, "utf8")).toBe("old");
  // The temporary file stays for the caller's abort (which removes it); no `.replaced.tmp`.
  expect(listDir(dir).filter((n) => n.endsWith(".replaced.tmp"))).toEqual([]);
  await f.abort();
  expect(listDir(dir)).toEqual(["out.txt"]);
});
