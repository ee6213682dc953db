// Bytes read before the restore's walk asked for them, until it does: the last reads whole
// (spans: a stretch of a pack the walk is going through, whose blobs it will mostly ask for
// soon, forecast or not), and single blobs forecast to come (read-forecast.ts) that were
// kept when the span holding them had to go. The read plan (read-plan.ts) bounds them: spans
// go first, the oldest first, whenever a read needs their room; single blobs only when a
// read the walk waits on does.
import type { PackRef } from '../repo/blob-index.js';

export interface Span {
  pack: PackRef;
  offset: number;
  bytes: Buffer;
}

export class ReadStash {
  private readonly blobs = new Map<PackRef, Map<number, Buffer>>();
  /** Single blobs in the order they came (a Map keeps it), for letting the oldest go. */
  private readonly order = new Map<{ pack: PackRef; offset: number }, true>();
  private readonly keys = new Map<PackRef, Map<number, { pack: PackRef; offset: number }>>();
  private readonly spans: Span[] = [];
  /** Bytes held: of single blobs, of spans. */
  blobBytes = 0;
  spanBytes = 0;

  get bytes(): number {
    return this.blobBytes + this.spanBytes;
  }

  /** The blob's sealed bytes, when held (a view: copy them out). */
  get(pack: PackRef, offset: number, length: number): Buffer | undefined {
    const b = this.blobs.get(pack)?.get(offset);
    if (b && b.length === length) return b;
    for (let i = this.spans.length - 1; i >= 0; i--) {
      const s = this.spans[i]!;
      if (s.pack === pack && s.offset <= offset && offset + length <= s.offset + s.bytes.length) return s.bytes.subarray(offset - s.offset, offset - s.offset + length);
    }
    return undefined;
  }

  has(pack: PackRef, offset: number): boolean {
    return this.blobs.get(pack)?.has(offset) === true;
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

  put(pack: PackRef, offset: number, bytes: Buffer): void {
    let m = this.blobs.get(pack);
    if (!m) {
      this.blobs.set(pack, (m = new Map()));
      this.keys.set(pack, new Map());
    }
    if (m.has(offset)) return;
    m.set(offset, bytes);
    const key = { pack, offset };
    this.keys.get(pack)!.set(offset, key);
    this.order.set(key, true);
    this.blobBytes += bytes.length;
  }

  /** Lets a single blob's bytes go: their length (0: not held). */
  delete(pack: PackRef, offset: number): number {
    const m = this.blobs.get(pack);
    const b = m?.get(offset);
    if (!m || !b) return 0;
    m.delete(offset);
    const keys = this.keys.get(pack)!;
    this.order.delete(keys.get(offset)!);
    keys.delete(offset);
    if (!m.size) {
      this.blobs.delete(pack);
      this.keys.delete(pack);
    }
    this.blobBytes -= b.length;
    return b.length;
  }

  /** Lets the oldest single blob go: its length (0 when there is none). */
  evictOldest(): number {
    const first = this.order.keys().next();
    if (first.done) return 0;
    return this.delete(first.value.pack, first.value.offset);
  }

  /** Lets everything go: the bytes that were held. */
  clear(): number {
    const n = this.bytes;
    this.blobs.clear();
    this.keys.clear();
    this.order.clear();
    this.spans.length = 0;
    this.blobBytes = 0;
    this.spanBytes = 0;
    return n;
  }
}
