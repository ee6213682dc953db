// Repository: the one object writer, restore, fuse and cli talk to. It knows the layout,
// opens keys, loads the index, reads and writes blobs, trees and snapshots.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { writeAllAtSync } from '../platform/write-all.js';
import * as path from 'node:path';
import { hostname } from 'node:os';
import { LRUCache } from 'lru-cache';
import type { Backend, RestoreTier, StorageClass } from '../backend/backend.js';
import { AuthError } from '../crypto/aead.js';
import { openSealed, type X25519Pair } from '../crypto/box.js';
import { blobId, sha256 } from '../crypto/hash.js';
import { openBlob } from '../format/blob.js';
import { ConfigError, decodeConfig, decodeConfigSig, encodeConfig, encodeConfigSig, type ConfigSignature, type RepoConfig } from '../format/config.js';
import { INDEX_SIG_PREFIX, openIndex, sealIndex, type IndexFile, type IndexPack } from '../format/index-file.js';
import { verifyBytes } from '../crypto/sign.js';
import type { FullKeyObject, FullSecrets, RevocationObject, WriterKeyFile, WriterKeyObject, WriterSecrets } from '../format/keyfile.js';
import type { BlobType } from '../format/pack.js';
import { openSnapshot, parseEnvelope, sealSnapshot, type SnapshotInfo } from '../format/snapshot.js';
import { decodeTree, encodeTree, type Tree } from '../format/tree.js';
import { ColdError, CorruptError, NotFoundError, TsbakError } from '../errors.js';
import { BlobIndex, type BlobLocation, type PackRef } from './blob-index.js';
import { inconsistentSecrets, keyCheck, newRepoSecrets, newRevocation, newWriterKey, openWriterKeyFile, registeredSignPub, signConfig, unwrapFullKey, verifiedRevocation, verifyConfig, wrapFullKey } from './keys.js';
import { pickLatest, type SnapshotFilter, type SnapshotSigner } from './snapshot-select.js';
import { readPin, writePin } from './trust-pin.js';
import { OPEN_POOL_MIN, OpenPoolError, openPool, type OpenOutcome } from './open-pool.js';
import { blobIdNativeAsync, openBlobNative, openBlobToFileAsync } from '../platform/native.js';
import { CONFIG, CONFIG_SIG, INDEX, KEYS, LOCKS, REVOKED, SNAPSHOTS, packName, parsePackName } from './layout.js';

/** Packs per intermediate index file during a backup. */
const INDEX_EVERY = 32;
/**
 * ...or once they hold this many blobs (restic bounds its index files by blob count too).
 * Until their index file is written, a blob costs ~250 bytes of the main V8 heap (its
 * pending id, its index entry), ~40000 of them in a backup of small files: the heap grew
 * with them. In the in-memory index a blob costs ~60 bytes of a typed array.
 */
const INDEX_EVERY_BLOBS = 16384;
/** readSealedBatch reads neighbouring blobs of a pack at once when at most this far apart... */
const READ_GAP = 64 << 10;
/** ...and the read stays this short. */
const READ_SPAN = 8 << 20;
/** Blob reads that overlapped less than this long ago count as concurrent (see openChecked). */
const OVERLAP_MS = 250;
import { COPIED_AT_ONCE, Packer } from './packer.js';
import { BufferPool } from './buffer-pool.js';
import { mapLimit } from './map-limit.js';
export { mapLimit };


/** Opens one copy's sealed bytes (fetchOpen): the result, or how it failed ('auth', 'id'). */
type BlobOpener<T> = (kind: BlobType, key: Buffer, sealed: Buffer, again: (() => Promise<Buffer>) | null, rawLength: number) => Promise<T | 'auth' | 'id'>;

/** Sealed blobs and what opens them (Repository.readSealedBatch). */
export interface SealedBatch {
  /** The blobs back to back, in a buffer of its own. */
  sealed: Buffer;
  /** Per blob (in the order asked for): where it is in bytes, and which of keys opens it. */
  offsets: Uint32Array;
  lengths: Uint32Array;
  keyOf: Uint16Array;
  keys: Buffer[];
  /** The key of blob ids, to check each plaintext against its id. */
  macKey: Buffer;
}

export interface Credentials {
  password?: string;
  keyFile?: { path: string; content: WriterKeyFile };
  /** The local cache root, where the master's public key is pinned for key files made before they carried it (null: none). */
  cacheRoot?: string | null;
  /** Told about what opens but deserves attention (an unsigned config). */
  onWarning?: (message: string) => void;
}

export interface InitOptions {
  chunker?: { min: number; avg: number; max: number };
  compressionLevel?: number;
  packSize?: { data: number; tree: number };
  storageClass?: { data: StorageClass; tree: StorageClass; other: StorageClass };
}

export interface Snapshot {
  id: string;
  info: SnapshotInfo;
  /** The key that signed it: "master", or a writer's id and registered name. */
  signer: SnapshotSigner;
}

/** A signing key trusted for snapshots, and its revocation if the master revoked it. */
interface SignerKey {
  pub: Buffer;
  name: string;
  revoked: RevocationObject | null;
}

/** An index file that could not be used, and why. */
export interface IndexProblem {
  name: string;
  reason: string;
}

// ---- cold storage (S3 Glacier / Deep Archive) ----
// The repository asks a ColdStorage "is this pack readable now, and if not, what must
// happen". The implementation is src/glacier/cold-store.ts (restore tracker, local disk
// cache of packs, storage-class policy); it is attached with setColdStorage() by whoever
// opens the repository (cli/open-repo.ts does, for backends that can restore), so this
// layer does not import glacier. Without one, cold packs read as they come (a GET of an
// unrestored object fails with ColdError).

/** Where a blob's bytes are: readable now (hot, cached), soon (available), or not (restoring, cold). */
export type BlobState = 'hot' | 'cold' | 'restoring' | 'available' | 'cached';

/** Coldest last: a file is as cold as its coldest chunk. */
export const BLOB_STATES_WARMEST_FIRST: readonly BlobState[] = ['hot', 'cached', 'available', 'restoring', 'cold'];

/** A pack, as cold storage sees it. `bytes` is exact once S3 told us, else from the index (a little less than the object). */
export interface ColdPack {
  name: string;
  kind: 'data' | 'tree';
  bytes: number;
  storageClass: StorageClass;
}

export interface ColdOptions {
  /** Root of the local cache (default TSBAK_CACHE_DIR, else $XDG_CACHE_HOME/tsbak or ~/.cache/tsbak); packs go to <root>/<repo id>/packs. */
  cacheDir?: string;
  /** Bound of the disk cache of packs, bytes (default 10 GiB). */
  cacheBytes?: number;
  /** Restore tier of restores started by reads and warmBlobs without a tier (default Standard). */
  tier?: RestoreTier;
  /** Days S3 keeps a restored copy (default 7). */
  days?: number;
  /** Least time between two HEADs of a pack being restored when its state is asked (default 60 s). */
  pollMs?: number;
  /** Told about restores requested and packs fetched into the disk cache (e.g. the mount's log). */
  log?: (message: string) => void;
}

export interface WarmOptions {
  tier?: RestoreTier;
  days?: number;
  signal?: AbortSignal;
}

export interface WarmResult {
  /** RestoreObject requests sent by this call (0 when everything was already requested). */
  requested: number;
  /** Cold packs the blobs need that are not in the local cache. */
  packs: number;
  /** Their size. */
  bytes: number;
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Give up (return false) after this long; default: no limit. */
  timeoutMs?: number;
  /** Longest pause between two polls (default 5 minutes; the first pauses are shorter). */
  pollMaxMs?: number;
  tier?: RestoreTier;
  days?: number;
  onProgress?: (p: { total: number; ready: number; restoring: number; cold: number; bytes: number; readyBytes: number }) => void;
}

