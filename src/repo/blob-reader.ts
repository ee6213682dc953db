// Reading blobs: finds a blob's copies in the index, fetches the sealed bytes (hot from the
// backend, cold through cold storage), opens and checks them, and falls back to the next
// copy when one is damaged. Also the batch reads of the restore and the tree loads.
import { LRUCache } from 'lru-cache';
import { openSealed } from '../crypto/box.js';
import { blobId } from '../crypto/hash.js';
import { openBlob } from '../format/blob.js';
import type { BlobType } from '../format/pack.js';
import { decodeTree, type Tree } from '../format/tree.js';
import { CorruptError, ColdError, NotFoundError, NotInIndexError, TsbakError } from '../errors.js';
import { openBlobNative, openBlobNativeAsync, openBlobToFileAsync } from '../platform/native/blob.js';
import { writeAllAtSync } from '../platform/write-all.js';
import type { BlobLocation, PackRef } from './blob-index.js';
import { BufferPool } from './buffer-pool.js';
import type { ColdFacade, ColdStorage } from './cold-facade.js';
import type { RepoContext } from './context.js';
import type { IndexStore } from './index-store.js';
import { packName } from './layout.js';
import * as path from 'node:path';
import { TreeStore } from './tree-store.js';
import { OPEN_POOL_MIN, OpenPoolError, openPool, type OpenOutcome } from './open-pool.js';

/** readSealedBatch reads neighbouring blobs of a pack at once when at most this far apart... */
const READ_GAP = 64 << 10;
/** ...and the read stays this short. */
const READ_SPAN = 8 << 20;
/** Blob reads that overlapped less than this long ago count as concurrent (see openChecked). */
const OVERLAP_MS = 250;

/** Opens one copy's sealed bytes (fetchOpen): the result, or how it failed ('auth', 'id'). */
type BlobOpener<T> = (kind: BlobType, key: Buffer, sealed: Buffer, again: (() => Promise<Buffer>) | null, rawLength: number) => Promise<T | 'auth' | 'id'>;

/** Buffers for sealed bytes (loadBlobInto): take hands out one of n bytes or more, give takes the same buffer back. */
export interface SealedPool {
  take(n: number): Buffer;
  give(b: Buffer): void;
}

/** Sealed blobs and what opens them (readSealedBatch). */
export interface SealedBatch {
  /** The blobs back to back, in a buffer of its own. */
  sealed: Buffer;
  /** Per blob (in the order asked for): where it is in bytes, and which of keys opens it. */
  offsets: Uint32Array;
  lengths: Uint32Array;
  keyOf: Uint16Array;
  keys: Buffer[];
  /** The key of blob ids, to check each plaintext against its id. */
  macKey: Buffer;
}

export class BlobReader {
  /** Pack keys by listing: two index files may give one pack different sealed keys. */
  private packKeys = new Map<PackRef, Buffer>();
  private blobCache = new LRUCache<string, Buffer>({ maxSize: 16 << 20, sizeCalculation: (b) => b.length || 1 });
  /** Sealed bytes of writeBlobAt's large blobs, read into reused buffers where the backend has readInto. */
  private readonly sealedBuffers = new BufferPool(12 << 20);
  /** loadBlob calls under way without a signal, by blob id: concurrent loads of one blob share one fetch and open. */
  private blobLoads = new Map<string, Promise<Buffer>>();
  /** Blob reads under way (fetching or opening), and when two last overlapped (performance.now()). */
  private blobReads = 0;
  private blobReadsOverlapped = -Infinity;
  /** Packs the index lists that turned out missing (a prune deleted them after moving their blobs, or damage). */
  private gonePacks = new Set<string>();
  private indexReload: Promise<void> | null = null;
  /** Trees kept on local disk (useTreeCache); null: trees come from the backend every time. */
  private treeStore: TreeStore | null = null;

  constructor(
    private readonly ctx: RepoContext,
    private readonly indexes: IndexStore,
    private readonly colds: ColdFacade,
  ) {}

  private get cold(): ColdStorage | null {
    return this.colds.coldStorage;
  }

