// Reading files out of the repository for FUSE: one OpenFile per open(2), chunks fetched
// through the repository's blob cache (decrypted chunks, LRU by bytes), concurrent
// requests for the same chunk sharing one fetch, and read-ahead of the next chunks when
// a file is read sequentially. Chunks of POOLED_MIN bytes or more are kept apart, in
// reused buffers (./plain-chunks.ts).
import { loadBlobGroup } from '../repo/blob-group.js';
import type { Repository } from '../repo/repository.js';
import type { ChunkMap } from './chunk-map.js';
import { Chunk, ChunkCache, PlainPool, SlabPool } from './plain-chunks.js';

/** Chunks this large or larger are decrypted into reused buffers and cached by the mount itself. */
export const POOLED_MIN = 256 << 10;
/** Bound of the free buffers kept for them. */
const POOL_BYTES = 64 << 20;
/** Bound of the free buffers kept for their sealed bytes: several readers' read-ahead loads at once. */
const SEALED_POOL_BYTES = 48 << 20;

export class ChunkSource {
  private readonly inflight = new Map<string, Promise<Buffer>>();
  /** Large chunks (POOLED_MIN), loading and loaded; small ones live in the repository's blob cache. */
  private readonly pooledLoads = new Map<string, Promise<Chunk>>();
  private readonly pooled: ChunkCache;
  private readonly pool = new PlainPool(POOL_BYTES);
  private readonly sealedPool = new SlabPool(SEALED_POOL_BYTES);
  /** Blobs fetched in groups (neighbours of a small file read), and GETs that fetched them. */
  readonly groupStats = { groups: 0, blobs: 0 };

  /** `cacheBytes`: bound of the large chunks kept (the mount's cache_size). */
  constructor(
    private readonly repo: Repository,
    cacheBytes = 128 << 20,
  ) {
    this.pooled = new ChunkCache(cacheBytes);
  }

  /** Large chunks decrypted into new buffers and into reused ones. */
  get poolStats(): { plain: { made: number; reused: number }; sealed: { made: number; reused: number } } {
    return { plain: this.pool.stats, sealed: this.sealedPool.stats };
  }

  /** Whether a read of this chunk needs no fetch (cached, or being fetched). */
  ready(id: Buffer): boolean {
    const key = id.toString('hex');
    return this.inflight.has(key) || this.pooledLoads.has(key) || this.pooled.has(key) || this.repo.hasCachedBlob(id);
  }

  /**
   * The chunk `id` (`length` plaintext bytes, as the index says), held for the caller, who
   * drops it when done (Chunk.drop): at once when cached, else once loaded.
   */
  take(id: Buffer, length: number): Chunk | Promise<Chunk> {
    if (length < POOLED_MIN) return this.load(id).then((b) => new Chunk(b).hold());
    const key = id.toString('hex');
    const hit = this.pooled.get(key);
    if (hit) return hit.hold();
    let p = this.pooledLoads.get(key);
    if (!p) {
      p = this.loadPooled(id, key, length).finally(() => this.pooledLoads.delete(key));
      this.pooledLoads.set(key, p);
    }
    // Held in the turn the load ends (the cache holds it until then).
    return p.then((c) => c.hold());
  }

  private async loadPooled(id: Buffer, key: string, length: number): Promise<Chunk> {
    let buf: Buffer | undefined;
    let data: Buffer;
    try {
      data = await this.repo.loadBlobInto(id, (n) => {
        if (buf) this.pool.give(buf); // a copy tried before this one
        return (buf = this.pool.take(Math.max(n, length)));
      }, this.sealedPool);
    } catch (e) {
      if (buf) this.pool.give(buf);
      throw e;
    }
    // Opened elsewhere (a fallback path): a buffer of its own.
    const mine = buf !== undefined && data.buffer === buf.buffer && data.byteOffset === buf.byteOffset;
    if (buf && !mine) this.pool.give(buf);
    const c = new Chunk(data, mine ? this.pool : null, mine ? buf! : null);
    this.pooled.set(key, c);
    return c;
  }

  /**
   * Fetches these blobs at once (pack-group.ts); a load of any of them meanwhile waits for
   * the group. Blobs the group does not bring (damage, cold) are then read on their own.
   */
  group(ids: Buffer[]): void {
    const todo = ids.filter((id) => !this.ready(id));
    if (todo.length < 2) return;
    this.groupStats.groups++;
    this.groupStats.blobs += todo.length;
    const batch = loadBlobGroup(this.repo, todo);
    for (const id of todo) {
      const key = id.toString('hex');
      const p = batch.then(
        (got) => got.get(key) ?? this.repo.loadBlob(id),
        () => this.repo.loadBlob(id),
      ).finally(() => this.inflight.delete(key));
      p.catch(() => {}); // a read of it reports
      this.inflight.set(key, p);
    }
  }

  load(id: Buffer): Promise<Buffer> {
    const key = id.toString('hex');
    let p = this.inflight.get(key);
    if (!p) {
      p = this.repo.loadBlob(id).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }
}

export class OpenFile {
  /** The chunk the last read ended in: most 128 KiB reads fall in the same chunk as the one before. Held. */
  private cur = -1;
  private curChunk: Chunk | null = null;
  /** Chunks fetched ahead of a sequential reader, by index; a (held) Chunk once they have arrived. */
  private readonly ahead = new Map<number, Chunk | Promise<Chunk>>();
  private reads = 0;
  private closed = false;

  constructor(
    readonly map: ChunkMap,
    private readonly source: ChunkSource,
    private readonly readahead: number,
  ) {}

