// Repository: the one object writer, restore, fuse and cli talk to. A facade over the parts
// of an open repository, each in its own module:
//   opening.ts      init and open: config and the key, checked against each other
//   key-store.ts    passphrases, writer keys, revocation, the signing keys trusted
//   index-store.ts  the index: where each blob is, which copy to read, what dedup trusts
//   blob-writer.ts  blobs to packs, and index files for them
//   blob-reader.ts  blobs, trees and batches read back, copy by copy
//   snapshot-store.ts  snapshots written, read, checked and cached
//   cold-facade.ts  cold storage (Glacier) as the repository sees it
import type { Backend, StorageClass } from '../backend/backend.js';
import type { RepoConfig } from '../format/config.js';
import type { FullSecrets, WriterKeyFile, WriterSecrets } from '../format/keyfile.js';
import type { BlobType } from '../format/pack.js';
import type { IndexPack } from '../format/index-file.js';
import { TsbakError } from '../errors.js';
import type { SnapshotInfo } from '../format/snapshot.js';
import type { Tree } from '../format/tree.js';
import type { BlobIndex, BlobLocation, PackRef } from './blob-index.js';
import { TreeBatchLoader } from './tree-batch.js';
import { BlobReader, type SealedBatch, type SealedPool } from './blob-reader.js';
import { BlobWriter } from './blob-writer.js';
import { DryRunWriter } from './dry-run-writer.js';
import { ColdFacade, type BlobState, type ColdOptions, type ColdPack, type ColdPackStatus, type ColdStorage, type StorageKind, type WaitOptions, type WarmOptions, type WarmResult } from './cold-facade.js';
import { RepoContext } from './context.js';
import { IndexStore, type IndexProblem } from './index-store.js';
import { KeyStore } from './key-store.js';
import { LockManager, type LockHandle, type LockInfo, type LockOptions } from './locks.js';
import { initRepository, openRepository, type Credentials, type InitOptions } from './opening.js';
import type { SnapshotFilter } from './snapshot-select.js';
import { SnapshotStore, type Snapshot } from './snapshot-store.js';
import { retagSnapshot } from './snapshot-retag.js';
import { mapLimit } from './map-limit.js';
import { loadParity, setParity } from './parity-settings.js';
import { dropOrphanParity, parityCoverage, repairPacks, type PackRepairReport } from './parity-repair.js';
import { loadStorageClasses, setStorageClasses, type ClassChange } from './storage-classes.js';

export { mapLimit };
export type { Credentials, InitOptions } from './opening.js';
export type { IndexProblem } from './index-store.js';
export type { SealedBatch } from './blob-reader.js';
export type { Snapshot } from './snapshot-store.js';
export type { LockHandle, LockInfo, LockOptions } from './locks.js';
export { describeLock } from './locks.js';
export type { DataSubset } from './check-subset.js';
export { BLOB_STATES_WARMEST_FIRST } from './cold-facade.js';
export type { BlobState, ColdOptions, ColdPack, ColdPackStatus, ColdStorage, WaitOptions, WarmOptions, WarmResult } from './cold-facade.js';

export class Repository {
  private readonly keys: KeyStore;
  private readonly indexes: IndexStore;
  private writer: BlobWriter | DryRunWriter;
  private dryRun = false;
  private readonly reader: BlobReader;
  private readonly snapshots: SnapshotStore;
  private readonly colds: ColdFacade;
  private readonly locks: LockManager;

  private constructor(private readonly ctx: RepoContext) {
    this.keys = new KeyStore(ctx);
    this.indexes = new IndexStore(ctx, this.keys);
    this.writer = new BlobWriter(ctx, this.indexes);
    this.colds = new ColdFacade(ctx, this.indexes);
    this.reader = new BlobReader(ctx, this.indexes, this.colds);
    this.snapshots = new SnapshotStore(ctx, this.keys);
    this.locks = new LockManager(ctx.backend);
  }

  static async init(backend: Backend, password: string, opts: InitOptions = {}): Promise<Repository> {
    const ctx = await initRepository(backend, password, opts);
    await loadParity(ctx, () => {});
    return new Repository(ctx);
  }