export interface ColdPackStatus {
  pack: string;
  bytes: number;
  tier: RestoreTier | null;
  /** ISO times; null when unknown. */
  requestedAt: string | null;
  expectedBy: string | null;
  /** When S3 deletes the restored copy. */
  expiry: string | null;
  state: BlobState;
}

/** Implemented by src/glacier/cold-store.ts. */
export interface ColdStorage {
  configure(o: ColdOptions): void;
  /** Whether reads of this pack must go through cold storage. */
  isCold(p: ColdPack): boolean;
  /** Its state; `refresh` asks S3 (HEAD) instead of trusting what is known. */
  state(p: ColdPack, opts?: { refresh?: boolean }): Promise<BlobState>;
  /** Bytes of a cold pack: from the disk cache, or fetched whole into it when restored; otherwise requests the restore (once) and throws ColdError. */
  read(p: ColdPack, range: { offset: number; length: number }, signal?: AbortSignal): Promise<Buffer>;
  /** Drops a pack from the disk cache (its bytes failed authentication). */
  invalidate(p: ColdPack): void;
  warm(packs: ColdPack[], opts: WarmOptions): Promise<WarmResult>;
  /** Asks S3 (HEAD, or a listing when cheaper) where these packs stand. */
  refresh(packs: ColdPack[], opts?: { totalPacks?: number; signal?: AbortSignal }): Promise<void>;
  /** Polls S3 until every pack is available (true) or the time is up (false). */
  wait(packs: ColdPack[], opts: WaitOptions & { totalPacks?: number }): Promise<boolean>;
  status(): ColdPackStatus[];
  close(): Promise<void>;
}

/** Classes whose objects need a restore, when no ColdStorage is attached to say so. */
const ARCHIVE_CLASSES = new Set<StorageClass>(['GLACIER', 'DEEP_ARCHIVE']);

export class Repository {
  readonly index = new BlobIndex();
  /** Objects stored by this process (for the cost of a backup). */
  readonly objectsWritten: Array<{ kind: 'data' | 'tree' | 'index' | 'snapshot'; bytes: number }> = [];
  private loadedIndexes = new Set<string>();
  /** Pack keys by listing: two index files may give one pack different sealed keys. */
  private packKeys = new Map<PackRef, Buffer>();
  /**
   * Dedup against index entries of every key, not only this key's and the master's (and
   * unsigned v1 entries): --trust-writers, TSBAK_TRUST_WRITERS=1. See THREAT-MODEL.md.
   */
  trustWriters = false;
  /** Told about damage that is skipped rather than fatal (a damaged index file). */
  onWarning: ((message: string) => void) | null = null;
  /** Index files skipped as damaged, and index files whose signature did not verify. */
  readonly indexProblems: IndexProblem[] = [];
  /** Copies listed by this key are tried first when a blob is read (the snapshot's signer). */
  private preferred: string | null = null;
  /** Ids stored this session and not yet in an index file, as latin1 keys (exact, half a hex string). */
  private pending = new Set<string>();
  private packer: Packer | null = null;
  private blobCache: LRUCache<string, Buffer>;
  /** Sealed bytes of writeBlobAt's large blobs, read into reused buffers where the backend has readInto. */
  private readonly sealedBuffers = new BufferPool(12 << 20);
  /** loadBlob calls under way without a signal, by blob id: concurrent loads of one blob share one fetch and open. */
  private blobLoads = new Map<string, Promise<Buffer>>();
  /** Blob reads under way (fetching or opening), and when two last overlapped (performance.now()). */
  private blobReads = 0;
  private blobReadsOverlapped = -Infinity;
  private signers: Promise<Map<string, SignerKey>> | null = null;
  private cold: ColdStorage | null = null;
  private coldOptions: ColdOptions = {};
  private packBytes: { blobs: number; bytes: Map<PackRef, number> } | null = null;

  private constructor(
    readonly backend: Backend,
    readonly config: RepoConfig,
    readonly secrets: WriterSecrets | FullSecrets,
  ) {
    this.blobCache = new LRUCache<string, Buffer>({ maxSize: 16 << 20, sizeCalculation: (b) => b.length || 1 });
  }

  /** True with the full key; false with a write-only key. */
  get canRead(): boolean {
    return 'repoPriv' in this.secrets && !!(this.secrets as FullSecrets).repoPriv;
  }

  get id(): string {
    return this.config.id;
  }

  setCacheSize(bytes: number): void {
    this.blobCache = new LRUCache<string, Buffer>({ maxSize: Math.max(1 << 20, bytes), sizeCalculation: (b) => b.length || 1 });
  }

  static async init(backend: Backend, password: string, opts: InitOptions = {}): Promise<Repository> {
    if (await backend.head(CONFIG)) throw new TsbakError('REPO_EXISTS', `${backend.location} already holds a tsbak repository`);
    for await (const _ of backend.list(KEYS)) throw new TsbakError('REPO_EXISTS', `${backend.location} already has keys/ but no config; refusing to initialize over it`);
    const config: RepoConfig = {
      version: 2,
      id: randomBytes(16).toString('hex'),
      created: new Date().toISOString(),
      chunker: opts.chunker ?? { min: 256 << 10, avg: 1 << 20, max: 4 << 20 },
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
    return new Repository(backend, config, secrets);
  }

  /**
   * Opens the repository with a passphrase (the full key) or a writer key file, and checks
   * what the bucket says against the key: config's values and signature (and id), the key
   * check value, the key's own halves, a writer's registration and revocation. See
   * docs/THREAT-MODEL.md ("config and keys").
   */
  static async open(backend: Backend, creds: Credentials): Promise<Repository> {
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
      signature ??= await Repository.readConfigSig(backend);
    } catch (e) {
      if (e instanceof ConfigError) throw new TsbakError('CORRUPT', `${where}/config is damaged (${e.message}); restore it from a copy, or ask whoever can write to the bucket`);
      throw e;
    }
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
      const reg = await Repository.readRegistration(backend, secrets.keyId);
      const regPub = master ? registeredSignPub(reg, master) : Buffer.from(String(reg.signPub), 'base64');
      if (!regPub) throw new TsbakError('CORRUPT', `${where}/${KEYS}${secrets.keyId} (the registration of key file ${kf}) is damaged (not signed by the master key); the master can add a new writer key`);
      if (!regPub.equals(secrets.signPub)) throw damaged(`signPub is not the one registered in ${KEYS}${secrets.keyId}`);
      if (master) {
        const rev = await Repository.readRevocation(backend, secrets.keyId, master);
        if (rev) throw new TsbakError('WRONG_PASSWORD', `key file ${kf} (${rev.name}, ${secrets.keyId}) was revoked on ${rev.revoked}: it can no longer add snapshots to ${where}`);
        secrets.masterSignPub = master;
        if (firstUse && creds.cacheRoot) await writePin(creds.cacheRoot, config.id, { masterSignPub: master, configSigned: true });
      }
      return new Repository(backend, config, secrets);
    }

