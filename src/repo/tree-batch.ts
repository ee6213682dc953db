// Trees loaded many at a time, by pack: the trees asked for are grouped by the pack that
// holds them and neighbours are read with one ranged read (a tree pack holds hundreds of
// trees side by side), several reads at once, each reaching back a little before the first
// tree it is for. The bytes read are kept for a while (bounded): a backup writes a
// directory's tree after its subdirectories', so the read that fetched a directory's
// children fetched most of their descendants too, and a walk then finds them here.
// Anything that does not load this way (not in the index, a pack that cannot be read, a
// blob that does not open) is loaded alone by Repository.loadTree, which tries the other
// copies and says what is wrong exactly as it always does.
import { decodeTree, type Tree } from '../format/tree.js';
import { openBlob } from '../format/blob.js';
import { openBlobNative } from '../platform/native.js';
import type { BlobLocation, PackRef } from './blob-index.js';
import { mapLimit } from './map-limit.js';
import { coalesce } from './read-ranges.js';

/** Trees of one pack this far apart are read with one read (the bytes between are trees a walk wants soon)... */
const TREE_GAP = 1 << 20;
/** ...of at most this many bytes. */
const TREE_SPAN = 8 << 20;
/** Bytes of tree packs kept after a read. */
const KEPT_BYTES = 16 << 20;

/** What the loader needs of the repository (the Repository facade is one). */
export interface TreeSource {
  locate(id: Buffer): BlobLocation | undefined;
  packKey(pack: PackRef): Buffer;
  readPackRange(pack: PackRef, offset: number, length: number): Promise<Buffer>;
  loadTree(id: Buffer, opts?: { cache?: boolean }): Promise<Tree>;
  blobId(data: Uint8Array): Buffer;
  readonly readConcurrency: number;
  readonly secrets: { macKey: Buffer };
}

interface Span {
  pack: PackRef;
  offset: number;
  bytes: Buffer;
}

export class TreeBatchLoader {
  /** Spans of tree packs read lately, the newest last. */
  private spans: Span[] = [];
  private spanBytes = 0;
  /** Ranged reads made (for tests and benchmarks). */
  reads = 0;

  constructor(private readonly repo: TreeSource) {}

  /** Each tree, or the error loading it alone threw. */
  async load(ids: Buffer[]): Promise<Array<Tree | Error>> {
    // Filled, not sparse: map() below must visit the trees never located too.
    const out: Array<Tree | Error | undefined> = new Array(ids.length).fill(undefined);
    const wanted: Array<{ i: number; loc: BlobLocation }> = [];
    ids.forEach((id, i) => {
      const loc = this.repo.locate(id);
      if (!loc || loc.pack.kind !== 'tree') return;
      const got = this.fromSpans(loc);
      if (got) out[i] = this.open(id, loc, got);
      else wanted.push({ i, loc });
    });
    const byPack = new Map<PackRef, typeof wanted>();
    for (const w of wanted) {
      let l = byPack.get(w.loc.pack);
      if (!l) byPack.set(w.loc.pack, (l = []));
      l.push(w);
    }
    const reads = [...byPack].flatMap(([pack, ws]) => {
      const rs = coalesce(ws, (w) => w.loc, TREE_GAP, TREE_SPAN);
      // A directory's subdirectories' trees were written before it: read back that far too.
      let end = 0;
      return rs.map((r) => {
        const from = Math.max(end, r.offset - TREE_GAP);
        end = r.offset + r.length;
        return { pack, offset: from, length: end - from, items: r.items };
      });
    });
    await mapLimit(reads, this.repo.readConcurrency, async (r) => {
      let bytes: Buffer;
      try {
        this.reads++;
        bytes = await this.repo.readPackRange(r.pack, r.offset, r.length);
      } catch {
        return; // each tree of the range is loaded alone below, which says what went wrong
      }
      if (bytes.length !== r.length) return;
      this.keep({ pack: r.pack, offset: r.offset, bytes });
      for (const w of r.items) out[w.i] = this.open(ids[w.i]!, w.loc, bytes.subarray(w.loc.offset - r.offset, w.loc.offset - r.offset + w.loc.length));
    });
    return Promise.all(
      out.map(async (t, i) => {
        if (t) return t;
        try {
          return await this.repo.loadTree(ids[i]!, { cache: false });
        } catch (e) {
          return e instanceof Error ? e : new Error(String(e));
        }
      }),
    );
  }

  /** The tree in `sealed`, or undefined when it does not open, match its id or decode (loaded alone then). */
  private open(id: Buffer, loc: BlobLocation, sealed: Buffer): Tree | undefined {
    let key: Buffer;
    try {
      key = this.repo.packKey(loc.pack);
    } catch {
      return undefined;
    }
    const macKey = this.repo.secrets.macKey;
    let plain = openBlobNative(key, macKey, id, sealed, loc.rawLength);
    if (!plain) {
      try {
        plain = openBlob(key, id, sealed, loc.rawLength);
      } catch {
        return undefined;
      }
      if (!this.repo.blobId(plain).equals(id)) return undefined;
    }
    try {
      return decodeTree(plain);
    } catch {
      return undefined;
    }
  }

  private fromSpans(loc: BlobLocation): Buffer | undefined {
    for (const s of this.spans) {
      if (s.pack.id.equals(loc.pack.id) && loc.offset >= s.offset && loc.offset + loc.length <= s.offset + s.bytes.length) {
        return s.bytes.subarray(loc.offset - s.offset, loc.offset - s.offset + loc.length);
      }
    }
    return undefined;
  }

  private keep(s: Span): void {
    if (s.bytes.length > KEPT_BYTES) return;
    this.spans.push(s);
    this.spanBytes += s.bytes.length;
    while (this.spanBytes > KEPT_BYTES) this.spanBytes -= this.spans.shift()!.bytes.length;
  }
}
