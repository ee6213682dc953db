// The index: which pack holds each blob, loaded from every index file (signed by the writer
// that wrote it), and written by this process for the packs it stores. It also says which
// copy of a blob a read tries first and which copies a backup's dedup may count on.
import { AuthError } from '../crypto/aead.js';
import { sha256 } from '../crypto/hash.js';
import { verifyBytes } from '../crypto/sign.js';
import { INDEX_SIG_PREFIX, openIndex, sealIndex, type IndexFile, type IndexPack } from '../format/index-file.js';
import { NotFoundError, TsbakError } from '../errors.js';
import { BlobIndex, type BlobLocation, type PackRef } from './blob-index.js';
import type { KeyStore, SignerKey } from './key-store.js';
import type { RepoContext } from './context.js';
import { INDEX } from './layout.js';
import { mapLimit } from './map-limit.js';

/** An index file that could not be used, and why. */
export interface IndexProblem {
  name: string;
  reason: string;
}

export class IndexStore {
  readonly index = new BlobIndex();
  /** Index files skipped as damaged, and index files whose signature did not verify. */
  readonly indexProblems: IndexProblem[] = [];
  /**
   * Dedup against index entries of every key, not only this key's and the master's (and
   * unsigned v1 entries): --trust-writers, TSBAK_TRUST_WRITERS=1. See THREAT-MODEL.md.
   */
  trustWriters = false;
  private loadedIndexes = new Set<string>();
  /**
   * Index files loaded, then not listed by a later loadIndex: a prune or repair replaced
   * them, and the packs they listed may be gone. Their entries stay in memory, so a backup
   * must not count on them (Backup checks this once its lock is held).
   */
  readonly vanished = new Set<string>();
  /** Ids stored this session and not yet in an index file, as latin1 keys (exact, half a hex string). */
  private pending = new Set<string>();
  /** Copies listed by this key are tried first when a blob is read (the snapshot's signer). */
  private preferred: string | null = null;

  constructor(
    private readonly ctx: RepoContext,
    private readonly keys: KeyStore,
  ) {}

  /**
   * Whose index entries dedup may use: this key's and the master's; every entry (v1 ones
   * included) with trustWriters (`all`). An entry counts only once its signature verified,
   * so a writer that cannot verify the master's signatures trusts its own entries only.
   */
  trustedSigners(): { all: boolean; keyIds: string[] } {
    return { all: this.trustWriters, keyIds: [...this.dedupSigners] };
  }

  private get dedupSigners(): Set<string> {
    return (this.dedupSignerSet ??= new Set([this.ctx.secrets.keyId, 'master']));
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
    const listed = new Set<string>();
    for await (const o of this.ctx.backend.list(INDEX)) {
      listed.add(o.name);
      if (!this.loadedIndexes.has(o.name) && !this.indexProblems.some((p) => p.name === o.name)) names.push(o.name);
    }
    for (const n of this.loadedIndexes) if (!listed.has(n)) this.vanished.add(n);
    const signers = names.length ? await this.keys.signerKeys() : new Map<string, SignerKey>();
    await mapLimit(names, 8, async (name) => {
      let file: IndexFile;
      try {
        const bytes = await this.ctx.backend.get(name);
        if (!sha256(bytes).equals(Buffer.from(name.slice(INDEX.length), 'hex'))) throw new AuthError();
        file = openIndex(this.ctx.secrets.indexKey, bytes);
      } catch (e) {
        if (e instanceof TsbakError && e.code !== 'NOT_FOUND' && e.code !== 'CORRUPT') throw e;
        if (!(e instanceof TsbakError) && (e as NodeJS.ErrnoException)?.syscall) throw e;
        const reason = e instanceof NotFoundError ? 'it vanished while being read' : e instanceof AuthError ? 'failed authentication' : 'undecodable';
        this.indexProblems.push({ name, reason });
        this.ctx.onWarning?.(`index file ${name} is damaged (${reason}); skipped: the blobs only it lists cannot be read, and backups store them again; run 'tsbak check'`);
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

  /**
   * Listings not read from an index file (recover: from pack headers), in memory only.
   * `source` names them in messages where an index file's name would be; they count as
   * unsigned, so reads try them after signed listings and dedup never counts on them.
   */
  addListings(packs: IndexPack[], source: string): void {
    this.addIndexPacks(packs, source, null, false);
  }

  get indexFiles(): string[] {
    return [...this.loadedIndexes];
  }

  /**
   * Whether a backup may count on the repository having this blob: stored by this session,
   * or listed by an index entry it trusts (trustedSigners). A copy listed only by another
   * writer is stored again: that writer could have stored garbage under the id.
   */
  hasBlob(id: Buffer): boolean {
    return this.pending.has(id.toString('latin1')) || this.index.hasWhere(id, this.dedupTrusts);
  }

  /** Claims a blob for this session's packer: true when it is new (not had, not claimed before). */
  claim(id: Buffer): boolean {
    if (this.hasBlob(id)) return false;
    this.pending.add(id.toString('latin1'));
    return true;
  }

  /**
   * Writes an index file for packs already stored (BlobWriter: at the end of a backup and
   * every few dozen packs during it). Returns its size in bytes, 0 when there was nothing.
   */
  async writeIndex(packs: IndexPack[]): Promise<number> {
    if (!packs.length) return 0;
    const bytes = sealIndex(this.ctx.secrets.indexKey, packs, { keyId: this.ctx.secrets.keyId, pair: { publicKey: this.ctx.secrets.signPub, privateKey: this.ctx.secrets.signPriv } });
    const name = `${INDEX}${sha256(bytes).toString('hex')}`;
    await this.ctx.backend.put(name, bytes, { storageClass: this.ctx.classes.index });
    this.loadedIndexes.add(name);
    this.addIndexPacks(packs, name, this.ctx.secrets.keyId, true);
    for (const p of packs) for (const b of p.blobs) this.pending.delete(b.id.toString('latin1'));
    return bytes.length;
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
}
