// Reads started before anyone asks for them. Opening a repository is a chain of small
// requests (config, the key list, a key, the snapshot list, the index list, every index
// file); over S3 each link is a round trip, so a command at 100 ms latency spent about a
// second before its first useful read. withWarmStart(backend, plan) issues the plan's
// reads at once (the lists of a sequence one after another, each list's objects fetched
// as soon as it is known) and hands each result, once, to the first caller that asks for
// exactly that get or list; every other call goes straight to the backend. Objects are
// immutable, so a prefetched object is what a later get would return; a prefetched list is
// the listing as of when it was made, as if the caller had listed then, and is served only
// if the caller has written nothing since that listing began. The first write is the
// command's lock: what was listed before it was held may have been changed by a prune or a
// backup that the lock would have kept out (a backup reusing blobs a prune deleted, a prune
// taking a finished backup's packs for unindexed), so such a list is made again. A warm get
// that failed is not served: the caller's get goes to the backend (the object may have
// appeared since, and a transient error deserves the caller's own retries).
import type { Backend, ObjectFile, ObjectInfo, PutOptions, Range } from './backend.js';

export interface WarmList {
  prefix: string;
  /** Also get every listed object, up to this many bytes in all (0: only list). */
  fetchBytes?: number;
  /** Of the listed objects, those to get (default: all); the objects after them wait for it, the next list does not. */
  fetchOnly?: (listed: ObjectInfo[]) => Promise<ObjectInfo[]>;
  /**
   * Listed only to get its objects sooner: a caller's list() of the prefix is served by a
   * later list of it in the plan (or by the backend), and objects got here are not got
   * again for that one.
   */
  prefetchOnly?: boolean;
}

export interface WarmStartPlan {
  gets: string[];
  /** Each inner array is listed in order (a list starts when the one before it is done); the arrays run at once. */
  lists: WarmList[][];
}

/** A settled-later result whose rejection is reported only to whoever takes it. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

async function listAll(backend: Backend, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of backend.list(prefix)) out.push(o);
  return out;
}

class WarmStartBackend implements Backend {
  private readonly gets = new Map<string, Promise<Buffer>>();
  /** Each prefix's listing, and the write epoch it began in. */
  private readonly lists = new Map<string, { epoch: number; listed: Promise<ObjectInfo[]> }>();
  /** Moves on when a write of the caller's begins and when it ends: a listing that began in an older epoch is stale. */
  private epoch = 0;
  /** Objects a warm get was started for, served or not. */
  private readonly started = new Set<string>();
  /** Gets of listed objects wait for a slot: as many at once as the backend reads well. */
  private inFlight = 0;
  private readonly queue: Array<() => void> = [];

  /** Streamed objects' commits are writes too (defined only where the backend streams). */
  createObjectFile?: () => ObjectFile;

  constructor(private readonly inner: Backend, plan: WarmStartPlan) {
    if (inner.createObjectFile) {
      this.createObjectFile = () => {
        const f = inner.createObjectFile!();
        return { write: (bytes) => f.write(bytes), commit: (name) => this.write(name, () => f.commit(name)), abort: () => f.abort() };
      };
    }
    for (const name of plan.gets) this.warmGet(name);
    for (const seq of plan.lists) void this.runSequence(seq);
  }

  private warmGet(name: string, slot = false): void {
    if (this.started.has(name)) return;
    this.started.add(name);
    this.gets.set(name, quiet(slot ? this.slot(() => this.inner.get(name)) : this.inner.get(name)));
  }

  private async runSequence(seq: WarmList[]): Promise<void> {
    for (const l of seq) {
      const listed = quiet(listAll(this.inner, l.prefix));
      if (!l.prefetchOnly) this.lists.set(l.prefix, { epoch: this.epoch, listed });
      let objects: ObjectInfo[];
      try {
        objects = await listed;
      } catch {
        return; // the caller of list() gets the error
      }
      if (l.fetchBytes) void this.fetchListed(objects, l).catch(() => {});
    }
  }

  private async fetchListed(objects: ObjectInfo[], l: WarmList): Promise<void> {
    let budget = l.fetchBytes ?? 0;
    for (const o of l.fetchOnly ? await l.fetchOnly(objects) : objects) {
      if (o.size > budget) break;
      budget -= o.size;
      this.warmGet(o.name, true);
    }
  }

  private async slot<T>(f: () => Promise<T>): Promise<T> {
    const limit = Math.max(1, this.inner.readConcurrency ?? 2);
    if (this.inFlight >= limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.inFlight++;
    try {
      return await f();
    } finally {
      this.inFlight--;
      this.queue.shift()?.();
    }
  }

  get location(): string {
    return this.inner.location;
  }
  get putConcurrency(): number | undefined {
    return this.inner.putConcurrency;
  }
  get parityByDefault(): boolean | undefined {
    return this.inner.parityByDefault;
  }
  get readConcurrency(): number | undefined {
    return this.inner.readConcurrency;
  }

  get(name: string, range?: Range, signal?: AbortSignal): Promise<Buffer> {
    const warm = range ? undefined : this.gets.get(name);
    if (warm) {
      this.gets.delete(name);
      return warm.catch(() => this.inner.get(name, range, signal));
    }
    return this.inner.get(name, range, signal);
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo> {
    const warm = this.lists.get(prefix);
    this.lists.delete(prefix);
    if (warm && warm.epoch === this.epoch) {
      yield* await warm.listed;
      return;
    }
    yield* this.inner.list(prefix, signal);
  }

  /**
   * A write of the caller's to `name`: the warm get of it is stale, and so is every listing
   * begun before the write ends (see the header).
   */
  private async write(name: string, op: () => Promise<void>): Promise<void> {
    this.gets.delete(name);
    this.started.add(name);
    this.epoch++;
    try {
      await op();
    } finally {
      this.epoch++;
    }
  }

  put(name: string, data: Uint8Array, opts?: PutOptions): Promise<void> {
    return this.write(name, () => this.inner.put(name, data, opts));
  }
  head(name: string): Promise<ObjectInfo | null> {
    return this.inner.head(name);
  }
  delete(name: string): Promise<void> {
    return this.write(name, () => this.inner.delete(name));
  }
  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

/** The backend, with the plan's reads already under way; every other method is the backend's own. */
export function withWarmStart(backend: Backend, plan: WarmStartPlan): Backend {
  return forwardingRest(new WarmStartBackend(backend, plan), backend);
}

/**
 * `front`, with whatever it does not define taken from `backend` (bound to it): the
 * optional methods of the Backend interface a wrapper need not know about.
 */
export function forwardingRest<T extends object>(front: T, backend: Backend): T {
  return new Proxy(front, {
    get(target, prop, receiver) {
      if (prop in target) return Reflect.get(target, prop, receiver);
      const v = Reflect.get(backend, prop);
      return typeof v === 'function' ? v.bind(backend) : v;
    },
    has: (target, prop) => prop in target || prop in backend,
  });
}
