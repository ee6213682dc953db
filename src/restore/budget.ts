/**
 * Admits work while both the number of items and their bytes stay under bounds; an item
 * larger than the byte bound is admitted alone. Waiters are served in order (a queue with a
 * moving head: Array#shift is O(n) on long queues).
 */
export class Budget {
  private count = 0;
  private bytes = 0;
  private queue: Array<{ n: number; go: () => void }> = [];
  private head = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  private fits(n: number): boolean {
    return this.count === 0 || (this.count < this.maxCount && this.bytes + n <= this.maxBytes);
  }

  /** Waits until `n` bytes (and one item) fit, and takes them. */
  take(n: number): Promise<void> | void {
    if (this.head === this.queue.length && this.fits(n)) {
      this.count++;
      this.bytes += n;
      return;
    }
    return new Promise<void>((go) => this.queue.push({ n, go }));
  }

  give(n: number): void {
    this.count--;
    this.bytes -= n;
    while (this.head < this.queue.length && this.fits(this.queue[this.head]!.n)) {
      const w = this.queue[this.head++]!;
      this.count++;
      this.bytes += w.n;
      w.go();
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
  }
}
