// The `config` object, and `config.sig` (the signature of an older, unsigned config).
// See docs/FORMAT.md ("config"). Every value is range-checked on decode: config is read
// from the bucket, and a bucket writer must not be able to hang the writer (a chunker of
// zeros), nor make it write somewhere unexpected, by editing it.
// The S3 storage classes (the same names as the backend's StorageClass; format stays free
// of imports from the layers above it).
export type StorageClass = 'STANDARD' | 'STANDARD_IA' | 'GLACIER_IR' | 'GLACIER' | 'DEEP_ARCHIVE';

export const STORAGE_CLASSES: readonly StorageClass[] = ['STANDARD', 'STANDARD_IA', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'];

export interface RepoConfig {
  /** 1: unsigned (repositories made before signed configs; see config.sig); 2: signed; 3: signed, with storageClass.index. */
  version: 1 | 2 | 3;
  id: string; // 16 random bytes, hex
  created: string;
  chunker: { min: number; avg: number; max: number };
  compression: { alg: 'zstd'; level: number };
  packSize: { data: number; tree: number };
  /** `index`: the class of index files (version 3; before, index files took `other`). */
  storageClass: { data: StorageClass; tree: StorageClass; other: StorageClass; index?: StorageClass };
}

/** The class index files are stored in: `storageClass.index`, else (configs before version 3) `other`. */
export function indexClassOf(c: Pick<RepoConfig, 'storageClass'>): StorageClass {
  return c.storageClass.index ?? c.storageClass.other;
}

/** What makes a config authentic: the master's Ed25519 public key, the key check value, the signature. */
export interface ConfigSignature {
  signPub: Buffer; // 32
  keyCheck: Buffer; // 32: HMAC-SHA256(macKey, "tsbak key check v1" || chunkerSeed || indexKey || repoPub)
  sig: Buffer; // 64: Ed25519(master signPriv, configSignedMessage(...))
}

/** A decoded config: its values, and its signature when it carries one (version 2). */
export interface DecodedConfig {
  config: RepoConfig;
  signature: ConfigSignature | null;
}

/** A config value out of range, or a malformed config: message names the field. */
export class ConfigError extends Error {}

/**
 * The chunker `init` writes into a new repository's config (docs/FORMAT.md "Chunking"):
 * 256 KiB on average dedups data shifted or copied within and between large files better
 * than 1 MiB did (docs/PERFORMANCE.md, images23e). Repositories keep the parameters they
 * were made with: changing them would re-chunk, and so store again, every file.
 */
export const DEFAULT_CHUNKER = { min: 64 << 10, avg: 256 << 10, max: 4 << 20 } as const;

/** Bounds (docs/FORMAT.md "config"): generous around what tsbak writes, tight enough that nothing hangs or explodes. */
export const CONFIG_BOUNDS = {
  chunkerAvg: [1 << 10, 1 << 24], // a power of two
  chunkerMin: 512,
  chunkerMax: 1 << 26,
  level: [-7, 22],
  packData: [1 << 20, 1 << 30],
  packTree: [64 << 10, 1 << 30],
} as const;

/** The bytes the master key signs: a domain string, then the config's values as JSON in a fixed key order, no whitespace. */
export function configSignedMessage(c: RepoConfig, signPub: Buffer, keyCheck: Buffer): Buffer {
  const domain = c.version === 3 ? 'tsbak config v3\n' : 'tsbak config v2\n';
  return Buffer.from(domain + JSON.stringify({ ...canonical(c), signPub: signPub.toString('base64'), keyCheck: keyCheck.toString('base64') }));
}

function canonical(c: RepoConfig): RepoConfig {
  // Version 3 names the index class between tree and other; earlier versions have none.
  const storageClass: RepoConfig['storageClass'] =
    c.version === 3
      ? { data: c.storageClass.data, tree: c.storageClass.tree, index: indexClassOf(c), other: c.storageClass.other }
      : { data: c.storageClass.data, tree: c.storageClass.tree, other: c.storageClass.other };
  return {
    version: c.version,
    id: c.id,
    created: c.created,
    chunker: { min: c.chunker.min, avg: c.chunker.avg, max: c.chunker.max },
    compression: { alg: c.compression.alg, level: c.compression.level },
    packSize: { data: c.packSize.data, tree: c.packSize.tree },
    storageClass,
  };
}

/** A config (init writes version 2): the values, then signPub, keyCheck and sig (base64). Pretty-printed, as version 1 was. */
export function encodeConfig(c: RepoConfig, s: ConfigSignature): Buffer {
  const o = { ...canonical(c), signPub: s.signPub.toString('base64'), keyCheck: s.keyCheck.toString('base64'), sig: s.sig.toString('base64') };
  return Buffer.from(JSON.stringify(o, null, 2) + '\n');
}

/** The JSON object in b (config or config.sig), or ConfigError. */
function jsonObject(b: Buffer): any {
  let o: any;
  try {
    o = JSON.parse(b.toString('utf8'));
  } catch {
    throw new ConfigError('not JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ConfigError('not a JSON object');
  return o;
}

/** The signature fields shared by a version 2 config and config.sig. */
function signatureOf(o: any): ConfigSignature {
  return { signPub: b64(o.signPub, 'signPub', 32), keyCheck: b64(o.keyCheck, 'keyCheck', 32), sig: b64(o.sig, 'sig', 64) };
}

export function decodeConfig(b: Buffer): DecodedConfig {
  const o = jsonObject(b);
  if (o.version !== 1 && o.version !== 2 && o.version !== 3) throw new ConfigError(`version: ${JSON.stringify(o.version)} is not 1, 2 or 3 (made by a newer tsbak?)`);
  const config: RepoConfig = {
    version: o.version,
    id: hexId(o.id, 'id'),
    created: created(o.created),
    chunker: chunker(o.chunker),
    compression: compression(o.compression),
    packSize: packSize(o.packSize),
    storageClass: storageClass(o.storageClass, o.version),
  };
  if (config.version === 1) return { config, signature: null };
  return { config, signature: signatureOf(o) };
}

/** config.sig: the signature of a version 1 config, written once by `tsbak key sign-config`. */
export function encodeConfigSig(s: ConfigSignature): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, signPub: s.signPub.toString('base64'), keyCheck: s.keyCheck.toString('base64'), sig: s.sig.toString('base64') }, null, 2) + '\n');
}