  /**
   * Keeps tree packs and trees read in `<root>/<repo id>/trees/`, at most `maxBytes` (null:
   * not at all). See tree-store.ts.
   */
  useTreeCache(root: string | null, maxBytes?: number): void {
    this.treeStore = root
      ? new TreeStore(
          {
            backend: this.ctx.backend,
            memory: { get: (hex) => this.blobCache.get(hex), set: (hex, plain) => this.blobCache.set(hex, plain) },
            locations: (id) => this.indexes.locations(id),
            hot: (pack) => !this.colds.isColdPack(this.colds.coldPack(pack)),
            packBytes: (pack) => this.colds.packBytesOf(pack),
            open: (pack, id, sealed, rawLength) => this.openChecked('tree', this.packKey(pack), id, sealed, null, false, rawLength),
            fallback: (id) => this.loadBlob(id, undefined, { cache: false }),
          },
          path.join(root, this.ctx.config.id, 'trees'),
          maxBytes,
        )
      : null;
  }

  /** A tree pack this process wrote (its bytes as stored), kept in the disk cache of trees if there is one. */
  keepTreePack(id: Buffer, bytes: Buffer): void {
    this.treeStore?.keepPack(id, bytes);
  }

  /** Resolves when the tree packs given to keepTreePack are in the cache. */
  treePacksKept(): Promise<void> {
    return this.treeStore?.kept() ?? Promise.resolve();
  }

  /** Whether the in-memory cache holds this blob's plaintext. */
  hasCachedBlob(id: Buffer): boolean {
    return this.blobCache.has(id.toString('hex'));
  }

  /** Keeps a blob's plaintext in the in-memory cache: one the caller opened and checked against its id (blob-group.ts). */
  cacheBlob(id: Buffer, plain: Buffer): void {
    this.blobCache.set(id.toString('hex'), plain);
  }

  /** Bound of the in-memory cache of opened blobs (the mount's cache_size). */
  setCacheSize(bytes: number): void {
    this.blobCache = new LRUCache<string, Buffer>({ maxSize: Math.max(1 << 20, bytes), sizeCalculation: (b) => b.length || 1 });
  }

  packKey(pack: PackRef): Buffer {
    let k = this.packKeys.get(pack);
    if (!k) {
      try {
        k = openSealed(this.ctx.requireRead('read data'), pack.sealedKey);
      } catch (e) {
        if (e instanceof TsbakError) throw e;
        throw new CorruptError(`key of pack ${pack.id.toString('hex')} in ${pack.indexFile}`);
      }
      this.packKeys.set(pack, k);
    }
    return k;
  }

  /**
   * Decrypts, decompresses and verifies one blob. Concurrent calls for the same blob share
   * one fetch (calls with a signal go their own way, so that aborting one aborts no other).
   * `cache: false` keeps a blob read now out of the in-memory cache (a reader that needs it
   * once, like the restore's tree walk: long-lived cached buffers among short-lived ones
   * kept ~30 MB more of the malloc heap resident there).
   */
  async loadBlob(id: Buffer, signal?: AbortSignal, opts: { cache?: boolean } = {}): Promise<Buffer> {
    const hex = id.toString('hex');
    const hit = this.blobCache.get(hex);
    if (hit) return hit;
    const cache = opts.cache ?? true;
    if (signal) return this.readCounted(id, hex, cache, signal);
    let p = this.blobLoads.get(hex);
    if (!p) {
      p = this.readCounted(id, hex, cache).finally(() => this.blobLoads.delete(hex));
      this.blobLoads.set(hex, p);
    }
    return p;
  }

  private readCounted(id: Buffer, hex: string, cache: boolean, signal?: AbortSignal): Promise<Buffer> {
    if (++this.blobReads > 1) this.blobReadsOverlapped = performance.now();
    return this.readBlob(id, hex, cache, signal).finally(() => this.blobReads--);
  }

