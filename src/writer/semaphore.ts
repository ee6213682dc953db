// A counting semaphore: bounds how many files are open and read at once. The wait queue
// is a ring of resolvers consumed by index (Array.shift is O(n) with thousands waiting).
export class Semaphore {
  private waiters: Array<(() => void) | undefined> = [];
  private head = 0;
  constructor(private free: number) {}

  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    if (this.head < this.waiters.length) {
      const next = this.waiters[this.head];
      this.waiters[this.head++] = undefined;
      if (this.head > 1024 && this.head * 2 > this.waiters.length) {
        this.waiters = this.waiters.slice(this.head);
        this.head = 0;
      }
      next!();
    } else this.free++;
  }
}
