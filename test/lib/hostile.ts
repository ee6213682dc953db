// Hostile snapshots for tests, made as a thief of a writer key could: the key file
// (`tsbak key add-writer`) and the Repository API the CLI uses (saveBlob, saveTree,
// saveSnapshot), with trees built by hand.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Test } from 'tap';
import { newRepo, run } from './cli.js';
import { tempDir } from './temp.js';
import { openBackend } from '../../src/backend/open.js';
import { Repository } from '../../src/repo/repository.js';
import type { TreeNode } from '../../src/format/tree.js';

/** A repository and a writer key file for it (`tsbak key add-writer`). */
export function repoWithWriter(t: Test): { repo: string; key: string } {
  const repo = newRepo(t);
  const key = path.join(tempDir(t), 'writer.key');
  const r = run('tsbak', ['key', 'add-writer', repo, '--name', 'stolen', '--out', key]);
  if (r.code !== 0) throw new Error(`key add-writer exited ${r.code}: ${r.stderr}`);
  return { repo, key };
}

export const BASE = { mode: 0o644, uid: 0, gid: 0, user: 'root', group: 'root', mtimeNs: 1_600_000_000_000_000_000n, atimeNs: 1_600_000_000_000_000_000n, ctimeNs: 0n, btimeNs: 0n, size: 0, ino: 0n, dev: 0n, nlink: 1 };

/** Builds nodes and stores them with the writer key, as a hostile writer would. */
export class Evil {
  constructor(readonly repo: Repository) {}

  async file(name: string | Buffer, data: string, extra: Partial<TreeNode> = {}): Promise<TreeNode> {
    const { id } = await this.repo.saveBlob('data', Buffer.from(data));
    return { ...BASE, name: Buffer.from(name), type: 'file', size: Buffer.byteLength(data), content: [id], ...extra };
  }

  async dir(name: string | Buffer, nodes: TreeNode[], mode = 0o755): Promise<TreeNode> {
    // encodeTree sorts, and checks nothing about names: any name, any number of times.
    const { id } = await this.repo.saveTree({ nodes });
    return { ...BASE, name: Buffer.from(name), type: 'dir', mode, subtree: id };
  }

  symlink(name: string, target: string): TreeNode {
    return { ...BASE, name: Buffer.from(name), type: 'symlink', mode: 0o777, target: Buffer.from(target) };
  }

  /** Stores a snapshot of these root entries, dated 9999 (so it is `latest`); returns its id. */
  async snapshot(nodes: TreeNode[]): Promise<string> {
    const { id } = await this.repo.saveTree({ nodes });
    await this.repo.flush();
    const stats = { files: 1, dirs: 1, bytesRead: 0, bytesAdded: 0, blobsAdded: 0, durationMs: 1, errors: 0 };
    return this.repo.saveSnapshot({ time: '9999-12-31T23:59:59.000000000Z', host: 'victim', user: 'root', paths: ['/'], tags: [], tree: id.toString('hex'), program: 'evil', stats });
  }
}

export async function asWriter<T>(repo: string, key: string, fn: (e: Evil) => Promise<T>): Promise<T> {
  const content = JSON.parse(readFileSync(key, 'utf8'));
  const r = await Repository.open(await openBackend(repo), { keyFile: { path: key, content }, password: '' });
  try {
    return await fn(new Evil(r));
  } finally {
    await r.closeWriter();
  }
}
