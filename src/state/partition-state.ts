import { stringifyJson } from "../shared/json-text.js";
import type { PipelineState, StreamState } from "./state-store.js";

type Position = string | number;

/**
 * One stream's saved positions, per partition (format 1.1 "Incremental state per partition").
 * A partition is named by the parent values its request uses; one that has no saved position
 * starts at the stream's v1 value (`cursor`, the seed: an upgraded pipeline does not fetch its
 * history again), else at `initial` / `start` (null here). Positions of partitions that are not
 * seen in a run are kept.
 *
 * Memory and size: a Map of key → position (100,000 partitions of `owner/repo` keys and ISO
 * instants: about 12 MB of heap, 5 MB of state file written without indentation).
 */
export class PartitionPositions {
  private readonly saved: Map<string, Position>;
  readonly seed: Position | null;

  constructor(state: StreamState | undefined) {
    this.saved = new Map(Object.entries(state?.partitions ?? {}));
    this.seed = state?.cursor ?? null;
  }

  /** Where this partition starts: its own position, else the stream's v1 value, else null. */
  get(key: string): Position | null {
    return this.saved.get(key) ?? this.seed;
  }

  set(key: string, value: Position): void {
    this.saved.set(key, value);
  }

  get size(): number {
    return this.saved.size;
  }

  /** The map as the state file keeps it. */
  toJSON(): Record<string, Position> {
    const out: Record<string, Position> = Object.create(null);
    for (const [k, v] of this.saved) out[k] = v;
    return out;
  }
}

/**
 * A partition's name in the state: its one parent value, or the values as a JSON list. A big
 * integer id (beyond 2^53: a BigInt from parseJson) is written with its exact digits.
 */
export function partitionKey(values: unknown[]): string {
  if (values.length === 1) {
    const v = values[0];
    return typeof v === "string" ? v : stringifyJson(v);
  }
  return stringifyJson(values);
}

/** The state with one stream's entry changed (other streams and the auth token kept). */
export function withStream(
  state: PipelineState,
  name: string,
  change: (s: StreamState | undefined) => StreamState,
): PipelineState {
  const streams = { ...state.streams };
  streams[name] = change(streams[name]);
  return { ...state, streams };
}
