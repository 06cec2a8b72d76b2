import { jsonKeyFunction, type Key } from "../../outputs/merge.js";
import { createDecoder, passesLinesThrough, type RecordDecoder } from "../../records/decoders/index.js";
import { StreamQuality } from "../../records/quality.js";
import { compileShaper, type Row, type Shaper } from "../../records/shape.js";
import { stringifyJson } from "../../shared/json-text.js";
import type { SessionKind } from "./protocol.js";
import { recordLines } from "./record-lines.js";
import type { StreamedInit, StreamedPlan, StreamedResult, StreamedUnit } from "./streamed-types.js";

interface State {
  plan: StreamedPlan;
  shaper: Shaper;
  quality: StreamQuality;
  skip: boolean;
  keyOf: ((r: Row) => Key | null) | null;
  cursorField: string | null;
  body: number;
  /** Records decoded from the current body so far. */
  decoded: number;
  decoder: RecordDecoder | null;
  out: unknown[];
  /** Canonical lines of `out`'s records (JSON lines: written as they came), or undefined. */
  texts: (string | undefined)[] | undefined;
}

/**
 * A JSONL/CSV export's records, in a worker: each unit's bytes decoded (one decoder per body:
 * line numbers, the CSV header), shaped, filtered, checked (the stream's statistics live here for
 * the session) and serialized as the record sink's `accept` and the JSON lines writer would.
 */
export const streamedKind: SessionKind<StreamedInit, State, StreamedUnit, StreamedResult, unknown> = {
  open(init) {
    const quality = new StreamQuality(init.plan as never, init.validation);
    quality.importState(init.quality);
    const pk = init.plan.primaryKey;
    return {
      plan: init.plan,
      shaper: compileShaper(init.plan, init.context),
      quality,
      skip: init.validation.invalidRecords === "skip",
      keyOf: pk?.length ? jsonKeyFunction(pk) : null,
      cursorField: init.plan.incremental?.cursorField ?? null,
      body: -1,
      decoded: 0,
      decoder: null,
      out: [],
      // A worker's lines always go to the JSON lines writer (RecordSink.takesLines).
      texts: passesLinesThrough(init.plan, null) ? [] : undefined,
    };
  },
  unit(s, u) {
    if (u.body !== s.body) {
      s.body = u.body;
      s.decoder = createDecoder(s.plan.response);
      s.decoded = 0;
    }
    const decoder = s.decoder!;
    if (u.resume) decoder.resume();
    const { out, texts } = s;
    out.length = 0;
    if (texts) texts.length = 0;
    decoder.push(Buffer.from(u.bytes.buffer, u.bytes.byteOffset, u.bytes.byteLength), out, texts);
    if (u.end) decoder.end(out, texts);
    const result = records(s, out);
    result.first = s.decoded === 0 && out.length ? stringifyJson(out[0]) : null;
    s.decoded += out.length;
    result.last = out.length ? stringifyJson(out[out.length - 1]) : null;
    out.length = 0;
    if (texts) texts.length = 0;
    return { result, transfer: [(result.text as Uint8Array).buffer as ArrayBuffer] };
  },
  end: (s) => s.quality.exportState(),
};

const encoder = new TextEncoder();

/** One unit's decoded records as JSON lines (recordLines), the text as UTF-8 bytes to transfer. */
function records(s: State, out: unknown[]): StreamedResult {
  const chunk = recordLines(s, out, s.texts);
  return {
    ...chunk,
    text: encoder.encode(chunk.text as string),
    decoded: out.length,
    first: null,
    last: null,
  };
}