  /** Opens with a passphrase (the full key) or a writer key file; see opening.ts. */
  static async open(backend: Backend, creds: Credentials): Promise<Repository> {
    const ctx = await openRepository(backend, creds);
    await loadStorageClasses(ctx, creds.onWarning ?? (() => {}));
    await loadParity(ctx, creds.onWarning ?? (() => {}));
    const repo = new Repository(ctx);
    // Commands that load the index read snapshots next, each checked against its signer's
    // key: those keys are listed now, beside the index, not one round trip after the snapshot.
    if (creds.warmStart === 'index' && ctx.canRead) void repo.keys.signerKeys().catch(() => {});
    return repo;
  }

  /** The classes new objects go to: config's, tree and index superseded by `tsbak config set` (storage-classes.ts). */
  get storageClasses(): { data: StorageClass; tree: StorageClass; index: StorageClass; other: StorageClass } {
    return this.ctx.classes;
  }

  /** The seq of the storage class settings that apply (0: config's classes). */
  get storageClassSettingsSeq(): number {
    return this.ctx.settingsSeq;
  }

  /** Changes the classes of new tree packs and index files (full key only): a new signed settings object. */
  setStorageClasses(change: ClassChange) {
    return setStorageClasses(this.ctx, change);
  }

  /** Parity of new packs (K+M, or null), parity-settings.ts. */
  get parity(): { k: number; m: number } | null {
    return this.ctx.parity;
  }

  /** `tsbak parity set` / `init --parity` (full key only). */
  setParity(spec: string) {
    return setParity(this.ctx, spec);
  }

  /** Finds lost or damaged packs and, with `fix`, rebuilds them from parity (parity-repair.ts). */
  repairPacks(opts: { fix: boolean; onProgress?: (m: string) => void }): Promise<PackRepairReport> {
    return repairPacks(this.ctx, this.indexes, this.colds, opts);
  }

  /** Deletes the parity of groups whose packs are all gone (prune); how many objects. */
  dropOrphanParity(): Promise<number> {
    return dropOrphanParity(this.ctx);
  }

  /** Which of these lost or damaged packs parity can rebuild (check's report). */
  parityCoverage(bad: Set<string>) {
    return parityCoverage(this.ctx, bad);
  }

  get backend(): Backend {
    return this.ctx.backend;
  }
  get config(): RepoConfig {
    return this.ctx.config;
  }
  get secrets(): WriterSecrets | FullSecrets {
    return this.ctx.secrets;
  }
  get id(): string {
    return this.ctx.config.id;
  }
  /** True with the full key; false with a write-only key. */
  get canRead(): boolean {
    return this.ctx.canRead;
  }
  /** Told about damage that is skipped rather than fatal (a damaged index file, a damaged copy). */
  get onWarning(): ((message: string) => void) | null {
    return this.ctx.onWarning;
  }
  set onWarning(f: ((message: string) => void) | null) {
    this.ctx.onWarning = f;
  }

  // ---- keys (key-store.ts) ----
  get masterSignPub(): Buffer | null {
    return this.ctx.masterSignPub;
  }
  configSigned(): Promise<boolean> {
    return this.keys.configSigned();
  }
  signConfig(): Promise<boolean> {
    return this.keys.signConfig();
  }
  addWriterKey(name: string, passphrase: string | undefined, save: (file: WriterKeyFile) => Promise<void>): Promise<WriterKeyFile> {
    return this.keys.addWriterKey(name, passphrase, save);
  }
  addPassword(passphrase: string): Promise<string> {
    return this.keys.addPassword(passphrase);
  }
  changePassword(passphrase: string): Promise<{ added: string; removed: string }> {
    return this.keys.changePassword(passphrase);
  }
  listKeys(): ReturnType<KeyStore['listKeys']> {
    return this.keys.listKeys();
  }
  /** Revokes a writer key; the snapshots it signed so far stay trusted (key-store.ts). */
  revokeWriterKey(ref: string): Promise<{ keyId: string; name: string; kept: number }> {
    return this.keys.revokeWriterKey(ref, async (keyId) => (await this.listSnapshots(() => {})).filter((s) => s.signer.id === keyId).map((s) => s.id));
  }

