// Cold storage (S3 Glacier / Deep Archive), as the repository sees it.
// The repository asks a ColdStorage "is this pack readable now, and if not, what must
// happen". The implementation is src/glacier/cold-store.ts (restore tracker, local disk
// cache of packs, storage-class policy); it is attached with setColdStorage() by whoever
// opens the repository (cli/open-repo.ts does, for backends that can restore), so this
// layer does not import glacier. Without one, cold packs read as they come (a GET of an
// unrestored object fails with ColdError).
import type { RestoreTier, StorageClass } from '../backend/backend.js';
import { ColdError, TsbakError } from '../errors.js';
import type { PackRef } from './blob-index.js';
import type { RepoContext } from './context.js';
import type { IndexStore } from './index-store.js';
import { CONFIG, INDEX, KEYS, SNAPSHOTS, packName, parsePackName, parseParityName } from './layout.js';
import { mapLimit } from './map-limit.js';

/** Where a blob's bytes are: readable now (hot, cached), soon (available), or not (restoring, cold). */
export type BlobState = 'hot' | 'cold' | 'restoring' | 'available' | 'cached';

/** Coldest last: a file is as cold as its coldest chunk. */
export const BLOB_STATES_WARMEST_FIRST: readonly BlobState[] = ['hot', 'cached', 'available', 'restoring', 'cold'];

/** A pack, as cold storage sees it. `bytes` is exact once S3 told us, else from the index (a little less than the object). */
export interface ColdPack {
  name: string;
  /** 'parity': a parity object (repair packs restores those too). */
  kind: 'data' | 'tree' | 'parity';
  bytes: number;
  storageClass: StorageClass;
}

export interface ColdOptions {
  /** Root of the local cache (default TSBAK_CACHE_DIR, else $XDG_CACHE_HOME/tsbak or ~/.cache/tsbak); packs go to <root>/<repo id>/packs. */
  cacheDir?: string;
  /** Bound of the disk cache of packs, bytes (default 10 GiB). */
  cacheBytes?: number;
  /** Restore tier of restores started by reads and warmBlobs without a tier (default Standard). */
  tier?: RestoreTier;
  /** Days S3 keeps a restored copy (default 7). */
  days?: number;
  /** Least time between two HEADs of a pack being restored when its state is asked (default 60 s). */
  pollMs?: number;
  /** Told about restores requested and packs fetched into the disk cache (e.g. the mount's log). */
  log?: (message: string) => void;
}

export interface WarmOptions {
  tier?: RestoreTier;
  days?: number;
  signal?: AbortSignal;
}

export interface WarmResult {
  /** RestoreObject requests sent by this call (0 when everything was already requested). */
  requested: number;
  /** Cold packs the blobs need that are not in the local cache. */
  packs: number;
  /** Their size. */
  bytes: number;
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Give up (return false) after this long; default: no limit. */
  timeoutMs?: number;
  /** Longest pause between two polls (default 5 minutes; the first pauses are shorter). */
  pollMaxMs?: number;
  tier?: RestoreTier;
  days?: number;
  onProgress?: (p: { total: number; ready: number; restoring: number; cold: number; bytes: number; readyBytes: number }) => void;
}

export interface ColdPackStatus {
  pack: string;
  bytes: number;
  tier: RestoreTier | null;
  /** ISO times; null when unknown. */
  requestedAt: string | null;
  expectedBy: string | null;
  /** When S3 deletes the restored copy. */
  expiry: string | null;
  state: BlobState;
}

/** Implemented by src/glacier/cold-store.ts. */
export interface ColdStorage {
  configure(o: ColdOptions): void;
  /** Whether reads of this pack must go through cold storage. */
  isCold(p: ColdPack): boolean;
  /** Its state; `refresh` asks S3 (HEAD) instead of trusting what is known. */
  state(p: ColdPack, opts?: { refresh?: boolean }): Promise<BlobState>;
  /** Bytes of a cold pack: from the disk cache, or fetched whole into it when restored; otherwise requests the restore (once) and throws ColdError. */
  read(p: ColdPack, range: { offset: number; length: number }, signal?: AbortSignal): Promise<Buffer>;
  /** Drops a pack from the disk cache (its bytes failed authentication). */
  invalidate(p: ColdPack): void;
  warm(packs: ColdPack[], opts: WarmOptions): Promise<WarmResult>;
  /** Asks S3 (HEAD, or a listing when cheaper) where these packs stand. */
  refresh(packs: ColdPack[], opts?: { totalPacks?: number; signal?: AbortSignal }): Promise<void>;
  /** Polls S3 until every pack is available (true) or the time is up (false). */
  wait(packs: ColdPack[], opts: WaitOptions & { totalPacks?: number }): Promise<boolean>;
  status(): ColdPackStatus[];
  close(): Promise<void>;
}

