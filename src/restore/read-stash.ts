// Bytes read before the restore's walk asked for them, until it does: the last reads whole
// (spans: a stretch of a pack the walk is going through, whose blobs it will mostly ask for
// soon, forecast or not), and single blobs forecast to come (read-forecast.ts) that were
// kept when the span holding them had to go. A span goes once the blobs forecast in it
// have all been asked for. The read plan (read-plan.ts) bounds them: spans go first, the
// oldest first, whenever a read the walk asks for needs their room; single blobs only when
// a read the walk waits on does.
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