  // ---- index (index-store.ts) ----
  get index(): BlobIndex {
    return this.indexes.index;
  }
  get indexProblems(): IndexProblem[] {
    return this.indexes.indexProblems;
  }
  get indexFiles(): string[] {
    return this.indexes.indexFiles;
  }
  /**
   * Throws LOCKED when index files loaded earlier are no longer listed (IndexStore.vanished):
   * a backup calls it after loading the index under its lock, since it would otherwise
   * reuse blobs of packs a prune deleted meanwhile.
   */
  assertIndexCurrent(): void {
    const gone = [...this.indexes.vanished];
    if (gone.length) throw new TsbakError('LOCKED', `${gone.length} index file${gone.length > 1 ? 's' : ''} loaded before this backup took its lock (${gone[0]}${gone.length > 1 ? ', ...' : ''}) ${gone.length > 1 ? 'were' : 'was'} deleted since (a prune or repair ran meanwhile); nothing was saved, run the backup again`);
  }
  get trustWriters(): boolean {
    return this.indexes.trustWriters;
  }
  set trustWriters(v: boolean) {
    this.indexes.trustWriters = v;
  }
  trustedSigners(): { all: boolean; keyIds: string[] } {
    return this.indexes.trustedSigners();
  }
  loadIndex(): Promise<void> {
    return this.indexes.loadIndex();
  }
  /** Listings from somewhere other than index files (pack headers), in memory only. */
  addListings(packs: IndexPack[], source: string): void {
    this.indexes.addListings(packs, source);
  }
  hasBlob(id: Buffer): boolean {
    return this.indexes.hasBlob(id);
  }
  preferSigner(keyId: string | null): void {
    this.indexes.preferSigner(keyId);
  }
  locations(id: Buffer): BlobLocation[] {
    return this.indexes.locations(id);
  }
  locate(id: Buffer): BlobLocation | undefined {
    return this.indexes.locate(id);
  }

  // ---- writing (blob-writer.ts; dry-run-writer.ts) ----
  /** From now on blobs are hashed and counted, never stored, and lock() writes no lock: backup --dry-run. */
  startDryRun(): void {
    this.dryRun = true;
    this.writer = new DryRunWriter(this.ctx, this.indexes);
  }
  get isDryRun(): boolean {
    return this.dryRun;
  }
  get objectsWritten(): BlobWriter['objectsWritten'] {
    return this.writer.objectsWritten;
  }
  blobId(data: Uint8Array): Buffer {
    return this.writer.blobId(data);
  }
  saveBlob(type: BlobType, plain: Uint8Array, knownId?: Buffer): Promise<{ id: Buffer; added: boolean }> {
    return this.writer.saveBlob(type, plain, knownId);
  }
  saveBlobDeferred(type: BlobType, plain: Uint8Array): Promise<{ id: Promise<Buffer> }> {
    return this.writer.saveBlobDeferred(type, plain);
  }
  /** Writes one index file (signed by this key) for packs already stored (prune's compact index, repair index); returns its name. */
  async writeIndexFile(packs: IndexPack[]): Promise<string> {
    const before = new Set(this.indexes.indexFiles);
    await this.indexes.writeIndex(packs);
    const name = this.indexes.indexFiles.find((f) => !before.has(f));
    if (!name) throw new TsbakError('BACKEND', 'an index file was written but not recorded');
    return name;
  }
  /** A copy of a blob already stored, in a new pack (prune's repack; see prune.ts). */
  saveBlobCopy(type: BlobType, id: Buffer, plain: Uint8Array): Promise<void> {
    return this.writer.saveBlobCopy(type, id, plain);
  }
  saveTree(tree: Tree): Promise<{ id: Buffer; added: boolean }> {
    return this.writer.saveTree(tree);
  }
  saveTreeBytes(bytes: Buffer): Promise<{ id: Buffer; added: boolean }> {
    return this.writer.saveTreeBytes(bytes);
  }
  get writeFailure(): unknown {
    return this.writer.writeFailure;
  }
  async closeWriter(): Promise<void> {
    await this.writer.closeWriter();
    // The tree packs written are being kept in the cache for the next run: let them land.
    await this.reader.treePacksKept();
  }
  get packerStats(): { bytesWritten: number; blobsWritten: number } {
    return this.writer.packerStats;
  }
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /**
   * Stops this process's writing for good (SIGINT/SIGTERM): temp files and multipart
   * uploads in flight are dropped, later writes refused, and the locks it holds deleted.
   */
  async abandonWrites(): Promise<void> {
    await this.ctx.backend.abandon?.().catch(() => {});
    await this.writer.abandon().catch(() => {});
    await this.locks.releaseAll();
  }

