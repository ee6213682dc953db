// The writer's memory of the directories it stored in the previous run (borg's files cache,
// one level up). For each directory path: a fingerprint of its listing (every name and every
// lstat field, from scanDir), a hash of its subdirectories' tree ids, and the tree id it
// got. A directory that lists the same, and whose subdirectories come out with the same
// ids, has the same tree: the walk reuses the id without loading the parent tree, building
// a node per entry or comparing them.
//
// Valid only for the snapshot it was written with (the parent of the next run), the same
// settings (excludes, --one-file-system, the user and group databases) and a repository
// that lost no index file since (prune and repair rewrite the index: a tree may be gone).
// Directories with hardlinked files, entries that failed, or files that changed while read
// are never recorded.
//
// File: <cache>/<repo id>/dirs-<sha256(host, paths)>, zstd of
//   JSON header line {v, snapshot, settings, indexes}\n, then per directory:
//   u32le path length, path bytes, fingerprint (32), subdirectories hash (32), tree id (32),
//   u32le regular files in the directory.
// Local and unencrypted, like the rest of the writer's cache (parent-cache.ts).
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { zstdCompress, zstdDecompress } from '../format/compress.js';
import { replaceFile } from '../platform/replace-file.js';
import { makeDirs } from '../platform/make-dirs.js';

export interface DirRecord {
  fingerprint: Buffer;
  subdirs: Buffer;
  tree: Buffer;
  /** Regular files in the directory itself (the snapshot's file count includes them). */
  files: number;
}

/** Bytes of a record after its path. */
const RECORD = 32 * 3 + 4;

interface Header {
  v: 1;
  snapshot: string;
  settings: string;
  indexes: string[];
}

const SLASH = 0x2f;

/** FNV-1a over bytes [start, end) of b. */
function hashBytes(b: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * The records live in one buffer laid out as the file's body (u32 path length, path,
 * record), found through an open-addressing table of offsets: no object per directory, so a
 * run over 100k directories leaves no garbage of that size for the GC (tsbak watch keeps
 * running after it; docs/PERFORMANCE.md).
 */
export class DirCache {
  private buf: Buffer;
  private used: number;
  /** Where the records start in buf (after the header of a loaded file). */
  private readonly start: number;
  /** Offset + 1 of each record by hash of its path; 0 is an empty slot. */
  private slots = new Int32Array(1024);
  private count = 0;
  /** Records of a loaded file superseded by a later one with the same path. */
  private superseded: Set<number> | null = null;

  constructor(bytes?: Buffer, start = 0) {
    this.buf = bytes ?? Buffer.allocUnsafeSlow(64 * 1024);
    this.used = bytes ? bytes.length : 0;
    this.start = start;
  }

  get size(): number {
    return this.count;
  }

  get(dir: Buffer): DirRecord | undefined {
    const off = this.find(dir, 0, dir.length, hashBytes(dir, 0, dir.length));
    return off < 0 ? undefined : this.recordAt(off);
  }

  set(dir: Buffer, rec: DirRecord): void {
    const r = this.put(dir, 0, dir.length);
    rec.fingerprint.copy(this.buf, r, 0, 32);
    rec.subdirs.copy(this.buf, r + 32, 0, 32);
    rec.tree.copy(this.buf, r + 64, 0, 32);
    this.buf.writeUInt32LE(rec.files, r + 96);
  }

  /**
   * Every record below one of `roots` (latin1 paths; below, not at) copied into `into`.
   * Returns how many directories, and their regular files.
   */
  copyBelow(roots: Set<string>, into: DirCache): { dirs: number; files: number } {
    const byHash = new Map<number, Buffer[]>();
    for (const r of roots) {
      const b = Buffer.from(r, 'latin1');
      const h = hashBytes(b, 0, b.length);
      byHash.set(h, [...(byHash.get(h) ?? []), b]);
    }
    const isRoot = (o: number, n: number, h: number): boolean => !!byHash.get(h)?.some((b) => b.length === n && this.buf.compare(b, 0, n, o, o + n) === 0);
    const rootHash = hashBytes(Buffer.from('/'), 0, 1);
    let dirs = 0;
    let files = 0;
    this.forEach((o, n) => {
      // Proper ancestors: "/" and every prefix ending before a later "/".
      let below = n > 1 && isRoot(o, 1, rootHash);
      let h = 0x811c9dc5;
      for (let i = 0; i < n && !below; i++) {
        const c = this.buf[o + i]!;
        if (c === SLASH && i > 0) below = isRoot(o, i, h >>> 0);
        h = Math.imul(h ^ c, 0x01000193);
      }
      if (!below) return;
      const r = into.put(this.buf, o, n); // before into.buf is read: put may grow it
      this.buf.copy(into.buf, r, o + n, o + n + RECORD);
      dirs++;
      files += this.buf.readUInt32LE(o + n + 96);
    });
    return { dirs, files };
  }

  /** The latin1 paths of the records with this fingerprint. */
  pathsWithFingerprint(fp: Buffer): string[] {
    const out: string[] = [];
    this.forEach((o, n) => {
      if (this.buf.compare(fp, 0, 32, o + n, o + n + 32) === 0) out.push(this.buf.toString('latin1', o, o + n));
    });
    return out;
  }

  static fileName(host: string, paths: string[]): string {
    return 'dirs-' + createHash('sha256').update(JSON.stringify([host, [...paths].sort()])).digest('hex').slice(0, 32);
  }

