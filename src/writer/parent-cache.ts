// The writer's local cache. A write-only key cannot read trees back from the repository,
// so to skip unchanged files it keeps, per repository, the trees it wrote (plaintext, on
// the backup machine only) and the last snapshot for each set of paths. Without the cache
// a backup is slower (every file is read again) but still correct: dedup needs only the
// index, which writers can read.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { zstdCompress, zstdDecompress } from '../format/compress.js';
import { decodeTree, type Tree } from '../format/tree.js';
import { replaceFile } from '../platform/replace-file.js';
import { makeDirs } from '../platform/make-dirs.js';

export { defaultCacheRoot as defaultCacheDir } from '../repo/cache-root.js';

export interface ParentRecord {
  snapshot: string;
  tree: string;
  time: string;
}

export class ParentCache {
  private readonly dir: string;
  private madeTrees = false;

  constructor(root: string, repoId: string) {
    this.dir = path.join(root, repoId);
  }

  /** A file of this repository's cache. */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  static key(host: string, paths: string[]): string {
    return JSON.stringify([host, [...paths].sort()]);
  }

  async loadTree(id: Buffer): Promise<Tree | null> {
    try {
      return decodeTree(zstdDecompress(await fsp.readFile(path.join(this.dir, 'trees', id.toString('hex')))));
    } catch {
      return null;
    }
  }

  /** Keeps a tree (its encoding) the backup stored, for the next run's parent trees. */
  async saveTree(id: Buffer, encoded: Buffer): Promise<void> {
    const dir = path.join(this.dir, 'trees');
    if (!this.madeTrees) {
      await makeDirs(dir, 0o700);
      this.madeTrees = true;
    }
    const file = path.join(dir, id.toString('hex'));
    await fsp.writeFile(file, zstdCompress(encoded, 3), { flag: 'wx', mode: 0o600 }).catch((e) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }

  private async readParents(): Promise<Record<string, ParentRecord>> {
    try {
      return JSON.parse(await fsp.readFile(path.join(this.dir, 'parents.json'), 'utf8'));
    } catch {
      return {};
    }
  }

  async getParent(key: string): Promise<ParentRecord | null> {
    return (await this.readParents())[key] ?? null;
  }

  async setParent(key: string, rec: ParentRecord): Promise<void> {
    await makeDirs(this.dir, 0o700);
    const all = await this.readParents();
    all[key] = rec;
    await replaceFile(path.join(this.dir, 'parents.json'), JSON.stringify(all));
  }
}