  private async readBlob(id: Buffer, hex: string, cache: boolean, signal?: AbortSignal): Promise<Buffer> {
    // Sealed bytes go to pooled buffers where the backend reads into them (a local file):
    // the opened plaintext never shares them, so they are reused once it is made. Fresh
    // buffers cost a page fault per page and GC work (a mount's sequential reader).
    let sealedBuf: ArrayBuffer | undefined;
    let plain: Buffer;
    try {
      plain = await this.fetchOpen(
        id,
        hex,
        signal,
        (kind, key, sealed, again, rawLength) => this.openChecked(kind, key, id, sealed, again, true, rawLength),
        // Not with a signal: an aborted read may still be filling its buffer.
        signal
          ? undefined
          : (n) => {
              if (sealedBuf) this.sealedBuffers.give(sealedBuf);
              return Buffer.from((sealedBuf = this.sealedBuffers.take(n)), 0, n);
            },
      );
    } finally {
      // A buffer handed to a worker is detached (length 0): the pool ignores it.
      if (sealedBuf) this.sealedBuffers.give(sealedBuf);
    }
    if (cache) this.blobCache.set(hex, plain);
    return plain;
  }

  /**
   * loadBlob for a caller that keeps the plaintext in its own reused buffers (the mount's
   * large chunks): opened in C, the plaintext goes to the start of `plainInto(rawLength)`;
   * opened another way, to a new buffer (the caller tells them apart by `.buffer`). Not
   * cached here, and not shared with concurrent loads of the same blob. `sealedPool`: where
   * the sealed bytes are read to (the caller's, sized for its many loads at once; its
   * buffers are never handed to a worker: loads with the index's plaintext length open in C).
   */
  async loadBlobInto(id: Buffer, plainInto: (n: number) => Buffer, sealedPool?: SealedPool): Promise<Buffer> {
    const hex = id.toString('hex');
    if (++this.blobReads > 1) this.blobReadsOverlapped = performance.now();
    const pool: SealedPool = sealedPool ?? {
      take: (n) => Buffer.from(this.sealedBuffers.take(n)),
      give: (b) => this.sealedBuffers.give(b.buffer as ArrayBuffer),
    };
    let sealedBuf: Buffer | undefined;
    try {
      return await this.fetchOpen(
        id,
        hex,
        undefined,
        (kind, key, sealed, again, rawLength) => this.openChecked(kind, key, id, sealed, again, true, rawLength, plainInto),
        (n) => {
          if (sealedBuf) pool.give(sealedBuf);
          return (sealedBuf = pool.take(n)).subarray(0, n);
        },
      );
    } finally {
      this.blobReads--;
      if (sealedBuf) pool.give(sealedBuf);
    }
  }

  /** Reads and checks one copy of a blob, no other (check --read-data); damage throws CORRUPT naming that copy. */
  async verifyCopy(id: Buffer, loc: BlobLocation): Promise<void> {
    await this.fetchOpen(id, id.toString('hex'), undefined, (kind, key, sealed, _again, rawLength) => this.openChecked(kind, key, id, sealed, null, false, rawLength), undefined, loc);
  }

  /**
   * Writes one blob's plaintext at `pos` of the open file `fd` (a restore): what loadBlob
   * does, but large data blobs are opened and written on libuv's pool, so their plaintext
   * never reaches this thread. Returns the bytes written. `fd` must stay open until then.
   */
  async writeBlobAt(id: Buffer, fd: number, pos: number, signal?: AbortSignal): Promise<number> {
    const hex = id.toString('hex');
    const hit = this.blobCache.get(hex);
    if (hit) return writeAllAtSync(fd, hit, pos);
    // The sealed bytes are read into a pooled buffer where the backend can (a local file):
    // read as fresh buffers, they were ~20 MB of garbage at the peak of a restore.
    let sealedBuf: ArrayBuffer | undefined;
    try {
      return await this.fetchOpen(
        id,
        hex,
        signal,
        (kind, key, sealed, again, rawLength) => this.openToFile(id, fd, pos, kind, key, sealed, again, rawLength),
        (n) => {
          // A copy tried before this one is done with its buffer.
          if (sealedBuf) this.sealedBuffers.give(sealedBuf);
          return Buffer.from((sealedBuf = this.sealedBuffers.take(n)), 0, n);
        },
      );
    } finally {
      // The native open decrypts in place and hands the buffer back: reused.
      if (sealedBuf) this.sealedBuffers.give(sealedBuf);
    }
  }

