// A weighted semaphore: bounds how many files are open at once, or how many bytes of
// buffers they hold (backup's reads, restore's blobs in flight). Waiters are served in order; a request larger than the
// whole capacity waits until everything is free, then runs alone. The wait queue is a
// ring of entries consumed by index (Array.shift is O(n) with thousands waiting).
export class Semaphore {
  private waiters: Array<{ n: number; resolve: () => void } | undefined> = [];
  private head = 0;
  private readonly capacity: number;

  constructor(private free: number) {
    this.capacity = free;
  }

  acquire(n = 1): Promise<void> {
    const want = Math.min(n, this.capacity);
    if (this.head === this.waiters.length && this.free >= want) {
      this.free -= want;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push({ n: want, resolve }));
  }

  /** Takes n at once if that needs no waiting (and nobody waits); false otherwise. */
  tryAcquire(n = 1): boolean {
    const want = Math.min(n, this.capacity);
    if (this.head !== this.waiters.length || this.free < want) return false;
    this.free -= want;
    return true;
  }

  /** Gives back what acquire(n) took (pass the same n). */
  release(n = 1): void {
    this.free += Math.min(n, this.capacity);
    while (this.head < this.waiters.length) {
      const next = this.waiters[this.head]!;
      if (next.n > this.free) break;
      this.free -= next.n;
      this.waiters[this.head++] = undefined;
      next.resolve();
    }
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    }
  }
}
