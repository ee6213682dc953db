// The plaintext `config` object. See docs/FORMAT.md ("config").
// The S3 storage classes (the same names as the backend's StorageClass; format stays free
// of imports from the layers above it).
export type StorageClass = 'STANDARD' | 'STANDARD_IA' | 'GLACIER_IR' | 'GLACIER' | 'DEEP_ARCHIVE';

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