/** Classes whose objects need a restore, when no ColdStorage is attached to say so. */
const ARCHIVE_CLASSES = new Set<StorageClass>(['GLACIER', 'DEEP_ARCHIVE']);

export type StorageKind = 'data' | 'tree' | 'parity' | 'index' | 'snapshot' | 'key' | 'config' | 'other';

export class ColdFacade {
  private cold: ColdStorage | null = null;
  private coldOptions: ColdOptions = {};
  private packBytes: { blobs: number; bytes: Map<PackRef, number> } | null = null;

  constructor(
    private readonly ctx: RepoContext,
    private readonly indexes: IndexStore,
  ) {}

  /** Attaches the cold-storage implementation (src/glacier); options given to configureCold() before are passed on. */
  setColdStorage(c: ColdStorage | null): void {
    this.cold = c;
    c?.configure(this.coldOptions);
  }

  get coldStorage(): ColdStorage | null {
    return this.cold;
  }

  /** Cache dir, cache size, default tier and days of cold storage; may be called before or after setColdStorage(). */
  configureCold(o: ColdOptions): void {
    this.coldOptions = { ...this.coldOptions, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
    this.cold?.configure(o);
  }

  /** Pack sizes from the index (end of the last blob), recomputed when the index grew. */
  packBytesOf(pack: PackRef): number {
    if (!this.packBytes || this.packBytes.blobs !== this.indexes.index.size) {
      const bytes = new Map<PackRef, number>();
      for (const e of this.indexes.index.entries()) bytes.set(e.pack, Math.max(bytes.get(e.pack) ?? 0, e.offset + e.length));
      this.packBytes = { blobs: this.indexes.index.size, bytes };
    }
    return this.packBytes.bytes.get(pack) ?? 0;
  }

  coldPack(pack: PackRef): ColdPack {
    return { name: packName(pack.kind, pack.id.toString('hex')), kind: pack.kind, bytes: this.packBytesOf(pack), storageClass: this.ctx.config.storageClass[pack.kind] };
  }

  isColdPack(p: ColdPack): boolean {
    // Without cold storage attached: archived classes are cold on backends that have them.
    return this.cold ? this.cold.isCold(p) : !!this.ctx.backend.restore && ARCHIVE_CLASSES.has(p.storageClass);
  }

  /** The distinct packs holding these blobs (blobs not in the index are skipped). */
  packsOf(ids: Buffer[]): ColdPack[] {
    const seen = new Map<string, ColdPack>();
    for (const id of ids) {
      const loc = this.indexes.locate(id);
      if (!loc) continue;
      const p = this.coldPack(loc.pack);
      if (!seen.has(p.name)) seen.set(p.name, p);
    }
    return [...seen.values()];
  }

  /**
   * Where one object stands (a pack or a parity object, its class as listed), asking S3 again
   * about one known to be restoring; nothing is requested.
   */
  async objectState(p: ColdPack): Promise<BlobState> {
    const s = await this.packState(p);
    return s === 'restoring' ? this.packState(p, true) : s;
  }

  /** The whole bytes of a cold object that is restored or in the disk cache (objectState said so). */
  readRestored(p: ColdPack): Promise<Buffer> {
    if (!this.cold) throw new ColdError(`${p.name} of ${this.ctx.backend.location}`, [p.name]);
    return this.cold.read(p, { offset: 0, length: p.bytes });
  }

  private async packState(p: ColdPack, refresh = false): Promise<BlobState> {
    if (!this.isColdPack(p)) return 'hot';
    return this.cold ? this.cold.state(p, { refresh }) : 'cold';
  }

  /** Where one blob stands: hot, cached (local disk), available (restored in S3), restoring, or cold. */
  async blobState(id: Buffer): Promise<BlobState> {
    const loc = this.indexes.locate(id);
    if (!loc) throw new TsbakError('NOT_FOUND', `blob ${id.toString('hex')} is not in the index (repository damaged or snapshot incomplete); run 'tsbak check'`);
    return this.packState(this.coldPack(loc.pack));
  }

  /** A file's state: that of its coldest chunk ('hot' for an empty file). */
  async fileState(contentIds: Buffer[]): Promise<BlobState> {
    let worst = 0;
    for (const p of this.packsOf(contentIds)) {
      worst = Math.max(worst, BLOB_STATES_WARMEST_FIRST.indexOf(await this.packState(p)));
      if (worst === BLOB_STATES_WARMEST_FIRST.length - 1) break;
    }
    return BLOB_STATES_WARMEST_FIRST[worst]!;
  }

  /**
   * The state of every pack these blobs need. `refresh`: first ask S3 about the packs known
   * to be restoring (one HEAD each, or a listing when cheaper), so that finished restores show.
   */
  async packStates(ids: Buffer[], opts: { refresh?: boolean; signal?: AbortSignal } = {}): Promise<Array<{ pack: ColdPack; state: BlobState }>> {
    const get = async (packs: ColdPack[]) => {
      const out: Array<{ pack: ColdPack; state: BlobState }> = [];
      await mapLimit(packs, 8, async (pack) => {
        out.push({ pack, state: await this.packState(pack) });
      });
      return out;
    };
    let states = await get(this.packsOf(ids));
    const restoring = states.filter((s) => s.state === 'restoring').map((s) => s.pack);
    if (opts.refresh && this.cold && restoring.length) {
      await this.cold.refresh(restoring, { totalPacks: this.indexes.index.packs.filter((p) => p.kind === 'data').length, signal: opts.signal });
      const again = new Map((await get(restoring)).map((s) => [s.pack.name, s.state]));
      states = states.map((s) => (again.has(s.pack.name) ? { pack: s.pack, state: again.get(s.pack.name)! } : s));
    }
    return states;
  }

  /** Requests, in one batch, the restore of every cold pack these blobs need and that is not requested yet. */
  async warmBlobs(ids: Buffer[], opts: WarmOptions = {}): Promise<WarmResult> {
    const packs = this.packsOf(ids).filter((p) => this.isColdPack(p));
    if (!packs.length) return { requested: 0, packs: 0, bytes: 0 };
    if (!this.cold) throw new ColdError(`${packs.length} packs of ${this.ctx.backend.location}`, packs.map((p) => p.name));
    return this.cold.warm(packs, opts);
  }

  /** Waits until every cold pack these blobs need is restored (requesting again any that went cold). False on timeout. */
  async waitForBlobs(ids: Buffer[], opts: WaitOptions = {}): Promise<boolean> {
    const packs = this.packsOf(ids).filter((p) => this.isColdPack(p));
    if (!packs.length) return true;
    if (!this.cold) return false;
    const totalPacks = this.indexes.index.packs.filter((p) => p.kind === 'data').length;
    return this.cold.wait(packs, { ...opts, totalPacks });
  }

  /** Restores known to cold storage (requested, in progress, available, cached), for status displays. */
  coldStatus(): ColdPackStatus[] {
    return this.cold?.status() ?? [];
  }

  /** Objects in the repository by kind and storage class, from a listing (for cost estimates). */
  async storageUsage(signal?: AbortSignal): Promise<Array<{ kind: StorageKind; storageClass: StorageClass; objects: number; bytes: number }>> {
    const acc = new Map<string, { kind: StorageKind; storageClass: StorageClass; objects: number; bytes: number }>();
    for await (const o of this.ctx.backend.list('', signal)) {
      const pk = parsePackName(o.name);
      const kind = pk ? pk.kind : parseParityName(o.name) ? 'parity' : o.name === CONFIG ? 'config' : o.name.startsWith(INDEX) ? 'index' : o.name.startsWith(SNAPSHOTS) ? 'snapshot' : o.name.startsWith(KEYS) ? 'key' : 'other';
      const sc = o.storageClass ?? (pk ? this.ctx.config.storageClass[pk.kind] : kind === 'parity' ? this.ctx.config.storageClass.data : this.ctx.config.storageClass.other);
      const k = `${kind}/${sc}`;
      const a = acc.get(k) ?? { kind, storageClass: sc, objects: 0, bytes: 0 };
      a.objects++;
      a.bytes += o.size;
      acc.set(k, a);
    }
    return [...acc.values()];
  }
}
