// The restore's trees, loaded ahead of its walk. The walk goes depth first and waits for
// each directory's tree; loaded one at a time, a snapshot of 800 directories costs 800
// round trips end to end. Here every subtree is known as soon as its parent is loaded, and
// the ones the walk will want next (smallest depth-first position first) are loaded in
// batches by pack (Repository.loadTrees), a bounded number ahead of the walk.
import type { Tree } from '../format/tree.js';

export interface TreeSource {
  /** Each tree, or the error loading it threw. */
  loadTrees(ids: Buffer[]): Promise<Array<Tree | Error>>;
}

/** The subtrees a walk enters below a tree, in the order it enters them, each with what it needs to know there. */
export type Children<C> = (tree: Tree, ctx: C) => Array<{ id: Buffer; ctx: C }>;

/** Trees loaded and not yet taken, at most (a bound of memory: a decoded tree is a few KB to a few MB)... */
const AHEAD_TREES = 2048;
/** ...and their encoded bytes. */
const AHEAD_BYTES = 32 << 20;
/** Trees asked for in one loadTrees call, and calls at once. */
const BATCH = 256;
const BATCHES = 2;

interface Entry<C> {
  hex: string;
  id: Buffer;
  /** Depth-first position: the walk takes trees in this order. */
  key: number[];
  ctx: C;
  /** Walks still to take it (a tree found at two places is loaded once). */
  count: number;
  started: boolean;
  done: boolean;
  bytes: number;
  promise: Promise<Tree>;
  resolve: (t: Tree) => void;
  reject: (e: Error) => void;
}

function before(a: number[], b: number[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return a.length < b.length;
}

export class TreeAhead<C> {
  private readonly entries = new Map<string, Entry<C>>();
  /** Entries not started, a binary heap by key. */
  private heap: Entry<C>[] = [];
  private loading = 0;
  private aheadTrees = 0;
  private aheadBytes = 0;

  constructor(
    private readonly src: TreeSource,
    private readonly children: Children<C>,
    private readonly sizeOf: (id: Buffer) => number,
    /** Trees were loaded (and their children found); `quiet`: no more loading now. */
    private readonly onLoaded?: (quiet: boolean) => void,
  ) {}

  /** The walk starts at `tree`: its subtrees are found and loading begins. */
  start(tree: Tree, ctx: C): void {
    this.expand(tree, ctx, []);
    this.pump();
    this.onLoaded?.(this.loading === 0);
  }

  /** Whether take(id) has its tree at hand (loaded ahead), rather than waiting for a read. */
  ready(id: Buffer): boolean {
    return this.entries.get(id.toString('hex'))?.done === true;
  }

  /** The tree `id` the walk enters now (loaded ahead, or now). */
  take(id: Buffer): Promise<Tree> {
    const e = this.entries.get(id.toString('hex'));
    if (!e) return this.loadOne(id);
    this.release(e);
    if (!e.started) {
      // Not loaded yet, and wanted now: ahead of every bound.
      this.removeFromHeap(e);
      this.begin([e]);
    }
    return e.promise;
  }

  /** The walk will not enter `id` after all (its directory could not be made). */
  skip(id: Buffer): void {
    const e = this.entries.get(id.toString('hex'));
    if (e) this.release(e);
  }

  private release(e: Entry<C>): void {
    if (--e.count > 0) return;
    this.entries.delete(e.hex);
    if (e.done) {
      this.aheadTrees--;
      this.aheadBytes -= e.bytes;
      this.pump();
    }
  }

  private async loadOne(id: Buffer): Promise<Tree> {
    const [t] = await this.src.loadTrees([id]);
    if (t instanceof Error) throw t;
    return t!;
  }

  private expand(tree: Tree, ctx: C, key: number[]): void {
    this.children(tree, ctx).forEach((c, i) => {
      const hex = c.id.toString('hex');
      const old = this.entries.get(hex);
      if (old) {
        old.count++;
        return;
      }
      let resolve!: (t: Tree) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<Tree>((res, rej) => ((resolve = res), (reject = rej)));
      // A failure is the walk's to report when it gets there; until then it is not unhandled.
      promise.catch(() => {});
      const e: Entry<C> = { hex, id: c.id, key: [...key, i], ctx: c.ctx, count: 1, started: false, done: false, bytes: this.sizeOf(c.id), promise, resolve, reject };
      this.entries.set(hex, e);
      this.push(e);
    });
  }

  /** Starts loads while there is room: the walk's next trees first. */
  private pump(): void {
    while (this.loading < BATCHES && this.heap.length && this.aheadTrees < AHEAD_TREES && this.aheadBytes < AHEAD_BYTES) {
      const batch: Entry<C>[] = [];
      let n = this.aheadTrees;
      let bytes = this.aheadBytes;
      while (this.heap.length && batch.length < BATCH && n < AHEAD_TREES && bytes < AHEAD_BYTES) {
        const e = this.pop();
        batch.push(e);
        n++;
        bytes += e.bytes;
      }
      this.begin(batch);
    }
  }

  private begin(batch: Entry<C>[]): void {
    for (const e of batch) {
      e.started = true;
      this.aheadTrees++;
      this.aheadBytes += e.bytes;
    }
    this.loading++;
    void this.src
      .loadTrees(batch.map((e) => e.id))
      .then(
        (trees) => trees,
        (err: unknown) => batch.map(() => (err instanceof Error ? err : new Error(String(err)))),
      )
      .then((trees) => {
        this.loading--;
        batch.forEach((e, i) => {
          const t = trees[i]!;
          e.done = true;
          if (t instanceof Error) {
            e.reject(t);
          } else {
            this.expand(t, e.ctx, e.key);
            e.resolve(t);
          }
          // Taken already (count 0): its room is free again.
          if (this.entries.get(e.hex) !== e) {
            this.aheadTrees--;
            this.aheadBytes -= e.bytes;
          }
        });
        this.pump();
        this.onLoaded?.(this.loading === 0);
      });
  }

  // ---- the heap ----

  private push(e: Entry<C>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!.key, h[p]!.key)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Entry<C> {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      this.down(0);
    }
    return top;
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!.key, h[m]!.key)) m = l;
      if (r < h.length && before(h[r]!.key, h[m]!.key)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }

  private removeFromHeap(e: Entry<C>): void {
    const h = this.heap;
    const i = h.indexOf(e);
    if (i < 0) return;
    const last = h.pop()!;
    if (i === h.length) return;
    h[i] = last;
    // The moved entry may belong above or below.
    let j = i;
    while (j > 0) {
      const p = (j - 1) >> 1;
      if (!before(h[j]!.key, h[p]!.key)) break;
      [h[j], h[p]] = [h[p]!, h[j]!];
      j = p;
    }
    this.down(j);
  }
}
