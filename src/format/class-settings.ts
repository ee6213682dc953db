// A change of the storage classes of tree packs and index files after init (`tsbak config
// set`): an immutable object settings/<32 hex>, signed by the master key. config itself is
// never rewritten; the valid settings object with the highest `seq` supersedes its classes.
// See docs/FORMAT.md ("Storage class settings"). Every field is checked on decode: the
// object is read from the bucket.
import { b64, ConfigError, METADATA_CLASSES, storageClassIn, type StorageClass } from './config.js';

export { METADATA_CLASSES };

/** The largest settings object a reader accepts, bytes. */
export const SETTINGS_MAX_BYTES = 4096;

export interface ClassSettings {
  v: 1;
  kind: 'storage-classes';
  repoId: string;
  /** 1, 2, ...: the highest valid one applies. */
  seq: number;
  /** ISO 8601, when it was made. */
  time: string;
  storageClass: { tree: StorageClass; index: StorageClass };
  sig: Buffer;
}

const DOMAIN = 'tsbak storage classes v1\n';

/** The bytes the master key signs. */
export function classSettingsMessage(s: Omit<ClassSettings, 'sig' | 'v' | 'kind'>): Buffer {
  return Buffer.from(`${DOMAIN}${s.repoId}\n${s.seq}\n${s.time}\n${s.storageClass.tree}\n${s.storageClass.index}\n`);
}

export function encodeClassSettings(s: ClassSettings): Buffer {
  return Buffer.from(
    JSON.stringify({ v: 1, kind: 'storage-classes', repoId: s.repoId, seq: s.seq, time: s.time, storageClass: { tree: s.storageClass.tree, index: s.storageClass.index }, sig: s.sig.toString('base64') }, null, 2) + '\n',
  );
}

/** A metadata class name, or ConfigError naming `field`. */
export function metadataClass(v: unknown, field: string): StorageClass {
  return storageClassIn(v, field, METADATA_CLASSES);
}

/** Decodes and range-checks a settings object (the signature is checked by the caller, who knows the master key). */
export function decodeClassSettings(b: Buffer): ClassSettings {
  if (b.length > SETTINGS_MAX_BYTES) throw new ConfigError(`${b.length} bytes, more than ${SETTINGS_MAX_BYTES}`);
  let o: any;
  try {
    o = JSON.parse(b.toString('utf8'));
  } catch {
    throw new ConfigError('not JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ConfigError('not a JSON object');
  if (o.v !== 1) throw new ConfigError(`v: ${JSON.stringify(o.v)} is not 1`);
  if (o.kind !== 'storage-classes') throw new ConfigError(`kind: ${JSON.stringify(o.kind)} is not "storage-classes"`);
  if (typeof o.repoId !== 'string' || !/^[0-9a-f]{32}$/.test(o.repoId)) throw new ConfigError('repoId: not 32 lowercase hex digits');
  if (typeof o.seq !== 'number' || !Number.isInteger(o.seq) || o.seq < 1 || o.seq > 2 ** 31) throw new ConfigError(`seq: ${JSON.stringify(o.seq)} is not an integer from 1 to 2^31`);
  if (typeof o.time !== 'string' || o.time.length > 40 || Number.isNaN(Date.parse(o.time))) throw new ConfigError('time: not an ISO 8601 time');
  const sc = o.storageClass;
  if (typeof sc !== 'object' || sc === null || Array.isArray(sc)) throw new ConfigError('storageClass: missing or not an object');
  return {
    v: 1,
    kind: 'storage-classes',
    repoId: o.repoId,
    seq: o.seq,
    time: o.time,
    storageClass: { tree: metadataClass(sc.tree, 'storageClass.tree'), index: metadataClass(sc.index, 'storageClass.index') },
    sig: b64(o.sig, 'sig', 64),
  };
}
