// What the restore's walk will ask the read plan for, learned ahead of it. The trees are
// loaded ahead of the walk (tree-ahead.ts), so the blobs of the files below them are known
// before the walk gets there; the read plan (read-plan.ts) stretches a read over the blobs
// of a pack that are coming, and keeps their bytes until they are asked for. Over a network
// a pack is then read with a few large ranged reads instead of one per stretch of the walk
// between two of its waits.
//
// A hint only: a blob forecast and never asked for (a file that failed, a chunk copied from
// an earlier place) costs the room its bytes take until they are let go; a blob asked for
// and not forecast is read as before. Bounded: at most `max` blobs are remembered.
import type { BlobLocation, PackRef } from '../repo/blob-index.js';

interface Expected {
  offset: number;
  length: number;
  /** Requests still to come for it (0: taken, dropped in bulk now and then). */
  count: number;
}

interface PackList {
  list: Expected[];
  dead: number;
}

export class ReadForecast {
  private readonly packs = new Map<PackRef, PackList>();
  /** Blobs remembered. */
  size = 0;

  constructor(private readonly max = 1 << 18) {}

  /** The walk will ask for this blob (once more). */
  add(loc: BlobLocation): void {
    let p = this.packs.get(loc.pack);
    if (!p) this.packs.set(loc.pack, (p = { list: [], dead: 0 }));
    const l = p.list;
    // Trees come in the walk's order, and a backup wrote files in about that order: mostly appends.
    let i = l.length;
    if (i && l[i - 1]!.offset >= loc.offset) i = lowerBound(l, loc.offset);
    const at = l[i];
    if (at && at.offset === loc.offset) {
      if (at.count === 0) {
        if (this.size >= this.max) return;
        p.dead--;
        this.size++;
      }
      at.count++;
      return;
    }
    if (this.size >= this.max) return;
    l.splice(i, 0, { offset: loc.offset, length: loc.length, count: 1 });
    this.size++;
  }

  /** The walk asked for this blob: one request fewer to come. */
  take(pack: PackRef, offset: number): void {
    const p = this.packs.get(pack);
    if (!p) return;
    const e = p.list[lowerBound(p.list, offset)];
    if (!e || e.offset !== offset || e.count === 0) return;
    if (--e.count > 0) return;
    this.size--;
    if (++p.dead === p.list.length) this.packs.delete(pack);
    else if (p.dead * 2 > p.list.length) {
      p.list = p.list.filter((x) => x.count > 0);
      p.dead = 0;
    }
  }

  /** Requests still to come for the blob at `offset`. */
  expected(pack: PackRef, offset: number): number {
    const l = this.packs.get(pack)?.list;
    if (!l) return 0;
    const e = l[lowerBound(l, offset)];
    return e && e.offset === offset ? e.count : 0;
  }

  /** Packs with blobs to come, in the order the forecast first heard of them (about the walk's). */
  packsInOrder(): IterableIterator<PackRef> {
    return this.packs.keys();
  }

  /** The first blob to come at `offset` or after it. */
  firstFrom(pack: PackRef, offset: number): { offset: number; length: number } | undefined {
    const l = this.packs.get(pack)?.list;
    if (!l) return undefined;
    for (let i = lowerBound(l, offset); i < l.length; i++) if (l[i]!.count > 0) return l[i];
    return undefined;
  }

  /** Whether any blob of the pack is still to come. */
  has(pack: PackRef): boolean {
    return this.packs.has(pack);
  }

  /** The blobs to come that lie wholly in [from, to), by offset. */
  within(pack: PackRef, from: number, to: number): Array<{ offset: number; length: number }> {
    const l = this.packs.get(pack)?.list;
    if (!l) return [];
    const out: Array<{ offset: number; length: number }> = [];
    for (let i = lowerBound(l, from); i < l.length && l[i]!.offset < to; i++) {
      const e = l[i]!;
      if (e.count > 0 && e.offset + e.length <= to) out.push({ offset: e.offset, length: e.length });
    }
    return out;
  }

  /**
   * How far a read [from, to) of the pack stretches over the blobs to come: each no further
   * than `gap` from the read as it grows, the read no longer than `span` bytes and growing by
   * no more than `room` bytes, and staying within [floor, ceil) (bytes read already). Forward
   * first (the walk goes on in about the pack's order), then back.
   */
  stretch(pack: PackRef, from: number, to: number, o: { gap: number; span: number; room: number; floor: number; ceil: number }): { from: number; to: number } {
    const l = this.packs.get(pack)?.list;
    if (!l) return { from, to };
    const limit = Math.min(o.span, to - from + Math.max(o.room, 0));
    for (let i = lowerBound(l, to); i < l.length; i++) {
      const e = l[i]!;
      if (e.count === 0) continue;
      const end = Math.max(to, e.offset + e.length);
      if (e.offset > to + o.gap || end - from > limit || end > o.ceil) break;
      to = end;
    }
    for (let i = lowerBound(l, from) - 1; i >= 0; i--) {
      const e = l[i]!;
      if (e.count === 0) continue;
      if (e.offset + e.length + o.gap < from || to - e.offset > limit || e.offset < o.floor) break;
      from = Math.min(from, e.offset);
    }
    return { from, to };
  }
}

function lowerBound(l: Expected[], offset: number): number {
  let lo = 0;
  let hi = l.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (l[mid]!.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
