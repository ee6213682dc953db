// Decrypted chunks of large files in reused buffers. A mount reading big files at hundreds
// of MB/s made one fresh plaintext buffer per chunk: every page of it faulted in, and V8
// held ~200 MB of them as garbage between collections. Here a chunk's buffer goes back to a
// pool once nothing holds it: the cache, an open file (its current chunk, its read-ahead)
// and a read being answered each take a hold and drop it when done.
//
// A buffer is reused no earlier than the next turn of the event loop after its last hold
// was dropped (setImmediate): a read's reply is sent from views of its chunks in the same
// turn its views were made, so a view never outlives the buffer it shows.
import { sizeClass } from '../repo/buffer-pool.js';
import { gfAlloc } from '../platform/native/parity.js';

/** Buffers are carved from mappings this large, backed by huge pages where the kernel can. */
const SLAB = 32 << 20;

/**
 * Reused buffers by size class (repo/buffer-pool.ts's classes), carved from huge-page
 * mappings: a fresh mount's first pass through its working set took one page fault per
 * 4 KiB, each a trip through the hypervisor here. A buffer given back beyond the bound is
 * dropped (its slab goes when none of its buffers is left). Buffers from here must never be
 * transferred to a worker (that would detach the whole slab).
 */
export class SlabPool {
  private readonly free = new Map<number, Buffer[]>();
  private slab: Buffer | null = null;
  private used = 0;
  private pooled = 0;
  readonly stats = { made: 0, reused: 0 };

  constructor(private readonly maxPooledBytes: number) {}

  /** A buffer of n bytes or more (its size class; contents: garbage). */
  take(n: number): Buffer {
    const c = sizeClass(n);
    const b = this.free.get(c)?.pop();
    if (b) {
      this.pooled -= c;
      this.stats.reused++;
      return b;
    }
    this.stats.made++;
    if (c > SLAB / 4) return gfAlloc(c).subarray(0, c);
    if (!this.slab || this.used + c > SLAB) {
      this.slab = gfAlloc(SLAB);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + c);
    this.used += c;
    return out;
  }

  /** Gives back a buffer `take` handed out (the whole of it). */
  give(b: Buffer): void {
    const c = b.length;
    if (c !== sizeClass(c) || this.pooled + c > this.maxPooledBytes) return;
    let list = this.free.get(c);
    if (!list) this.free.set(c, (list = []));
    list.push(b);
    this.pooled += c;
  }
}

export class Chunk {
  private holds = 0;
  private dead = false;

  /** `home`: the pool `block` (the buffer from it that `data` lies in) goes back to when nothing holds it (none: left to the GC). */
  constructor(
    readonly data: Buffer,
    private readonly home: PlainPool | null = null,
    private readonly block: Buffer | null = null,
  ) {}

  hold(): this {
    if (this.dead) throw new Error('internal error: a chunk held after its buffer was reused');
    this.holds++;
    return this;
  }

  drop(): void {
    if (this.holds <= 0) throw new Error('internal error: a chunk dropped more often than held');
    if (--this.holds === 0 && this.home) this.home.later(this);
  }

  /** Whether its buffer can go back to the pool (called at the turn after its last drop). */
  retire(): Buffer | null {
    if (this.holds > 0 || this.dead) return null;
    this.dead = true;
    return this.block;
  }
}

export class PlainPool {
  private readonly pool: SlabPool;
  private waiting: Chunk[] = [];
  private scheduled = false;

  constructor(maxPooledBytes: number) {
    this.pool = new SlabPool(maxPooledBytes);
  }

  /** Buffers made, and buffers handed out again. */
  get stats(): { made: number; reused: number } {
    return this.pool.stats;
  }

  /** A buffer of n bytes or more (contents: garbage); the chunk made in it names it as its block. */
  take(n: number): Buffer {
    return this.pool.take(n);
  }

  /** Gives back a buffer `take` made that no chunk ever owned (its load failed). */
  give(b: Buffer): void {
    this.pool.give(b);
  }

  /** A chunk nothing holds: its buffer goes back at the next turn, unless held again by then. */
  later(c: Chunk): void {
    this.waiting.push(c);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const w = this.waiting;
      this.waiting = [];
      for (const ch of w) {
        const b = ch.retire();
        if (b) this.pool.give(b);
      }
    });
  }
}

/** Chunks by id hex, least recently used first, up to a bound in bytes; the cache holds each. */
export class ChunkCache {
  private readonly map = new Map<string, Chunk>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** The chunk (most recently used now), not held for the caller. */
  get(key: string): Chunk | undefined {
    const c = this.map.get(key);
    if (c) {
      this.map.delete(key);
      this.map.set(key, c);
    }
    return c;
  }

  set(key: string, c: Chunk): void {
    const old = this.map.get(key);
    if (old === c) return;
    if (old) this.remove(key, old);
    this.map.set(key, c.hold());
    this.bytes += c.data.length;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes || this.map.size <= 1) break;
      this.remove(k, v);
    }
  }

  private remove(key: string, c: Chunk): void {
    this.map.delete(key);
    this.bytes -= c.data.length;
    c.drop();
  }
}
