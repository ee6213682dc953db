// Trees on local disk. Tree packs and trees are immutable and named by id, so a copy kept in
// the local cache (<cache root>/<repo id>/trees/) serves every later `ls`, mount and restore
// of the snapshots that use them without a GET. What is kept is the bytes as the repository
// stores them (still encrypted), in a bounded LRU (./pack-cache.ts):
//   <pack id>            a whole tree pack, checked against its id (SHA-256) as it arrives;
//   <pack id>-<offset>   one sealed tree of that pack, read on its own.
// Every tree read from here is opened and checked against its id like one from the backend;
// one that fails is dropped from the cache and read from the backend again, never trusted.
//
// A tree pack is fetched whole when most of it is likely wanted: when it is small, or from
// the second of its trees this process misses (a walk of a snapshot reads one tree singly,
// then the rest of its pack in one GET). Packs whose reads go through cold storage (tree
// packs in an archive class) and anything unusual (a failed read, damage) are left to the
// repository's own read path, which knows the copies, the retries and the messages.
import { sha256 } from '../crypto/hash.js';
import type { Backend } from '../backend/backend.js';
import type { BlobLocation, PackRef } from './blob-index.js';
import { packName } from './layout.js';
import { PackCache } from './pack-cache.js';

/** Tree packs up to this size are fetched whole at the first miss. */
const WHOLE_ALWAYS = 512 << 10;
/** Larger packs (a hostile index may say anything) are never fetched whole. */
const WHOLE_MAX = 64 << 20;

/** Default bound of the disk cache of trees. */
export const TREE_CACHE_BYTES = 1 << 30;

/** What the store needs of the repository (closures over its private parts: see Repository.useTreeCache). */
export interface TreeSource {
  backend: Backend;
  /** The repository's in-memory cache of plaintexts (bounded), by hex id. */
  memory: { get(hex: string): Buffer | undefined; set(hex: string, plain: Buffer): void };
  /** Copies of a blob, the one to try first first. */
  locations(id: Buffer): BlobLocation[];
  /** Whether reads of this pack go straight to the backend (not through cold storage). */
  hot(pack: PackRef): boolean;
  /** The pack's size as the index knows it (a little less than the object). */
  packBytes(pack: PackRef): number;
  /** Opens one sealed tree and checks it against its id: its plaintext, or how it failed. */
  open(pack: PackRef, id: Buffer, sealed: Buffer, rawLength: number): Promise<Buffer | 'auth' | 'id'>;
  /** The repository's own read (copies, cold storage, retries, damage messages). */
  fallback(id: Buffer): Promise<Buffer>;
}

export class TreeStore {
  readonly cache: PackCache;
  /** Trees of each pack this process had to fetch (by pack id): the second fetches the pack whole. */
  private misses = new Map<string, number>();
  private packLoads = new Map<string, Promise<Buffer | null>>();
  /** Packs fetched whole by this process: never twice (a cache that cannot keep them falls back to single trees). */
  private fetchedWhole = new Set<string>();

  constructor(
    private readonly src: TreeSource,
    dir: string,
    maxBytes = TREE_CACHE_BYTES,
  ) {
    this.cache = new PackCache(dir, maxBytes, { sync: false });
  }

  private loads = new Map<string, Promise<Buffer>>();

  /**
   * The plaintext of tree `id`: from memory, else the disk cache, else fetched (and cached on
   * disk; in memory with `remember`). Concurrent loads of one tree share one. `wholePack`: the
   * caller will want most of the tree's pack (a walk of a whole snapshot from its root), so a
   * miss fetches the pack whole at once.
   */
  load(id: Buffer, remember = true, wholePack = false): Promise<Buffer> {
    const hex = id.toString('hex');
    const hit = this.src.memory.get(hex);
    if (hit) return Promise.resolve(hit);
    let p = this.loads.get(hex);
    if (!p) {
      p = this.read(id, wholePack).finally(() => this.loads.delete(hex));
      this.loads.set(hex, p);
    }
    return remember ? p.then((plain) => (this.src.memory.set(hex, plain), plain)) : p;
  }