  /** writeBlobAt's opening and writing, once the sealed bytes are read. */
  private async openToFile(id: Buffer, fd: number, pos: number, kind: BlobType, key: Buffer, sealed: Buffer, again: (() => Promise<Buffer>) | null, rawLength: number): Promise<number | 'auth' | 'id'> {
    // Large blobs are opened and written on libuv's pool (native/blob.c): no worker thread and
    // no JavaScript buffer for their plaintext. They are decrypted in place: copied first when
    // they may be a view other reads share (cold storage's).
    if (kind === 'data' && sealed.length >= OPEN_POOL_MIN) return openBlobToFileAsync(key, this.ctx.secrets.macKey, id, again ? sealed : Buffer.from(sealed), rawLength, fd, pos);
    const plain = await this.openChecked(kind, key, id, sealed, null, false, rawLength);
    return typeof plain === 'string' ? plain : writeAllAtSync(fd, plain, pos);
  }

  /**
   * Where a data blob is, when it can be read straight from the backend (in the index, its
   * pack not in cold storage); undefined otherwise: such blobs go through loadBlob or
   * writeBlobAt, which know the cold path and its retries.
   */
  locateHot(id: Buffer): BlobLocation | undefined {
    const loc = this.indexes.locate(id);
    if (!loc || loc.pack.kind !== 'data') return undefined;
    if ((this.cold || this.ctx.backend.restore) && this.colds.isColdPack(this.colds.coldPack(loc.pack))) return undefined;
    return loc;
  }

  /**
   * The sealed bytes of many hot data blobs (located with locateHot), with the keys to open
   * them, for opening elsewhere (native openBlobs on libuv's pool). Blobs close together in a pack are fetched with
   * one ranged read: small files backed up together lie next to each other.
   */
  async readSealedBatch(locs: BlobLocation[], opts: { signal?: AbortSignal; alloc?: (n: number) => ArrayBuffer } = {}): Promise<SealedBatch> {
    const signal = opts.signal;
    const order = locs.map((_, i) => i).sort((a, b) => {
      const x = locs[a]!;
      const y = locs[b]!;
      return x.pack === y.pack ? x.offset - y.offset : x.pack.id.compare(y.pack.id);
    });
    const offsets = new Uint32Array(locs.length);
    const keyOf = new Uint16Array(locs.length);
    const keys: Buffer[] = [];
    const keyNo = new Map<PackRef, number>();
    // Ranges: runs of blobs in one pack, each read whole (gaps included) into its place in
    // one buffer, so that each blob's offset is its range's plus its offset in the pack.
    const ranges: Array<{ pack: PackRef; offset: number; length: number; at: number }> = [];
    let total = 0;
    for (let a = 0; a < order.length; ) {
      const first = locs[order[a]!]!;
      let end = first.offset + first.length;
      let b = a + 1;
      for (; b < order.length; b++) {
        const l = locs[order[b]!]!;
        if (l.pack !== first.pack || l.offset > end + READ_GAP || l.offset + l.length - first.offset > READ_SPAN) break;
        end = Math.max(end, l.offset + l.length);
      }
      let k = keyNo.get(first.pack);
      if (k === undefined) {
        keyNo.set(first.pack, (k = keys.length));
        keys.push(this.packKey(first.pack));
      }
      for (let m = a; m < b; m++) {
        offsets[order[m]!] = total + locs[order[m]!]!.offset - first.offset;
        keyOf[order[m]!] = k;
      }
      ranges.push({ pack: first.pack, offset: first.offset, length: end - first.offset, at: total });
      total += end - first.offset;
      a = b;
    }
    // One buffer, from the caller's pool when it has one (a restore reads hundreds of MB
    // this way: fresh buffers made V8 run a full GC for every few dozen MB of them).
    const bytes = Buffer.from(opts.alloc ? opts.alloc(total) : new ArrayBuffer(total), 0, total);
    await Promise.all(
      ranges.map(async (r) => {
        const name = packName(r.pack.kind, r.pack.id.toString('hex'));
        try {
          const range = { offset: r.offset, length: r.length };
          const into = bytes.subarray(r.at, r.at + r.length);
          if (this.ctx.backend.readInto) await this.ctx.backend.readInto(name, range, into, signal);
          else (await this.ctx.backend.get(name, range, signal)).copy(into);
        } catch (e) {
          throw this.missingPack(name, e);
        }
      }),
    );
    return { sealed: bytes, offsets, lengths: Uint32Array.from(locs, (l) => l.length), keyOf, keys, macKey: this.ctx.secrets.macKey };
  }

