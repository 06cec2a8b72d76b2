import { jsonKeyFunction, type Key } from "../../outputs/merge.js";
import { createDecoder, type RecordDecoder } from "../../records/decoders/index.js";
import { StreamQuality } from "../../records/quality.js";
import { compileShaper, type Row, type Shaper } from "../../records/shape.js";
import { stringifyJson } from "../../shared/json-text.js";
import { CursorTracker } from "../incremental.js";
import type { SessionKind } from "./protocol.js";
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
    const out = s.out;
    out.length = 0;
    decoder.push(Buffer.from(u.bytes.buffer, u.bytes.byteOffset, u.bytes.byteLength), out);
    if (u.end) decoder.end(out);
    const result = records(s, out);
    result.first = s.decoded === 0 && out.length ? stringifyJson(out[0]) : null;
    s.decoded += out.length;
    result.last = out.length ? stringifyJson(out[out.length - 1]) : null;
    out.length = 0;
    return { result, transfer: [(result.text as Uint8Array).buffer as ArrayBuffer] };
  },
  end: (s) => s.quality.exportState(),
};

const encoder = new TextEncoder();

/** RecordSink.accept + the JSON lines writer, for one unit's decoded records. */
function records(s: State, out: unknown[]): StreamedResult {
  const { shaper, quality, keyOf } = s;
  const cursor = s.cursorField ? new CursorTracker(s.cursorField) : null;
  const keys: (Key | null)[] | null = keyOf ? [] : null;
  const lengths: number[] | null = keyOf ? [] : null;
  const quarantined: string[] = [];
  let text = "";
  let written = 0;
  let valid = 0;
  let invalid = 0;
  let filtered = 0;
  for (let i = 0; i < out.length; i++) {
    const row = shaper.shape(out[i]);
    if (row === null) {
      filtered++;
      continue;
    }
    const errors = quality.check(row);
    if (errors.length) {
      invalid++;
      if (s.skip) {
        const id = quality.recordId(row, quality.seen);
        quarantined.push(stringifyJson({ record_id: id, errors, record: row }));
        continue;
      }
    } else valid++;
    const json = stringifyJson(row);
    text += `${json}\n`;
    written++;
    if (keyOf) {
      keys!.push(keyOf(row));
      lengths!.push(Buffer.byteLength(json));
    }
    cursor?.see(row);
  }
  return {
    text: encoder.encode(text),
    written,
    keys,
    lengths,
    valid,
    invalid,
    filtered,
    quarantined,
    cursor: cursor?.max ?? undefined,
    decoded: out.length,
    first: null,
    last: null,
  };
}
