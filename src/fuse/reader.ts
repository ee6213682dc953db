// Reading files out of the repository for FUSE: one OpenFile per open(2), chunks fetched
// through the repository's blob cache (decrypted chunks, LRU by bytes), concurrent
// requests for the same chunk sharing one fetch, and read-ahead of the next chunks when
// a file is read sequentially.
import { loadBlobGroup } from '../repo/blob-group.js';
import type { Repository } from '../repo/repository.js';
import type { ChunkMap } from './chunk-map.js';

export class ChunkSource {
  private readonly inflight = new Map<string, Promise<Buffer>>();
  /** Blobs fetched in groups (neighbours of a small file read), and GETs that fetched them. */
  readonly groupStats = { groups: 0, blobs: 0 };

  constructor(private readonly repo: Repository) {}

  /** Whether a read of this chunk needs no fetch (cached, or being fetched). */
  ready(id: Buffer): boolean {
    return this.inflight.has(id.toString('hex')) || this.repo.hasCachedBlob(id);
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
  /** The chunk the last read ended in: most 128 KiB reads fall in the same chunk as the one before. */
  private cur = -1;
  private curData: Buffer | null = null;
  /** Chunks fetched ahead of a sequential reader, by index; a Buffer once they have arrived. */
  private readonly ahead = new Map<number, Buffer | Promise<Buffer>>();
  private reads = 0;

  constructor(
    readonly map: ChunkMap,
    private readonly source: ChunkSource,
    private readonly readahead: number,
  ) {}

  private chunk(i: number): Buffer | Promise<Buffer> {
    if (i === this.cur && this.curData) return this.curData;
    const a = this.ahead.get(i);
    if (a) return a;
    const p = this.source.load(this.map.ids[i]!);
    p.catch(() => {}); // the read waits on it, unless another chunk of the same read failed first
    return p;
  }

  private fetch(k: number): void {
    if (k >= this.map.count || this.ahead.has(k)) return;
    const p = this.source.load(this.map.ids[k]!);
    this.ahead.set(k, p);
    p.then(
      (b) => this.ahead.get(k) === p && this.ahead.set(k, b),
      () => this.ahead.delete(k), // the read of that chunk fetches it again and reports
    );
  }

  private fetchAhead(first: number): void {
    for (const k of this.ahead.keys()) if (k < first) this.ahead.delete(k);
    for (let k = first + 1; k <= first + this.readahead; k++) this.fetch(k);
  }

  /**
   * Starts fetching the first chunk: an open is followed by a read at once. Deferred with
   * setImmediate so the reply to the open goes out first and the fetch overlaps its trip.
   */
  start(): void {
    setImmediate(() => this.reads === 0 && this.fetch(0));
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
   * copy. Synchronous when the chunks are already here, which is most reads.
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
    const data: Array<Buffer | Promise<Buffer>> = [];
    let ready = true;
    for (let i = first < 0 ? 0 : first; i < map.count && map.offsets[i]! < end; i++) {
      if (map.end(i) <= pos) continue;
      const d = this.chunk(i);
      if (!(d instanceof Buffer)) ready = false;
      idx.push(i);
      data.push(d);
    }
    if (ready) return this.slices(pos, end, idx, data as Buffer[]);
    return Promise.all(data).then((ds) => this.slices(pos, end, idx, ds));
  }

  private slices(pos: number, end: number, idx: number[], data: Buffer[]): Buffer[] {
    const map = this.map;
    const out: Buffer[] = [];
    let cur = pos;
    for (let n = 0; n < idx.length; n++) {
      const i = idx[n]!;
      const chunk = data[n]!;
      const start = map.offsets[i]!;
      if (start > cur) zeros(out, start - cur); // a hole before this chunk
      cur = Math.max(cur, start);
      const stop = Math.min(end, map.end(i));
      // A verified chunk has the length the index gave; if not, the rest reads as zeros.
      const avail = Math.min(stop, start + chunk.length);
      if (avail > cur) out.push(chunk.subarray(cur - start, avail - start));
      if (stop > avail && stop > cur) zeros(out, stop - Math.max(cur, avail));
      cur = stop;
      this.cur = i;
      this.curData = chunk;
    }
    if (cur < end) zeros(out, end - cur); // a hole up to the end of the read
    return out;
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