  /** Whether trees come through the disk cache (useTreeCache). */
  get cachesTrees(): boolean {
    return this.treeStore !== null;
  }

  /** How many reads of the backend are worth keeping in flight (1-2 on a local disk, more over a network). */
  get readConcurrency(): number {
    return this.ctx.backend.readConcurrency ?? 2;
  }

  /** Whether ranged reads fill a buffer given (the backend has readInto: local, SFTP) rather than bringing their own (S3). */
  get readsInto(): boolean {
    return typeof this.ctx.backend.readInto === 'function';
  }

  /** Bytes [offset, offset+length) of a pack, into `into` (exactly `length` bytes) when given; a missing pack is CORRUPT. */
  async readPackRange(pack: PackRef, offset: number, length: number, into?: Buffer, signal?: AbortSignal): Promise<Buffer> {
    const name = this.packNameOf(pack);
    try {
      if (into && this.ctx.backend.readInto) {
        await this.ctx.backend.readInto(name, { offset, length }, into, signal);
        return into;
      }
      return await this.ctx.backend.get(name, { offset, length }, signal);
    } catch (e) {
      throw this.missingPack(name, e);
    }
  }

  /** writeBlobAt for sealed bytes read already (read plans, src/restore/read-plan.ts): `sealed` is given up, the copy at `loc` only. */
  writeSealedAt(id: Buffer, loc: BlobLocation, sealed: Buffer, fd: number, pos: number): Promise<number | 'auth' | 'id'> {
    const again = () => this.readPackRange(loc.pack, loc.offset, loc.length);
    return this.openToFile(id, fd, pos, loc.pack.kind, this.packKey(loc.pack), sealed, again, loc.rawLength);
  }

  /** verifyCopy for sealed bytes read already (check --read-data reads each pack once). */
  async verifyCopyIn(id: Buffer, loc: BlobLocation, sealed: Buffer): Promise<void> {
    const opened = await this.openChecked(loc.pack.kind, this.packKey(loc.pack), id, sealed, null, false, loc.rawLength);
    if (opened === 'auth' || opened === 'id') throw new CorruptError(`blob ${id.toString('hex').slice(0, 16)} in pack ${this.packNameOf(loc.pack)}`, opened === 'id' ? 'content does not match its id' : 'failed authentication');
  }

  /** A failed read of pack `name`: a pack the index lists and that is not there is damage (CORRUPT); other errors as they are. */
  private missingPack(name: string, e: unknown): unknown {
    return e instanceof NotFoundError ? new MissingPackError(`pack ${name} is missing from ${this.ctx.backend.location} although the index lists it; run 'tsbak check'`) : e;
  }

  /** A blob's copies, those in packs found gone (moved by a prune) last. */
  private liveLocations(id: Buffer): BlobLocation[] {
    const all = this.indexes.locations(id);
    if (!this.gonePacks.size) return all;
    return [...all.filter((l) => !this.isGone(l.pack)), ...all.filter((l) => this.isGone(l.pack))];
  }

  private isGone(pack: PackRef): boolean {
    return this.gonePacks.has(pack.id.toString('hex'));
  }

  /**
   * Once per pack found missing: reads the index files written since the index was loaded
   * (a concurrent prune's), so that the blobs it moved are found in their new packs.
   * Whether anything was reloaded.
   */
  private async reloadIndexAfterMissing(pack: PackRef): Promise<boolean> {
    if (this.isGone(pack)) return false;
    this.gonePacks.add(pack.id.toString('hex'));
    const reload = (this.indexReload ??= this.indexes.loadIndex().finally(() => (this.indexReload = null)));
    await reload.catch(() => {});
    return true;
  }

