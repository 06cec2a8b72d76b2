import { fstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  AtomicFile,
  fileExists,
  readLines,
  SpanReader,
  settleRemovals,
} from "../../src/outputs/atomic-file.js";
import { listDir, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

describe("AtomicFile", () => {
  it("keeps the order of writes even when the caller does not wait for them", async () => {
    const target = path.join(dir, "out.txt");
    const f = await AtomicFile.create(target, "r1");
    const chunk = (i: number) => `${String(i).padStart(6, "0")}${"x".repeat(100_000)}\n`;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const p = f.write(chunk(i));
      if (p) pending.push(p);
    }
    expect(pending.length).toBeGreaterThan(3);
    await f.commit();
    const lines = readFileSync(target, "utf8").split("\n").slice(0, -1);
    expect(lines.map((l) => Number(l.slice(0, 6)))).toEqual([...Array(40).keys()]);
    expect(listDir(dir)).toEqual(["out.txt"]);
  });

  it("a full buffer goes to the disk while the next fills: a write waits only for the chunk before", async () => {
    const f = await AtomicFile.create(path.join(dir, "out.txt"), "r1");
    const chunk = "x".repeat(70_000);
    expect(f.write(chunk)).toBeUndefined(); // nothing before it is being written
    const second = f.write(chunk); // the first chunk is still on its way
    expect(second).toBeInstanceOf(Promise);
    await second;
    await f.flush();
    expect(f.write(chunk)).toBeUndefined(); // the disk has caught up
    await f.commit();
    expect(readFileSync(path.join(dir, "out.txt"), "utf8").length).toBe(3 * 70_000);
  });

  it("a write that fails is not lost while nobody waits for it: the next write or the commit rejects", async () => {
    for (const next of ["write", "commit"] as const) {
      const f = await AtomicFile.create(path.join(dir, `${next}.txt`), "r1");
      // The file is closed under the writer (a disk fault): the chunk's write fails later.
      await (f as unknown as { handle: FileHandle }).handle.close();
      expect(f.write("x".repeat(70_000))).toBeUndefined();
      await new Promise((r) => setTimeout(r, 20)); // the failure happens with nobody waiting
      if (next === "write") await expect(f.write("y".repeat(70_000))).rejects.toThrow(/closed|EBADF/);
      else await expect(f.commit()).rejects.toThrow(/closed|EBADF/);
      await f.abort();
    }
  });

  it("a failed early write-back fails the commit (the commit's fsync would not see it again): the target is untouched", async () => {
    const target = path.join(dir, "out.txt");
    writeFileSync(target, "before\n");
    const probe = await open(path.join(dir, "probe"), "w");
    const proto = Object.getPrototypeOf(probe);
    await probe.close();
    const datasync = vi
      .spyOn(proto, "datasync")
      .mockRejectedValue(Object.assign(new Error("EIO: i/o error"), { code: "EIO" }));
    try {
      const f = await AtomicFile.create(target, "r1");
      const line = `${"z".repeat(1023)}\n`;
      for (let i = 0; i < 9 * 1024; i++) await f.write(line); // 9 MiB: one early write-back
      await expect(f.commit()).rejects.toThrow("EIO");
      await f.abort();
      expect(datasync).toHaveBeenCalled();
      expect(readFileSync(target, "utf8")).toBe("before\n");
      expect(listDir(dir).sort()).toEqual(["out.txt", "probe"]);
    } finally {
      datasync.mockRestore();
    }
  });

  it("asks the disk to write back every 8 MiB while writing, and waits for it before the commit's fsync", async () => {
    const probe = await open(path.join(dir, "probe"), "w");
    const proto = Object.getPrototypeOf(probe);
    await probe.close();
    const events: string[] = [];
    const datasync = vi.spyOn(proto, "datasync");
    const sync = vi.spyOn(proto, "sync").mockImplementation(async () => {
      events.push("sync");
    });
    datasync.mockImplementation(async () => {
      await new Promise((r) => setTimeout(r, 20));
      events.push("datasync");
    });
    try {
      const target = path.join(dir, "big.txt");
      const f = await AtomicFile.create(target, "r1");
      const line = `${"y".repeat(1023)}\n`;
      for (let i = 0; i < 17 * 1024; i++) await f.write(line); // 17 MiB: two writebacks
      await f.commit();
      expect(events).toEqual(["datasync", "datasync", "sync"]);
      expect(readFileSync(target).length).toBe(17 * 1024 * 1024);
    } finally {
      datasync.mockRestore();
      sync.mockRestore();
    }
  });

  it("takes UTF-8 bytes made elsewhere between texts, in order; a flush of bytes only, then of texts only", async () => {
    const target = path.join(dir, "out.txt");
    const f = await AtomicFile.create(target, "r1");
    f.write("héllo ");
    f.write(new TextEncoder().encode("wörld\n"));
    f.write(Buffer.from("€\n"));
    f.write("é\n");
    await f.flush();
    expect(readFileSync(f.tmpPath, "utf8")).toBe("héllo wörld\n€\né\n");
    f.write(new TextEncoder().encode("après\n")); // a flush of bytes only
    await f.flush();
    f.write("fin\n");
    await f.commit();
    expect(readFileSync(target, "utf8")).toBe("héllo wörld\n€\né\naprès\nfin\n");
  });

  it("the file a commit replaces is removed after the commit returns (its blocks are not freed inside the rename), then gone", async () => {
    const target = path.join(dir, "out.txt");
    writeFileSync(target, "old");
    const old = await open(target, "r");
    try {
      const f = await AtomicFile.create(target, "20260101T000000Z-aaaaaa", "body");
      await f.write("new");
      await f.commit();
      // No turn of the event loop since the commit: the replaced file is still linked (aside),
      // so the rename did not free it. Before: a rename over it, 0 links at once.
      expect(fstatSync(old.fd).nlink).toBe(1);
      expect(readFileSync(target, "utf8")).toBe("new");
      await settleRemovals();
      expect(fstatSync(old.fd).nlink).toBe(0);
      expect(listDir(dir)).toEqual(["out.txt"]);
    } finally {
      await old.close();
    }
  });

  it("commits one after the other to one target (checkpoints) without waiting for the removals", async () => {
    const target = path.join(dir, "out.txt");
    writeFileSync(target, "0");
    for (let i = 1; i <= 5; i++) {
      const f = await AtomicFile.create(target, "20260101T000000Z-aaaaaa", "body");
      await f.write(String(i));
      await f.commit();
      expect(readFileSync(target, "utf8")).toBe(String(i));
    }
    await settleRemovals();
    expect(listDir(dir)).toEqual(["out.txt"]);
  });

  it("close keeps the temporary file to read back; abort removes it and leaves the target", async () => {
    const target = path.join(dir, "out.txt");
    writeFileSync(target, "old");
    const f = await AtomicFile.create(target, "r1", "body");
    await f.write("new");
    await f.close();
    expect(readFileSync(f.tmpPath, "utf8")).toBe("new");
    await f.abort();
    expect(listDir(dir)).toEqual(["out.txt"]);
    expect(readFileSync(target, "utf8")).toBe("old");
  });
});

