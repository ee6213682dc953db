// Opening a repository: creates one (init), or reads its config and the key that opens it
// and checks them against each other (docs/THREAT-MODEL.md, "config and keys").
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { Backend, ObjectInfo, StorageClass } from '../backend/backend.js';
import { ConfigError, DEFAULT_CHUNKER, decodeConfig, decodeConfigSig, encodeConfig, type ConfigSignature, type RepoConfig } from '../format/config.js';
import type { FullKeyObject, FullSecrets, RevocationObject, WriterKeyFile, WriterKeyObject } from '../format/keyfile.js';
import { NotFoundError, TsbakError } from '../errors.js';
import { inconsistentSecrets, keyCheck, newRepoSecrets, openWriterKeyFile, registeredSignPub, signConfig, unwrapFullKey, verifiedRevocation, verifyConfig, wrapFullKey } from './keys.js';
import { readPin, writePin } from './trust-pin.js';
import { CONFIG, CONFIG_SIG, INDEX, KEYS, PARITY_SETTINGS, REVOKED, SETTINGS, SNAPSHOTS } from './layout.js';
import { withWarmStart, type WarmList, type WarmStartPlan } from '../backend/warm-start.js';
import { RepoContext } from './context.js';
import { snapshotCacheDir } from './cache-root.js';

export interface Credentials {
  password?: string;
  keyFile?: { path: string; content: WriterKeyFile };
  /** The local cache root, where the master's public key is pinned for key files made before they carried it (null: none). */
  cacheRoot?: string | null;
  /** Told about what opens but deserves attention (an unsigned config). */
  onWarning?: (message: string) => void;
  /**
   * Which reads to start at once instead of one after another (backend/warm-start.ts):
   * 'keys' the config, the keys, the storage-class and parity settings and the snapshot list; 'index' also the index list and
   * files, for commands that load the index. Default: none.
   */
  warmStart?: 'keys' | 'index';
}

/** Index files fetched ahead of loadIndex, at most (more are fetched when it asks). */
const WARM_INDEX_BYTES = 256 << 20;
/** Snapshot objects fetched ahead of the command's reads of them, at most: the newest not in the local cache. */
const WARM_SNAPSHOTS = 64;
const WARM_SNAPSHOT_BYTES = 1 << 20;

/**
 * The reads opening and loading the index will make. The index is listed twice: at once,
 * to fetch its files sooner; and after the snapshot list, for loadIndex, as when listed by
 * a caller that reads snapshots and then their blobs: a snapshot listed always has its
 * index files listed (a backup writes them first). `snapshots`: which listed snapshot
 * objects to fetch with the list (none without it).
 */
function warmPlan(kind: 'keys' | 'index', snapshots?: (listed: ObjectInfo[]) => Promise<ObjectInfo[]>): WarmStartPlan {
  const keys: WarmList[] = [{ prefix: KEYS, fetchBytes: 1 << 20 }];
  const settings: WarmList[] = [{ prefix: SETTINGS, fetchBytes: 1 << 20 }];
  // Parity settings are listed on their own (parity-settings.ts), at open like the rest.
  const parity: WarmList[] = [{ prefix: PARITY_SETTINGS, fetchBytes: 1 << 20 }];
  const snapshotList: WarmList = snapshots ? { prefix: SNAPSHOTS, fetchBytes: WARM_SNAPSHOT_BYTES, fetchOnly: snapshots } : { prefix: SNAPSHOTS };
  if (kind === 'keys') return { gets: [CONFIG], lists: [keys, settings, parity, [snapshotList]] };
  const early: WarmList[] = [{ prefix: INDEX, fetchBytes: WARM_INDEX_BYTES, prefetchOnly: true }];
  return { gets: [CONFIG], lists: [keys, settings, parity, early, [snapshotList, { prefix: INDEX, fetchBytes: WARM_INDEX_BYTES }]] };
}

/**
 * Which listed snapshot objects to fetch ahead, once the repository's id (from its config)
 * says where the local cache keeps them: the newest of those not kept there. An id of null
 * (the config could not be read): none.
 */
