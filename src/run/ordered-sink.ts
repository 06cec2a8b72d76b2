import type { Row } from "../records/shape.js";

/**
 * Lets concurrent partitions write into one writer in partition order, so the output does not
 * depend on which response came first. A partition that is not at the head buffers its records;
 * past `cap` buffered records it waits for its turn (memory stays bounded).
 *
 * An atomic lane (`on_partition_error: skip`) buffers even at the head, until it closes, so that
 * a partition that fails on its 2nd page can be dropped whole (`discard`) instead of leaving its
 * first page in the output. Only a partition of more than `cap` records is written before it
 * ends; `discard` then says how many of its records were written already.
 *
 * Lanes that finished wait in memory for the head. `room()` holds back new lanes while more than
 * `total` records wait, so that many quick partitions behind one slow one cannot fill memory:
 * the run then goes at the slow partition's pace.
 */
export interface Lane {
  write(row: Row): Promise<void>;
  close(): Promise<void>;
  /** Drops the records not written yet; returns how many of the lane's records were written. */
  discard(): number;
}

export class OrderedSink {
  private head = 0;
  private readonly buffers = new Map<number, Row[]>();
  private readonly closed = new Set<number>();
  private readonly waiters = new Map<number, () => void>();
  private readonly atomic = new Set<number>();
  /** Records waiting in buffers, all lanes together. */
  private buffered = 0;
  private roomWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly write: (row: Row) => Promise<void> | undefined,
    private readonly cap = 5000,
    private readonly total = 4 * cap,
    /**
     * Called, in lane order, once every record of lane `index` is written and before any record
     * of a later lane is: where checkpoints commit (checkpoints.ts). A throw stops the sink.
     */
    private readonly onDone: ((index: number) => Promise<void>) | null = null,
  ) {}

  /** Resolves when fewer than `total` records wait in buffers: then a new lane may start. */
  async room(): Promise<void> {
    while (!this.stopped && this.buffered >= this.total)
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  /**
   * The stream failed: nobody waits any more, for room or for a turn (a lane waiting for its turn
   * behind a head that failed would wait for ever), and lanes write nothing more.
   */
  stop(): void {
    this.stopped = true;
    this.freed(0);
    const waiters = [...this.waiters.values()];
    this.waiters.clear();
    for (const w of waiters) w();
  }

  /** Records were written or dropped: lanes held back by `room()` look again. */
  private freed(n: number): void {
    this.buffered -= n;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w();
  }

  lane(index: number, atomic = false): Lane {
    if (atomic) this.atomic.add(index);
    let written = 0;
    return {
      write: async (row) => {
        if (this.stopped) throw new Error("the stream failed: no more records are written");
        if (!atomic && index === this.head && !this.buffers.has(index)) {
          const p = this.write(row);
          if (p) await p;
          return;
        }
        let buf = this.buffers.get(index);
        if (!buf) this.buffers.set(index, (buf = []));
        buf.push(row);
        this.buffered++;
        if (buf.length >= this.cap) written += await this.turn(index);
      },
      close: async () => {
        this.closed.add(index);
        // While an advance runs, it sees this lane closed when the head reaches it.
        if (index === this.head && !this.advancing) await this.advance();
      },
      discard: () => {
        this.freed(this.buffers.get(index)?.length ?? 0);
        this.buffers.delete(index);
        return written;
      },
    };
  }

  /** Waits until `index` is the head and its buffer is flushed; the records written. */
  private turn(index: number): Promise<number> {
    if (index === this.head) return this.flush(index);
    return new Promise<void>((resolve) => this.waiters.set(index, resolve)).then(() => {
      if (this.stopped) throw new Error("the stream failed: no more records are written");
      return this.flush(index);
    });
  }

  /** Writes the buffer of `index`; records it adds meanwhile are buffered and written too. */
  private async flush(index: number): Promise<number> {
    let n = 0;
    let buf = this.buffers.get(index);
    while (buf?.length) {
      this.buffers.set(index, []);
      try {
        for (const row of buf) {
          const p = this.write(row);
          if (p) await p;
          n++;
        }
      } finally {
        this.freed(buf.length);
      }
      buf = this.buffers.get(index);
    }
    this.buffers.delete(index);
    return n;
  }

  /**
   * One advance at a time: a lane closing while another lane's advance flushes it must not
   * start a second one (that moved the head twice, and a skipped lane's records were never written).
   */
  private advancing = false;

  private async advance(): Promise<void> {
    if (this.advancing) return;
    this.advancing = true;
    try {
      // A lane that closed while this ran (after its last look) is taken here.
      do await this.advanceHead();
      while (this.closed.has(this.head));
    } finally {
      this.advancing = false;
    }
  }

  private async advanceHead(): Promise<void> {
    while (this.closed.has(this.head)) {
      await this.flush(this.head); // a closed head's records not written yet (an atomic lane's)
      if (this.onDone && !this.stopped) await this.onDone(this.head);
      this.closed.delete(this.head);
      this.atomic.delete(this.head);
      this.head++;
      const waiter = this.waiters.get(this.head);
      if (waiter) {
        // The new head is still running and waiting for its turn: it flushes itself.
        this.waiters.delete(this.head);
        waiter();
        return;
      }
      // An atomic lane still running keeps its records until it closes.
      if (!this.atomic.has(this.head) || this.closed.has(this.head)) await this.flush(this.head);
    }
  }
}