export function decodeConfigSig(b: Buffer): ConfigSignature {
  const o = jsonObject(b);
  if (o.v !== 1) throw new ConfigError('v: not 1');
  return signatureOf(o);
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 of exactly `len` bytes (Buffer.from would skip junk characters). */
export function b64(v: unknown, field: string, len: number): Buffer {
  if (typeof v !== 'string' || !B64.test(v)) throw new ConfigError(`${field}: not base64`);
  const b = Buffer.from(v, 'base64');
  if (b.length !== len) throw new ConfigError(`${field}: ${b.length} bytes, not ${len}`);
  return b;
}

function hexId(v: unknown, field: string): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{32}$/.test(v)) throw new ConfigError(`${field}: not 32 lowercase hex digits`);
  return v;
}

function created(v: unknown): string {
  if (typeof v !== 'string' || v.length > 40 || Number.isNaN(Date.parse(v))) throw new ConfigError('created: not an ISO 8601 time');
  return v;
}

function int(v: unknown, field: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(`${field}: ${JSON.stringify(v)} is not an integer from ${lo} to ${hi}`);
  return v;
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${field}: missing or not an object`);
  return v as Record<string, unknown>;
}

function chunker(v: unknown): RepoConfig['chunker'] {
  const o = obj(v, 'chunker');
  const B = CONFIG_BOUNDS;
  const avg = int(o.avg, 'chunker.avg', B.chunkerAvg[0], B.chunkerAvg[1]);
  if ((avg & (avg - 1)) !== 0) throw new ConfigError(`chunker.avg: ${avg} is not a power of two`);
  const min = int(o.min, 'chunker.min', B.chunkerMin, avg);
  const max = int(o.max, 'chunker.max', avg, B.chunkerMax);
  return { min, avg, max };
}

function compression(v: unknown): RepoConfig['compression'] {
  const o = obj(v, 'compression');
  if (o.alg !== 'zstd') throw new ConfigError(`compression.alg: ${JSON.stringify(o.alg)} is not "zstd"`);
  return { alg: 'zstd', level: int(o.level, 'compression.level', CONFIG_BOUNDS.level[0], CONFIG_BOUNDS.level[1]) };
}

function packSize(v: unknown): RepoConfig['packSize'] {
  const o = obj(v, 'packSize');
  const B = CONFIG_BOUNDS;
  return { data: int(o.data, 'packSize.data', B.packData[0], B.packData[1]), tree: int(o.tree, 'packSize.tree', B.packTree[0], B.packTree[1]) };
}

/** Classes of tree packs and index files from version 3 on: readable at once, without a restore. */
export const METADATA_CLASSES: readonly StorageClass[] = ['STANDARD', 'STANDARD_IA', 'GLACIER_IR'];

/** `v` as one of `allowed` storage classes, or a ConfigError naming `field`. */
export function storageClassIn(v: unknown, field: string, allowed: readonly StorageClass[]): StorageClass {
  if (!allowed.includes(v as StorageClass)) throw new ConfigError(`${field}: ${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
  return v as StorageClass;
}

function storageClass(v: unknown, version: number): RepoConfig['storageClass'] {
  const o = obj(v, 'storageClass');
  const one = (k: 'data' | 'tree' | 'index' | 'other', allowed: readonly StorageClass[] = STORAGE_CLASSES): StorageClass => storageClassIn(o[k], `storageClass.${k}`, allowed);
  if (version !== 3) return { data: one('data'), tree: one('tree'), other: one('other') };
  return { data: one('data'), tree: one('tree', METADATA_CLASSES), index: one('index', METADATA_CLASSES), other: one('other') };
}