  /**
   * Fetches a blob's sealed bytes and opens them with `open`, trying its copies in turn
   * (locations: a damaged or missing copy is passed over, with a warning, for the next);
   * damage only when no copy opens. `only`: that copy and no other (check --read-data).
   */
  private async fetchOpen<T>(
    id: Buffer,
    hex: string,
    signal: AbortSignal | undefined,
    open: BlobOpener<T>,
    into?: (n: number) => Buffer,
    only?: BlobLocation,
  ): Promise<T> {
    let locs = only ? [only] : this.liveLocations(id);
    // A blob a tree or snapshot names and no index lists: damage (an index file lost or skipped).
    if (!locs.length) throw new NotInIndexError(id);
    const short = hex.slice(0, 16);
    const bad: Array<{ loc: BlobLocation; error: TsbakError }> = [];
    for (let i = 0; i < locs.length; i++) {
      const loc = locs[i]!;
      let plain: T | 'auth' | 'id';
      try {
        plain = await this.fetchOpenAt(loc, short, signal, open, into);
      } catch (e) {
        if (!(e instanceof TsbakError) || e.code !== 'CORRUPT') throw e;
        // A prune running meanwhile moves blobs to new packs (listed by a new index file)
        // before it deletes the old: read the new index files, then try the new copies.
        if (!only && e instanceof MissingPackError && i === locs.length - 1 && (await this.reloadIndexAfterMissing(loc.pack))) {
          const more = this.liveLocations(id).filter((l) => !locs.some((k) => k.pack === l.pack && k.offset === l.offset));
          if (more.length) {
            locs = [...locs, ...more];
            continue;
          }
        }
        bad.push({ loc, error: e });
        continue;
      }
      if (plain === 'auth' || plain === 'id') {
        bad.push({ loc, error: new CorruptError(`blob ${short} in pack ${this.packNameOf(loc.pack)}`, plain === 'id' ? 'content does not match its id' : 'failed authentication') });
        continue;
      }
      const damaged = bad.filter((b) => !this.isGone(b.loc.pack));
      if (damaged.length) this.ctx.onWarning?.(`blob ${short}: ${damaged.map((b) => this.copyName(b.loc)).join(', ')} damaged, read the copy in ${this.copyName(loc)}; run 'tsbak check --read-data'`);
      return plain;
    }
    if (bad.length === 1) throw bad[0]!.error;
    throw new CorruptError(`blob ${short}`, `every copy: ${bad.map((b) => this.copyName(b.loc)).join(', ')}`);
  }

  private packNameOf(pack: PackRef): string {
    return packName(pack.kind, pack.id.toString('hex'));
  }

  /** One copy of a blob, for messages: its pack and who listed it there. */
  copyName(loc: BlobLocation): string {
    const p = loc.pack;
    const by = p.signer === null ? 'unsigned' : `signed by ${p.signer === 'master' ? 'the master key' : `key ${p.signer}`}${p.verified ? '' : ' (unverified)'}`;
    return `pack ${this.packNameOf(p)} (${p.indexFile}, ${by})`;
  }

  /** fetchOpen of one copy: the opened blob, or how it failed ('auth', 'id'; a missing pack or pack key throws CORRUPT). */
  private async fetchOpenAt<T>(
    loc: BlobLocation,
    short: string,
    signal: AbortSignal | undefined,
    open: BlobOpener<T>,
    into?: (n: number) => Buffer,
  ): Promise<T | 'auth' | 'id'> {
    const key = this.packKey(loc.pack);
    const name = this.packNameOf(loc.pack);
    const range = { offset: loc.offset, length: loc.length };
    // Cold packs are read through cold storage (disk cache, restore on demand); a pack
    // that turns out archived although its class is not (a lifecycle rule) too.
    const cp = this.cold ? this.colds.coldPack(loc.pack) : null;
    let viaCold = !!cp && this.cold!.isCold(cp);
    let sealed: Buffer;
    try {
      if (viaCold) sealed = await this.cold!.read(cp!, range, signal);
      else {
        try {
          if (into && this.ctx.backend.readInto) {
            sealed = into(range.length);
            await this.ctx.backend.readInto(name, range, sealed, signal);
          } else sealed = await this.ctx.backend.get(name, range, signal);
        } catch (e) {
          if (!(e instanceof ColdError) || !cp) throw e;
          viaCold = true;
          sealed = await this.cold!.read(cp, range, signal);
        }
      }
    } catch (e) {
      throw this.missingPack(name, e);
    }
    // Bytes of a backend read are ours to give to a worker (read them again if it dies with
    // them); bytes from cold storage may be a view of a pack other reads share: copied.
    const again = viaCold ? null : () => this.ctx.backend.get(name, range, signal);
    const plain = await open(loc.pack.kind, key, sealed, again, loc.rawLength);
    if (plain !== 'auth' || !viaCold) return plain;
    // A damaged copy in the disk cache: drop it and read the pack again once.
    this.cold!.invalidate(cp!);
    try {
      return await open(loc.pack.kind, key, await this.cold!.read(cp!, range, signal), null, loc.rawLength);
    } catch (e) {
      if (e instanceof TsbakError && e.code !== 'CORRUPT') throw e;
      throw new CorruptError(`blob ${short} in pack ${name}`);
    }
  }