    if (creds.password === undefined) throw new TsbakError('USAGE', `no passphrase for ${where}: use --password-file, TSBAK_PASSWORD or --key-file`);
    const damagedKeys: string[] = [];
    let found: { name: string; secrets: FullSecrets } | null = null;
    for await (const o of backend.list(KEYS)) {
      let obj: FullKeyObject;
      try {
        obj = JSON.parse((await backend.get(o.name)).toString());
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
      const r = unwrapFullKey(obj, creds.password);
      if (r === 'wrong') continue;
      if ('damaged' in r) {
        damagedKeys.push(`${o.name} is damaged (${r.damaged})`);
        continue;
      }
      found = { name: o.name, secrets: r };
      break;
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
    return new Repository(backend, config, s);
  }

  /** config.sig (the signature of a version 1 config), or null when there is none. */
  private static async readConfigSig(backend: Backend): Promise<ConfigSignature | null> {
    try {
      return decodeConfigSig(await backend.get(CONFIG_SIG));
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      if (e instanceof ConfigError) throw new ConfigError(`config.sig: ${e.message}`);
      throw e;
    }
  }

  /** keys/<keyId>, a writer's registration (parsed, not yet verified). */
  private static async readRegistration(backend: Backend, keyId: string): Promise<WriterKeyObject> {
    const name = `${KEYS}${keyId}`;
    try {
      const reg = JSON.parse((await backend.get(name)).toString());
      if (typeof reg === 'object' && reg !== null && reg.kind === 'writer' && reg.keyId === keyId) return reg;
    } catch (e) {
      if (e instanceof NotFoundError) throw new TsbakError('CORRUPT', `${backend.location}/${name} is missing: this writer key is not registered, so its snapshots could not be verified; the master can add a new writer key`);
      if (!(e instanceof SyntaxError)) throw e;
    }
    throw new TsbakError('CORRUPT', `${backend.location}/${name} is damaged (not a writer registration); the master can add a new writer key`);
  }

  /** keys/revoked-<keyId> when present and signed by the master key. */
  private static async readRevocation(backend: Backend, keyId: string, masterSignPub: Buffer): Promise<RevocationObject | null> {
    try {
      return verifiedRevocation(JSON.parse((await backend.get(`${REVOKED}${keyId}`)).toString()), masterSignPub);
    } catch (e) {
      if (e instanceof NotFoundError || e instanceof SyntaxError) return null;
      throw e;
    }
  }

  private requireRead(what: string): X25519Pair {
    if (!this.canRead) throw new TsbakError('WRITE_ONLY_KEY', `cannot ${what}: this is a write-only key (it adds snapshots but cannot read them); use the repository passphrase`);
    const s = this.secrets as FullSecrets;
    return { publicKey: s.repoPub, privateKey: s.repoPriv };
  }

  // ---- keys ----

  /** The master's Ed25519 public key, when this key knows it (the full key; writers whose key file or cache says it). */
  get masterSignPub(): Buffer | null {
    return this.secrets.keyId === 'master' ? this.secrets.signPub : this.secrets.masterSignPub ?? null;
  }

  /** Whether the config carries the master's signature (in itself, or in config.sig). */
  async configSigned(): Promise<boolean> {
    return this.config.version === 2 || (await Repository.readConfigSig(this.backend).catch(() => null)) !== null;
  }

  /** Signs a version 1 config: writes config.sig (once; objects are immutable). False when it is signed already. */
  async signConfig(): Promise<boolean> {
    this.requireRead('sign the config');
    if (await this.configSigned()) return false;
    await this.backend.put(CONFIG_SIG, encodeConfigSig(signConfig(this.config, this.secrets as FullSecrets)), { storageClass: this.config.storageClass.other });
    return true;
  }

  async addWriterKey(name: string, passphrase?: string): Promise<WriterKeyFile> {
    this.requireRead('add a writer key');
    // The key file carries masterSignPub, and so expects a signed config: sign it now if it is not.
    await this.signConfig();
    const { file, registration, keyId } = newWriterKey(this.secrets as FullSecrets, name, passphrase);
    await this.backend.put(`${KEYS}${keyId}`, Buffer.from(JSON.stringify(registration, null, 2)));
    return file;
  }

  async addPassword(passphrase: string): Promise<void> {
    this.requireRead('add a passphrase');
    await this.backend.put(`${KEYS}${randomBytes(16).toString('hex')}`, Buffer.from(JSON.stringify(wrapFullKey(this.secrets as FullSecrets, passphrase), null, 2)));
  }

  async listKeys(): Promise<Array<{ id: string; kind: string; name?: string; created: string; host?: string; revoked?: string }>> {
    const out = [];
    const signers = this.canRead ? await this.signerKeys() : null;
    for await (const o of this.backend.list(KEYS)) {
      if (o.name.startsWith(REVOKED)) continue; // shown as the key's "revoked"
      let k: any;
      try {
        k = JSON.parse((await this.backend.get(o.name)).toString());
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
        k = { kind: 'damaged', created: '' };
      }
      const id = o.name.slice(KEYS.length);
      const revoked = signers?.get(id)?.revoked?.revoked;
      out.push({ id, kind: k.kind, name: k.name, created: k.created, host: k.host, ...(revoked ? { revoked } : {}) });
    }
    return out;
  }

  /**
   * Revokes a writer key (full key only): writes keys/revoked-<keyId>, listing the
   * snapshots that key signed so far, which stay trusted; any other snapshot it signs is
   * refused from then on. `ref` is the key's id, a unique prefix of it, or its name.
   */
  async revokeWriterKey(ref: string): Promise<{ keyId: string; name: string; kept: number }> {
    this.requireRead('revoke a key');
    const signers = await this.signerKeys();
    const matches = [...signers].filter(([id, k]) => id !== 'master' && (id === ref || k.name === ref || (ref.length >= 4 && id.startsWith(ref))));
    if (!matches.length) throw new TsbakError('NOT_FOUND', `no writer key ${ref} in ${this.backend.location}; see 'tsbak key list'`);
    if (matches.length > 1) throw new TsbakError('USAGE', `${ref} names ${matches.length} writer keys; give its full id (see 'tsbak key list')`);
    const [keyId, key] = matches[0]!;
    if (key.revoked) throw new TsbakError('USAGE', `writer key ${key.name} (${keyId}) was revoked already, on ${key.revoked.revoked}`);
    const kept = (await this.listSnapshots(() => {})).filter((s) => s.signer.id === keyId).map((s) => s.id);
    const rev = newRevocation(this.secrets as FullSecrets, keyId, key.name, kept);
    await this.backend.put(`${REVOKED}${keyId}`, Buffer.from(JSON.stringify(rev, null, 2)), { storageClass: this.config.storageClass.other });
    this.signers = null;
    return { keyId, name: key.name, kept: kept.length };
  }

  /** Signing keys trusted for snapshots: the master key and every writer it registered. */
  private signerKeys(): Promise<Map<string, SignerKey>> {
    // One listing shared by concurrent snapshot reads (each used to list keys/ and GET
    // every key until the first finished); a failed one is tried again by the next caller.
    this.signers ??= this.readSignerKeys().catch((e) => {
      this.signers = null;
      throw e;
    });
    return this.signers;
  }

  private async readSignerKeys(): Promise<Map<string, SignerKey>> {
    const master = this.masterSignPub;
    const m = new Map<string, SignerKey>();
    // Our own key is known without its registration (a writer may not be able to verify it).
    if (this.secrets.keyId !== 'master') m.set(this.secrets.keyId, { pub: this.secrets.signPub, name: 'this key', revoked: null });
    if (!master) return m;
    m.set('master', { pub: master, name: 'master', revoked: null });
    const revocations: RevocationObject[] = [];
    for await (const o of this.backend.list(KEYS)) {
      let obj: any;
      try {
        obj = JSON.parse((await this.backend.get(o.name)).toString());
      } catch {
        continue;
      }
      if (obj?.kind === 'revocation') {
        const r = verifiedRevocation(obj, master);
        if (r && o.name === `${REVOKED}${r.keyId}`) revocations.push(r);
        continue;
      }
      if (obj?.kind !== 'writer' || o.name !== `${KEYS}${obj.keyId}`) continue;
      const pub = registeredSignPub(obj as WriterKeyObject, master);
      if (pub) m.set(obj.keyId, { pub, name: obj.name, revoked: null });
    }
    for (const r of revocations) {
      const k = m.get(r.keyId);
      if (k) k.revoked = r;
    }
    return m;
  }

  /**
   * Whose index entries dedup may use: this key's and the master's; every entry (v1 ones
   * included) with trustWriters (`all`). An entry counts only once its signature verified,
   * so a writer that cannot verify the master's signatures trusts its own entries only.
   */
  trustedSigners(): { all: boolean; keyIds: string[] } {
    return { all: this.trustWriters, keyIds: [...this.dedupSigners] };
  }

  private get dedupSigners(): Set<string> {
    return (this.dedupSignerSet ??= new Set([this.secrets.keyId, 'master']));
  }
  private dedupSignerSet: Set<string> | null = null;

  /** Whether dedup may count on this listing of a pack (see trustedSigners). */
  private dedupTrusts = (p: PackRef): boolean => this.trustWriters || (p.verified && p.signer !== null && this.dedupSigners.has(p.signer));

  // ---- index ----

  /**
   * Loads index files not yet loaded (call again to pick up new snapshots' data). A damaged
   * one is skipped, with a warning (onWarning) and a note in indexProblems for check: the
   * blobs only it lists cannot be read, and a backup stores them again.
   */
  async loadIndex(): Promise<void> {
    const names: string[] = [];
    for await (const o of this.backend.list(INDEX)) if (!this.loadedIndexes.has(o.name) && !this.indexProblems.some((p) => p.name === o.name)) names.push(o.name);
    const signers = names.length ? await this.signerKeys() : new Map<string, SignerKey>();
    await mapLimit(names, 8, async (name) => {
      let file: IndexFile;
      try {
        const bytes = await this.backend.get(name);
        if (!sha256(bytes).equals(Buffer.from(name.slice(INDEX.length), 'hex'))) throw new AuthError();
        file = openIndex(this.secrets.indexKey, bytes);
      } catch (e) {
        if (e instanceof TsbakError && e.code !== 'NOT_FOUND' && e.code !== 'CORRUPT') throw e;
        if (!(e instanceof TsbakError) && (e as NodeJS.ErrnoException)?.syscall) throw e;
        const reason = e instanceof NotFoundError ? 'it vanished while being read' : e instanceof AuthError ? 'failed authentication' : 'undecodable';
        this.indexProblems.push({ name, reason });
        this.onWarning?.(`index file ${name} is damaged (${reason}); skipped: the blobs only it lists cannot be read, and backups store them again; run 'tsbak check'`);
        return;
      }
      let verified = false;
      if (file.signer !== null) {
        const pub = signers.get(file.signer)?.pub;
        if (pub?.length) {
          verified = verifyBytes(pub, Buffer.concat([INDEX_SIG_PREFIX, file.signed!]), file.sig!);
          // Only a holder of indexKey can have made it; a bad signature is a forgery or damage.
          if (!verified) this.indexProblems.push({ name, reason: `its signature by key ${file.signer} does not verify` });
        }
      }
      this.addIndexPacks(file.packs, name, file.signer, verified);
      this.loadedIndexes.add(name);
    });
  }

  private addIndexPacks(packs: IndexPack[], indexFile: string, signer: string | null, verified: boolean): void {
    for (const p of packs) {
      const no = this.index.addPack({ id: p.id, kind: p.kind, sealedKey: p.sealedKey, indexFile, signer, verified });
      for (const b of p.blobs) this.index.add(b.id, no, b.offset, b.length, b.rawLength);
    }
  }

  get indexFiles(): string[] {
    return [...this.loadedIndexes];
  }

  // ---- writing ----

  private getPacker(): Packer {
    if (!this.packer) {
      this.packer = new Packer({
        backend: this.backend,
        repoPub: this.secrets.repoPub,
        level: this.config.compression.level,
        packSize: this.config.packSize,
        storageClass: { data: this.config.storageClass.data, tree: this.config.storageClass.tree },
        onPack: (p, bytes) => this.objectsWritten.push({ kind: p.kind, bytes }),
      });
    }
    return this.packer;
  }

  blobId(data: Uint8Array): Buffer {
    return blobId(this.secrets.macKey, data);
  }

  /**
   * Whether a backup may count on the repository having this blob: stored by this session,
   * or listed by an index entry it trusts (trustedSigners). A copy listed only by another
   * writer is stored again: that writer could have stored garbage under the id.
   */
  hasBlob(id: Buffer): boolean {
    return this.pending.has(id.toString('latin1')) || this.index.hasWhere(id, this.dedupTrusts);
  }

  /** Stores a blob unless the repository (or this session) already has it. Returns its id and whether it was new. */
  async saveBlob(type: BlobType, plain: Uint8Array, knownId?: Buffer): Promise<{ id: Buffer; added: boolean }> {
    const id = knownId ?? this.blobId(plain);
    if (this.hasBlob(id)) return { id, added: false };
    this.pending.add(id.toString('latin1'));
    await this.getPacker().add(type, id, plain);
    await this.maybeWriteIndex();
    return { id, added: true };
  }

  /**
   * saveBlob for a blob that may be large, without waiting for its hash: resolves once
   * `plain` may be reused, with the id to await. Large blobs are hashed on libuv's pool
   * (see Packer.addUnhashed) when sealing runs off this thread; others go through saveBlob.
   */
  async saveBlobDeferred(type: BlobType, plain: Uint8Array): Promise<{ id: Promise<Buffer> }> {
    const packer = this.getPacker();
    if (!packer.canDefer || plain.length < COPIED_AT_ONCE) {
      const { id } = await this.saveBlob(type, plain);
      return { id: Promise.resolve(id) };
    }
    const r = await packer.addUnhashed(
      type,
      plain,
      (d) => blobIdNativeAsync(this.secrets.macKey, d),
      (id) => {
        if (this.hasBlob(id)) return false;
        this.pending.add(id.toString('latin1'));
        return true;
      },
    );
    await this.maybeWriteIndex();
    return r;
  }

  async saveTree(tree: Tree): Promise<{ id: Buffer; added: boolean }> {
    return this.saveBlob('tree', encodeTree(tree));
  }

  /** saveTree for a tree encoded already (TreeEncoder). */
  async saveTreeBytes(bytes: Buffer): Promise<{ id: Buffer; added: boolean }> {
    return this.saveBlob('tree', bytes);
  }

  /** Why storing new data failed, once it has (null before): every later save fails the same way. */
  get writeFailure(): unknown {
    return this.packer?.failed ?? null;
  }

  /** Ends the writing side: stops its workers and drops pack files a failed run left unwritten. */
  async closeWriter(): Promise<void> {
    const p = this.packer;
    this.packer = null;
    await p?.close();
  }

  get packerStats(): { bytesWritten: number; blobsWritten: number } {
    return { bytesWritten: this.packer?.bytesWritten ?? 0, blobsWritten: this.packer?.blobsWritten ?? 0 };
  }

  /** Uploads open packs, then writes one index file for every pack written so far. */
  async flush(): Promise<void> {
    if (!this.packer) return;
    await this.packer.flush();
    await this.writeIndex(this.packer.takeWritten());
  }

  /**
   * Writes an index file for packs already stored. Called at the end of a backup and every
   * INDEX_EVERY packs (or INDEX_EVERY_BLOBS blobs) during it, so an interrupted backup keeps most of its progress: the
   * next one dedups against what was indexed.
   */
  private async writeIndex(packs: IndexPack[]): Promise<void> {
    if (!packs.length) return;
    const bytes = sealIndex(this.secrets.indexKey, packs, { keyId: this.secrets.keyId, pair: { publicKey: this.secrets.signPub, privateKey: this.secrets.signPriv } });
    const name = `${INDEX}${sha256(bytes).toString('hex')}`;
    await this.backend.put(name, bytes, { storageClass: this.config.storageClass.other });
    this.objectsWritten.push({ kind: 'index', bytes: bytes.length });
    this.loadedIndexes.add(name);
    this.addIndexPacks(packs, name, this.secrets.keyId, true);
    for (const p of packs) for (const b of p.blobs) this.pending.delete(b.id.toString('latin1'));
  }

  private async maybeWriteIndex(): Promise<void> {
    if (this.packer && (this.packer.writtenCount >= INDEX_EVERY || this.packer.writtenBlobs >= INDEX_EVERY_BLOBS)) await this.writeIndex(this.packer.takeWritten());
  }

  /** Takes a non-exclusive lock (locks/<random>): tells prune and other tools a writer is at work. */
  async lock(): Promise<() => Promise<void>> {
    const name = `${LOCKS}${randomBytes(16).toString('hex')}`;
    const body = { host: hostname(), pid: process.pid, time: new Date().toISOString(), exclusive: false };
    await this.backend.put(name, Buffer.from(JSON.stringify(body)));
    return () => this.backend.delete(name);
  }

  /** Writes the snapshot object (the last step of a backup). Returns its id. */
  async saveSnapshot(info: SnapshotInfo): Promise<string> {
    const bytes = sealSnapshot(info, this.secrets.repoPub, this.secrets.keyId, { publicKey: this.secrets.signPub, privateKey: this.secrets.signPriv });
    const id = sha256(bytes).toString('hex');
    await this.backend.put(`${SNAPSHOTS}${id}`, bytes, { storageClass: this.config.storageClass.other });
    return id;
  }

  // ---- cold storage ----

  /** Attaches the cold-storage implementation (src/glacier); options given to configureCold() before are passed on. */
  setColdStorage(c: ColdStorage | null): void {
    this.cold = c;
    c?.configure(this.coldOptions);
  }

  get coldStorage(): ColdStorage | null {
    return this.cold;
  }

  /** Cache dir, cache size, default tier and days of cold storage; may be called before or after setColdStorage(). */
  configureCold(o: ColdOptions): void {
    this.coldOptions = { ...this.coldOptions, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
    this.cold?.configure(o);
  }

  /** Pack sizes from the index (end of the last blob), recomputed when the index grew. */
  private packBytesOf(pack: PackRef): number {
    if (!this.packBytes || this.packBytes.blobs !== this.index.size) {
      const bytes = new Map<PackRef, number>();
      for (const e of this.index.entries()) bytes.set(e.pack, Math.max(bytes.get(e.pack) ?? 0, e.offset + e.length));
      this.packBytes = { blobs: this.index.size, bytes };
    }
    return this.packBytes.bytes.get(pack) ?? 0;
  }

  private coldPack(pack: PackRef): ColdPack {
    return { name: packName(pack.kind, pack.id.toString('hex')), kind: pack.kind, bytes: this.packBytesOf(pack), storageClass: this.config.storageClass[pack.kind] };
  }

  private isColdPack(p: ColdPack): boolean {
    // Without cold storage attached: archived classes are cold on backends that have them.
    return this.cold ? this.cold.isCold(p) : !!this.backend.restore && ARCHIVE_CLASSES.has(p.storageClass);
  }

  /** The distinct packs holding these blobs (blobs not in the index are skipped). */
  packsOf(ids: Buffer[]): ColdPack[] {
    const seen = new Map<string, ColdPack>();
    for (const id of ids) {
      const loc = this.locate(id);
      if (!loc) continue;
      const p = this.coldPack(loc.pack);
      if (!seen.has(p.name)) seen.set(p.name, p);
    }
    return [...seen.values()];
  }

  private async packState(p: ColdPack, refresh = false): Promise<BlobState> {
    if (!this.isColdPack(p)) return 'hot';
    return this.cold ? this.cold.state(p, { refresh }) : 'cold';
  }

  /** Where one blob stands: hot, cached (local disk), available (restored in S3), restoring, or cold. */
  async blobState(id: Buffer): Promise<BlobState> {
    const loc = this.locate(id);
    if (!loc) throw new TsbakError('NOT_FOUND', `blob ${id.toString('hex')} is not in the index (repository damaged or snapshot incomplete); run 'tsbak check'`);
    return this.packState(this.coldPack(loc.pack));
  }

  /** A file's state: that of its coldest chunk ('hot' for an empty file). */
  async fileState(contentIds: Buffer[]): Promise<BlobState> {
    let worst = 0;
    for (const p of this.packsOf(contentIds)) {
      worst = Math.max(worst, BLOB_STATES_WARMEST_FIRST.indexOf(await this.packState(p)));
      if (worst === BLOB_STATES_WARMEST_FIRST.length - 1) break;
    }
    return BLOB_STATES_WARMEST_FIRST[worst]!;
  }

  /**
   * The state of every pack these blobs need. `refresh`: first ask S3 about the packs known
   * to be restoring (one HEAD each, or a listing when cheaper), so that finished restores show.
   */
  async packStates(ids: Buffer[], opts: { refresh?: boolean; signal?: AbortSignal } = {}): Promise<Array<{ pack: ColdPack; state: BlobState }>> {
    const get = async (packs: ColdPack[]) => {
      const out: Array<{ pack: ColdPack; state: BlobState }> = [];
      await mapLimit(packs, 8, async (pack) => {
        out.push({ pack, state: await this.packState(pack) });
      });
      return out;
    };
    let states = await get(this.packsOf(ids));
    const restoring = states.filter((s) => s.state === 'restoring').map((s) => s.pack);
    if (opts.refresh && this.cold && restoring.length) {
      await this.cold.refresh(restoring, { totalPacks: this.index.packs.filter((p) => p.kind === 'data').length, signal: opts.signal });
      const again = new Map((await get(restoring)).map((s) => [s.pack.name, s.state]));
      states = states.map((s) => (again.has(s.pack.name) ? { pack: s.pack, state: again.get(s.pack.name)! } : s));
    }
    return states;
  }

  /** Requests, in one batch, the restore of every cold pack these blobs need and that is not requested yet. */
  async warmBlobs(ids: Buffer[], opts: WarmOptions = {}): Promise<WarmResult> {
    const packs = this.packsOf(ids).filter((p) => this.isColdPack(p));
    if (!packs.length) return { requested: 0, packs: 0, bytes: 0 };
    if (!this.cold) throw new ColdError(`${packs.length} packs of ${this.backend.location}`, packs.map((p) => p.name));
    return this.cold.warm(packs, opts);
  }

  /** Waits until every cold pack these blobs need is restored (requesting again any that went cold). False on timeout. */
  async waitForBlobs(ids: Buffer[], opts: WaitOptions = {}): Promise<boolean> {
    const packs = this.packsOf(ids).filter((p) => this.isColdPack(p));
    if (!packs.length) return true;
    if (!this.cold) return false;
    const totalPacks = this.index.packs.filter((p) => p.kind === 'data').length;
    return this.cold.wait(packs, { ...opts, totalPacks });
  }

  /** Restores known to cold storage (requested, in progress, available, cached), for status displays. */
  coldStatus(): ColdPackStatus[] {
    return this.cold?.status() ?? [];
  }

  /** Objects in the repository by kind and storage class, from a listing (for cost estimates). */
  async storageUsage(signal?: AbortSignal): Promise<Array<{ kind: 'data' | 'tree' | 'index' | 'snapshot' | 'key' | 'config' | 'other'; storageClass: StorageClass; objects: number; bytes: number }>> {
    const acc = new Map<string, { kind: any; storageClass: StorageClass; objects: number; bytes: number }>();
    for await (const o of this.backend.list('', signal)) {
      const pk = parsePackName(o.name);
      const kind = pk ? pk.kind : o.name === CONFIG ? 'config' : o.name.startsWith(INDEX) ? 'index' : o.name.startsWith(SNAPSHOTS) ? 'snapshot' : o.name.startsWith(KEYS) ? 'key' : 'other';
      const sc = o.storageClass ?? (pk ? this.config.storageClass[pk.kind] : this.config.storageClass.other);
      const k = `${kind}/${sc}`;
      const a = acc.get(k) ?? { kind, storageClass: sc, objects: 0, bytes: 0 };
      a.objects++;
      a.bytes += o.size;
      acc.set(k, a);
    }
    return [...acc.values()];
  }

  // ---- reading ----

  private packKey(pack: PackRef): Buffer {
    let k = this.packKeys.get(pack);
    if (!k) {
      try {
        k = openSealed(this.requireRead('read data'), pack.sealedKey);
      } catch (e) {
        if (e instanceof TsbakError) throw e;
        throw new CorruptError(`key of pack ${pack.id.toString('hex')} in ${pack.indexFile}`);
      }
      this.packKeys.set(pack, k);
    }
    return k;
  }

  /** Reads try copies listed by this key first (restore: the snapshot's signer), after the master's. */
  preferSigner(keyId: string | null): void {
    this.preferred = keyId;
  }

  /** Lower is tried first: the master's or the preferred signer's, other verified, unsigned (v1), unverifiable. */
  private rank(p: PackRef): number {
    if (p.signer === null) return 2;
    if (!p.verified) return 3;
    return p.signer === 'master' || p.signer === this.preferred ? 0 : 1;
  }

  /** Every copy of a blob, the one to try first first. */
  locations(id: Buffer): BlobLocation[] {
    const all = this.index.all(id);
    if (all.length > 1) all.sort((a, b) => this.rank(a.pack) - this.rank(b.pack));
    return all;
  }

  /** The copy of a blob a read tries first. */
  locate(id: Buffer): BlobLocation | undefined {
    return this.locations(id)[0];
  }

  /**
   * Decrypts, decompresses and verifies one blob. Concurrent calls for the same blob share
   * one fetch (calls with a signal go their own way, so that aborting one aborts no other).
   * `cache: false` keeps a blob read now out of the in-memory cache (a reader that needs it
   * once, like the restore's tree walk: long-lived cached buffers among short-lived ones
   * kept ~30 MB more of the malloc heap resident there).
   */
  async loadBlob(id: Buffer, signal?: AbortSignal, opts: { cache?: boolean } = {}): Promise<Buffer> {
    const hex = id.toString('hex');
    const hit = this.blobCache.get(hex);
    if (hit) return hit;
    const cache = opts.cache ?? true;
    if (signal) return this.readCounted(id, hex, cache, signal);
    let p = this.blobLoads.get(hex);
    if (!p) {
      p = this.readCounted(id, hex, cache).finally(() => this.blobLoads.delete(hex));
      this.blobLoads.set(hex, p);
    }
    return p;
  }

  private readCounted(id: Buffer, hex: string, cache: boolean, signal?: AbortSignal): Promise<Buffer> {
    if (++this.blobReads > 1) this.blobReadsOverlapped = performance.now();
    return this.readBlob(id, hex, cache, signal).finally(() => this.blobReads--);
  }

  private async readBlob(id: Buffer, hex: string, cache: boolean, signal?: AbortSignal): Promise<Buffer> {
    const plain = await this.fetchOpen(id, hex, signal, (kind, key, sealed, again, rawLength) => this.openChecked(kind, key, id, sealed, again, true, rawLength));
    if (cache) this.blobCache.set(hex, plain);
    return plain;
  }

  /** Reads and checks one copy of a blob, no other (check --read-data); damage throws CORRUPT naming that copy. */
  async verifyCopy(id: Buffer, loc: BlobLocation): Promise<void> {
    await this.fetchOpen(id, id.toString('hex'), undefined, (kind, key, sealed, _again, rawLength) => this.openChecked(kind, key, id, sealed, null, false, rawLength), undefined, loc);
  }

  /**
   * Writes one blob's plaintext at `pos` of the open file `fd` (a restore): what loadBlob
   * does, but large data blobs are opened and written by a pool worker, so their plaintext
   * never reaches this thread. Returns the bytes written. `fd` must stay open until then.
   */
  async writeBlobAt(id: Buffer, fd: number, pos: number, signal?: AbortSignal): Promise<number> {
    const hex = id.toString('hex');
    const hit = this.blobCache.get(hex);
    if (hit) return writeAllAtSync(fd, hit, pos);
    // The sealed bytes are read into a pooled buffer where the backend can (a local file):
    // read as fresh buffers, they were ~20 MB of garbage at the peak of a restore.
    let sealedBuf: ArrayBuffer | undefined;
    try {
      return await this.fetchOpen(
        id,
        hex,
        signal,
        (kind, key, sealed, again, rawLength) => this.openToFile(id, fd, pos, kind, key, sealed, again, rawLength),
        (n) => {
          // A copy tried before this one is done with its buffer.
          if (sealedBuf) this.sealedBuffers.give(sealedBuf);
          return Buffer.from((sealedBuf = this.sealedBuffers.take(n)), 0, n);
        },
      );
    } finally {
      // Detached (given to a worker) when the worker pool opened it: then give() ignores it.
      if (sealedBuf) this.sealedBuffers.give(sealedBuf);
    }
  }

  /** writeBlobAt's opening and writing, once the sealed bytes are read. */
  private async openToFile(id: Buffer, fd: number, pos: number, kind: BlobType, key: Buffer, sealed: Buffer, again: (() => Promise<Buffer>) | null, rawLength: number): Promise<number | 'auth' | 'id'> {
    // Large blobs are opened on libuv's pool (native/blob.c) and written from there, so
    // that a restore needs no worker threads (each costs ~40 MB) and no JavaScript buffer
    // for their plaintext (pooled ones overflowed into up to ~80 MB of garbage awaiting a
    // GC at a restore's peak); the worker pool when the addon cannot do it. The sealed bytes
    // are decrypted in place: copied first when they may be a view other reads share (cold
    // storage's).
    const large = kind === 'data' && sealed.length >= OPEN_POOL_MIN;
    if (large) {
      const own = again ? sealed : Buffer.from(sealed);
      const wrote = await openBlobToFileAsync(key, this.secrets.macKey, id, own, rawLength, fd, pos);
      if (wrote !== null) return wrote;
    }
    const pool = large ? openPool() : null;
    if (pool?.usable) {
      try {
        return await pool.openTo(key, this.secrets.macKey, id, sealed, !!again, fd, pos);
      } catch (e) {
        if (!(e instanceof OpenPoolError)) throw e;
        if (sealed.buffer.byteLength === 0) sealed = await again!();
      }
    }
    const plain = await this.openChecked(kind, key, id, sealed, null, false, rawLength);
    return typeof plain === 'string' ? plain : writeAllAtSync(fd, plain, pos);
  }

  /**
   * Where a data blob is, when it can be read straight from the backend (in the index, its
   * pack not in cold storage); undefined otherwise: such blobs go through loadBlob or
   * writeBlobAt, which know the cold path and its retries.
   */
  locateHot(id: Buffer): BlobLocation | undefined {
    const loc = this.locate(id);
    if (!loc || loc.pack.kind !== 'data') return undefined;
    if ((this.cold || this.backend.restore) && this.isColdPack(this.coldPack(loc.pack))) return undefined;
    return loc;
  }

  /**
   * The sealed bytes of many hot data blobs (located with locateHot), with the keys to open
   * them, for opening elsewhere (native openBlobs on libuv's pool). Blobs close together in a pack are fetched with
   * one ranged read: small files backed up together lie next to each other.
   */
  async readSealedBatch(locs: BlobLocation[], opts: { signal?: AbortSignal; alloc?: (n: number) => ArrayBuffer } = {}): Promise<SealedBatch> {
    const signal = opts.signal;
    const order = locs.map((_, i) => i).sort((a, b) => {
      const x = locs[a]!;
      const y = locs[b]!;
      return x.pack === y.pack ? x.offset - y.offset : x.pack.id.compare(y.pack.id);
    });
    const offsets = new Uint32Array(locs.length);
    const keyOf = new Uint16Array(locs.length);
    const keys: Buffer[] = [];
    const keyNo = new Map<PackRef, number>();
    // Ranges: runs of blobs in one pack, each read whole (gaps included) into its place in
    // one buffer, so that each blob's offset is its range's plus its offset in the pack.
    const ranges: Array<{ pack: PackRef; offset: number; length: number; at: number }> = [];
    let total = 0;
    for (let a = 0; a < order.length; ) {
      const first = locs[order[a]!]!;
      let end = first.offset + first.length;
      let b = a + 1;
      for (; b < order.length; b++) {
        const l = locs[order[b]!]!;
        if (l.pack !== first.pack || l.offset > end + READ_GAP || l.offset + l.length - first.offset > READ_SPAN) break;
        end = Math.max(end, l.offset + l.length);
      }
      let k = keyNo.get(first.pack);
      if (k === undefined) {
        keyNo.set(first.pack, (k = keys.length));
        keys.push(this.packKey(first.pack));
      }
      for (let m = a; m < b; m++) {
        offsets[order[m]!] = total + locs[order[m]!]!.offset - first.offset;
        keyOf[order[m]!] = k;
      }
      ranges.push({ pack: first.pack, offset: first.offset, length: end - first.offset, at: total });
      total += end - first.offset;
      a = b;
    }
    // One buffer, from the caller's pool when it has one (a restore reads hundreds of MB
    // this way: fresh buffers made V8 run a full GC for every few dozen MB of them).
    const bytes = Buffer.from(opts.alloc ? opts.alloc(total) : new ArrayBuffer(total), 0, total);
    await Promise.all(
      ranges.map(async (r) => {
        const name = packName(r.pack.kind, r.pack.id.toString('hex'));
        try {
          const range = { offset: r.offset, length: r.length };
          const into = bytes.subarray(r.at, r.at + r.length);
          if (this.backend.readInto) await this.backend.readInto(name, range, into, signal);
          else (await this.backend.get(name, range, signal)).copy(into);
        } catch (e) {
          throw this.missingPack(name, e);
        }
      }),
    );
    return { sealed: bytes, offsets, lengths: Uint32Array.from(locs, (l) => l.length), keyOf, keys, macKey: this.secrets.macKey };
  }

  /** A failed read of pack `name`: a pack the index lists and that is not there is damage (CORRUPT); other errors as they are. */
  private missingPack(name: string, e: unknown): unknown {
    return e instanceof NotFoundError ? new TsbakError('CORRUPT', `pack ${name} is missing from ${this.backend.location} although the index lists it; run 'tsbak check'`) : e;
  }

  /**
   * Fetches a blob's sealed bytes and opens them with `open`, trying its copies in turn
   * (locations: a damaged or missing copy is passed over, with a warning, for the next);
   * damage only when no copy opens. `only`: that copy and no other (check --read-data).
   */
  private async fetchOpen<T>(
    id: Buffer,
    hex: string,
    signal: AbortSignal | undefined,
    open: BlobOpener<T>,
    into?: (n: number) => Buffer,
    only?: BlobLocation,
  ): Promise<T> {
    const locs = only ? [only] : this.locations(id);
    // A blob a tree or snapshot names and no index lists: damage (an index file lost or skipped).
    if (!locs.length) throw new TsbakError('CORRUPT', `blob ${hex} is not in the index (repository damaged or snapshot incomplete); run 'tsbak check'`);
    const short = hex.slice(0, 16);
    const bad: Array<{ loc: BlobLocation; error: TsbakError }> = [];
    for (const loc of locs) {
      let plain: T | 'auth' | 'id';
      try {
        plain = await this.fetchOpenAt(loc, short, signal, open, into);
      } catch (e) {
        if (!(e instanceof TsbakError) || e.code !== 'CORRUPT') throw e;
        bad.push({ loc, error: e });
        continue;
      }
      if (plain === 'auth' || plain === 'id') {
        bad.push({ loc, error: new CorruptError(`blob ${short} in pack ${this.packNameOf(loc.pack)}`, plain === 'id' ? 'content does not match its id' : 'failed authentication') });
        continue;
      }
      if (bad.length) this.onWarning?.(`blob ${short}: ${bad.map((b) => this.copyName(b.loc)).join(', ')} damaged, read the copy in ${this.copyName(loc)}; run 'tsbak check --read-data'`);
      return plain;
    }
    if (bad.length === 1) throw bad[0]!.error;
    throw new CorruptError(`blob ${short}`, `every copy: ${bad.map((b) => this.copyName(b.loc)).join(', ')}`);
  }

  private packNameOf(pack: PackRef): string {
    return packName(pack.kind, pack.id.toString('hex'));
  }

  /** One copy of a blob, for messages: its pack and who listed it there. */
  copyName(loc: BlobLocation): string {
    const p = loc.pack;
    const by = p.signer === null ? 'unsigned' : `signed by ${p.signer === 'master' ? 'the master key' : `key ${p.signer}`}${p.verified ? '' : ' (unverified)'}`;
    return `pack ${this.packNameOf(p)} (${p.indexFile}, ${by})`;
  }

  /** fetchOpen of one copy: the opened blob, or how it failed ('auth', 'id'; a missing pack or pack key throws CORRUPT). */
  private async fetchOpenAt<T>(
    loc: BlobLocation,
    short: string,
    signal: AbortSignal | undefined,
    open: BlobOpener<T>,
    into?: (n: number) => Buffer,
  ): Promise<T | 'auth' | 'id'> {
    const key = this.packKey(loc.pack);
    const name = this.packNameOf(loc.pack);
    const range = { offset: loc.offset, length: loc.length };
    // Cold packs are read through cold storage (disk cache, restore on demand); a pack
    // that turns out archived although its class is not (a lifecycle rule) too.
    const cp = this.cold ? this.coldPack(loc.pack) : null;
    let viaCold = !!cp && this.cold!.isCold(cp);
    let sealed: Buffer;
    try {
      if (viaCold) sealed = await this.cold!.read(cp!, range, signal);
      else {
        try {
          if (into && this.backend.readInto) {
            sealed = into(range.length);
            await this.backend.readInto(name, range, sealed, signal);
          } else sealed = await this.backend.get(name, range, signal);
        } catch (e) {
          if (!(e instanceof ColdError) || !cp) throw e;
          viaCold = true;
          sealed = await this.cold!.read(cp, range, signal);
        }
      }
    } catch (e) {
      throw this.missingPack(name, e);
    }
    // Bytes of a backend read are ours to give to a worker (read them again if it dies with
    // them); bytes from cold storage may be a view of a pack other reads share: copied.
    const again = viaCold ? null : () => this.backend.get(name, range, signal);
    const plain = await open(loc.pack.kind, key, sealed, again, loc.rawLength);
    if (plain !== 'auth' || !viaCold) return plain;
    // A damaged copy in the disk cache: drop it and read the pack again once.
    this.cold!.invalidate(cp!);
    try {
      return await open(loc.pack.kind, key, await this.cold!.read(cp!, range, signal), null, loc.rawLength);
    } catch (e) {
      if (e instanceof TsbakError && e.code !== 'CORRUPT') throw e;
      throw new CorruptError(`blob ${short} in pack ${name}`);
    }
  }

  /**
   * openBlob and the id check. Large data blobs go to the worker pool when blob reads overlap
   * (now, or in the last OVERLAP_MS: a reader with read-ahead, the mount), so that this thread
   * goes on serving the others. Inline: trees and small blobs (a round trip to a worker costs
   * more than opening them), and reads one after the other (restore and check of one file:
   * the caller waits for this blob and nothing else, and a round trip only adds to its wait).
   * With `again`, the caller gives `sealed` up (it is transferred to a worker, not copied) and
   * says how to read it again should the worker die with it.
   */
  private async openChecked(kind: BlobType, key: Buffer, id: Buffer, sealed: Buffer, again: (() => Promise<Buffer>) | null, usePool = true, rawLength?: number): Promise<OpenOutcome> {
    const overlap = this.blobReads > 1 || performance.now() - this.blobReadsOverlapped < OVERLAP_MS;
    const pool = usePool && kind === 'data' && sealed.length >= OPEN_POOL_MIN && overlap ? openPool() : null;
    if (pool?.usable) {
      try {
        return await pool.open(key, this.secrets.macKey, id, sealed, !!again);
      } catch (e) {
        // The pool failed, not the blob: open it here.
        if (!(e instanceof OpenPoolError)) throw e;
        if (sealed.buffer.byteLength === 0) sealed = await again!();
      }
    }
    // Natively when the index gives the plaintext's length: a tree costs a few µs there, and
    // ~50 µs of cipher, HMAC and zstd objects here. A blob that does not open natively is
    // opened again below, which says how it failed.
    const opened = rawLength === undefined ? null : openBlobNative(key, this.secrets.macKey, id, sealed, rawLength);
    if (opened) return opened;
    let plain: Buffer;
    try {
      plain = openBlob(key, id, sealed);
    } catch {
      return 'auth';
    }
    return this.blobId(plain).equals(id) ? plain : 'id';
  }

  async loadTree(id: Buffer, opts: { cache?: boolean } = {}): Promise<Tree> {
    const bytes = await this.loadBlob(id, undefined, opts);
    try {
      return decodeTree(bytes);
    } catch {
      throw new CorruptError(`tree ${id.toString('hex').slice(0, 16)}`, 'undecodable');
    }
  }

  async listSnapshotIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const o of this.backend.list(SNAPSHOTS)) ids.push(o.name.slice(SNAPSHOTS.length));
    return ids;
  }