  /** The records written with `snapshot` and `settings`, if every index file they knew is still there; else none. */
  static async load(file: string, snapshot: string, settings: string, indexFiles: string[]): Promise<DirCache> {
    let bytes: Buffer;
    try {
      bytes = zstdDecompress(await fsp.readFile(file));
    } catch {
      return new DirCache(); // none yet, or unreadable: this run records afresh
    }
    const nl = bytes.indexOf(0x0a);
    if (nl < 0) return new DirCache();
    let h: Header;
    try {
      h = JSON.parse(bytes.toString('utf8', 0, nl)) as Header;
    } catch {
      return new DirCache();
    }
    const present = new Set(indexFiles);
    if (h.v !== 1 || h.snapshot !== snapshot || h.settings !== settings || !Array.isArray(h.indexes) || !h.indexes.every((i) => present.has(i))) return new DirCache();
    const cache = new DirCache(bytes, nl + 1);
    let o = nl + 1;
    while (o + 4 <= bytes.length) {
      const n = bytes.readUInt32LE(o);
      if (o + 4 + n + RECORD > bytes.length) return new DirCache(); // truncated: trust none of it
      const hash = hashBytes(bytes, o + 4, o + 4 + n);
      const old = cache.find(bytes, o + 4, n, hash);
      if (old >= 0) {
        (cache.superseded ??= new Set()).add(old);
        cache.replaceSlot(hash, old, o);
      } else cache.insert(hash, o);
      o += 4 + n + RECORD;
    }
    cache.used = o;
    return cache;
  }

  async save(file: string, snapshot: string, settings: string, indexFiles: string[]): Promise<void> {
    const header: Header = { v: 1, snapshot, settings, indexes: indexFiles };
    const parts: Buffer[] = [Buffer.from(JSON.stringify(header) + '\n')];
    if (this.superseded) this.forEach((o, n) => void parts.push(this.buf.subarray(o - 4, o + n + RECORD)));
    else parts.push(this.buf.subarray(this.start, this.used));
    await makeDirs(path.dirname(file), 0o700);
    await replaceFile(file, zstdCompress(Buffer.concat(parts), 3));
  }

  /** Calls fn(path offset, path length) for each live record, in the order they were first set. */
  private forEach(fn: (pathOff: number, pathLen: number) => void): void {
    for (let o = this.start; o + 4 <= this.used; ) {
      const n = this.buf.readUInt32LE(o);
      if (!this.superseded?.has(o)) fn(o + 4, n);
      o += 4 + n + RECORD;
    }
  }

  private recordAt(off: number): DirRecord {
    const r = off + 4 + this.buf.readUInt32LE(off);
    return { fingerprint: this.buf.subarray(r, r + 32), subdirs: this.buf.subarray(r + 32, r + 64), tree: this.buf.subarray(r + 64, r + 96), files: this.buf.readUInt32LE(r + 96) };
  }

  /** Where the record of path src[ps, ps + n) goes: its old place, or a new one appended. */
  private put(src: Buffer, ps: number, n: number): number {
    const h = hashBytes(src, ps, ps + n);
    const old = this.find(src, ps, n, h);
    if (old >= 0) return old + 4 + n;
    const off = this.used;
    this.reserve(4 + n + RECORD);
    this.buf.writeUInt32LE(n, off);
    src.copy(this.buf, off + 4, ps, ps + n);
    this.used = off + 4 + n + RECORD;
    this.insert(h, off);
    return off + 4 + n;
  }

  /** Offset of the record whose path is src[ps, ps + n), or -1. */
  private find(src: Buffer, ps: number, n: number, h: number): number {
    const mask = this.slots.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const s = this.slots[i]!;
      if (s === 0) return -1;
      const off = s - 1;
      if (this.buf.readUInt32LE(off) === n && this.buf.compare(src, ps, ps + n, off + 4, off + 4 + n) === 0) return off;
    }
  }

  private insert(h: number, off: number): void {
    if ((this.count + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const mask = this.slots.length - 1;
    let i = h & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = off + 1;
    this.count++;
  }

  private replaceSlot(h: number, old: number, off: number): void {
    const mask = this.slots.length - 1;
    let i = h & mask;
    while (this.slots[i] !== old + 1) i = (i + 1) & mask;
    this.slots[i] = off + 1;
  }

  private rehash(size: number): void {
    const old = this.slots;
    this.slots = new Int32Array(size);
    const mask = size - 1;
    for (const s of old) {
      if (s === 0) continue;
      const n = this.buf.readUInt32LE(s - 1);
      let i = hashBytes(this.buf, s + 3, s + 3 + n) & mask;
      while (this.slots[i] !== 0) i = (i + 1) & mask;
      this.slots[i] = s;
    }
  }

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.used + bytes) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, this.used);
    this.buf = next;
  }
}

/** The hash of a directory's subdirectories as stored: each one's name and tree id, in name order. */
export function subdirsHash(subdirs: Array<{ name: Buffer; subtree?: Buffer }>): Buffer {
  const h = createHash('sha256');
  const len = Buffer.alloc(4);
  for (const d of [...subdirs].sort((a, b) => Buffer.compare(a.name, b.name))) {
    len.writeUInt32LE(d.name.length);
    h.update(len).update(d.name).update(d.subtree ?? Buffer.alloc(32));
  }
  return h.digest();
}
