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

export class DirCache {
  private readonly dirs = new Map<string, DirRecord>();

  get size(): number {
    return this.dirs.size;
  }

  get(dir: Buffer): DirRecord | undefined {
    return this.dirs.get(dir.toString('latin1'));
  }

  set(dir: Buffer, rec: DirRecord): void {
    this.dirs.set(dir.toString('latin1'), rec);
  }

  /** Every record, by latin1 path. */
  entries(): IterableIterator<[string, DirRecord]> {
    return this.dirs.entries();
  }

  static fileName(host: string, paths: string[]): string {
    return 'dirs-' + createHash('sha256').update(JSON.stringify([host, [...paths].sort()])).digest('hex').slice(0, 32);
  }

  /** The records written with `snapshot` and `settings`, if every index file they knew is still there; else none. */
  static async load(file: string, snapshot: string, settings: string, indexFiles: string[]): Promise<DirCache> {
    const cache = new DirCache();
    let bytes: Buffer;
    try {
      bytes = zstdDecompress(await fsp.readFile(file));
    } catch {
      return cache; // none yet, or unreadable: this run records afresh
    }
    const nl = bytes.indexOf(0x0a);
    if (nl < 0) return cache;
    let h: Header;
    try {
      h = JSON.parse(bytes.toString('utf8', 0, nl)) as Header;
    } catch {
      return cache;
    }
    const present = new Set(indexFiles);
    if (h.v !== 1 || h.snapshot !== snapshot || h.settings !== settings || !h.indexes.every((i) => present.has(i))) return cache;
    let o = nl + 1;
    while (o + 4 <= bytes.length) {
      const n = bytes.readUInt32LE(o);
      if (o + 4 + n + RECORD > bytes.length) return new DirCache(); // truncated: trust none of it
      const p = bytes.toString('latin1', o + 4, o + 4 + n);
      o += 4 + n;
      cache.dirs.set(p, { fingerprint: bytes.subarray(o, o + 32), subdirs: bytes.subarray(o + 32, o + 64), tree: bytes.subarray(o + 64, o + 96), files: bytes.readUInt32LE(o + 96) });
      o += RECORD;
    }
    return cache;
  }

  async save(file: string, snapshot: string, settings: string, indexFiles: string[]): Promise<void> {
    const header: Header = { v: 1, snapshot, settings, indexes: indexFiles };
    const parts: Buffer[] = [Buffer.from(JSON.stringify(header) + '\n')];
    for (const [p, r] of this.dirs) {
      const name = Buffer.from(p, 'latin1');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(name.length);
      const files = Buffer.alloc(4);
      files.writeUInt32LE(r.files);
      parts.push(len, name, r.fingerprint, r.subdirs, r.tree, files);
    }
    await makeDirs(path.dirname(file), 0o700);
    await replaceFile(file, zstdCompress(Buffer.concat(parts), 3));
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
