// Reuses large ArrayBuffers instead of leaving them to the garbage collector. A backup
// moves every byte through a few buffer stages (chunk -> worker -> sealed -> pack); with a
// fresh buffer each time, hundreds of MB of garbage wait for a GC, and freed memory is
// not always given back to the system. Buffers are kept by size class (powers of two up to
// 1 MiB, then whole MiBs), up to a bound in bytes; one given back beyond it is left to the GC.

const MIB = 1 << 20;

/** The size of the buffer a pool hands out for n bytes (with the pool's smallest size). */
export function sizeClass(n: number, minSize = 64 << 10): number {
  if (n > MIB) return Math.ceil(n / MIB) * MIB;
  let c = minSize;
  while (c < n) c *= 2;
  return c;
}

export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private pooled = 0;
  private out = 0;
  /** Buffers handed out and not given back. */
  get outNow(): number {
    return this.out;
  }

  /** The most buffers handed out and not given back at once. */
  mostOut = 0;

  /** `unzeroed`: new buffers are not cleared first (for callers that fill every byte they use: no page-touching memset). */
  constructor(
    private readonly maxPooledBytes: number,
    private readonly minSize = 64 << 10,
    private readonly unzeroed = false,
  ) {}

  /** Bytes of the buffers waiting to be taken again. */
  get pooledBytes(): number {
    return this.pooled;
  }

  private sizeClass(n: number): number {
    return sizeClass(n, this.minSize);
  }

  /** A buffer of at least `n` bytes (its contents are whatever was there). */
  take(n: number): ArrayBuffer {
    const c = this.sizeClass(n);
    this.mostOut = Math.max(this.mostOut, ++this.out);
    const b = this.free.get(c)?.pop();
    if (b) {
      this.pooled -= c;
      return b;
    }
    return this.unzeroed ? (Buffer.allocUnsafeSlow(c).buffer as ArrayBuffer) : new ArrayBuffer(c);
  }

  /** Gives a buffer back; one of a size this pool did not hand out is ignored. */
  give(b: ArrayBuffer): void {
    this.out--;
    const c = b.byteLength;
    if (c === 0 || c !== this.sizeClass(c) || this.pooled + c > this.maxPooledBytes) return;
    let list = this.free.get(c);
    if (!list) this.free.set(c, (list = []));
    list.push(b);
    this.pooled += c;
  }
}
