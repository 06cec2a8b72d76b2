import type { Row } from "../records/shape.js";

/**
 * Lets concurrent partitions write into one writer in partition order, so the output does not
 * depend on which response came first. A partition that is not at the head buffers its records;
 * past `cap` buffered records it waits for its turn (memory stays bounded).
 */
export class OrderedSink {
  private head = 0;
  private readonly buffers = new Map<number, Row[]>();
  private readonly closed = new Set<number>();
  private readonly waiters = new Map<number, () => void>();

  constructor(
    private readonly write: (row: Row) => Promise<void> | undefined,
    private readonly cap = 5000,
  ) {}

  lane(index: number): { write(row: Row): Promise<void>; close(): Promise<void> } {
    return {
      write: async (row) => {
        if (index === this.head && !this.buffers.has(index)) {
          const p = this.write(row);
          if (p) await p;
          return;
        }
        let buf = this.buffers.get(index);
        if (!buf) this.buffers.set(index, (buf = []));
        buf.push(row);
        if (buf.length >= this.cap) await this.turn(index);
      },
      close: async () => {
        this.closed.add(index);
        if (index === this.head) await this.advance();
      },
    };
  }

  /** Waits until `index` is the head and its buffer is flushed. */
  private turn(index: number): Promise<void> {
    if (index === this.head) return this.flush(index);
    return new Promise<void>((resolve) => this.waiters.set(index, resolve)).then(() => this.flush(index));
  }

  /** Writes the buffer of `index`; records it adds meanwhile are buffered and written too. */
  private async flush(index: number): Promise<void> {
    let buf = this.buffers.get(index);
    while (buf?.length) {
      this.buffers.set(index, []);
      for (const row of buf) {
        const p = this.write(row);
        if (p) await p;
      }
      buf = this.buffers.get(index);
    }
    this.buffers.delete(index);
  }

  private async advance(): Promise<void> {
    while (this.closed.has(this.head)) {
      this.closed.delete(this.head);
      this.head++;
      const waiter = this.waiters.get(this.head);
      if (waiter) {
        // The new head is still running and waiting for its turn: it flushes itself.
        this.waiters.delete(this.head);
        waiter();
        return;
      }
      await this.flush(this.head);
    }
  }
}