function snapshotsToFetch(cacheRoot: string | null, repoId: Promise<string | null>): (listed: ObjectInfo[]) => Promise<ObjectInfo[]> {
  return async (listed) => {
    const id = await repoId;
    if (!id) return [];
    const cached = new Set(cacheRoot ? await readdir(snapshotCacheDir(cacheRoot, id)).catch(() => [] as string[]) : []);
    const newest = (o: ObjectInfo) => o.lastModified?.getTime() ?? 0;
    return listed
      .filter((o) => !cached.has(o.name.slice(SNAPSHOTS.length)))
      .sort((a, b) => newest(b) - newest(a))
      .slice(0, WARM_SNAPSHOTS);
  };
}

export interface InitOptions {
  chunker?: { min: number; avg: number; max: number };
  compressionLevel?: number;
  packSize?: { data: number; tree: number };
  /** With `index`, the config is version 3 (index files in their own class); without, version 2 (index files take `other`). */
  storageClass?: { data: StorageClass; tree: StorageClass; other: StorageClass; index?: StorageClass };
}

export async function initRepository(backend: Backend, password: string, opts: InitOptions = {}): Promise<RepoContext> {
  if (await backend.head(CONFIG)) throw new TsbakError('REPO_EXISTS', `${backend.location} already holds a tsbak repository`);
  for await (const _ of backend.list(KEYS)) throw new TsbakError('REPO_EXISTS', `${backend.location} already has keys/ but no config; refusing to initialize over it`);
  const config: RepoConfig = {
    version: opts.storageClass?.index ? 3 : 2,
    id: randomBytes(16).toString('hex'),
    created: new Date().toISOString(),
    chunker: opts.chunker ?? { ...DEFAULT_CHUNKER },
    compression: { alg: 'zstd', level: opts.compressionLevel ?? 3 },
    packSize: opts.packSize ?? { data: 16 << 20, tree: 4 << 20 },
    storageClass: opts.storageClass ?? { data: 'STANDARD', tree: 'STANDARD', other: 'STANDARD' },
  };
  const secrets = newRepoSecrets(config.id);
  const bytes = encodeConfig(config, signConfig(config, secrets));
  // What readers will refuse, refused here (a bad --compression or --pack-size).
  try {
    decodeConfig(bytes);
  } catch (e) {
    if (e instanceof ConfigError) throw new TsbakError('USAGE', `cannot create a repository with this config: ${e.message}`);
    throw e;
  }
  const keyObj = wrapFullKey(secrets, password);
  await backend.put(`${KEYS}${randomBytes(16).toString('hex')}`, Buffer.from(JSON.stringify(keyObj, null, 2)));
  await backend.put(CONFIG, bytes);
  return new RepoContext(backend, config, secrets);
}

/**
 * Opens the repository with a passphrase (the full key) or a writer key file, and checks
 * what the bucket says against the key: config's values and signature (and id), the key
 * check value, the key's own halves, a writer's registration and revocation. See
 * docs/THREAT-MODEL.md ("config and keys").
 */
export async function openRepository(backend: Backend, creds: Credentials): Promise<RepoContext> {
  // Snapshots are fetched ahead for the full key only (a writer's key cannot read them).
  let gotId: (id: string | null) => void = () => {};
  const repoId = new Promise<string | null>((resolve) => (gotId = resolve));
  const snapshots = creds.warmStart === 'index' && !creds.keyFile ? snapshotsToFetch(creds.cacheRoot ?? null, repoId) : undefined;
  if (creds.warmStart) backend = withWarmStart(backend, warmPlan(creds.warmStart, snapshots));
  try {
    return await openWith(backend, creds, gotId);
  } finally {
    gotId(null);
  }
}