  /**
   * openBlob and the id check. Large data blobs go to the worker pool when blob reads overlap
   * (now, or in the last OVERLAP_MS: a reader with read-ahead, the mount), so that this thread
   * goes on serving the others. Inline: trees and small blobs (a round trip to a worker costs
   * more than opening them), and reads one after the other (restore and check of one file:
   * the caller waits for this blob and nothing else, and a round trip only adds to its wait).
   * With `again`, the caller gives `sealed` up (it is transferred to a worker, not copied) and
   * says how to read it again should the worker die with it.
   */
  private async openChecked(kind: BlobType, key: Buffer, id: Buffer, sealed: Buffer, again: (() => Promise<Buffer>) | null, usePool = true, rawLength?: number, plainInto?: (n: number) => Buffer): Promise<OpenOutcome> {
    const overlap = this.blobReads > 1 || performance.now() - this.blobReadsOverlapped < OVERLAP_MS;
    const offload = usePool && kind === 'data' && sealed.length >= OPEN_POOL_MIN && overlap;
    // In C on libuv's pool when the index gives the plaintext's length: no copy of the
    // sealed bytes to a worker, no cipher objects; a blob that does not open there is opened
    // again below, which says how it failed.
    if (offload && rawLength !== undefined) {
      const opened = await openBlobNativeAsync(key, this.ctx.secrets.macKey, id, sealed, rawLength, plainInto?.(rawLength));
      if (opened) return opened;
    }
    const pool = offload && rawLength === undefined ? openPool() : null;
    if (pool?.usable) {
      try {
        return await pool.open(key, this.ctx.secrets.macKey, id, sealed, !!again);
      } catch (e) {
        // The pool failed, not the blob: open it here.
        if (!(e instanceof OpenPoolError)) throw e;
        if (sealed.buffer.byteLength === 0) sealed = await again!();
      }
    }
    // Natively when the index gives the plaintext's length: a tree costs a few µs there, and
    // ~50 µs of cipher, HMAC and zstd objects here. A blob that does not open natively is
    // opened again below, which says how it failed.
    const opened = rawLength === undefined || offload ? null : openBlobNative(key, this.ctx.secrets.macKey, id, sealed, rawLength, plainInto?.(rawLength));
    if (opened) return opened;
    let plain: Buffer;
    try {
      plain = openBlob(key, id, sealed, rawLength);
    } catch {
      return 'auth';
    }
    return blobId(this.ctx.secrets.macKey, plain).equals(id) ? plain : 'id';
  }

  /** `wholePack`: most of the tree's pack will be wanted too (tree-store.ts). */
  async loadTree(id: Buffer, opts: { cache?: boolean; wholePack?: boolean } = {}): Promise<Tree> {
    const bytes = this.treeStore ? await this.treeStore.load(id, opts.cache ?? true, opts.wholePack) : await this.loadBlob(id, undefined, opts);
    try {
      return decodeTree(bytes);
    } catch {
      throw new CorruptError(`tree ${id.toString('hex').slice(0, 16)}`, 'undecodable');
    }
  }
}

/** A pack the index lists is not in the repository: damage, or a prune that moved its blobs meanwhile. */
class MissingPackError extends TsbakError {
  constructor(message: string) {
    super('CORRUPT', message);
  }
}