  private snapshotCache: string | null = null;

  /**
   * Keeps the snapshot objects read in `<root>/<repo id>/snapshots/` (null: not at all).
   * A snapshot is immutable and named by its hash, so a cached copy is checked like a
   * downloaded one: listing a long history then costs one LIST, not a GET per snapshot.
   */
  useSnapshotCache(root: string | null): void {
    this.snapshotCache = root ? path.join(root, this.id, 'snapshots') : null;
  }

  /** A snapshot's bytes, checked against its id (the hash), from the cache or the backend. */
  private async snapshotBytes(id: string): Promise<Buffer> {
    const file = this.snapshotCache && /^[0-9a-f]{64}$/.test(id) ? path.join(this.snapshotCache, id) : null;
    if (file) {
      const cached = await fsp.readFile(file).catch(() => null);
      if (cached && sha256(cached).toString('hex') === id) return cached;
    }
    const bytes = await this.backend.get(`${SNAPSHOTS}${id}`);
    if (sha256(bytes).toString('hex') !== id) throw new CorruptError(`snapshot ${id.slice(0, 8)}`, 'content does not match its id');
    if (file) {
      // Best effort: a cache that cannot be written only costs the GET next time.
      const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
      await fsp
        .mkdir(this.snapshotCache!, { recursive: true })
        .then(() => fsp.writeFile(tmp, bytes, { mode: 0o600 }))
        .then(() => fsp.rename(tmp, file))
        .catch(() => fsp.unlink(tmp).catch(() => {}));
    }
    return bytes;
  }

