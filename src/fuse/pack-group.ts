// Which blobs to read with a small file's first one: packs are tar-like and hold a
// directory's files side by side (the writer packs them in walk order), so a reader of one
// small file (`cp -a`, `grep -r`, a build) will most likely want its neighbours next. The
// group is the blobs of the directory's small files that lie in the same pack, in one run
// around the file's blob with no gap wider than GAP, at most SPAN bytes and MAX_BLOBS blobs:
// one ranged GET brings them all (repo/blob-group.ts) into the blob cache.
import type { Repository } from '../repo/repository.js';
import type { Dir } from './tree-cache.js';

/** Files up to this size are read as part of a group. */
export const SMALL_FILE = 1 << 20;
/** Largest gap between two blobs of a group (Repository.readSealedBatch reads across such gaps). */
const GAP = 64 << 10;
/** Largest span of a group in the pack. */
const SPAN = 4 << 20;
const MAX_BLOBS = 512;

interface Placed {
  id: Buffer;
  offset: number;
  end: number;
}

export class PackGroups {
  /** Per directory: its small files' blobs in hot packs, by pack id, in pack order. */
  private readonly byDir = new WeakMap<Dir, Map<string, Placed[]>>();

  constructor(private readonly repo: Repository) {}

  /** The blobs to read with `id` (a blob of a small file of `dir`), `id` first; just [id] when it has no neighbours. */
  around(dir: Dir, id: Buffer): Buffer[] {
    const loc = this.repo.locateHot(id);
    if (!loc) return [id];
    const list = this.packsOf(dir).get(loc.pack.id.toString('hex'));
    const at = list ? list.findIndex((p) => p.offset === loc.offset && p.id.equals(id)) : -1;
    if (!list || at < 0) return [id];
    let lo = at;
    let hi = at;
    let start = list[at]!.offset;
    let end = list[at]!.end;
    // Widen to the right first (the walk order), then to the left, within the bounds.
    while (hi + 1 < list.length && hi - lo + 1 < MAX_BLOBS) {
      const n = list[hi + 1]!;
      if (n.offset > end + GAP || Math.max(end, n.end) - start > SPAN) break;
      end = Math.max(end, n.end);
      hi++;
    }
    while (lo > 0 && hi - lo + 1 < MAX_BLOBS) {
      const n = list[lo - 1]!;
      if (n.end + GAP < start || end - Math.min(start, n.offset) > SPAN) break;
      start = Math.min(start, n.offset);
      lo--;
    }
    const ids = [id];
    const seen = new Set([id.toString('hex')]);
    for (let i = lo; i <= hi; i++) {
      const hex = list[i]!.id.toString('hex');
      if (seen.has(hex)) continue;
      seen.add(hex);
      ids.push(list[i]!.id);
    }
    return ids;
  }

  private packsOf(dir: Dir): Map<string, Placed[]> {
    let m = this.byDir.get(dir);
    if (m) return m;
    m = new Map();
    for (const node of dir.nodes) {
      if (node.type !== 'file' || node.size > SMALL_FILE || !node.content) continue;
      for (const id of node.content) {
        const loc = this.repo.locateHot(id);
        if (!loc) continue;
        const key = loc.pack.id.toString('hex');
        let list = m.get(key);
        if (!list) m.set(key, (list = []));
        list.push({ id, offset: loc.offset, end: loc.offset + loc.length });
      }
    }
    for (const list of m.values()) list.sort((a, b) => a.offset - b.offset);
    this.byDir.set(dir, m);
    return m;
  }
}

/** Bytes of a pack fetched ahead of a reader that goes through it in order (default). */
export const PACK_READ_AHEAD = 16 << 20;
/** Packs whose readers are followed at once. */
const FOLLOWED = 64;
/**
 * The first group fetched ahead, doubled for each next one up to SPAN: the group the reader
 * needs next arrives first, not together with the GETs of the whole read-ahead (a group's
 * blobs are there only once its whole GET arrived and opened).
 */
const FIRST_SPAN = 256 << 10;

/**
 * Read-ahead along a pack: the writer packs files in its walk's order, and `cp -a` or `tar`
 * of a mount read them in about that order. When the small files read from a pack move
 * forward through it, the next `aheadBytes` of the pack are fetched in SPAN-sized groups
 * (several GETs in flight) before they are asked for. A read that jumps back or far ahead
 * starts over. The blobs land in the blob cache (`cache_size`), which bounds what is kept.
 */
export class PackReadAhead {
  private readonly packs = new Map<string, { pos: number; issued: number; span: number }>();

  constructor(
    private readonly repo: Repository,
    private readonly fetch: (ids: Buffer[]) => void,
    private readonly aheadBytes = PACK_READ_AHEAD,
  ) {}

  /** A small file whose first blob is `id` is being read. */
  onRead(id: Buffer): void {
    const loc = this.repo.locateHot(id);
    if (!loc) return;
    const key = loc.pack.id.toString('hex');
    const st = this.packs.get(key);
    const end = loc.offset + loc.length;
    if (!st) {
      if (this.packs.size >= FOLLOWED) this.packs.delete(this.packs.keys().next().value!);
      this.packs.set(key, { pos: loc.offset, issued: end, span: FIRST_SPAN });
      return;
    }
    const forward = loc.offset >= st.pos && loc.offset <= st.issued + SPAN;
    st.pos = loc.offset;
    if (!forward) {
      st.issued = end;
      st.span = FIRST_SPAN;
      return;
    }
    st.issued = Math.max(st.issued, end);
    while (st.issued < loc.offset + this.aheadBytes) {
      const ids = this.repo.index.inPack(loc.pack, st.issued, st.issued + st.span);
      if (!ids.length) break; // the end of the pack
      st.issued += st.span;
      st.span = Math.min(SPAN, 2 * st.span);
      this.fetch(ids);
    }
  }
}