async function openWith(backend: Backend, creds: Credentials, gotId: (id: string) => void): Promise<RepoContext> {
  const where = backend.location;
  let raw: Buffer;
  try {
    raw = await backend.get(CONFIG);
  } catch (e) {
    if (e instanceof NotFoundError) throw new TsbakError('NOT_A_REPOSITORY', `${where} is not a tsbak repository (no config); create one with 'tsbak init'`);
    throw e;
  }
  let config: RepoConfig;
  let signature: ConfigSignature | null;
  try {
    ({ config, signature } = decodeConfig(raw));
    signature ??= await readConfigSig(backend);
  } catch (e) {
    if (e instanceof ConfigError) throw new TsbakError('CORRUPT', `${where}/config is damaged (${e.message}); restore it from a copy, or ask whoever can write to the bucket`);
    throw e;
  }
  gotId(config.id);
  const pin = creds.cacheRoot ? await readPin(creds.cacheRoot, config.id) : null;
  const warn = creds.onWarning ?? (() => {});
  const unsigned = (master: Buffer | null) => {
    // A key (or this machine) that has seen the config signed refuses it unsigned: the
    // signature was removed, or the config replaced.
    if (master && pin?.configSigned) throw new TsbakError('CORRUPT', `${where}/config is damaged (it has no signature, but this repository's config was signed before): restore config and config.sig from a copy`);
    warn(`${where}/config is not signed (a repository made before tsbak signed it): run 'tsbak key sign-config' with the passphrase`);
  };
  const badConfigSig = () => new TsbakError('CORRUPT', `${where}/config is damaged (its signature does not verify with the repository's master key): it was altered; restore it from a copy`);

  if (creds.keyFile) {
    const kf = creds.keyFile.path;
    const secrets = openWriterKeyFile(creds.keyFile.content, creds.password, kf);
    if (secrets.repoId !== config.id) throw new TsbakError('USAGE', `key file ${kf} belongs to repository ${secrets.repoId}, not to ${where} (${config.id})`);
    const damaged = (why: string) => new TsbakError('CORRUPT', `key file ${kf} is damaged (${why}); use a backup copy of it, or make a new one with 'tsbak key add-writer'`);
    const bad = inconsistentSecrets(secrets);
    if (bad) throw damaged(bad);
    // The master's public key: from the key file; for key files made before they carried
    // it, pinned on this machine, else taken from the signed config the first time (and
    // pinned then) once the config's key check shows the config belongs with this key.
    let master = secrets.masterSignPub ?? pin?.masterSignPub ?? null;
    const firstUse = !master && !!signature;
    if (signature) {
      master ??= signature.signPub;
      if (!verifyConfig(config, signature, master)) throw badConfigSig();
      if (!keyCheck(secrets).equals(signature.keyCheck)) throw damaged("its macKey, chunkerSeed, indexKey or repoPub are not the repository's (config.keyCheck differs)");
    } else if (secrets.masterSignPub) {
      // Key files with masterSignPub are made only once the config is signed (add-writer signs it).
      throw new TsbakError('CORRUPT', `${where}/config is damaged (it has no signature, but this key was made for a signed config): restore config and config.sig from a copy`);
    } else unsigned(master);
    const keysRead = new Map<string, Buffer>();
    const reg = await readRegistration(backend, secrets.keyId, keysRead);
    const regPub = master ? registeredSignPub(reg, master) : Buffer.from(String(reg.signPub), 'base64');
    if (!regPub) throw new TsbakError('CORRUPT', `${where}/${KEYS}${secrets.keyId} (the registration of key file ${kf}) is damaged (not signed by the master key); the master can add a new writer key`);
    if (!regPub.equals(secrets.signPub)) throw damaged(`signPub is not the one registered in ${KEYS}${secrets.keyId}`);
    if (master) {
      const rev = await readRevocation(backend, secrets.keyId, master, keysRead);
      if (rev) throw new TsbakError('WRONG_PASSWORD', `key file ${kf} (${rev.name}, ${secrets.keyId}) was revoked on ${rev.revoked}: it can no longer add snapshots to ${where}`);
      secrets.masterSignPub = master;
      if (firstUse && creds.cacheRoot) await writePin(creds.cacheRoot, config.id, { masterSignPub: master, configSigned: true });
    }
    const ctx = new RepoContext(backend, config, secrets);
    ctx.keysRead = { listed: null, bytes: keysRead };
    return ctx;
  }

  if (creds.password === undefined) throw new TsbakError('USAGE', `no passphrase for ${where}: use --password-file, TSBAK_PASSWORD or --key-file`);
  const damagedKeys: string[] = [];
  let found: { name: string; secrets: FullSecrets } | null = null;
  // The whole list, and what was got of it, is kept for the signer keys (ctx.keysRead).
  const listed: string[] = [];
  const keysRead = new Map<string, Buffer>();
  for await (const o of backend.list(KEYS)) {
    listed.push(o.name);
    if (found) continue;
    let obj: FullKeyObject;
    try {
      const bytes = await backend.get(o.name);
      keysRead.set(o.name, bytes);
      obj = JSON.parse(bytes.toString());
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      damagedKeys.push(`${o.name} is damaged (not JSON)`);
      continue;
    }
    if (typeof obj !== 'object' || obj === null) {
      damagedKeys.push(`${o.name} is damaged (not a key object)`);
      continue;
    }
    if ((obj as { kind: string }).kind === 'writer' || (obj as { kind: string }).kind === 'revocation') continue;
    if (obj.kind !== 'full') {
      damagedKeys.push(`${o.name} is damaged (unknown kind ${JSON.stringify(obj.kind)})`);
      continue;
    }
    const r = await unwrapFullKey(obj, creds.password);
    if (r === 'wrong') continue;
    if ('damaged' in r) {
      damagedKeys.push(`${o.name} is damaged (${r.damaged})`);
      continue;
    }
    found = { name: o.name, secrets: r };
  }
  if (!found) {
    // A damaged key object cannot be told from one the passphrase does not open, unless
    // its damage shows before decryption: then that is the likelier story, and said so.
    if (damagedKeys.length) throw new TsbakError('CORRUPT', `no key in ${where}/${KEYS} opens with this passphrase, and ${damagedKeys.join('; ')}: if the passphrase is right, restore that object from a copy`);
    throw new TsbakError('WRONG_PASSWORD', `wrong passphrase for ${where}: no key in keys/ opens with it`);
  }
  const s = found.secrets;
  if (s.repoId !== config.id) throw new TsbakError('CORRUPT', `${where}/config is damaged (its id ${config.id} is not ${s.repoId}, the id of the repository's key): it was replaced; restore it from a copy`);
  const bad = inconsistentSecrets(s);
  if (bad) throw new TsbakError('CORRUPT', `${where}/${found.name} is damaged (${bad}); open with another passphrase, or restore it from a copy`);
  if (signature) {
    if (!verifyConfig(config, signature, s.signPub)) throw badConfigSig();
    if (!keyCheck(s).equals(signature.keyCheck)) throw new TsbakError('CORRUPT', `${where}/${found.name} is damaged (its secrets do not match config.keyCheck); open with another passphrase, or restore it from a copy`);
    if (creds.cacheRoot && !pin?.configSigned) await writePin(creds.cacheRoot, config.id, { masterSignPub: s.signPub, configSigned: true });
  } else unsigned(s.signPub);
  const ctx = new RepoContext(backend, config, s);
  ctx.keyObject = found.name;
  ctx.keysRead = { listed, bytes: keysRead };
  return ctx;
}

