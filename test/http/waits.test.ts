import { describe, expect, it } from "vitest";
import { waitsFor, withdrawn } from "../../src/http/attempt.js";

describe("waitsFor", () => {
  it("one signal given as the run's and the sequence's is used as it is (no composite per request)", () => {
    const run = new AbortController().signal;
    // Node 20 keeps every AbortSignal.any made from a long-lived signal until that one aborts:
    // one per streamed request of a long run.
    expect(waitsFor(run, run).signal).toBe(run);
    expect(waitsFor(run).signal).toBe(run);
    const page = new AbortController().signal;
    expect(waitsFor(undefined, page).signal).toBe(page);
  });

  it("two signals: a wait ends at either, with the error of the one that ended it", async () => {
    const run = new AbortController();
    const page = new AbortController();
    const waits = waitsFor(run.signal, page.signal);
    const paused = waits.pause(60_000);
    page.abort();
    await expect(paused).rejects.toMatchObject({ kind: "aborted", message: withdrawn().message });
    const other = waitsFor(run.signal, new AbortController().signal).pause(60_000);
    run.abort();
    await expect(other).rejects.toMatchObject({ kind: "aborted", message: "the run was interrupted" });
  });
});
