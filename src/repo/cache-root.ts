// Where the local cache lives: $TSBAK_CACHE_DIR, else $XDG_CACHE_HOME/tsbak, else
// ~/.cache/tsbak. Each repository has its own folder below it, named by the repository id.
import { homedir } from 'node:os';
import * as path from 'node:path';

export function defaultCacheRoot(): string {
  return process.env.TSBAK_CACHE_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'tsbak');
}

/** Where snapshot objects read are kept, under the local cache root (snapshot-store.ts). */
export function snapshotCacheDir(root: string, repoId: string): string {
  return path.join(root, repoId, 'snapshots');
}
