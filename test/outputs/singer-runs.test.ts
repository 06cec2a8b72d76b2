/**
 * Singer files of runs that share a process (`pipelines worker --schedules` runs pipelines side by
 * side): each file's STATE carries the bookmarks of its own run's streams, never another run's.
 */
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { endSingerOutput, startSingerOutput } from "../../src/cli/singer-run.js";
import { settleRemovals } from "../../src/outputs/atomic-file.js";
import { openWriter } from "../../src/outputs/registry.js";
import { endSingerRun, startSingerRun } from "../../src/outputs/singer-writer.js";
import { TerminalOutput } from "../../src/shared/terminal.js";
import { tempDir } from "./helpers.js";

const dirs: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of dirs.splice(0)) cleanup();
});

async function writeRun(runId: string, file: string, stream: string, cursor: string): Promise<void> {
  const writer = await openWriter(
    { format: "singer", mode: "replace", path: file },
    { runId, stream, columns: null, primaryKey: null, cursorField: "updated_at" },
  );
  await writer.write({ id: 1, updated_at: cursor });
  await writer.commit({ cursor });
}

const states = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === "STATE")
    .map((m) => m.value);

describe("singer files of runs in one process", () => {
  it("each run's STATE holds its own bookmarks, also when the runs overlap", async () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const a = path.join(dir, "a.singer.jsonl");
    const b = path.join(dir, "b.singer.jsonl");
    startSingerRun("run-a", null, { old: { updated_at: "2020-01-01" } });
    startSingerRun("run-b", null);
    await Promise.all([
      writeRun("run-a", a, "orders", "2024-01-01"),
      writeRun("run-b", b, "tickets", "2024-02-02"),
    ]);
    await settleRemovals();
    expect(states(a)).toEqual([
      { bookmarks: { old: { updated_at: "2020-01-01" }, orders: { updated_at: "2024-01-01" } } },
    ]);
    expect(states(b)).toEqual([{ bookmarks: { tickets: { updated_at: "2024-02-02" } } }]);
    // The end of a run gives its last STATE and forgets its bookmarks: the next run starts from its own.
    expect(JSON.parse(endSingerRun("run-a")).value.bookmarks.orders).toEqual({ updated_at: "2024-01-01" });
    endSingerRun("run-b");
    startSingerRun("run-c", null);
    await writeRun("run-c", a, "orders", "2024-03-03");
    expect(states(a)).toEqual([{ bookmarks: { orders: { updated_at: "2024-03-03" } } }]);
    endSingerRun("run-c");
  });
});

describe("singer messages on standard output", () => {
  it("wait for the stream to drain when it is full, through the CLI's TerminalOutput wrapper", async () => {
    // A stdout whose buffer is full after every write until it emits `drain`.
    const written: string[] = [];
    const raw = Object.assign(new EventEmitter(), {
      write: (text: string) => {
        written.push(text);
        return false;
      },
    });
    startSingerOutput("run-bp", new TerminalOutput(raw), {});
    const writer = await openWriter(
      { format: "singer", mode: "replace", path: "unused", singer: { stdout: true } },
      { runId: "run-bp", stream: "s", columns: null, primaryKey: null },
    );
    let drained = false;
    const wait = writer.write({ id: 1 });
    expect(wait).toBeInstanceOf(Promise);
    void wait?.then(() => {
      drained = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(drained).toBe(false);
    raw.emit("drain");
    await wait;
    expect(drained).toBe(true);
    expect(written.map((t) => JSON.parse(t).type)).toEqual(["SCHEMA", "RECORD"]);
    endSingerOutput("run-bp", null);
  });
});
