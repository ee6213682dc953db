// The plaintext `config` object. See docs/FORMAT.md ("config").
import type { StorageClass } from '../backend/backend.js';

export interface RepoConfig {
  version: 1;
  id: string; // 16 random bytes, hex
  created: string;
  chunker: { min: number; avg: number; max: number };
  compression: { alg: 'zstd'; level: number };
  packSize: { data: number; tree: number };
  storageClass: { data: StorageClass; tree: StorageClass; other: StorageClass };
}

export function encodeConfig(c: RepoConfig): Buffer {
  return Buffer.from(JSON.stringify(c, null, 2) + '\n');
}

export function decodeConfig(b: Buffer): RepoConfig {
  const c = JSON.parse(b.toString('utf8')) as RepoConfig;
  if (c.version !== 1 || typeof c.id !== 'string' || !c.chunker || !c.packSize) throw new Error('unknown config version');
  return c;
}
