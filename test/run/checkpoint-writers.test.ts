/** The append writer of checkpointed jsonl streams (run/checkpoint-writers.ts). */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { openAppendWriter } from "../../src/run/checkpoint-writers.js";

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it("a state save's sync racing the final commit neither fails nor loses a byte", async () => {
  dir = mkdtempSync(path.join(tmpdir(), "append-writer-"));
  const output = { path: path.join(dir, "s.jsonl") } as OutputPlan;
  for (let round = 0; round < 20; round++) {
    const w = await openAppendWriter(output);
    w.write({ round });
    await w.checkpoint();
    // The checkpoints' save loop calls durable() while the stream commits and closes the file.
    // (A save that comes a few turns of the event loop after the commit started: the file is
    // being closed, or closed with the handle not yet let go.)
    const commit = w.commit();
    const saves: Promise<void>[] = [];
    for (let turn = 0; turn < 200; turn++) {
      saves.push(w.durable());
      await new Promise((resolve) => setImmediate(resolve));
    }
    await expect(Promise.all([commit, ...saves])).resolves.toBeDefined();
  }
  const lines = readFileSync(output.path, "utf8").trim().split("\n");
  expect(lines.map((l) => JSON.parse(l).round)).toEqual([...Array(20).keys()]);
});
