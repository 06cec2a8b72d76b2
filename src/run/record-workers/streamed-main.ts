import type { StreamPlan, ValidationPlan } from "../../compile/plan.js";
import type { HttpResponse } from "../../http/client.js";
import type { RecordContext } from "../../records/field-specs.js";
import type { QualityState, StreamQuality } from "../../records/quality.js";
import { parseJson } from "../../shared/json-text.js";
import type { RecordSink } from "../record-sink.js";
import { RowCutter } from "./cut.js";
import { RecordWorkerPool, type WorkerSession } from "./pool.js";
import type { StreamedResult, StreamedUnit } from "./streamed-types.js";

/** Bytes per unit: big enough that a message's cost vanishes, small enough for flat memory. */
const UNIT_BYTES = 256 * 1024;
/** Units in flight per stream (one worker: one running, the next ones waiting there). */
const IN_FLIGHT = 4;
/** A body declared smaller than this (compressed: a quarter of it) is decoded on the main thread. */
const MIN_BODY_BYTES = 1024 * 1024;

/** Why a stream's records cannot go through workers, or null when they can. */
export function streamedIneligible(
  stream: StreamPlan,
  sink: RecordSink,
  limit: number | null,
): string | null {
  if (stream.response?.format !== "jsonl" && stream.response?.format !== "csv")
    return "not a streamed format";
  if (limit !== null) return "--limit";
  if (stream.includeParent) return "include_parent";
  if (stream.response.format === "csv" && stream.response.csv.delimiter.charCodeAt(0) > 0x7f)
    return "a delimiter outside ASCII";
  if (!sink.takesLines()) return "the output, invalid_records or child streams";
  return null;
}

/**
 * A streamed (JSONL/CSV) stream's record work on a worker thread: big bodies are cut into units of
 * complete rows on the main thread (which reads, gunzips in libuv's pool, hashes for retries and
 * writes), decoded, shaped, checked and serialized by ONE worker in order (a stream's decoder state
 * and statistics live in one place: exact by construction), and written back in order. Small
 * bodies are decoded here as before; the statistics move to the worker and back with the session.
 */
export class StreamedWorkers {
  private pool: RecordWorkerPool | null = null;
  private session: WorkerSession<StreamedUnit, StreamedResult, QualityState> | null = null;
  private bodies = 0;

  constructor(
    private readonly stream: StreamPlan,
    private readonly sink: RecordSink,
    private readonly quality: StreamQuality,
    private readonly context: RecordContext,
    private readonly validation: ValidationPlan,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** The decoder of one body: through the worker, or null (decode here) for a small body. */
  async decoder(r: HttpResponse): Promise<WorkerDecoder | null> {
    const declared = Number(r.headers["content-length"] ?? Number.NaN);
    const compressed = !!r.headers["content-encoding"] || this.stream.response?.compression === "gzip";
    if (Number.isFinite(declared) && declared < (compressed ? MIN_BODY_BYTES / 4 : MIN_BODY_BYTES)) {
      await this.handBack();
      return null;
    }
    if (!this.session) {
      this.pool ??= new RecordWorkerPool(1, { maxInFlight: IN_FLIGHT, signal: this.signal });
      const s = this.stream;
      const plan = {
        name: s.name,
        records: s.records,
        fields: s.fields,
        exclude: s.exclude,
        flatten: s.flatten,
        includeParent: s.includeParent,
        filter: s.filter,
        schema: s.schema,
        primaryKey: s.primaryKey,
        response: s.response,
        incremental: s.incremental,
      };
      const init = {
        plan,
        context: this.context,
        validation: this.validation,
        quality: this.quality.exportState(),
      };
      this.session = this.pool.open("streamed", init);
    }
    const csv =
      this.stream.response?.format === "csv" ? this.stream.response.csv.delimiter.charCodeAt(0) : null;
    return new WorkerDecoder(this.session, this.bodies++, new RowCutter(csv), this.sink);
  }

  /** The worker's statistics back into the stream's (the next body is decoded here, or the end). */
  private async handBack(): Promise<void> {
    const s = this.session;
    if (!s) return;
    this.session = null;
    const [state] = await s.end();
    this.quality.importState(state);
  }

  /** The stream ended (or failed): statistics handed back when the worker can, every thread ended. */
  async close(ok: boolean): Promise<void> {
    try {
      if (ok) await this.handBack();
      else await this.handBack().catch(() => {});
    } finally {
      this.session = null;
      await this.pool?.terminate();
      this.pool = null;
    }
  }
}

/**
 * A RecordDecoder for read-streamed.ts whose records go to a worker: `push` cuts the bytes at row
 * ends into units, `settle` waits while enough are in flight and writes the finished ones to the
 * sink in order, `finish` writes the rest. A worker's error (a malformed line, with its number)
 * rejects from `settle`/`finish`, inside the body's read.
 */
export class WorkerDecoder {
  completeBytes = 0;
  lines = 0;
  count = 0;
  private first: string | null = null;
  private last: string | null = null;
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** Bytes of `parts` up to the last row end found. */
  private cutAt = 0;
  private resumed = false;
  private readonly pending: Promise<StreamedResult>[] = [];

