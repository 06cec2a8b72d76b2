/** The append writer of checkpointed jsonl streams (run/checkpoint-writers.ts). */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { openAppendWriter } from "../../src/run/checkpoint-writers.js";

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it("a state save's sync waits behind the final commit's close, and neither fails nor loses a byte", async () => {
  dir = mkdtempSync(path.join(tmpdir(), "append-writer-"));
  const output = { path: path.join(dir, "s.jsonl") } as OutputPlan;
  for (let round = 0; round < 5; round++) {
    const w = await openAppendWriter(output);
    w.write({ round });
    await w.checkpoint();
    // The checkpoints' save loop calls durable() while the stream commits and closes the file.
    // Syncs go through the same chain as the close: a sync asked for after the commit started
    // ends after it (it then finds no file to sync). A sync beside the close (the old code)
    // ended first, and one that came after close() had started failed with "file closed".
    const order: string[] = [];
    const commit = w.commit().then(() => order.push("commit"));
    const save = w.durable().then(() => order.push("save"));
    await Promise.all([commit, save]);
    expect(order).toEqual(["commit", "save"]);
    await expect(w.durable()).resolves.toBeUndefined();
  }
  const lines = readFileSync(output.path, "utf8").trim().split("\n");
  expect(lines.map((l) => JSON.parse(l).round)).toEqual([0, 1, 2, 3, 4]);
});