  // ---- locks (locks.ts) ----
  /** Shared (backup, check) or exclusive (forget, prune, repair); LOCKED on a conflict. */
  lock(opts: LockOptions): Promise<LockHandle> {
    // A dry run writes nothing to the repository, not even a lock.
    if (this.dryRun) return Promise.resolve({ release: async () => {}, assertHeld: () => {} });
    return this.locks.lock(opts);
  }
  listLocks(): Promise<LockInfo[]> {
    return this.locks.listLocks();
  }
  /** Stale locks, or all of them. */
  removeLocks(opts: { all: boolean }): Promise<{ removed: LockInfo[]; kept: LockInfo[] }> {
    return this.locks.removeLocks(opts);
  }

  // ---- cold storage (cold-facade.ts) ----
  setColdStorage(c: ColdStorage | null): void {
    this.colds.setColdStorage(c);
  }
  get coldStorage(): ColdStorage | null {
    return this.colds.coldStorage;
  }
  configureCold(o: ColdOptions): void {
    this.colds.configureCold(o);
  }
  packsOf(ids: Buffer[]): ColdPack[] {
    return this.colds.packsOf(ids);
  }
  blobState(id: Buffer): Promise<BlobState> {
    return this.colds.blobState(id);
  }
  fileState(contentIds: Buffer[]): Promise<BlobState> {
    return this.colds.fileState(contentIds);
  }
  packStates(ids: Buffer[], opts: { refresh?: boolean; signal?: AbortSignal } = {}): Promise<Array<{ pack: ColdPack; state: BlobState }>> {
    return this.colds.packStates(ids, opts);
  }
  warmBlobs(ids: Buffer[], opts: WarmOptions = {}): Promise<WarmResult> {
    return this.colds.warmBlobs(ids, opts);
  }
  waitForBlobs(ids: Buffer[], opts: WaitOptions = {}): Promise<boolean> {
    return this.colds.waitForBlobs(ids, opts);
  }
  coldStatus(): ColdPackStatus[] {
    return this.colds.coldStatus();
  }
  storageUsage(signal?: AbortSignal): Promise<Array<{ kind: StorageKind; storageClass: StorageClass; objects: number; bytes: number }>> {
    return this.colds.storageUsage(signal);
  }

