import type { StreamPlan, ValidationPlan } from "../compile/plan.js";
import type { StopReason } from "../http/paginators/paginator.js";
import type { CommitState } from "../outputs/writer.js";
import type { StreamQuality } from "../records/quality.js";
import { type PartitionPositions, withStream } from "../state/partition-state.js";
import type { StateStore, StreamState } from "../state/state-store.js";
import type { CheckpointWriter } from "./checkpoint-writers.js";
import type { CursorTracker } from "./incremental.js";
import type { Unit } from "./partition-source.js";
import { qualityGate, type Rejection } from "./quality-gate.js";
import type { StreamResult, Suspicion } from "./stream-result.js";
import type { PageWatch } from "./suspicions.js";
import { windowPosition } from "./windows.js";

/**
 * The quality gate (or a deciding suspicion) refused a checkpoint: the stream stops there,
 * earlier commits stay.
 */
export class GateStop extends Error {
  constructor(readonly rejection: { kind: Rejection["kind"] | "suspicious"; message: string }) {
    super(rejection.message);
  }
}

/** How a unit ended: on the API's own signal (its position may be saved), or cut short. */
export interface UnitEnd {
  stop: StopReason | null;
  /** Skipped after a failure (on_partition_error: skip). */
  failed: boolean;
  /** A window's pages (suspicions.ts), judged with the stream's windows before it. */
  watch?: PageWatch | null;
}

const CUT_SHORT = new Set(["limit", "max_pages", "max_empty_pages", "ignored_later"]);

/** A unit's position: its partition's (`key`), or the stream's own (`key` null). */
interface Staged {
  key: string | null;
  value: string | number;
}

/**
 * Commits a stream that runs in units (windows, partitions) in unit order (format 1.1
 * "Checkpoints"): at each unit's end, the quality gate is checked on the stream's records so
 * far, the output commits, and the unit's position is staged; the state is then written with the
 * committed file lengths and positions. State writes are coalesced (one in flight, the next
 * carries every commit made meanwhile), so 100,000 partitions do not mean 100,000 file writes;
 * the output is made durable before each state write, so the state never names bytes that a
 * crash could lose. Without checkpoints (`replace`, `json`), positions are saved once, at the end.
 */
export class Checkpointer {
  private readonly units = new Map<number, Unit>();
  private readonly ends = new Map<number, UnitEnd>();
  /** State keys (null: the stream's own) whose position stops here: an earlier unit was cut short. */
  private readonly blocked = new Set<string | null>();
  private streamPosition: string | number | null = null;
  private files: Record<string, number> | null = null;
  private dirty = false;
  private saving: Promise<void> | null = null;
  private saveError: unknown = null;
  committed = 0;
  incomplete = 0;
  /** Records the `records` path selected in the windows done so far (their watches). */
  private selected = 0;
  /** Without checkpoints: windows' watches, judged once every window is done. */
  private readonly watches: { label: string; watch: PageWatch; stop: StopReason | null }[] = [];
  /** Files committed with each checkpoint besides the output (the quarantine): their lengths. */
  sideCommit: (() => Promise<Record<string, number> | null>) | null = null;

  constructor(
    private readonly stream: StreamPlan,
    private readonly ctx: {
      state: StateStore;
      writer: CheckpointWriter;
      quality: StreamQuality;
      validation: ValidationPlan;
      cursor: CursorTracker | null;
      positions: PartitionPositions;
      result: StreamResult;
      /** Commit after each unit (append / merge), or only at the end. */
      checkpoints: boolean;
      /** Keep positions at all (a windowed stream under `replace` keeps none). */
      keepPositions: boolean;
      /** --commit-partial: a deciding suspicion does not stop a checkpoint. */
      commitPartial: boolean;
    },
  ) {}

  started(unit: Unit): void {
    this.units.set(unit.index, unit);
  }

  ended(index: number, end: UnitEnd): void {
    this.ends.set(index, end);
  }

  /** Unit `index` is fully written, and no later unit's record is (ordered-sink.ts). */
  readonly unitDone = async (index: number): Promise<void> => {
    const unit = this.units.get(index);
    const end = this.ends.get(index) ?? { stop: null, failed: true };
    this.units.delete(index);
    this.ends.delete(index);
    const max = this.ctx.cursor?.max ?? null;
    if (this.ctx.cursor) this.ctx.cursor.max = null;
    if (!unit) return;
    const position = this.stage(unit, end, max);
    const units = this.ctx.result.units;
    if (units) units.done++;
    if (end.watch) this.selected += end.watch.state().records;
    if (!this.ctx.checkpoints) {
      if (end.watch) this.watches.push({ label: unit.label, watch: end.watch, stop: end.stop });
      this.keep(position);
      return;
    }
    // A `records` path that matched nothing while the stream has no record yet: not committed.
    const found = end.watch ? labelled(unit.label, end.watch.verdict(end.stop, this.selected)) : [];
    this.ctx.result.suspicions.push(...found);
    const refusing = found.find((f) => f.decides);
    if (refusing && !this.ctx.commitPartial)
      throw new GateStop({ kind: "suspicious", message: `not committed: ${refusing.message}` });
    const drift = this.ctx.quality.drift();
    const rejection = qualityGate(this.ctx.quality, this.ctx.validation, drift);
    if (rejection) throw new GateStop(rejection);
    const files = await this.ctx.writer.checkpoint(this.commitState(position));
    const side = await this.sideCommit?.();
    // The unit's position is kept only now that its records are committed: a state write in
    // flight (an earlier commit's) must never carry a position ahead of the output.
    if (files || side) this.files = { ...this.files, ...files, ...side };
    this.keep(position);
    this.committed++;
    if (units) units.committed = this.committed;
    this.requestSave();
  };

