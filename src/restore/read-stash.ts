// Bytes read before the restore's walk asked for them, until it does: the last reads whole
// (spans: a stretch of a pack the walk is going through, whose blobs it will mostly ask for
// soon, forecast or not), and single blobs forecast to come (read-forecast.ts) that were
// kept when the span holding them had to go. A span goes once the blobs forecast in it
// have all been asked for. The read plan (read-plan.ts) bounds them: spans go first, the
// oldest first, whenever a read the walk asks for needs their room; single blobs only when
// a read the walk waits on does, the one the walk will ask for last first.
import type { PackRef } from '../repo/blob-index.js';

export interface Span {
  pack: PackRef;
  offset: number;
  bytes: Buffer;
  /** Offsets of the blobs in it forecast and not yet asked for. */
  waiting: Set<number>;
}

export class ReadStash {
  private readonly blobs = new Map<PackRef, Map<number, Buffer>>();
  /** Single blobs by when the walk will ask for them, the last on top (entries of blobs let go since are skipped). */
  private readonly latest = new MaxHeap();
  private readonly spans: Span[] = [];
  /** Bytes held: of single blobs, of spans. */
  blobBytes = 0;
  spanBytes = 0;
  private blobCount = 0;

  get bytes(): number {
    return this.blobBytes + this.spanBytes;
  }

  /** The blob's sealed bytes, when held (a view: copy them out), and the span they are in (null: a single blob). */
  find(pack: PackRef, offset: number, length: number): { bytes: Buffer; span: Span | null } | undefined {
    const b = this.blobs.get(pack)?.get(offset);
    if (b && b.length === length) return { bytes: b, span: null };
    for (let i = this.spans.length - 1; i >= 0; i--) {
      const s = this.spans[i]!;
      if (s.pack === pack && s.offset <= offset && offset + length <= s.offset + s.bytes.length) return { bytes: s.bytes.subarray(offset - s.offset, offset - s.offset + length), span: s };
    }
    return undefined;
  }

  has(pack: PackRef, offset: number): boolean {
    return this.blobs.get(pack)?.has(offset) === true;
  }

  /** Calls fn with the start and end of each span of the pack. */
  eachSpan(pack: PackRef, fn: (from: number, to: number) => void): void {
    for (const s of this.spans) if (s.pack === pack) fn(s.offset, s.offset + s.bytes.length);
  }

  keepSpan(s: Span): void {
    this.spans.push(s);
    this.spanBytes += s.bytes.length;
  }

  /** The oldest span, let go (undefined when there is none). */
  shiftSpan(): Span | undefined {
    const s = this.spans.shift();
    if (s) this.spanBytes -= s.bytes.length;
    return s;
  }

  /** Calls fn with each span that has no forecast blob left in it, the oldest first, while it returns true. */
  idleSpans(fn: (s: Span) => boolean): void {
    for (const s of this.spans.filter((x) => !x.waiting.size)) if (!fn(s)) return;
  }

  /** Lets a span go: its length. */
  removeSpan(s: Span): number {
    const i = this.spans.indexOf(s);
    if (i < 0) return 0;
    this.spans.splice(i, 1);
    this.spanBytes -= s.bytes.length;
    return s.bytes.length;
  }

  /** Keeps a single blob the walk asks for at `neededAt` (read-forecast.ts's order). */
  put(pack: PackRef, offset: number, bytes: Buffer, neededAt: number): void {
    let m = this.blobs.get(pack);
    if (!m) this.blobs.set(pack, (m = new Map()));
    if (m.has(offset)) return;
    m.set(offset, bytes);
    this.latest.push({ key: neededAt, pack, offset, bytes });
    this.blobBytes += bytes.length;
    this.blobCount++;
    // Entries of blobs asked for since are dropped when they outnumber the ones held.
    if (this.latest.size > 2 * this.blobCount + 1024) this.latest.keep((e) => this.blobs.get(e.pack)?.get(e.offset) === e.bytes);
  }

  /** Lets a single blob's bytes go: their length (0: not held). */
  delete(pack: PackRef, offset: number): number {
    const m = this.blobs.get(pack);
    const b = m?.get(offset);
    if (!m || !b) return 0;
    m.delete(offset);
    if (!m.size) this.blobs.delete(pack);
    this.blobBytes -= b.length;
    this.blobCount--;
    return b.length;
  }

  /** Lets the single blob the walk will ask for last go: its length (0 when there is none). */
  evictLatest(): number {
    for (;;) {
      const e = this.latest.pop();
      if (!e) return 0;
      // Still held as it was put (not asked for and let go, then put again since).
      if (this.blobs.get(e.pack)?.get(e.offset) === e.bytes) return this.delete(e.pack, e.offset);
    }
  }

  /** Lets everything go: the bytes that were held. */
  clear(): number {
    const n = this.bytes;
    this.blobs.clear();
    this.latest.clear();
    this.blobCount = 0;
    this.spans.length = 0;
    this.blobBytes = 0;
    this.spanBytes = 0;
    return n;
  }
}

interface Held {
  key: number;
  pack: PackRef;
  offset: number;
  bytes: Buffer;
}

/** A binary heap, the largest key on top. */
class MaxHeap {
  private a: Held[] = [];

  push(x: Held): void {
    const a = this.a;
    let i = a.length;
    a.push(x);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (a[up]!.key >= x.key) break;
      a[i] = a[up]!;
      i = up;
    }
    a[i] = x;
  }

  pop(): Held | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (!a.length || !last) return top;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= a.length) break;
      if (c + 1 < a.length && a[c + 1]!.key > a[c]!.key) c++;
      if (a[c]!.key <= last.key) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }

  get size(): number {
    return this.a.length;
  }

  /** Keeps only the entries `fn` accepts. */
  keep(fn: (x: Held) => boolean): void {
    const old = this.a;
    this.a = [];
    for (const x of old) if (fn(x)) this.push(x);
  }

  clear(): void {
    this.a = [];
  }
}