describe("SpanReader", () => {
  it("reads spans in any order, across block boundaries and larger than a block", async () => {
    const file = path.join(dir, "data.txt");
    const text = Array.from({ length: 250_000 }, (_, i) => `${i}é✓`).join("|");
    writeFileSync(file, text);
    const bytes = Buffer.from(text);
    expect(bytes.length).toBeGreaterThan(2 * SpanReader.BLOCK);
    const reader = await SpanReader.open(file);
    const spans: [number, number][] = [
      [0, 5],
      [SpanReader.BLOCK - 3, 10],
      [bytes.length - 7, 7],
      [10, 3],
      [0, bytes.length],
      [SpanReader.BLOCK + 100, 50],
    ];
    for (const [offset, length] of spans) {
      expect(await reader.read(offset, length)).toBe(
        bytes.subarray(offset, offset + length).toString("utf8"),
      );
    }
    await expect(reader.read(bytes.length - 2, 10)).rejects.toThrow(/end of file/);
    await reader.close();
  });
});

describe("readLines", () => {
  it("splits on LF, CRLF and CR, drops a BOM, and keeps a last line without an end", async () => {
    const file = path.join(dir, "lines.txt");
    writeFileSync(file, "\ufeffa\r\nb\nc\rd\u2028e");
    const lines: string[] = [];
    for await (const line of readLines(file)) lines.push(line);
    expect(lines).toEqual(["a", "b", "c", "d\u2028e"]);
  });
});