  /** Chunk i, held for the caller. */
  private chunk(i: number): Chunk | Promise<Chunk> {
    if (i === this.cur && this.curChunk) return this.curChunk.hold();
    const a = this.ahead.get(i);
    if (a) return a instanceof Chunk ? a.hold() : a.then((c) => c.hold());
    return this.source.take(this.map.ids[i]!, this.map.lengths[i]!);
  }

  private fetch(k: number): void {
    if (k >= this.map.count || this.ahead.has(k) || this.closed) return;
    const got = this.source.take(this.map.ids[k]!, this.map.lengths[k]!);
    if (got instanceof Chunk) {
      this.ahead.set(k, got);
      return;
    }
    this.ahead.set(k, got);
    got.then(
      (c) => {
        if (this.ahead.get(k) === got) this.ahead.set(k, c);
        else c.drop(); // dropped from the read-ahead (or the file closed) while it loaded
      },
      () => this.ahead.get(k) === got && this.ahead.delete(k), // the read of that chunk fetches it again and reports
    );
  }

  private unfetch(k: number): void {
    const a = this.ahead.get(k);
    this.ahead.delete(k);
    if (a instanceof Chunk) a.drop();
  }

  private fetchAhead(first: number): void {
    for (const k of this.ahead.keys()) if (k < first) this.unfetch(k);
    for (let k = first + 1; k <= first + this.readahead; k++) this.fetch(k);
  }

  /**
   * Starts fetching the first chunk: an open is followed by a read at once. Deferred with
   * setImmediate so the reply to the open goes out first and the fetch overlaps its trip.
   */
  start(): void {
    setImmediate(() => this.reads === 0 && this.fetch(0));
  }

  /** Lets go of the chunks this file holds (its reads after this still work, without read-ahead). */
  close(): void {
    this.closed = true;
    for (const k of [...this.ahead.keys()]) this.unfetch(k);
    this.curChunk?.drop();
    this.curChunk = null;
    this.cur = -1;
  }

  /**
   * Fills buf[0, len) with the file's bytes at pos; returns the number of bytes (short at
   * the end of the file). Synchronous when the chunks are already here, which is most reads.
   */
  read(buf: Buffer, len: number, pos: number): number | Promise<number> {
    const v = this.views(len, pos);
    return Array.isArray(v) ? copyViews(v, buf) : v.then((w) => copyViews(w, buf));
  }

  /**
   * The file's bytes at pos (at most len, short at the end of the file) as views of the
   * cached chunks (and of a zero buffer for holes): a read is answered from them without a
   * copy. Synchronous when the chunks are already here, which is most reads. The views are
   * valid until the end of the turn they are returned in (./plain-chunks.ts).
   */
  views(len: number, pos: number): Buffer[] | Promise<Buffer[]> {
    const map = this.map;
    this.reads++;
    if (pos >= map.size || len <= 0) return [];
    const end = Math.min(pos + len, map.size);
    const first = map.find(pos);
    // Sequential: this read continues in the chunk of the previous one, or the next.
    if (this.readahead > 0 && first >= 0 && first === this.cur + 1) this.fetchAhead(first);

    const idx: number[] = [];
    const data: Array<Chunk | Promise<Chunk>> = [];
    let ready = true;
    for (let i = first < 0 ? 0 : first; i < map.count && map.offsets[i]! < end; i++) {
      if (map.end(i) <= pos) continue;
      const d = this.chunk(i);
      if (!(d instanceof Chunk)) ready = false;
      idx.push(i);
      data.push(d);
    }
    if (ready) return this.slicesAndDrop(pos, end, idx, data as Chunk[]);
    return Promise.allSettled(data).then((rs) => {
      const got = rs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        for (const c of got) c.drop();
        throw failed.reason;
      }
      return this.slicesAndDrop(pos, end, idx, got);
    });
  }

  /** slices, then drops the read's holds (the buffers stay until the next turn). */
  private slicesAndDrop(pos: number, end: number, idx: number[], data: Chunk[]): Buffer[] {
    try {
      return this.slices(pos, end, idx, data);
    } finally {
      for (const c of data) c.drop();
    }
  }

  private slices(pos: number, end: number, idx: number[], data: Chunk[]): Buffer[] {
    const map = this.map;
    const out: Buffer[] = [];
    let cur = pos;
    for (let n = 0; n < idx.length; n++) {
      const i = idx[n]!;
      const chunk = data[n]!.data;
      const start = map.offsets[i]!;
      if (start > cur) zeros(out, start - cur); // a hole before this chunk
      cur = Math.max(cur, start);
      const stop = Math.min(end, map.end(i));
      // A verified chunk has the length the index gave; if not, the rest reads as zeros.
      const avail = Math.min(stop, start + chunk.length);
      if (avail > cur) out.push(chunk.subarray(cur - start, avail - start));
      if (stop > avail && stop > cur) zeros(out, stop - Math.max(cur, avail));
      cur = stop;
      this.setCur(i, data[n]!);
    }
    if (cur < end) zeros(out, end - cur); // a hole up to the end of the read
    return out;
  }

  private setCur(i: number, c: Chunk): void {
    if (this.closed) return;
    this.cur = i;
    if (this.curChunk === c) return;
    this.curChunk?.drop();
    this.curChunk = c.hold();
  }
}

const ZERO = Buffer.alloc(1 << 20);

/** Views of a zero buffer, n bytes in all. */
function zeros(out: Buffer[], n: number): void {
  for (; n > 0; n -= ZERO.length) out.push(ZERO.subarray(0, Math.min(n, ZERO.length)));
}

function copyViews(views: Buffer[], buf: Buffer): number {
  let at = 0;
  for (const v of views) at += v.copy(buf, at);
  return at;
}