  constructor(
    private readonly session: WorkerSession<StreamedUnit, StreamedResult, QualityState>,
    private readonly body: number,
    private readonly cutter: RowCutter,
    private readonly sink: RecordSink,
  ) {}

  get held(): number {
    return this.partsBytes;
  }

  push(chunk: Buffer, _out: unknown[]): void {
    const end = this.cutter.scan(chunk);
    if (end > 0) this.cutAt = this.partsBytes + end;
    this.parts.push(chunk);
    this.partsBytes += chunk.length;
    if (this.cutAt >= UNIT_BYTES) this.cut(this.cutAt, false);
  }

  end(_out: unknown[]): void {
    if (this.partsBytes > 0) this.cut(this.partsBytes, true);
  }

  resume(): void {
    this.parts = [];
    this.partsBytes = 0;
    this.cutAt = 0;
    this.cutter.reset(this.completeBytes);
    this.resumed = true;
  }

  /** Waits when enough units are in flight, writing the oldest; undefined when there is room. */
  settle(): Promise<void> | undefined {
    if (this.pending.length < IN_FLIGHT) return undefined;
    return this.writeOldest();
  }

  /** Every unit's records written, in order. */
  async finish(): Promise<void> {
    while (this.pending.length) await this.writeOldest();
  }

  /** The body's first and last decoded records (the pagination guards compare pages by them). */
  ends(): unknown[] {
    return this.count && this.first !== null && this.last !== null
      ? [parseJson(this.first), parseJson(this.last)]
      : [];
  }

  private async writeOldest(): Promise<void> {
    const r = await this.pending.shift()!;
    this.count += r.decoded;
    if (this.first === null && r.first !== null) this.first = r.first;
    if (r.last !== null) this.last = r.last;
    const p = this.sink.acceptLines(r);
    if (p) await p;
  }

  /** Sends the first `n` bytes of `parts` (whole rows) as one unit, in a buffer of its own. */
  private cut(n: number, end: boolean): void {
    const unit = Buffer.allocUnsafeSlow(n);
    let at = 0;
    let i = 0;
    for (; i < this.parts.length && at < n; i++) {
      const p = this.parts[i];
      const take = Math.min(p.length, n - at);
      p.copy(unit, at, 0, take);
      at += take;
      if (take < p.length) {
        this.parts[i] = p.subarray(take);
        break;
      }
    }
    this.parts.splice(0, i);
    this.partsBytes -= n;
    this.cutAt = Math.max(0, this.cutAt - n);
    this.completeBytes += n;
    const bytes = new Uint8Array(unit.buffer, unit.byteOffset, n);
    this.pending.push(
      this.session.submit({ body: this.body, bytes, end, resume: this.resumed }, [
        unit.buffer as ArrayBuffer,
      ]),
    );
    this.resumed = false;
  }
}