  private async read(id: Buffer, wholePack: boolean): Promise<Buffer> {
    const loc = this.src.locations(id)[0];
    if (!loc || loc.pack.kind !== 'tree' || !this.src.hot(loc.pack)) return this.src.fallback(id);
    const packHex = loc.pack.id.toString('hex');
    const fromDisk = await this.fromDisk(loc, packHex, id);
    if (fromDisk) return fromDisk;
    try {
      const fetched = await this.fetch(loc, packHex, id, wholePack);
      if (fetched) return fetched;
    } catch {
      // Said by the repository's read, which tries again and names the damage.
    }
    return this.src.fallback(id);
  }

  private async fromDisk(loc: BlobLocation, packHex: string, id: Buffer): Promise<Buffer | null> {
    for (const key of [packHex, singleKey(packHex, loc.offset)]) {
      const whole = key === packHex;
      let sealed: Buffer | null;
      try {
        sealed = await this.cache.read(key, whole ? { offset: loc.offset, length: loc.length } : undefined);
      } catch {
        continue; // unreadable here: the backend has it
      }
      if (!sealed) continue;
      if (sealed.length === loc.length) {
        const plain = await this.src.open(loc.pack, id, sealed, loc.rawLength);
        if (typeof plain !== 'string') return plain;
      }
      this.cache.delete(key);
    }
    return null;
  }

  /** Reads the tree from the backend: its pack whole when worth it, else its own range; null when it does not open (the fallback says why). */
  private async fetch(loc: BlobLocation, packHex: string, id: Buffer, wholePack: boolean): Promise<Buffer | null> {
    const n = this.misses.get(packHex) ?? 0;
    this.misses.set(packHex, n + 1);
    const size = this.src.packBytes(loc.pack);
    const worth = size <= WHOLE_ALWAYS || n >= 1 || wholePack;
    if (this.packLoads.has(packHex) || (worth && size <= WHOLE_MAX && !this.fetchedWhole.has(packHex))) {
      const pack = await this.wholePack(loc.pack, packHex);
      if (pack && loc.offset + loc.length <= pack.length) {
        const plain = await this.src.open(loc.pack, id, Buffer.from(pack.subarray(loc.offset, loc.offset + loc.length)), loc.rawLength);
        return typeof plain === 'string' ? null : plain;
      }
    }
    const sealed = await this.src.backend.get(packName('tree', packHex), { offset: loc.offset, length: loc.length });
    // Kept before opening: opening may decrypt in place.
    const copy = Buffer.from(sealed);
    const plain = await this.src.open(loc.pack, id, sealed, loc.rawLength);
    if (typeof plain === 'string') return null;
    await this.store(singleKey(packHex, loc.offset), copy);
    return plain;
  }

  /** A whole tree pack, checked against its id and cached; null when it does not match (damaged: its trees are read one by one). Concurrent calls share one GET. */
  private wholePack(pack: PackRef, packHex: string): Promise<Buffer | null> {
    let p = this.packLoads.get(packHex);
    if (!p) {
      this.fetchedWhole.add(packHex);
      p = (async () => {
        const bytes = await this.src.backend.get(packName('tree', packHex));
        if (!sha256(bytes).equals(pack.id)) return null;
        await this.store(packHex, bytes);
        return bytes;
      })().finally(() => this.packLoads.delete(packHex));
      this.packLoads.set(packHex, p);
    }
    return p;
  }

  /** Packs being kept in the background (keepPack): kept() waits for them. */
  private keeping = new Set<Promise<void>>();

  /** A tree pack written by this process: checked against its id like one fetched, then kept (in the background). */
  keepPack(id: Buffer, bytes: Buffer): void {
    if (!sha256(bytes).equals(id)) return;
    const p: Promise<void> = this.store(id.toString('hex'), bytes).finally(() => this.keeping.delete(p));
    this.keeping.add(p);
  }

  /** Resolves when the packs given to keepPack so far are in the cache (or failed to be): a process about to exit waits, or the next run fetches them again. */
  async kept(): Promise<void> {
    while (this.keeping.size) await Promise.all(this.keeping);
  }

  /** Best effort: a cache that cannot be written only costs the GET next time. Nothing larger than half the bound is kept (it would evict the rest). */
  private async store(key: string, bytes: Buffer): Promise<void> {
    if (bytes.length > this.cache.maxBytes / 2) return;
    await this.cache.put(key, bytes).catch(() => {});
  }
}

function singleKey(packHex: string, offset: number): string {
  return `${packHex}-${offset}`;
}