  // ---- reading (blob-reader.ts) ----
  setCacheSize(bytes: number): void {
    this.reader.setCacheSize(bytes);
  }
  loadBlob(id: Buffer, signal?: AbortSignal, opts: { cache?: boolean } = {}): Promise<Buffer> {
    return this.reader.loadBlob(id, signal, opts);
  }
  loadBlobInto(id: Buffer, plainInto: (n: number) => Buffer, sealedPool?: SealedPool): Promise<Buffer> {
    return this.reader.loadBlobInto(id, plainInto, sealedPool);
  }
  loadTree(id: Buffer, opts: { cache?: boolean; wholePack?: boolean } = {}): Promise<Tree> {
    return this.reader.loadTree(id, opts);
  }
  verifyCopy(id: Buffer, loc: BlobLocation): Promise<void> {
    return this.reader.verifyCopy(id, loc);
  }
  writeBlobAt(id: Buffer, fd: number, pos: number, signal?: AbortSignal): Promise<number> {
    return this.reader.writeBlobAt(id, fd, pos, signal);
  }
  locateHot(id: Buffer): BlobLocation | undefined {
    return this.reader.locateHot(id);
  }
  readSealedBatch(locs: BlobLocation[], opts: { signal?: AbortSignal; alloc?: (n: number) => ArrayBuffer } = {}): Promise<SealedBatch> {
    return this.reader.readSealedBatch(locs, opts);
  }
  copyName(loc: BlobLocation): string {
    return this.reader.copyName(loc);
  }
  packKey(pack: PackRef): Buffer {
    return this.reader.packKey(pack);
  }
  get readConcurrency(): number {
    return this.reader.readConcurrency;
  }
  get readsInto(): boolean {
    return this.reader.readsInto;
  }
  readPackRange(pack: PackRef, offset: number, length: number, into?: Buffer, signal?: AbortSignal): Promise<Buffer> {
    return this.reader.readPackRange(pack, offset, length, into, signal);
  }
  writeSealedAt(id: Buffer, loc: BlobLocation, sealed: Buffer, fd: number, pos: number): Promise<number | 'auth' | 'id'> {
    return this.reader.writeSealedAt(id, loc, sealed, fd, pos);
  }
  verifyCopyIn(id: Buffer, loc: BlobLocation, sealed: Buffer): Promise<void> {
    return this.reader.verifyCopyIn(id, loc, sealed);
  }
  /**
   * Many trees at once: each a Tree, or what loading it alone threw. Read by pack
   * (tree-batch.ts); with the disk cache, through it (it fetches whole tree packs itself).
   */
  async loadTrees(ids: Buffer[], loader: TreeBatchLoader = new TreeBatchLoader(this)): Promise<Array<Tree | Error>> {
    if (!this.reader.cachesTrees) return loader.load(ids);
    const out: Array<Tree | Error> = new Array(ids.length);
    await mapLimit([...ids.keys()], this.readConcurrency, async (i) => {
      try {
        out[i] = await this.loadTree(ids[i]!, { cache: false });
      } catch (e) {
        out[i] = e instanceof Error ? e : new Error(String(e));
      }
    });
    return out;
  }
  useTreeCache(root: string | null, maxBytes?: number): void {
    this.reader.useTreeCache(root, maxBytes);
    // The trees a backup writes are the next backup's parent: kept, they cost it no GET.
    if (this.writer instanceof BlobWriter) this.writer.onTreePack = root ? (id, bytes) => this.reader.keepTreePack(id, bytes) : null;
  }
  hasCachedBlob(id: Buffer): boolean {
    return this.reader.hasCachedBlob(id);
  }
  cacheBlob(id: Buffer, plain: Buffer): void {
    this.reader.cacheBlob(id, plain);
  }

  // ---- snapshots (snapshot-store.ts) ----
  saveSnapshot(info: SnapshotInfo): Promise<string> {
    if (this.dryRun) throw new Error('a dry run writes no snapshot');
    return this.snapshots.saveSnapshot(info);
  }
  listSnapshotIds(): Promise<string[]> {
    return this.snapshots.listSnapshotIds();
  }
  useSnapshotCache(root: string | null): void {
    this.snapshots.useSnapshotCache(root);
  }
  /** With `cache: false`, the repository's object, never the local cache's copy (check). */
  loadSnapshot(id: string, opts: { cache?: boolean } = {}): Promise<Snapshot> {
    return this.snapshots.loadSnapshot(id, opts);
  }
  listSnapshots(onError?: (id: string, e: unknown) => void): Promise<Snapshot[]> {
    return this.snapshots.listSnapshots(onError);
  }
  /** Deletes a snapshot (forget): its object and its cached copy. */
  forgetSnapshot(id: string): Promise<void> {
    return this.snapshots.forgetSnapshot(id);
  }
  findSnapshot(ref: string, opts: { filter?: SnapshotFilter; onWarning?: (message: string) => void } = {}): Promise<Snapshot> {
    return this.snapshots.findSnapshot(ref, opts);
  }
  /** Replaces the snapshot by one with these tags, signed by the master (snapshot-retag.ts); its id. */
  retagSnapshot(snap: Snapshot, tags: string[]): Promise<string> {
    return retagSnapshot(this.ctx, this.snapshots, snap, tags);
  }
}