  /**
   * The position the unit's commit saves: when it ended on the API's own signal and nothing
   * before it (of the same partition) was cut short; null when it saves none.
   */
  private stage(unit: Unit, end: UnitEnd, max: string | number | null): Staged | null {
    const key = unit.stateKey;
    const complete = !end.failed && end.stop !== null && !CUT_SHORT.has(end.stop.code);
    if (!complete) {
      this.incomplete++;
      if (this.ctx.result.units) this.ctx.result.units.incomplete = this.incomplete;
      this.blocked.add(key);
      return null;
    }
    if (!this.ctx.keepPositions || this.blocked.has(key)) return null;
    const value = unit.window ? windowPosition(unit.window) : max;
    if (value === null) return null;
    if (key !== null) return { key, value };
    return unit.window || this.stream.parent === null ? { key: null, value } : null;
  }

  /** A committed unit's position, from now on in every state write. */
  private keep(position: Staged | null): void {
    if (!position) return;
    if (position.key === null) this.streamPosition = position.value;
    else this.ctx.positions.set(position.key, position.value);
  }

  /** Without checkpoints: the windows' suspicions, judged on the records of all of them. */
  judgeWindows(): void {
    for (const w of this.watches)
      this.ctx.result.suspicions.push(...labelled(w.label, w.watch.verdict(w.stop, this.selected)));
    this.watches.length = 0;
  }

  /**
   * Database outputs: the positions to write in the commit's own transaction (this unit's
   * included); Singer outputs: the bookmark of the STATE that follows the commit's messages.
   */
  private commitState(position: Staged | null): CommitState | null {
    const out = this.stream.output;
    if ((!out.stateKey && out.format !== "singer") || !this.ctx.keepPositions) return null;
    const state: CommitState = {};
    // A child keeps the stream's v1 value as the seed of partitions not seen yet.
    const own = position && position.key === null ? position.value : this.streamPosition;
    const cursor = own ?? (this.stream.parent !== null ? this.ctx.positions.seed : null);
    if (cursor !== null) state.cursor = cursor;
    const key = position?.key ?? null;
    if (this.stream.parent !== null && (this.ctx.positions.size > 0 || key !== null)) {
      state.partitions = this.ctx.positions.toJSON();
      if (position && key !== null) state.partitions[key] = position.value;
    }
    return state.cursor === undefined && !state.partitions ? null : state;
  }

  private requestSave(): void {
    this.dirty = true;
    this.saving ??= this.saveLoop();
  }

  private async saveLoop(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        await this.ctx.writer.durable();
        await this.write();
      }
    } catch (err) {
      this.saveError ??= err;
    } finally {
      this.saving = null;
    }
  }

  private write(): Promise<void> {
    const name = this.stream.name;
    const partitioned = this.stream.parent !== null && this.ctx.positions.size > 0;
    const positions = partitioned ? this.ctx.positions.toJSON() : null;
    const cursor = this.streamPosition;
    const files = this.files;
    return this.ctx.state.update((s) =>
      withStream(s, name, (old): StreamState => {
        const next: StreamState = { ...old, updated_at: new Date().toISOString() };
        if (cursor !== null) next.cursor = cursor;
        if (positions) next.partitions = positions;
        if (files) next.files = { ...old?.files, ...files };
        // Without checkpoints the output and the quarantine were replaced whole: lengths an
        // earlier appending run committed no longer describe them (a later one would cut them).
        if (!this.ctx.checkpoints) delete next.files;
        return next;
      }),
    );
  }

  /**
   * Every commit's state is on disk (checkpoints), or the positions are saved now (no
   * checkpoints; a windowed `replace` stream keeps none, but its files' old lengths go).
   */
  async finish(outputCommitted: boolean): Promise<void> {
    if (!this.ctx.checkpoints && outputCommitted) await this.write();
    while (this.saving) await this.saving;
    if (this.saveError) throw this.saveError;
  }

  /** The stream failed: keep what was committed (its state), nothing after it. */
  async settle(): Promise<void> {
    while (this.saving) await this.saving;
  }
}

/** A window's suspicions name the window. */
function labelled(label: string, found: Suspicion[]): Suspicion[] {
  return found.map((f) => ({ ...f, message: `${label}: ${f.message}` }));
}
