// Decoded directories, cached by tree id (an LRU bounded by an estimate of their memory),
// so that walking a snapshot (`ls -lR`, `cp -a`) loads and decodes each tree blob once.
// Identical directories in different snapshots have the same id and share one entry.
import { LRUCache } from 'lru-cache';
import type { TreeNode } from '../format/tree.js';
import type { Repository } from '../repo/repository.js';

export interface Dir {
  /** Names as shown in the mount, in tree order. */
  names: string[];
  nodes: TreeNode[];
  byName: Map<string, TreeNode>;
}

const PREFETCH_AT_ONCE = 8;
const PREFETCH_QUEUE = 256;

export class TreeCache {
  /** Tree blobs loaded and decoded so far (cache misses). */
  loads = 0;
  private readonly cache: LRUCache<string, Dir>;
  private readonly inflight = new Map<string, Promise<Dir>>();

  constructor(
    private readonly repo: Repository,
    maxBytes: number,
    /** The daemon's log: entries a tree refuses are named there (once per load). */
    private readonly log: (msg: string) => void = () => {},
  ) {
    this.cache = new LRUCache<string, Dir>({ maxSize: Math.max(1 << 20, maxBytes), sizeCalculation: (d) => estimateBytes(d) });
  }

  get(id: Buffer): Promise<Dir> | Dir {
    const key = id.toString('hex');
    const hit = this.cache.get(key);
    if (hit) return hit;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.load(id, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /**
   * Starts loading these trees (a directory's subdirectories, which a walk will list next),
   * PREFETCH_AT_ONCE at a time; at most PREFETCH_QUEUE wait, the rest are loaded when asked.
   */
  prefetch(ids: Buffer[]): void {
    for (const id of ids) {
      if (this.queue.length >= PREFETCH_QUEUE) break;
      const key = id.toString('hex');
      if (!this.cache.has(key) && !this.inflight.has(key)) this.queue.push(id);
    }
    this.pump();
  }

  private readonly queue: Buffer[] = [];
  private prefetching = 0;

  private pump(): void {
    while (this.prefetching < PREFETCH_AT_ONCE && this.queue.length) {
      const id = this.queue.shift()!;
      const key = id.toString('hex');
      if (this.cache.has(key) || this.inflight.has(key)) continue;
      this.prefetching++;
      Promise.resolve(this.get(id))
        .catch(() => {}) // a lookup of it reports
        .finally(() => {
          this.prefetching--;
          this.pump();
        });
    }
  }

  private async load(id: Buffer, key: string): Promise<Dir> {
    const tree = await this.repo.loadTree(id);
    this.loads++;
    // Entries the decoder refused (format/tree.ts: a name that is not one path component, a
    // duplicate...) are not in `nodes`, so never shown; say so.
    for (const x of tree.rejected ?? []) this.log(`tree ${key.slice(0, 16)}: entry ${JSON.stringify(x.name.toString())} refused (${x.reason}), not shown; run 'tsbak check'`);
    const names: string[] = [];
    const nodes: TreeNode[] = [];
    const byName = new Map<string, TreeNode>();
    for (const node of tree.nodes) {
      // Raw bytes, one char per byte (latin1): every name, valid UTF-8 or not, is its own key.
      const name = node.name.toString('latin1');
      names.push(name);
      nodes.push(node);
      byName.set(name, node);
    }
    const dir = { names, nodes, byName };
    this.cache.set(key, dir);
    return dir;
  }
}

function estimateBytes(d: Dir): number {
  let n = 64;
  for (let i = 0; i < d.nodes.length; i++) {
    const node = d.nodes[i]!;
    n += 400 + 2 * d.names[i]!.length + (node.content?.length ?? 0) * 80 + (node.xattrs?.length ?? 0) * 100;
  }
  return n;
}