describe("edges (from mutation testing)", () => {
  it("names its temporary file `.<target>.<run id>[.<tag>].tmp` beside the target (the lock's cleanup looks for it)", async () => {
    const target = path.join(dir, "sub", "out.jsonl");
    const plain = await AtomicFile.create(target, "RUN");
    const tagged = await AtomicFile.create(target, "RUN", "body");
    expect(plain.tmpPath).toBe(path.join(dir, "sub", ".out.jsonl.RUN.tmp"));
    expect(tagged.tmpPath).toBe(path.join(dir, "sub", ".out.jsonl.RUN.body.tmp"));
    await plain.abort();
    await tagged.abort();
    expect(listDir(path.join(dir, "sub"))).toEqual([]);
  });

  it("after close or commit nothing more reaches the file", async () => {
    const a = await AtomicFile.create(path.join(dir, "a.txt"), "RUN");
    a.write("one");
    await a.close();
    a.write("late");
    await a.flush();
    expect(readFileSync(a.tmpPath, "utf8")).toBe("one");
    const target = path.join(dir, "b.txt");
    const b = await AtomicFile.create(target, "RUN");
    b.write("one");
    await b.commit();
    b.write("late");
    await b.flush();
    expect(readFileSync(target, "utf8")).toBe("one");
    // Aborting a committed file removes nothing and does not fail.
    await b.abort();
    expect(readFileSync(target, "utf8")).toBe("one");
  });

  it("abort of an open file drops what was written and queued", async () => {
    const target = path.join(dir, "c.txt");
    writeFileSync(target, "previous");
    const c = await AtomicFile.create(target, "RUN");
    c.write("x".repeat(100_000));
    c.write("queued");
    await c.abort();
    expect(listDir(dir)).toEqual(["c.txt"]);
    expect(readFileSync(target, "utf8")).toBe("previous");
  });

  it("fileExists", async () => {
    writeFileSync(path.join(dir, "here"), "");
    expect(await fileExists(path.join(dir, "here"))).toBe(true);
    expect(await fileExists(path.join(dir, "gone"))).toBe(false);
  });

  it("readLines drops a BOM only at the start of the file", async () => {
    const file = path.join(dir, "bom.txt");
    writeFileSync(file, "\ufeffa\n\ufeffb\nc");
    const lines: string[] = [];
    for await (const l of readLines(file)) lines.push(l);
    expect(lines).toEqual(["a", "\ufeffb", "c"]);
    writeFileSync(file, "abc\n");
    const plain: string[] = [];
    for await (const l of readLines(file)) plain.push(l);
    expect(plain).toEqual(["abc"]);
  });

  it("SpanReader: a span past the end of a short file fails, also after a read that filled the window; a closed reader fails", async () => {
    const file = path.join(dir, "short.txt");
    writeFileSync(file, "0123456789");
    const reader = await SpanReader.open(file);
    expect(await reader.read(2, 3)).toBe("234");
    await expect(reader.read(8, 5)).rejects.toThrow("unexpected end of file reading 5 bytes at 8");
    expect(await reader.read(0, 10)).toBe("0123456789");
    await reader.close();
    await expect(reader.read(SpanReader.BLOCK * 2, 1)).rejects.toThrow("the span reader is closed");
  });
});

/** Open file descriptors of this process (Linux): a leak shows as one more after the fact. */
const openFds = () => readdirSync("/proc/self/fd").length;

describe("buffering and file handles", () => {
  it("write queues text and resolves at once until 64 KiB are queued; then it writes (waiting only for a write before)", async () => {
    const f = await AtomicFile.create(path.join(dir, "out.txt"), "r1");
    expect(f.write("a".repeat(64 * 1024 - 2))).toBeUndefined();
    expect(f.write("b")).toBeUndefined();
    expect(readFileSync(f.tmpPath, "utf8")).toBe(""); // nothing on disk yet
    expect(f.write("c")).toBeUndefined(); // exactly 64 KiB queued: on its way, nothing before it
    const wait = f.write("d".repeat(64 * 1024)); // the next 64 KiB: waits for the first
    expect(wait).toBeInstanceOf(Promise);
    await wait;
    expect(readFileSync(f.tmpPath, "utf8").length).toBeGreaterThanOrEqual(64 * 1024);
    await f.flush();
    expect(readFileSync(f.tmpPath, "utf8")).toHaveLength(128 * 1024);
    await f.abort();
  });

  it.runIf(process.platform === "linux")("abort closes the file handle", async () => {
    const before = openFds();
    const f = await AtomicFile.create(path.join(dir, "out.txt"), "r1");
    f.write("x");
    expect(openFds()).toBe(before + 1);
    await f.abort();
    expect(openFds()).toBe(before);
  });

  it.runIf(process.platform === "linux")(
    "a reader that stops after the first line closes the file",
    async () => {
      const file = path.join(dir, "big.txt");
      writeFileSync(file, "line\n".repeat(200_000)); // 1 MB: many reads' worth
      const before = openFds();
      for await (const line of readLines(file)) {
        expect(line).toBe("line");
        break;
      }
      // The stream closes its descriptor asynchronously: give it a few turns of the event loop.
      for (let i = 0; i < 100 && openFds() > before; i++) await new Promise((r) => setTimeout(r, 10));
      expect(openFds()).toBe(before);
    },
  );
});
