/**
 * Page work with a worker thread (src/run/page-work/page-work.ts): when the records path and the
 * paginator's paths can be scanned, each page's head is read on this thread (it comes back at
 * once, not from the worker) and the worker only makes the lines; paths a scan never reads
 * (`$`, a member of an array) leave the head to the worker. And PageWriter (pull-pages.ts): no
 * page is written after one that failed writing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StreamPlan, ValidationPlan } from "../../src/compile/plan.js";
import { StreamQuality } from "../../src/records/quality.js";
import type { PagePlan } from "../../src/run/page-work/page-processor.js";
import { threadedPageWork } from "../../src/run/page-work/page-work.js";
import { PageWriter } from "../../src/run/page-work/pull-pages.js";
import type { Page } from "../../src/run/read-pages.js";
import type { RecordSink } from "../../src/run/record-sink.js";
import type { LinesChunk } from "../../src/run/record-workers/streamed-types.js";

const validation: ValidationPlan = { invalidRecords: "skip", maxInvalidRatio: 1, drift: "warn" };

function plan(records: string, paths: string[]): PagePlan {
  return {
    stream: {
      name: "s",
      records,
      fields: null,
      exclude: null,
      flatten: null,
      includeParent: null,
      filter: null,
      schema: null,
      primaryKey: null,
    } as unknown as PagePlan["stream"],
    context: { runId: "r", startedAt: "2024-01-01T00:00:00Z", pipeline: "p", stream: "s" },
    validation,
    cursorField: null,
    paths,
    asked: null,
  };
}

const body = (n: number) =>
  Buffer.from(`{"data":[{"id":${n}},{"id":${n + 1}}],"next":"${n + 2}","cursors":["${n + 2}"]}`);

beforeAll(() => {
  process.env.PIPELINES_PAGE_WORKER_AFTER = "0"; // the worker takes over after two pages
});
afterAll(() => {
  delete process.env.PIPELINES_PAGE_WORKER_AFTER;
});

describe("page work with a worker: where heads are read", () => {
  for (const [paths, here] of [
    [["$.next"], true],
    [["$.cursors.0"], false],
    [["$"], false],
  ] as const) {
    it(`paginator path ${paths[0]}: heads read ${here ? "on this thread" : "by the worker"}, the same lines`, async () => {
      const pl = plan("$.data", [...paths]);
      const quality = new StreamQuality(pl.stream as unknown as StreamPlan, validation);
      const work = threadedPageWork(pl, quality, 1);
      try {
        const out: string[] = [];
        for (let n = 0; n < 8; n += 2) {
          const head = work.head(body(n));
          if (n >= 4) expect(head instanceof Promise).toBe(!here); // pages 3 and 4: the worker's turn
          expect((await head)?.count).toBe(2);
          const lines = await work.lines();
          out.push(typeof lines.text === "string" ? lines.text : Buffer.from(lines.text).toString());
        }
        expect(out.join("")).toBe(Array.from({ length: 8 }, (_, i) => `{"id":${i}}\n`).join(""));
        await work.end(null);
      } finally {
        await work.close();
      }
    });
  }
});

describe("PageWriter", () => {
  const chunk = (text: string): LinesChunk => ({
    text,
    written: 1,
    keys: null,
    lengths: null,
    valid: 1,
    invalid: 0,
    filtered: 0,
    quarantined: [],
    cursor: undefined,
  });
  const page = {} as Page;

  it("writes no page after one that failed writing, and tells the reading error then", async () => {
    const written: string[] = [];
    const sink = {
      acceptLines(c: LinesChunk) {
        if (c.text === "bad") throw new Error("disk full");
        written.push(c.text as string);
        return undefined;
      },
    } as unknown as RecordSink;
    const writer = new PageWriter(sink, {} as never);
    await writer.add(chunk("one"), page, 2);
    await writer.add(chunk("bad"), page, 2);
    await writer.add(chunk("two"), page, 2);
    await expect(writer.add(chunk("three"), page, 2)).rejects.toThrow("disk full");
    const reading = new Error("the next page failed");
    expect(await writer.drainAfter(reading)).toBe(reading);
    expect(written).toEqual(["one"]);
  });

  it("tells a waiting page's own error before the reading error that came after it", async () => {
    const sink = {
      acceptLines(c: LinesChunk) {
        if (c.text === "bad") throw new Error("that page's own error");
        return undefined;
      },
    } as unknown as RecordSink;
    const writer = new PageWriter(sink, {} as never);
    await writer.add(chunk("one"), page, 2);
    await writer.add(chunk("bad"), page, 2);
    const told = await writer.drainAfter(new Error("the next page: 404"));
    expect((told as Error).message).toBe("that page's own error");
  });
});
