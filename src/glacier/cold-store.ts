// Cold storage for a repository: the implementation of the Repository's ColdStorage port.
// It answers "is this pack readable now, and if not, what must happen" with the storage-class
// policy (./policy.ts), the restore tracker (./tracker.ts, journaled) and the local disk
// cache of packs (../repo/pack-cache.ts).
//
// Reading a blob of a cold pack (read()):
//   1. the pack is in the disk cache: read the blob's bytes from there; S3 is not asked;
//   2. the tracker says a restore is requested or in progress: if the last look at S3 is
//      older than pollMs, HEAD the pack; still restoring -> ColdError (RestorePendingError);
//   3. otherwise (restored, or nothing known): GET the whole pack into the disk cache and
//      serve from there; S3 answering 403 InvalidObjectState (archived, not restored) ->
//      RestoreObject (once; the tracker remembers across restarts) -> ColdError.
// Concurrent reads of one pack share one download and one restore request.
//
// Layout of the cache directory: <cacheDir>/<repo id>/packs/<pack id> and
// <cacheDir>/<repo id>/restores.jsonl (the tracker's journal). <cacheDir> defaults to
// TSBAK_CACHE_DIR, else $XDG_CACHE_HOME/tsbak, else ~/.cache/tsbak (the writer's cache
// lives next to it, in the same <repo id> directory).
import { defaultCacheRoot } from '../repo/cache-root.js';
import * as path from 'node:path';
import type { Backend, RestoreTier, StorageClass } from '../backend/backend.js';
import { ColdError, CorruptError, TsbakError } from '../errors.js';
import type { BlobState, ColdOptions, ColdPack, ColdPackStatus, ColdStorage, Repository, WaitOptions, WarmOptions, WarmResult } from '../repo/repository.js';
import { PackCache } from '../repo/pack-cache.js';
import { isColdClass, tiersFor } from './policy.js';
import { mapLimit, RestoreTracker, type RestoreRecord, type TrackedPack } from './tracker.js';

export const COLD_DEFAULTS = {
  cacheBytes: 10 * 1024 ** 3,
  tier: 'Standard' as RestoreTier,
  days: 7,
  pollMs: 60_000,
};

/** ColdError with what is known about the restore, for messages and the mount's log. */
export class RestorePendingError extends ColdError {
  constructor(
    readonly pack: string,
    readonly state: BlobState,
    readonly record: RestoreRecord | undefined,
    location: string,
  ) {
    super(`pack ${pack}`, [pack]);
    this.name = 'RestorePendingError';
    const r = record;
    const when = (t?: number) => (t === undefined ? 'unknown' : new Date(t).toISOString().replace(/\.\d+Z$/, 'Z'));
    this.message =
      `data pack ${pack} of ${location} is in ${r?.storageClass ?? 'cold storage'} and not restored yet: ` +
      (state === 'restoring'
        ? `restore requested ${when(r?.requestedAt)} (tier ${r?.tier ?? '?'}), expected by ${when(r?.expectedBy)}; try again later`
        : 'a restore could not be requested; try again later');
  }
}

