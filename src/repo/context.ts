// What every part of an open repository shares: the backend, the config and the key.
import type { Backend } from '../backend/backend.js';
import type { X25519Pair } from '../crypto/box.js';
import { indexClassOf, type RepoConfig, type StorageClass } from '../format/config.js';
import type { FullSecrets, WriterSecrets } from '../format/keyfile.js';
import { TsbakError } from '../errors.js';

export class RepoContext {
  /** Told about damage that is skipped rather than fatal (a damaged index file, a damaged copy). */
  onWarning: ((message: string) => void) | null = null;
  /** The keys/ object the passphrase opened (full key only): the one `key passwd` replaces. */
  keyObject: string | null = null;
  /**
   * What opening read of keys/: the names it listed (null: it did not list) and the objects
   * it got. The signer keys are taken from them once instead of being read again
   * (key-store.ts); they are checked there as if just downloaded.
   */
  keysRead: { listed: string[] | null; bytes: Map<string, Buffer> } | null = null;
  /**
   * The classes new objects are stored in: config's, with tree and index superseded by the
   * latest storage class settings (storage-classes.ts, `tsbak config set`). `settingsSeq`:
   * the seq of the settings object that applies, 0 for none.
   */
  classes: { data: StorageClass; tree: StorageClass; index: StorageClass; other: StorageClass };
  settingsSeq = 0;
  /** Parity of new packs (parity-settings.ts), K data packs and M parity objects per group; null: none. */
  parity: { k: number; m: number } | null = null;

  constructor(
    readonly backend: Backend,
    readonly config: RepoConfig,
    readonly secrets: WriterSecrets | FullSecrets,
  ) {
    this.classes = { data: config.storageClass.data, tree: config.storageClass.tree, index: indexClassOf(config), other: config.storageClass.other };
  }

  /** True with the full key; false with a write-only key. */
  get canRead(): boolean {
    return 'repoPriv' in this.secrets && !!(this.secrets as FullSecrets).repoPriv;
  }

  /** The repository's decryption pair, or WRITE_ONLY_KEY naming what could not be done. */
  requireRead(what: string): X25519Pair {
    if (!this.canRead) throw new TsbakError('WRITE_ONLY_KEY', `cannot ${what}: this is a write-only key (it adds snapshots but cannot read them); use the repository passphrase`);
    const s = this.secrets as FullSecrets;
    return { publicKey: s.repoPub, privateKey: s.repoPriv };
  }

  /** The master's Ed25519 public key, when this key knows it (the full key; writers whose key file or cache says it). */
  get masterSignPub(): Buffer | null {
    return this.secrets.keyId === 'master' ? this.secrets.signPub : this.secrets.masterSignPub ?? null;
  }
}
