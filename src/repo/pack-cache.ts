// A local disk cache of immutable objects named by id: packs fetched from cold storage (a
// cold pack, once restored in S3, is downloaded whole into it and every later read of its
// blobs is served from here, so S3 is not asked again and the restored copy may expire),
// and tree packs and trees (./tree-store.ts).
//
// - One file per object, named by its id, written to a temporary name and renamed, so a
//   file that exists is complete (fsync'd first unless `sync: false`, for caches whose
//   every read is checked anyway). Files hold the bytes as stored in the repository
//   (blobs are still encrypted and are authenticated on every read by the repository).
// - Bounded in bytes, least recently used evicted first. The LRU order survives restarts:
//   it is rebuilt from the files' mtimes, which reads refresh (at most once a minute per file).
// - Several processes may share the directory (a mount and a `tsbak restore`): each keeps
//   its own account, adopts files another process wrote when it misses, and treats a file
//   another process evicted as a miss. The bound is then per process, not global.
import { readdirSync, statSync, unlinkSync, utimes } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { makeDirsSync } from '../platform/make-dirs.js';

const TOUCH_EVERY_MS = 60_000;

interface Entry {
  size: number;
  touched: number;
}

export class PackCache {
  private entries = new Map<string, Entry>(); // insertion order = LRU order, oldest first
  private total = 0;
  private loaded = false;

  constructor(
    readonly dir: string,
    public maxBytes: number,
    private readonly opts: { sync?: boolean } = {},
  ) {}

  /** File name for a pack: its id (the last component of packs/<kind>/xx/<id>). */
  static key(pack: string): string {
    const k = pack.slice(pack.lastIndexOf('/') + 1);
    if (!/^[0-9a-zA-Z_-]+$/.test(k)) throw new Error(`invalid pack name ${pack}`);
    return k;
  }

  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    makeDirsSync(this.dir, 0o700);
    const found: Array<[string, number, number]> = [];
    for (const name of readdirSync(this.dir)) {
      const p = path.join(this.dir, name);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (name.startsWith('.')) {
        // A temporary file left by a crash: remove it once it is clearly abandoned.
        if (Date.now() - st.mtimeMs > 3600_000) this.unlink(p);
        continue;
      }
      if (st.isFile()) found.push([name, st.size, st.mtimeMs]);
    }
    found.sort((a, b) => a[2] - b[2]);
    for (const [name, size, mtime] of found) {
      this.entries.set(name, { size, touched: mtime });
      this.total += size;
    }
    this.evict(null);
  }

  get usedBytes(): number {
    this.load();
    return this.total;
  }

  get count(): number {
    this.load();
    return this.entries.size;
  }

  /** Whether the pack is here (adopting a file another process wrote). */
  has(pack: string): boolean {
    this.load();
    const k = PackCache.key(pack);
    if (this.entries.has(k)) return true;
    return this.adopt(k);
  }

  private adopt(k: string): boolean {
    try {
      const st = statSync(path.join(this.dir, k));
      if (!st.isFile()) return false;
      this.entries.set(k, { size: st.size, touched: Date.now() });
      this.total += st.size;
      this.evict(k);
      return true;
    } catch {
      return false;
    }
  }

  private touch(k: string, e: Entry): void {
    this.entries.delete(k);
    this.entries.set(k, e);
    const now = Date.now();
    if (now - e.touched > TOUCH_EVERY_MS) {
      e.touched = now;
      const t = new Date(now);
      utimes(path.join(this.dir, k), t, t, () => {});
    }
  }

  private forget(k: string): void {
    const e = this.entries.get(k);
    if (!e) return;
    this.entries.delete(k);
    this.total -= e.size;
  }

  /** Bytes [offset, offset+length) of a cached pack (the whole pack without a range), or null on a miss. */
  async read(pack: string, range?: { offset: number; length: number }): Promise<Buffer | null> {
    if (!this.has(pack)) return null;
    const k = PackCache.key(pack);
    const e = this.entries.get(k)!;
    const file = path.join(this.dir, k);
    try {
      if (!range) {
        const b = await fsp.readFile(file);
        this.touch(k, e);
        return b;
      }
      if (range.offset + range.length > e.size) {
        // Shorter than the index says: damaged or truncated by someone; drop it.
        this.delete(pack);
        return null;
      }
      const fh = await fsp.open(file, 'r');
      try {
        const buf = Buffer.allocUnsafe(range.length);
        let got = 0;
        while (got < range.length) {
          const { bytesRead } = await fh.read(buf, got, range.length - got, range.offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got < range.length) {
          this.delete(pack);
          return null;
        }
        this.touch(k, e);
        return buf;
      } finally {
        await fh.close();
      }
    } catch (err: any) {
      if (err?.code === 'ENOENT') {
        this.forget(k); // evicted by another process
        return null;
      }
      throw err;
    }
  }

  /** Stores a whole pack (atomically: temporary file, fsync, rename), then evicts the least recently used packs over the bound. */
  async put(pack: string, bytes: Uint8Array): Promise<void> {
    this.load();
    const k = PackCache.key(pack);
    const tmp = path.join(this.dir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(bytes);
      if (this.opts.sync ?? true) await fh.sync();
    } catch (e) {
      await fh.close();
      this.unlink(tmp);
      throw e;
    }
    await fh.close();
    await fsp.rename(tmp, path.join(this.dir, k));
    this.forget(k);
    this.entries.set(k, { size: bytes.length, touched: Date.now() });
    this.total += bytes.length;
    this.evict(k);
  }

  delete(pack: string): void {
    this.load();
    const k = PackCache.key(pack);
    this.forget(k);
    this.unlink(path.join(this.dir, k));
  }

  /** Cached packs, least recently used first. */
  list(): Array<{ key: string; size: number }> {
    this.load();
    return [...this.entries].map(([key, e]) => ({ key, size: e.size }));
  }

  /** Evicts the oldest packs until the total fits, never `keep` (the pack just stored). */
  private evict(keep: string | null): void {
    for (const [k, e] of this.entries) {
      if (this.total <= this.maxBytes) break;
      if (k === keep) continue;
      this.entries.delete(k);
      this.total -= e.size;
      this.unlink(path.join(this.dir, k));
    }
  }

  private unlink(p: string): void {
    try {
      unlinkSync(p);
    } catch {
      // already gone
    }
  }
}

