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
  /** Where the walk is to ask for it next, in the order blobs were added (about the walk's). */
  seq: number;
}

/** A blob as it was added: the walk's order. */
export interface Upcoming {
  pack: PackRef;
  offset: number;
  length: number;
}

interface PackList {
  /** By offset up to `sorted`; after it, blobs added since, in the order they came. */
  list: Expected[];
  sorted: number;
  dead: number;
}

export class ReadForecast {
  private readonly packs = new Map<PackRef, PackList>();
  /** Packs with blobs added and not yet sorted in. */
  private readonly unsorted = new Set<PackList>();
  /** Blobs remembered, a blob added since the last sort counted once per add. */
  private count = 0;
  /** Blobs in the order they were added, from `head` on (those before it need no reading ahead any more). */
  private queue: Upcoming[] = [];
  private head = 0;
  private seq = 0;

  constructor(private readonly max = 1 << 18) {}

  /** The walk will ask for this blob (once more). */
  add(loc: BlobLocation): void {
    let p = this.packs.get(loc.pack);
    if (this.count >= this.max) {
      // Full: only a blob remembered already counts once more (exact counts need the lists sorted).
      if (this.size >= this.max) {
        const e = p?.list[lowerBound(p.list, loc.offset)];
        if (e && e.offset === loc.offset && e.count > 0) e.count++;
        return;
      }
    }
    if (!p) this.packs.set(loc.pack, (p = { list: [], sorted: 0, dead: 0 }));
    const l = p.list;
    const last = l[l.length - 1];
    // Trees come in about the walk's order, and a backup wrote files in about that order:
    // mostly appends, and a blob asked for twice in a row. Anything else is sorted in when
    // the pack is next consulted, in one pass for all blobs added since.
    if (last && last.offset === loc.offset && p.sorted === l.length) {
      if (last.count === 0) {
        p.dead--;
        this.count++;
        last.seq = this.seq++;
        this.queue.push({ pack: loc.pack, offset: loc.offset, length: loc.length });
      }
      last.count++;
      return;
    }
    l.push({ offset: loc.offset, length: loc.length, count: 1, seq: this.seq });
    this.seq++;
    this.queue.push({ pack: loc.pack, offset: loc.offset, length: loc.length });
    this.count++;
    if (p.sorted === l.length - 1 && (!last || last.offset < loc.offset)) p.sorted++;
    else this.unsorted.add(p);
  }

  /** Blobs remembered. */
  get size(): number {
    for (const u of this.unsorted) this.count -= settle(u);
    this.unsorted.clear();
    return this.count;
  }

  /** The pack's list, by offset (blobs added since it was last consulted sorted in). */
  private listOf(pack: PackRef): PackList | undefined {
    const p = this.packs.get(pack);
    if (p && p.sorted < p.list.length) {
      this.count -= settle(p);
      this.unsorted.delete(p);
    }
    return p;
  }

  /** The walk asked for this blob: one request fewer to come. */
  take(pack: PackRef, offset: number): void {
    const p = this.listOf(pack);
    if (!p) return;
    const e = p.list[lowerBound(p.list, offset)];
    if (!e || e.offset !== offset || e.count === 0) return;
    if (--e.count > 0) return;
    this.count--;
    if (++p.dead === p.list.length) this.packs.delete(pack);
    else if (p.dead * 2 > p.list.length) {
      p.list = p.list.filter((x) => x.count > 0);
      p.sorted = p.list.length;
      p.dead = 0;
    }
  }

  /** Requests still to come for the blob at `offset`. */
  expected(pack: PackRef, offset: number): number {
    const l = this.listOf(pack)?.list;
    if (!l) return 0;
    const e = l[lowerBound(l, offset)];
    return e && e.offset === offset ? e.count : 0;
  }

  /**
   * The i-th blob from the first not yet passed, in the order they were added (about the
   * walk's): it may have been asked for since (expected() says). Undefined past the last.
   */
  upcoming(i: number): Upcoming | undefined {
    return this.queue[this.head + i];
  }

  /** The first n of upcoming() need no reading ahead any more (asked for, held or being read). */
  pass(n: number): void {
    this.head += n;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Where in the walk's order the blob is asked for next (Infinity: not to come). */
  neededAt(pack: PackRef, offset: number): number {
    const l = this.listOf(pack)?.list;
    if (!l) return Infinity;
    const e = l[lowerBound(l, offset)];
    return e && e.offset === offset && e.count > 0 ? e.seq : Infinity;
  }

  /** Whether any blob of the pack is still to come. */
  has(pack: PackRef): boolean {
    return this.packs.has(pack);
  }

  /** The blobs to come that lie wholly in [from, to), by offset. */
  within(pack: PackRef, from: number, to: number): Array<{ offset: number; length: number }> {
    const l = this.listOf(pack)?.list;
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
    const l = this.listOf(pack)?.list;
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

/**
 * Sorts the blobs added since into the pack's list: the new ones sorted among themselves,
 * then merged from the back (what lies before the smallest new offset is not moved), then
 * a blob there twice counted once with both counts. Returns how many blobs were counted
 * twice that way.
 */
function settle(p: PackList): number {
  const l = p.list;
  const added = l.slice(p.sorted).sort((a, b) => a.offset - b.offset);
  let i = p.sorted - 1;
  let j = added.length - 1;
  let w = l.length - 1;
  while (j >= 0) l[w--] = i >= 0 && l[i]!.offset > added[j]!.offset ? l[i--]! : added[j--]!;
  // Entries from w + 1 on were written; equal offsets are neighbours from one before it.
  let out = Math.max(w, 0) + 1;
  let twice = 0;
  for (let k = out; k < l.length; k++) {
    const e = l[k]!;
    const prev = l[out - 1]!;
    if (prev.offset !== e.offset) {
      l[out++] = e;
      continue;
    }
    // Two entries of one blob: at most one of them taken (a merged list has no duplicates).
    if (prev.count === 0 || e.count === 0) p.dead--;
    else twice++;
    // Next asked for: the earlier of the two still to come.
    if (prev.count === 0 || (e.count > 0 && e.seq < prev.seq)) prev.seq = e.seq;
    prev.count += e.count;
  }
  l.length = out;
  p.sorted = out;
  return twice;
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
