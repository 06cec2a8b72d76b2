import type { ExecutionPlan, StreamPlan } from "../compile/plan.js";
import { compileShaper, type Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import type { Redactor } from "../shared/secrets.js";
import { pull } from "./pull.js";
import { compileRequestTemplate } from "./request-template.js";
import { openSession } from "./run-pipeline.js";
import { recordContext, type StreamRunOptions } from "./stream-options.js";
import { newStreamResult, type StreamResult } from "./stream-result.js";
import { runValues } from "./unit-stream.js";
import { type Window, windowRange, windowsSummary } from "./windows.js";

/**
 * Fetches up to `n` records of a stream as they would be written (after fields / flatten /
 * include_parent), without validating or writing them. A child stream samples its parent first.
 */
export async function sampleStream(
  plan: ExecutionPlan,
  redactor: Redactor,
  streamName: string,
  n: number,
  onRecord: (row: Row) => void,
  signal?: AbortSignal,
): Promise<{ records: number; pages: number; requests: number }> {
  const { client, auth, executor, state } = openSession(plan, redactor, { signal });
  const byName = new Map(plan.streams.map((s) => [s.name, s]));
  try {
    await auth.start(signal);
    const collect = async (
      stream: StreamPlan,
      limit: number,
      parents: Row[] | null,
      sink: (row: Row) => void,
    ) => {
      const result = startedResult(stream.name);
      const opts: StreamRunOptions = {
        runId: "sample",
        baseUrl: plan.source.baseUrl,
        origin: plan.source.origin,
        allowedOrigins: plan.source.allowedOrigins,
        concurrency: 1,
        validation: plan.validation,
        limit,
        maxPages: null,
        fullRefresh: true,
        prefetch: 1,
        state,
        scratchDir: "",
        signal,
      };
      const window = sampledWindow(stream);
      if (stream.windows && !window) return result; // an empty range: nothing to ask for
      const context = recordContext(stream, { ...opts, pipeline: plan.pipeline });
      const shaper = compileShaper(stream, context).forWindow(window);
      const write = async (row: Row) => {
        sink(row);
        result.records.written++;
      };
      if (stream.values)
        await runValues(stream, shaper, write, result); // its list: no request
      else if (!stream.parent) {
        const r = stream.request;
        const request = window
          ? compileRequestTemplate(stream, plan.source.baseUrl)({}, "sample", window)
          : { method: r.method, url: r.url, params: r.params, headers: r.headers, body: r.body };
        await pull(stream, executor, opts, request, shaper, write, result, undefined);
      } else {
        const template = compileRequestTemplate(stream, plan.source.baseUrl);
        for (const [i, parent] of (parents ?? []).entries()) {
          if (result.records.written >= limit) break;
          try {
            const request = template(parent, `#${i + 1}`, window);
            await pull(stream, executor, opts, request, shaper, write, result, parent);
          } catch (err) {
            if (!(err instanceof RunError) || err.kind === "aborted") throw err;
          }
        }
      }
      return result;
    };
    const chain: StreamPlan[] = [];
    for (let s = byName.get(streamName); s; s = s.parent ? byName.get(s.parent) : undefined) chain.unshift(s);
    let parents: Row[] | null = null;
    let last = startedResult(streamName);
    for (const s of chain) {
      const isTarget = s.name === streamName;
      const rows: Row[] = [];
      last = await collect(s, isTarget ? n : 20, parents, isTarget ? onRecord : (row) => rows.push(row));
      parents = rows;
    }
    return { records: last.records.written, pages: last.pages, requests: last.requests.requests };
  } finally {
    await client.close();
  }
}

/** A windowed stream samples its last window (the most recent data), its bounds filled in. */
function sampledWindow(stream: StreamPlan): Window | null {
  if (!stream.windows) return null;
  return windowsSummary(stream.windows, windowRange(stream.windows, Date.now(), null)).last;
}

function startedResult(name: string): StreamResult {
  return { ...newStreamResult(name), status: "running", startedAt: Date.now() };
}