/** config.sig (the signature of a version 1 config), or null when there is none. */
export async function readConfigSig(backend: Backend): Promise<ConfigSignature | null> {
  try {
    return decodeConfigSig(await backend.get(CONFIG_SIG));
  } catch (e) {
    if (e instanceof NotFoundError) return null;
    if (e instanceof ConfigError) throw new ConfigError(`config.sig: ${e.message}`);
    throw e;
  }
}

/** keys/<keyId>, a writer's registration (parsed, not yet verified). */
async function readRegistration(backend: Backend, keyId: string, read: Map<string, Buffer>): Promise<WriterKeyObject> {
  const name = `${KEYS}${keyId}`;
  try {
    const bytes = await backend.get(name);
    read.set(name, bytes);
    const reg = JSON.parse(bytes.toString());
    if (typeof reg === 'object' && reg !== null && reg.kind === 'writer' && reg.keyId === keyId) return reg;
  } catch (e) {
    if (e instanceof NotFoundError) throw new TsbakError('CORRUPT', `${backend.location}/${name} is missing: this writer key is not registered, so its snapshots could not be verified; the master can add a new writer key`);
    if (!(e instanceof SyntaxError)) throw e;
  }
  throw new TsbakError('CORRUPT', `${backend.location}/${name} is damaged (not a writer registration); the master can add a new writer key`);
}

/** keys/revoked-<keyId> when present and signed by the master key. */
async function readRevocation(backend: Backend, keyId: string, masterSignPub: Buffer, read: Map<string, Buffer>): Promise<RevocationObject | null> {
  try {
    const bytes = await backend.get(`${REVOKED}${keyId}`);
    read.set(`${REVOKED}${keyId}`, bytes);
    return verifiedRevocation(JSON.parse(bytes.toString()), masterSignPub);
  } catch (e) {
    if (e instanceof NotFoundError || e instanceof SyntaxError) return null;
    throw e;
  }
}