  /** Removes cached snapshots that the repository no longer has (forgotten). */
  private async dropForgottenSnapshots(ids: string[]): Promise<void> {
    if (!this.snapshotCache) return;
    const keep = new Set(ids);
    const names = await fsp.readdir(this.snapshotCache).catch(() => [] as string[]);
    for (const n of names) if (!keep.has(n)) await fsp.unlink(path.join(this.snapshotCache, n)).catch(() => {});
  }

  async loadSnapshot(id: string): Promise<Snapshot> {
    const pair = this.requireRead('read snapshots');
    const bytes = await this.snapshotBytes(id);
    try {
      const env = parseEnvelope(bytes);
      const signer = (await this.signerKeys()).get(env.signer);
      if (!signer) throw new CorruptError(`snapshot ${id.slice(0, 8)}`, `signed by unknown key ${env.signer}`);
      // A revoked key's snapshots are trusted only when the revocation lists them (made before it).
      const rev = signer.revoked;
      if (rev && !rev.snapshots.includes(id)) throw new CorruptError(`snapshot ${id.slice(0, 8)}`, `signed by key ${signer.name} (${env.signer}), revoked on ${rev.revoked}, and not one of the snapshots the revocation keeps`);
      return { id, info: openSnapshot(env, signer.pub, pair), signer: { id: env.signer, name: signer.name } };
    } catch (e) {
      if (e instanceof TsbakError) throw e;
      throw new CorruptError(`snapshot ${id.slice(0, 8)}`, (e as Error).message);
    }
  }

