// backup --stdin: what is read from a stream stored as one file at the snapshot's root
// (restic's --stdin --stdin-filename). Streamed: one chunk buffer, whatever the length.
import { hostname, userInfo } from 'node:os';
import type { SnapshotInfo } from '../format/snapshot.js';
import type { TreeNode } from '../format/tree.js';
import type { Repository } from '../repo/repository.js';
import { TsbakError } from '../errors.js';
import { groupName, userName } from '../platform/users.js';
import { programVersion } from '../platform/package.js';
import { estimateBackupCost } from '../glacier/cost.js';
import { Chunker, chunkReader, gearTable, readBufferSize } from './chunker.js';
import type { BackupOptions, BackupProgress, BackupResult } from './backup.js';

export interface StdinBackupOptions {
  /** The file's name in the snapshot: one path component. */
  name: string;
  input: AsyncIterable<Buffer | string>;
  tags?: string[];
  host?: string;
  onProgress?: (p: BackupProgress) => void;
  objectLock?: BackupOptions['objectLock'];
}

export async function backupStdin(repo: Repository, opts: StdinBackupOptions): Promise<BackupResult> {
  const name = Buffer.from(opts.name);
  if (!opts.name || opts.name === '.' || opts.name === '..' || opts.name.includes('/') || name.includes(0)) {
    throw new TsbakError('USAGE', `--stdin-filename ${JSON.stringify(opts.name)}: give a file name (not empty, no '/')`);
  }
  const lock = await repo.lock({ exclusive: false, operation: 'backup' });
  try {
    const start = Date.now();
    const time = new Date(start).toISOString();
    await repo.loadIndex();
    repo.assertIndexCurrent();
    const chunker = new Chunker(repo.config.chunker, gearTable(repo.secrets.chunkerSeed));
    const progress: BackupProgress = { files: 1, dirs: 1, bytesRead: 0, bytesAdded: 0, current: opts.name };
    const read = streamReader(opts.input);
    const ids: Array<Promise<Buffer>> = [];
    for await (const chunk of chunkReader(chunker, Infinity, read, Buffer.allocUnsafeSlow(readBufferSize(chunker, Infinity)))) {
      progress.bytesRead += chunk.length;
      ids.push((await repo.saveBlobDeferred('data', chunk)).id);
      opts.onProgress?.(progress);
    }
    const content = await Promise.all(ids);
    const now = BigInt(start) * 1_000_000n;
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const node: TreeNode = {
      name,
      type: 'file',
      mode: 0o644,
      uid,
      gid,
      user: userName(uid),
      group: groupName(gid),
      mtimeNs: now,
      atimeNs: now,
      ctimeNs: now,
      btimeNs: now,
      size: progress.bytesRead,
      ino: 0n,
      dev: 0n,
      nlink: 1,
      content,
    };
    const root = await repo.saveTree({ nodes: [node] });
    await repo.flush();
    const info: SnapshotInfo = {
      time,
      host: opts.host ?? hostname(),
      user: safeUser(),
      paths: [`/${opts.name}`],
      tags: opts.tags ?? [],
      tree: root.id.toString('hex'),
      program: `tsbak ${programVersion()}`,
      stats: {
        files: 1,
        dirs: 1,
        bytesRead: progress.bytesRead,
        bytesAdded: repo.packerStats.bytesWritten,
        blobsAdded: repo.packerStats.blobsWritten,
        durationMs: Date.now() - start,
        errors: 0,
      },
      costUsd: estimateBackupCost({ storageClass: repo.storageClasses }, [...repo.objectsWritten, { kind: 'snapshot', bytes: 1024 }]).monthlyUsd,
    };
    // Packs this run counted on may have been pruned if others took our lock for stale.
    lock.assertHeld();
    if (opts.objectLock && !repo.isDryRun) {
      info.lock = opts.objectLock.lock;
      await opts.objectLock.beforeSnapshot();
    }
    const snapshotId = repo.isDryRun ? '' : await repo.saveSnapshot(info);
    return { snapshotId, info, errors: [], changed: [], dirsUnchanged: 0 };
  } finally {
    await repo.closeWriter().catch(() => {});
    await lock.release().catch(() => {});
  }
}

/** chunkReader's read() over a stream of blocks: copies what fits, keeps the rest for the next call; 0 at the end. */
function streamReader(input: AsyncIterable<Buffer | string>): (buf: Buffer, offset: number, length: number) => Promise<number> {
  const it = input[Symbol.asyncIterator]();
  let rest: Buffer = Buffer.alloc(0);
  let done = false;
  return async (buf, offset, length) => {
    while (!rest.length && !done) {
      const r = await it.next();
      if (r.done) done = true;
      else rest = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    }
    const n = Math.min(length, rest.length);
    rest.copy(buf, offset, 0, n);
    rest = rest.subarray(n);
    return n;
  };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}