export interface GlacierColdStoreOptions extends ColdOptions {
  backend: Backend;
  repoId: string;
  now?: () => number;
  /** How often the tracker looks for journal lines of other processes (ms, default 1000). */
  journalReloadMs?: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class GlacierColdStore implements ColdStorage {
  private opts: Required<Omit<ColdOptions, 'log'>>;
  private log: ((message: string) => void) | undefined;
  private trackerObj: RestoreTracker | null = null;
  private cacheObj: PackCache | null = null;
  /** Packs found archived although their configured class is not (lifecycle rules). */
  private knownCold = new Set<string>();
  private fetches = new Map<string, Promise<Buffer>>();
  private readonly now: () => number;

  constructor(private readonly o: GlacierColdStoreOptions) {
    this.now = o.now ?? Date.now;
    this.opts = { cacheDir: defaultCacheRoot(), ...COLD_DEFAULTS };
    this.configure(o);
  }

  configure(o: ColdOptions): void {
    if (o.log) this.log = o.log;
    const prevDir = this.opts.cacheDir;
    for (const [k, v] of Object.entries(o)) if (v !== undefined && k in this.opts) (this.opts as any)[k] = v;
    if (!Number.isInteger(this.opts.days) || this.opts.days < 1) throw new TsbakError('USAGE', `restore days must be a whole number >= 1, got ${this.opts.days}`);
    if (this.opts.cacheDir !== prevDir) {
      this.trackerObj?.flush();
      this.trackerObj = null;
      this.cacheObj = null;
    }
    if (this.cacheObj) this.cacheObj.maxBytes = this.opts.cacheBytes;
  }

  get options(): Readonly<Required<Omit<ColdOptions, 'log'>>> {
    return this.opts;
  }

  /** <cacheDir>/<repo id> */
  get dir(): string {
    return path.join(this.opts.cacheDir, this.o.repoId);
  }

  get tracker(): RestoreTracker {
    this.trackerObj ??= new RestoreTracker(path.join(this.dir, 'restores.jsonl'), this.o.backend, { now: this.now, reloadMs: this.o.journalReloadMs });
    return this.trackerObj;
  }

  get cache(): PackCache {
    this.cacheObj ??= new PackCache(path.join(this.dir, 'packs'), this.opts.cacheBytes);
    return this.cacheObj;
  }

  isCold(p: ColdPack): boolean {
    return isColdClass(p.storageClass) || this.knownCold.has(p.name);
  }

  private tracked(p: ColdPack): TrackedPack {
    const r = this.tracker.get(p.name);
    const sc: StorageClass = r?.storageClass && isColdClass(r.storageClass) ? r.storageClass : p.storageClass;
    return { name: p.name, bytes: r?.bytes || p.bytes, storageClass: sc };
  }

  /** The configured tier, or Standard where the class does not offer it (Expedited on Deep Archive). */
  private tierFor(sc: StorageClass, tier: RestoreTier): RestoreTier {
    const ok = tiersFor(sc);
    return ok.length === 0 || ok.includes(tier) ? tier : 'Standard';
  }

  private stale(r: RestoreRecord): boolean {
    return r.checkedAt === undefined || this.now() - r.checkedAt >= this.opts.pollMs;
  }

  private static stateOf(r: RestoreRecord | undefined | null): BlobState {
    switch (r?.phase) {
      case 'requested':
      case 'in-progress':
        return 'restoring';
      case 'available':
      case 'cached': // the tracker says fetched, but the file is gone: S3 still has the copy
        return 'available';
      default:
        return 'cold';
    }
  }

  async state(p: ColdPack, opts: { refresh?: boolean } = {}): Promise<BlobState> {
    if (!this.isCold(p)) return 'hot';
    if (this.cache.has(p.name)) return 'cached';
    let r = this.tracker.get(p.name);
    const restoring = r?.phase === 'requested' || r?.phase === 'in-progress';
    if (opts.refresh || (restoring && this.stale(r!))) {
      try {
        r = (await this.tracker.refreshOne(this.tracked(p))) ?? r;
      } catch {
        // S3 unreachable: say what we knew
      }
    }
    return GlacierColdStore.stateOf(r);
  }

  async read(p: ColdPack, range: { offset: number; length: number }, signal?: AbortSignal): Promise<Buffer> {
    const hit = await this.cache.read(p.name, range);
    if (hit) return hit;
    let f = this.fetches.get(p.name);
    if (!f) {
      f = this.fetch(p, signal).finally(() => this.fetches.delete(p.name));
      this.fetches.set(p.name, f);
    }
    const whole = await f;
    if (range.offset + range.length > whole.length) throw new CorruptError(`pack ${p.name}`, `shorter (${whole.length} bytes) than the index says`);
    return whole.subarray(range.offset, range.offset + range.length);
  }

  private pending(p: ColdPack): RestorePendingError {
    const r = this.tracker.get(p.name);
    return new RestorePendingError(p.name, GlacierColdStore.stateOf(r) === 'restoring' ? 'restoring' : 'cold', r, this.o.backend.location);
  }

  private async requestRestore(p: ColdPack, tier = this.opts.tier, days = this.opts.days): Promise<boolean> {
    const tp = this.tracked(p);
    const sent = await this.tracker.request(tp, this.tierFor(tp.storageClass, tier), days);
    this.tracker.flush();
    if (sent) {
      const r = this.tracker.get(p.name);
      this.log?.(`requested restore of ${p.name} (${tp.storageClass}, tier ${r?.tier}, ${days} days), expected by ${r?.expectedBy ? new Date(r.expectedBy).toISOString() : '?'}`);
    }
    return sent;
  }

  private async fetch(p: ColdPack, signal?: AbortSignal): Promise<Buffer> {
    const t = this.tracker;
    let r = t.get(p.name);
    if (r && (r.phase === 'requested' || r.phase === 'in-progress')) {
      if (this.stale(r)) r = (await t.refreshOne(this.tracked(p))) ?? r;
      if (r.phase === 'requested' || r.phase === 'in-progress') throw this.pending(p);
    }
    if (r && r.phase === 'cold' && r.checkedAt !== undefined) {
      // Known to be archived and not restored: no GET, just the restore request.
      await this.requestRestore(p);
      throw this.pending(p);
    }
    let bytes: Buffer;
    try {
      bytes = await this.o.backend.get(p.name, undefined, signal);
    } catch (e) {
      if (!(e instanceof ColdError)) throw e;
      // A restore may have been requested while this GET was in flight (read-ahead, or
      // another reader): do not overwrite that record nor request again.
      const now = t.get(p.name);
      if (now && (now.phase === 'requested' || now.phase === 'in-progress')) throw this.pending(p);
      if (!isColdClass(p.storageClass) && !this.knownCold.has(p.name)) {
        // Archived by a lifecycle rule: learn its class for the restore request.
        this.knownCold.add(p.name);
        await t.refreshOne({ name: p.name, bytes: p.bytes, storageClass: 'GLACIER' });
      } else t.markCold(this.tracked(p));
      await this.requestRestore(p);
      throw this.pending(p);
    }
    await this.cache.put(p.name, bytes);
    t.markCached({ ...this.tracked(p), bytes: bytes.length });
    this.log?.(`fetched ${p.name} (${bytes.length} bytes) into the local cache`);
    return bytes;
  }

  invalidate(p: ColdPack): void {
    this.cache.delete(p.name);
  }

  async warm(packs: ColdPack[], opts: WarmOptions = {}): Promise<WarmResult> {
    const need = uniq(packs).filter((p) => this.isCold(p) && !this.cache.has(p.name));
    const tier = opts.tier ?? this.opts.tier;
    const days = opts.days ?? this.opts.days;
    let requested = 0;
    try {
      await mapLimit(need, 8, async (p) => {
        opts.signal?.throwIfAborted();
        const tp = this.tracked(p);
        if (await this.tracker.request(tp, this.tierFor(tp.storageClass, tier), days)) requested++;
      });
    } finally {
      this.tracker.flush();
    }
    return { requested, packs: need.length, bytes: need.reduce((s, p) => s + this.tracked(p).bytes, 0) };
  }

  async refresh(packs: ColdPack[], opts: { totalPacks?: number; signal?: AbortSignal } = {}): Promise<void> {
    const todo = uniq(packs).filter((p) => this.isCold(p));
    await this.tracker.refresh(todo.map((p) => this.tracked(p)), opts);
  }

  async wait(packs: ColdPack[], opts: WaitOptions & { totalPacks?: number } = {}): Promise<boolean> {
    const all = uniq(packs).filter((p) => this.isCold(p));
    const tier = opts.tier ?? this.opts.tier;
    const days = opts.days ?? this.opts.days;
    const deadline = opts.timeoutMs === undefined ? Infinity : this.now() + opts.timeoutMs;
    const pollMax = opts.pollMaxMs ?? 300_000;
    let pause = Math.min(1000, pollMax);
    for (let first = true; ; first = false) {
      const notCached = all.filter((p) => !this.cache.has(p.name));
      let waiting = notCached.filter((p) => GlacierColdStore.stateOf(this.tracker.get(p.name)) !== 'available');
      if (waiting.length && !first) {
        await this.tracker.refresh(waiting.map((p) => this.tracked(p)), { totalPacks: opts.totalPacks, signal: opts.signal });
        // Restores that went away (expired, or never made): ask again.
        for (const p of waiting) if (GlacierColdStore.stateOf(this.tracker.get(p.name)) === 'cold') await this.requestRestore(p, tier, days);
        waiting = notCached.filter((p) => GlacierColdStore.stateOf(this.tracker.get(p.name)) !== 'available');
      } else if (waiting.length) {
        for (const p of waiting) if (GlacierColdStore.stateOf(this.tracker.get(p.name)) === 'cold') await this.requestRestore(p, tier, days);
      }
      if (opts.onProgress) {
        let restoring = 0;
        let cold = 0;
        let bytes = 0;
        let readyBytes = 0;
        for (const p of all) {
          const b = this.tracked(p).bytes;
          bytes += b;
          const s = this.cache.has(p.name) ? 'cached' : GlacierColdStore.stateOf(this.tracker.get(p.name));
          if (s === 'restoring') restoring++;
          else if (s === 'cold') cold++;
          else readyBytes += b;
        }
        opts.onProgress({ total: all.length, ready: all.length - restoring - cold, restoring, cold, bytes, readyBytes });
      }
      if (!waiting.length) return true;
      const left = deadline - this.now();
      if (left <= 0) return false;
      await sleep(Math.min(pause, left), opts.signal);
      pause = Math.min(pause * 2, pollMax);
    }
  }

  status(): ColdPackStatus[] {
    const iso = (t?: number) => (t === undefined ? null : new Date(t).toISOString());
    const out: ColdPackStatus[] = [];
    for (const r of this.tracker.records()) {
      const cached = this.cache.has(r.pack);
      const state: BlobState = cached ? 'cached' : GlacierColdStore.stateOf(r);
      if (state === 'cold') continue;
      out.push({ pack: r.pack, bytes: r.bytes, tier: r.tier ?? null, requestedAt: iso(r.requestedAt), expectedBy: iso(r.expectedBy), expiry: iso(r.expiry), state });
    }
    return out.sort((a, b) => (a.requestedAt ?? '').localeCompare(b.requestedAt ?? '') || a.pack.localeCompare(b.pack));
  }

  async close(): Promise<void> {
    this.trackerObj?.flush();
  }
}

function uniq(packs: ColdPack[]): ColdPack[] {
  const m = new Map<string, ColdPack>();
  for (const p of packs) if (!m.has(p.name)) m.set(p.name, p);
  return [...m.values()];
}

/**
 * Gives a repository cold storage, for backends that can restore archived objects (S3).
 * Returns the store, or null for backends without storage classes (local, SFTP).
 */
export function attachColdStorage(repo: Repository, opts: ColdOptions & { now?: () => number } = {}): GlacierColdStore | null {
  if (!repo.backend.restore) return null;
  const store = new GlacierColdStore({ ...opts, backend: repo.backend, repoId: repo.id });
  repo.setColdStorage(store);
  return store;
}