  /** Every snapshot, oldest first. Unreadable snapshots are reported through onError and skipped. */
  async listSnapshots(onError?: (id: string, e: unknown) => void): Promise<Snapshot[]> {
    this.requireRead('list snapshots');
    const ids = await this.listSnapshotIds();
    await this.dropForgottenSnapshots(ids);
    const out: Snapshot[] = [];
    await mapLimit(ids, 8, async (id) => {
      try {
        out.push(await this.loadSnapshot(id));
      } catch (e) {
        if (!onError) throw e;
        onError(id, e);
      }
    });
    return out.sort((a, b) => (a.info.time < b.info.time ? -1 : a.info.time > b.info.time ? 1 : a.id < b.id ? -1 : 1));
  }

  /**
   * Resolves an id, a unique id prefix, or "latest": the newest snapshot the filter selects
   * (--host, --path, --signer) that is not dated more than a day in the future. Such
   * snapshots passed over are told to onWarning.
   */
  async findSnapshot(ref: string, opts: { filter?: SnapshotFilter; onWarning?: (message: string) => void } = {}): Promise<Snapshot> {
    if (ref === 'latest') {
      // A snapshot that cannot be verified (damaged, or signed by a revoked key) is not latest: said, and passed over.
      const all = await this.listSnapshots((id, e) => opts.onWarning?.(`snapshot ${id.slice(0, 8)} is not considered: ${(e as Error).message}`));
      const { latest, skippedFuture } = pickLatest(all, opts.filter);
      for (const s of skippedFuture) opts.onWarning?.(`snapshot ${s.id.slice(0, 8)} is dated ${s.info.time}, more than a day in the future: not taken as latest (name its id to use it)`);
      if (!latest) {
        const f = opts.filter ?? {};
        const what = [f.host !== undefined ? `host ${f.host}` : '', f.paths?.length ? `paths ${f.paths.join(' ')}` : '', f.signer !== undefined ? `signer ${f.signer}` : ''].filter(Boolean).join(', ');
        throw new TsbakError('NOT_FOUND', `${this.backend.location} has no snapshots${what ? ` of ${what}` : skippedFuture.length ? ' dated up to a day from now' : ' yet'}`);
      }
      return latest;
    }
    const ids = (await this.listSnapshotIds()).filter((id) => id.startsWith(ref));
    if (ids.length === 0) throw new TsbakError('NOT_FOUND', `no snapshot with id ${ref} in ${this.backend.location}; see 'tsbak snapshots'`);
    if (ids.length > 1) throw new TsbakError('USAGE', `snapshot id prefix ${ref} is ambiguous (${ids.length} matches); give more characters`);
    return this.loadSnapshot(ids[0]!);
  }
}
