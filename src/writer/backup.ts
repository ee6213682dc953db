// One backup run: walk the given paths, store new data and trees, then the index, then the
// snapshot, in that order, so an interrupted run never leaves a snapshot that points at
// missing data (the packs it did write are reused by the next run through the index, or
// removed by prune).
import { lstatSync } from 'node:fs';
import { constants as osConstants, hostname, userInfo } from 'node:os';
import type { SnapshotInfo, XattrKind } from '../format/snapshot.js';
import { sameNode, TreeEncoder, type Tree, type TreeNode } from '../format/tree.js';
import type { LockHandle, Repository } from '../repo/repository.js';
import { TsbakError } from '../errors.js';
import { captureMeta } from './capture.js';
import { parseXattrKinds, XattrKindsSeen } from '../format/xattr-kinds.js';
import { Chunker, chunkReader, gearTable, readBufferSize } from './chunker.js';
import { BufferPool } from '../repo/buffer-pool.js';
import { copiedAtOnce } from '../repo/packer.js';
import { changedBetween, openForBackupAsync, openForBackupSync, readSmallSync } from './file-reader.js';
import { ParentCache, defaultCacheDir } from './parent-cache.js';
import { isFuture, signerMatches } from '../repo/snapshot-select.js';
import { DirCache, subdirsHash, type DirRecord } from './dir-cache.js';
import { Semaphore } from '../repo/semaphore.js';
// Every syscall on an entry goes through withShortPath: trees nested deeper than PATH_MAX
// would otherwise fail with ENAMETOOLONG (see src/platform/long-path.ts).
import { shortPath, withShortPathSync } from '../platform/long-path.js';
import { readSmallFiles, scanDir, scanDirSync, type EntryStat, type ScannedEntry } from '../platform/native/scan.js';
import { programVersion } from '../platform/package.js';
import type { Excluder } from './exclude.js';
import { followed, planTargets, type Target } from './targets.js';
import { estimateBackupCost } from '../glacier/cost.js';

/** Recorded in snapshots and in the directory cache's fingerprint. */
const program = (): string => `tsbak ${programVersion()}`;

/** Read buffers of files being chunked, at most (a file over 1 MiB takes max chunk + 4 MiB). */
const READ_BUFFER_BYTES = 16 << 20;
const SMALL_READ_BUFFER = 1 << 20;

/** Entries of one directory handled at once. */
const ENTRY_BATCH = 64;
/** Subdirectories prepared (listed, small files read) ahead of the one being stored. */
const DIRS_AHEAD = 2;
/**
 * Directories whose own size (st_size) is at most this are listed on the main thread: one
 * block holds a few dozen entries on ext4 and xfs, and their statx calls cost less than
 * handing the listing to the pool and back (~50-90 µs on a 2-core VM). Larger ones go to the pool.
 */
const SYNC_SCAN_MAX = BigInt(process.env.TSBAK_SYNC_SCAN_MAX ?? 4096);
/** Bytes of small files one directory reads ahead in one call, and all directories together. */
const READ_AHEAD_BATCH = 1 << 20;
const READ_AHEAD_BYTES = 4 << 20;
/** Directories prepared ahead beyond the next ones of the directory being stored. */
const PREPARED_DIRS = 32;
/**
 * Directories still being saved while the walk goes on to their next sibling, in the whole
 * run; and groups of one directory's files in flight. TSBAK_WALK_SERIAL=1 makes both one
 * (the walk as before: for measuring, and tests comparing the two).
 */
const WALK_SERIAL = process.env.TSBAK_WALK_SERIAL === '1';
const DIRS_OVERLAPPED = WALK_SERIAL ? 0 : 1;
const GROUPS_IN_FLIGHT = WALK_SERIAL ? 1 : 2;
const { ENOENT } = osConstants.errno;

/** The fingerprint recorded for a directory that must not be reused (no listing hashes to it). */
const NEVER_MATCHES = Buffer.alloc(32);

/** A small file's contents, read on the pool, and their blob id, hashed there. */
interface ReadAhead {
  bytes: Buffer;
  id: Buffer;
}

/** One directory's parent-snapshot tree, listing and read-ahead contents (BackupRun.prepareDir). */
interface Visit {
  parent: Tree | null;
  /** The id of `parent` (null when it could not be loaded). */
  parentId: Buffer | null;
  /** parent's nodes by hex name. */
  parentNodes: Map<string, TreeNode>;
  /** null: not listed (only the given paths below it are visited), or listError. */
  entries: ScannedEntry[] | null;
  listError?: string;
  /** Contents of small files read ahead, checked against the entry's lstat. */
  contents: Map<ScannedEntry, ReadAhead>;
  /** Gives back the read-ahead buffer (idempotent). */
  release: () => void;
  /** The first subdirectories' visits, started as soon as this listing arrived. */
  ahead: Array<Promise<Visit> | undefined>;
  /** The path syscalls use for the directory when it is not its own path: `dir/.` for a symlink followed (a named path's parent, or an argument `link/`). */
  at?: Buffer;
  /** The listing's fingerprint, when the directory can be recorded (see dir-cache.ts). */
  fingerprint?: Buffer;
  /** The last run's record of this directory, when the listing is the same. */
  known?: DirRecord;
  /** Not listed: the caller says nothing below it changed (BackupOptions.unchangedDirs); `known` is its tree. */
  unread?: boolean;
}

/** Gives back what a visit holds, and what the visits it prepared hold (no-op for a visited one). */
function dropVisit(v: Visit): void {
  v.release();
  for (let i = 0; i < v.ahead.length; i++) {
    v.ahead[i]?.then(dropVisit, () => {});
    v.ahead[i] = undefined;
  }
}

function isDirectory(st: EntryStat): boolean {
  return (Number(st.mode) & 0o170000) === 0o040000;
}

function isSymlink(st: EntryStat): boolean {
  return (Number(st.mode) & 0o170000) === 0o120000;
}

function isRegularFile(st: EntryStat): boolean {
  return (Number(st.mode) & 0o170000) === 0o100000;
}

/** Whether a file is the same as in the parent snapshot: same size, mtime, ctime and inode. */
function unchangedSince(parent: TreeNode | null, st: EntryStat): boolean {
  return (
    !!parent &&
    parent.type === 'file' &&
    !!parent.content &&
    BigInt(parent.size) === st.size &&
    parent.mtimeNs === st.mtimeNs &&
    parent.ctimeNs === st.ctimeNs &&
    parent.ino === st.ino
  );
}

export interface BackupProgress {
  files: number;
  dirs: number;
  bytesRead: number;
  bytesAdded: number;
  current: string;
}

export interface BackupOptions {
  paths: string[];
  /** S3 Object Lock: recorded in the snapshot; beforeSnapshot locks what it reuses, before it is written. */
  objectLock?: { lock: NonNullable<SnapshotInfo['lock']>; beforeSnapshot: () => Promise<void> };
  tags?: string[];
  host?: string;
  /** Snapshot id to compare against; undefined: the latest of the same host and paths; null: none. */
  parent?: string | null;
  /** With the full key: the parent (the latest of the same host and paths) only among snapshots this key signed ("master", a writer's id, id prefix or name). */
  parentSigner?: string;
  cacheDir?: string | null;
  exclude?: Excluder;
  oneFileSystem?: boolean;
  onProgress?: (p: BackupProgress) => void;
  onWarning?: (path: string, message: string) => void;
  /** A file whose content is new ('new': not in the parent snapshot) or changed since the parent ('modified'). */
  onChange?: (path: string, change: 'new' | 'modified') => void;
  /** Files read concurrently. */
  concurrency?: number;
  /** How often to re-read a file that changes while it is read. */
  changeRetries?: number;
  /**
   * A watcher's word that nothing at or below this directory changed since the parent
   * snapshot (tsbak watch): such a directory is not listed at all when the last run
   * recorded it (dir-cache.ts) with its whole subtree reusable; its tree and its
   * subdirectories' records are taken over as they are.
   */
  unchangedDirs?: (dir: Buffer) => boolean;
  /** No snapshot when the tree comes out the same as the parent's (snapshotId '', unchanged true). */
  skipIfUnchanged?: boolean;
}

export interface BackupResult {
  /** '' after a dry run (repo.startDryRun): no snapshot was written. */
  snapshotId: string;
  info: SnapshotInfo;
  errors: Array<{ path: string; message: string }>;
  changed: string[];
  /** Directories listed as in the last run (with the same subdirectories), whose trees were reused unread. */
  dirsUnchanged: number;
  /** skipIfUnchanged and the tree is the parent's: no snapshot written. */
  unchanged?: boolean;
}

/**
 * The parts of the tree to visit: intermediate directories of the given paths, or everything
 * below a given path (target). A path named inside a target keeps its spec, so that it is
 * never excluded and a vanished one is reported.
 */
interface Spec {
  target: boolean;
  /**
   * A symlink here is followed and the directory it leads to saved under its name: always
   * for the parents of a given path outside any target (the kernel resolves them when it
   * reaches the path), and for an argument ending with '/' (targets.ts).
   */
  follow: boolean;
  children: Map<string, { name: Buffer; spec: Spec }>;
}

/** A name's bytes as a map key: latin1 maps each byte to one char, so it is exact and half the length of hex. */
const nameKey = (name: Buffer): string => name.toString('latin1');

function buildSpec(targets: Target[]): Spec {
  const root: Spec = { target: false, follow: true, children: new Map() };
  for (const t of targets) {
    let s = root;
    for (const comp of t.path.split('/').filter(Boolean)) {
      const name = Buffer.from(comp);
      const key = nameKey(name);
      let c = s.children.get(key);
      if (!c) s.children.set(key, (c = { name, spec: { target: false, follow: true, children: new Map() } }));
      s = c.spec;
    }
    s.target = true;
    s.follow = t.follow;
  }
  // Below a target everything is saved; the parents of a path named there are plain
  // directories of the listing (targets.ts refused symlinks among them).
  const inTarget = (s: Spec, under: boolean) => {
    for (const { spec: c } of s.children.values()) {
      if (under && !c.target) (c.target = true), (c.follow = false);
      inTarget(c, under || c.target);
    }
  };
  inTarget(root, root.target);
  return root;
}

function joinPath(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 1 && dir[0] === 0x2f ? Buffer.concat([dir, name]) : Buffer.concat([dir, Buffer.from('/'), name]);
}

export async function backup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  return new BackupRun(repo, opts).run();
}

class BackupRun {
  private readonly chunker: Chunker;
  private readonly files: Semaphore;
  /** Bytes of read buffers in use: large files wait for room instead of each taking 8 MiB. */
  private readonly readBytes = new Semaphore(READ_BUFFER_BYTES);
  private readonly readBuffers = new BufferPool(READ_BUFFER_BYTES);
  /** Bytes of small files read ahead and not stored yet. */
  private readonly readAheadBytes = new Semaphore(READ_AHEAD_BYTES);
  /** Directories prepared ahead of need: each, once listed, starts its first subdirectories. */
  private readonly preparedDirs = new Semaphore(PREPARED_DIRS);
  /** Subdirectories left finishing while their next sibling is saved (saveSubdirs). */
  private readonly overlappedDirs = new Semaphore(DIRS_OVERLAPPED);
  private readonly inodes = new Map<string, Promise<Pick<TreeNode, 'content' | 'extents' | 'size'>>>();
  private readonly cache: ParentCache | null;
  /** dev:ino -> atime of the first lstat of a hardlinked inode (see saveEntry). */
  private readonly inodeAtimes = new Map<string, bigint>();
  private readonly errors: Array<{ path: string; message: string }> = [];
  private readonly changed: string[] = [];
  private readonly progress: BackupProgress = { files: 0, dirs: 0, bytesRead: 0, bytesAdded: 0, current: '' };
  private rootDevs = new Set<bigint>();
  /** The last run's directories (dir-cache.ts), and this run's. */
  private lastDirs: DirCache | null = null;
  private nextDirs: DirCache | null = null;
  /** Directories (latin1 paths) with an entry that failed or changed while read. */
  private readonly dirtyDirs = new Set<string>();
  /** Directories whose tree came from the last run's record, unread. */
  private dirsUnchanged = 0;
  /** The kinds of xattr of the entries written (the snapshot's xattrKinds). */
  private readonly xattrKinds = new XattrKindsSeen();
  /** Whether a given path's entry differs from the parent snapshot's (skipIfUnchanged). */
  private targetsChanged = false;
  /** Directories taken over unlisted (BackupOptions.unchangedDirs), as latin1 paths. */
  private readonly unreadRoots = new Set<string>();
  /** Directories with a record below them (or their own) that must not be reused: never taken over unlisted. */
  private holdsUnreusable: Set<string> | null = null;

  constructor(
    private readonly repo: Repository,
    private readonly opts: BackupOptions,
  ) {
    this.files = new Semaphore(opts.concurrency ?? 8);
    this.chunker = new Chunker(repo.config.chunker, gearTable(repo.secrets.chunkerSeed));
    const dir = opts.cacheDir === undefined ? defaultCacheDir() : opts.cacheDir;
    this.cache = dir ? new ParentCache(dir, repo.id) : null;
  }

  async run(): Promise<BackupResult> {
    const lock = await this.repo.lock({ exclusive: false, operation: 'backup' });
    try {
      return await this.runLocked(lock);
    } finally {
      await this.repo.closeWriter().catch(() => {});
      await lock.release().catch(() => {});
    }
  }

  private async runLocked(lock: LockHandle): Promise<BackupResult> {
    const start = Date.now();
    const time = new Date(start).toISOString();
    const targets = planTargets(this.opts.paths);
    const paths = targets.map((t) => t.path);
    for (const t of targets) this.rootDevs.add(t.st.dev);
    const host = this.opts.host ?? hostname();
    await this.repo.loadIndex();
    this.repo.assertIndexCurrent();
    const parent = await this.findParent(host, paths);
    const dirsFile = this.cache ? this.cache.file(DirCache.fileName(host, paths)) : null;
    const settings = dirsFile ? dirCacheSettings(this.opts) : null;
    if (dirsFile && settings) {
      this.nextDirs = new DirCache();
      if (parent) this.lastDirs = await DirCache.load(dirsFile, parent.snapshot, settings, this.repo.indexFiles);
    }

    const rootSpec = buildSpec(targets);
    const rootId = await this.saveDir(Buffer.from('/'), rootSpec, await this.prepareDir(Buffer.from('/'), parent ? Buffer.from(parent.tree, 'hex') : null, rootSpec.target));
    await this.repo.flush();
    this.takeOverUnread();
    this.progress.bytesAdded = this.repo.packerStats.bytesWritten;
    const xattrKinds = this.xattrKinds.result(this.dirsUnchanged > 0, parent?.xattrKinds);
    const info: SnapshotInfo = {
      time,
      host,
      user: safeUser(),
      paths,
      tags: this.opts.tags ?? [],
      tree: rootId.toString('hex'),
      ...(parent ? { parent: parent.snapshot } : {}),
      program: program(),
      stats: {
        files: this.progress.files,
        dirs: this.progress.dirs,
        bytesRead: this.progress.bytesRead,
        bytesAdded: this.repo.packerStats.bytesWritten,
        blobsAdded: this.repo.packerStats.blobsWritten,
        durationMs: Date.now() - start,
        errors: this.errors.length,
      },
      // What this backup adds to the monthly bill (the snapshot object itself is ~1 KB).
      costUsd: estimateBackupCost({ storageClass: this.repo.storageClasses }, [...this.repo.objectsWritten, { kind: 'snapshot', bytes: 1024 }]).monthlyUsd,
      ...(xattrKinds ? { xattrKinds } : {}),
    };
    if (this.repo.isDryRun) return { snapshotId: '', info, errors: this.errors, changed: this.changed, dirsUnchanged: this.dirsUnchanged };
    // The given paths as in the parent: no snapshot, even when the directories above them
    // (recorded, not backed up) changed their own metadata, as /tmp or /home do.
    if (this.opts.skipIfUnchanged && parent && !this.targetsChanged) {
      // The records describe the parent's tree as well: the next run starts from them.
      if (dirsFile && settings && this.nextDirs) await this.nextDirs.save(dirsFile, parent.snapshot, settings, this.repo.indexFiles).catch(() => {});
      return { snapshotId: '', info, errors: this.errors, changed: this.changed, dirsUnchanged: this.dirsUnchanged, unchanged: true };
    }
    // Packs this run counted on may have been pruned if others took our lock for stale.
    lock.assertHeld();
    if (this.opts.objectLock) {
      info.lock = this.opts.objectLock.lock;
      await this.opts.objectLock.beforeSnapshot();
    }
    const snapshotId = await this.repo.saveSnapshot(info);
    if (this.cache) await this.cache.setParent(ParentCache.key(host, paths), { snapshot: snapshotId, tree: info.tree, time }).catch(() => {});
    if (dirsFile && settings && this.nextDirs) await this.nextDirs.save(dirsFile, snapshotId, settings, this.repo.indexFiles).catch(() => {});
    return { snapshotId, info, errors: this.errors, changed: this.changed, dirsUnchanged: this.dirsUnchanged };
  }

  /** The records below the directories taken over unlisted, into this run's cache, and their files and directories into the counts. */
  private takeOverUnread(): void {
    if (!this.unreadRoots.size || !this.lastDirs || !this.nextDirs) return;
    const { dirs, files } = this.lastDirs.copyBelow(this.unreadRoots, this.nextDirs);
    this.progress.files += files;
    this.progress.dirs += dirs;
    this.dirsUnchanged += dirs;
  }

  /** Whether the last run's record of `dir` can stand for its whole subtree unlisted. */
  private reusableUnread(dir: Buffer, known: DirRecord): boolean {
    if (known.fingerprint.equals(NEVER_MATCHES) || !this.repo.hasBlob(known.tree)) return false;
    if (!this.holdsUnreusable) {
      this.holdsUnreusable = new Set();
      for (const p of this.lastDirs!.pathsWithFingerprint(NEVER_MATCHES)) {
        for (let q = p; q.length > 0 && !this.holdsUnreusable.has(q); ) {
          this.holdsUnreusable.add(q);
          const cut = q.lastIndexOf('/');
          q = cut <= 0 ? (q === '/' ? '' : '/') : q.slice(0, cut);
        }
      }
    }
    return !this.holdsUnreusable.has(dir.toString('latin1'));
  }

  private async findParent(host: string, paths: string[]): Promise<{ snapshot: string; tree: string; xattrKinds?: Set<XattrKind> } | null> {
    if (this.opts.parent === null) return null;
    if (!this.repo.canRead) {
      // A write-only key cannot read snapshots: the local cache remembers the last one.
      return this.cache ? await this.cache.getParent(ParentCache.key(host, paths)) : null;
    }
    if (this.opts.parent) {
      const s = await this.repo.findSnapshot(this.opts.parent);
      return { snapshot: s.id, tree: s.info.tree, xattrKinds: parseXattrKinds(s.info.xattrKinds) };
    }
    const key = ParentCache.key(host, paths);
    const all = await this.repo.listSnapshots(() => {});
    // The latest of the same host and paths (as restic), never one dated more than a day
    // ahead: a writer key could date one 9999 to be every later backup's parent.
    // And one this key signed unless --signer says otherwise: a writer's tree could name
    // chunks its own index lists for files that look unchanged.
    const now = Date.now();
    const signer = this.opts.parentSigner ?? this.repo.secrets.keyId;
    for (let i = all.length - 1; i >= 0; i--) {
      const s = all[i]!;
      if (ParentCache.key(s.info.host, s.info.paths) !== key || isFuture(s.info, now)) continue;
      if (signerMatches(s.signer, signer)) return { snapshot: s.id, tree: s.info.tree, xattrKinds: parseXattrKinds(s.info.xattrKinds) };
    }
    return null;
  }

  private async loadTree(id: Buffer): Promise<Tree | null> {
    if (this.repo.canRead) {
      try {
        // Each parent tree is read once: caching it would only hold memory.
        return await this.repo.loadTree(id, { cache: false });
      } catch {
        return null; // a damaged parent only costs re-reading
      }
    }
    return this.cache ? this.cache.loadTree(id) : null;
  }

  /** The directory holding p gets a tree that is not only a function of its listing: never recorded. */
  private markDirty(p: Buffer): void {
    const cut = p.lastIndexOf(0x2f);
    this.dirtyDirs.add(cut <= 0 ? '/' : p.toString('latin1', 0, cut));
  }

  private warn(p: Buffer, message: string): void {
    this.markDirty(p);
    const ps = p.toString();
    this.errors.push({ path: ps, message });
    this.opts.onWarning?.(ps, message);
  }

  /**
   * What saveDir needs of a directory, gathered ahead of time (see prepareDir): its tree in
   * the parent snapshot, its listing with every entry's lstat (and xattrs when there is no
   * parent tree to take them from), and the contents of the small files that need reading.
   */
  private async prepareDir(dir: Buffer, parentId: Buffer | null, list: boolean, st?: EntryStat, at?: Buffer): Promise<Visit> {
    const visit: Visit = { parent: null, parentId: null, parentNodes: new Map(), entries: null, contents: new Map(), release: () => {}, ahead: [], ...(at ? { at } : {}) };
    // With a record of this directory from the last run, the listing comes first: when it
    // matches, the parent tree is not needed at all.
    const known = list ? this.lastDirs?.get(dir) : undefined;
    if (known && this.opts.unchangedDirs?.(dir) && this.reusableUnread(dir, known)) {
      visit.known = known;
      visit.unread = true;
      return visit;
    }
    if (!known) await this.loadParent(visit, parentId);
    if (!list) return visit;
    const sp = shortPath(at ?? dir);
    try {
      const withXattrs = !known && visit.parent === null;
      const scan = st && st.size <= SYNC_SCAN_MAX ? scanDirSync(sp.path, withXattrs) : await scanDir(sp.path, withXattrs);
      visit.entries = scan.entries;
      if (this.nextDirs && scan.entries.every((e) => e.ok && (e.nlink1 || e.isDir))) {
        visit.fingerprint = scan.fingerprint();
        if (known?.fingerprint.equals(visit.fingerprint)) visit.known = known;
      }
    } catch (e: any) {
      visit.listError = e.code ?? e.message;
      sp.close();
      return visit;
    }
    if (known && !visit.known) await this.loadParent(visit, parentId ?? known.tree);
    // Its first subdirectories, while this directory waits for its turn: a depth-first walk
    // otherwise waits for every listing, one after the other.
    for (const e of visit.entries) {
      if (visit.ahead.length >= DIRS_AHEAD) break;
      if (!e.isDir) continue;
      if (!this.preparedDirs.tryAcquire()) break;
      const v = this.prepareSubdir(joinPath(dir, e.name), { name: e.name, spec: null, scanned: e }, visit.parentNodes);
      if (!v) {
        this.preparedDirs.release();
        break;
      }
      v.then((x) => {
        const release = x.release;
        x.release = () => {
          release();
          this.preparedDirs.release();
          x.release = () => {};
        };
      }, () => this.preparedDirs.release());
      visit.ahead.push(v);
    }
    try {
      if (!visit.known) await this.readAhead(sp.path, visit);
    } finally {
      sp.close();
    }
    return visit;
  }

  /** Loads the directory's tree in the parent snapshot into the visit. */
  private async loadParent(visit: Visit, parentId: Buffer | null): Promise<void> {
    visit.parent = parentId ? await this.loadTree(parentId) : null;
    visit.parentId = visit.parent ? parentId : null;
    visit.parentNodes.clear();
    for (const n of visit.parent?.nodes ?? []) visit.parentNodes.set(nameKey(n.name), n);
  }

  /** The tree of a subdirectory in the parent snapshot: from the parent tree, or from the last run's record. */
  private parentSubtree(childPath: Buffer, name: Buffer, parentNodes: Map<string, TreeNode>): Buffer | null {
    const pn = parentNodes.get(nameKey(name));
    if (pn) return pn.type === 'dir' && pn.subtree ? pn.subtree : null;
    return this.lastDirs?.get(childPath)?.tree ?? null;
  }

  /**
   * Reads the directory's small files that the backup will store (new or changed since the
   * parent snapshot), in one call on the thread pool, within a bound of bytes held ahead.
   * Files left out (no room, changed meanwhile, errors) are read the usual way later.
   */
  private async readAhead(dir: Buffer, visit: Visit): Promise<void> {
    const want: ScannedEntry[] = [];
    let bytes = 0;
    for (const e of visit.entries!) {
      if (!this.wantsRead(e, visit)) continue;
      const size = Number(e.st!.size);
      if (bytes + size > READ_AHEAD_BATCH) break;
      want.push(e);
      bytes += size;
    }
    if (!want.length || !this.readAheadBytes.tryAcquire(bytes)) return;
    const release = await this.readInto(dir, want, bytes, visit);
    visit.release = () => {
      visit.contents.clear(); // views into the buffer given back
      release();
      this.readAheadBytes.release(bytes);
      visit.release = () => {};
    };
  }

  /** Whether a file of this size is one chunk that the packer takes before saveBlob first yields (its buffer reusable at once). */
  private oneSmallBlob(size: number): boolean {
    return size < this.chunker.params.min && copiedAtOnce(size);
  }

  /** Whether the entry is a small file the backup will read (new or changed), not read yet. */
  private wantsRead(e: ScannedEntry, visit: Visit): boolean {
    const st = e.st;
    if (!st || !isRegularFile(st) || st.nlink !== 1n || visit.contents.has(e)) return false;
    const size = Number(st.size);
    if (size === 0 || !this.oneSmallBlob(size) || Number(st.blocks) * 512 < size) return false;
    return !unchangedSince(visit.parentNodes.get(nameKey(e.name)) ?? null, st);
  }

  /**
   * Reads these small files of `dir` (bytes: their sizes' sum) in one call on the thread
   * pool into visit.contents; returns what gives the buffer back. A file that is no longer
   * as scanned, or fails, is left out (the usual path reads it, or reports it).
   */
  private async readInto(dir: Buffer, want: ScannedEntry[], bytes: number, visit: Visit): Promise<() => void> {
    const ab = this.readBuffers.take(bytes);
    const release = () => this.readBuffers.give(ab);
    const expect = new BigInt64Array(want.length * 3);
    want.forEach((e, i) => {
      expect[i * 3] = e.st!.size;
      expect[i * 3 + 1] = e.st!.mtimeNs;
      expect[i * 3 + 2] = e.st!.ctimeNs;
    });
    const buf = Buffer.from(ab);
    const ids = Buffer.allocUnsafeSlow(32 * want.length);
    let results: Int32Array;
    try {
      results = await readSmallFiles(dir, want.map((e) => e.name), expect, buf, { macKey: this.repo.secrets.macKey, ids });
    } catch {
      return release;
    }
    let at = 0;
    want.forEach((e, i) => {
      const n = results[i]!;
      if (n >= 0) visit.contents.set(e, { bytes: buf.subarray(at, at + n), id: ids.subarray(32 * i, 32 * i + 32) });
      at += Number(e.st!.size);
    });
    return release;
  }

  /** Stores one directory's tree (spec null: everything below) and returns its id. */
  private async saveDir(dir: Buffer, spec: Spec | null, visit: Visit): Promise<Buffer> {
    try {
      return await this.saveDirEntries(dir, spec, visit);
    } finally {
      visit.release();
    }
  }

  private async saveDirEntries(dir: Buffer, spec: Spec | null, visit: Visit): Promise<Buffer> {
    this.progress.dirs++;
    if (visit.unread && visit.known) {
      this.nextDirs?.set(dir, visit.known);
      this.unreadRoots.add(dir.toString('latin1'));
      this.progress.files += visit.known.files;
      this.dirsUnchanged++;
      return visit.known.tree;
    }
    let names: Array<{ name: Buffer; spec: Spec | null; dir: boolean; scanned?: ScannedEntry }>;
    if (spec && !spec.target) {
      names = [...spec.children.values()].map((c) => ({ name: c.name, spec: c.spec, dir: true }));
    } else if (visit.entries) {
      const named = spec?.children.size ? spec.children : null;
      names = visit.entries.map((e) => {
        // A path named inside this one keeps its spec. `dir` stays as listed: `ahead` (prepareDir)
        // is indexed by the listed subdirectories; a symlink to follow is saved among the leaves.
        return { name: e.name, spec: named?.get(nameKey(e.name))?.spec ?? null, dir: e.isDir, scanned: e };
      });
      if (named) {
        this.reportMissing(dir, named, visit.entries);
        // A symlink followed in here (`dir/link/` named): the tree depends on more than this
        // listing and the subdirectories', so it is never reused from the last run's record.
        if ([...named.values()].some((c) => c.spec.follow)) {
          this.dirtyDirs.add(dir.toString('latin1'));
          if (visit.known) {
            await this.loadParent(visit, visit.known.tree);
            visit.known = undefined;
          }
        }
      }
      // From here on each entry is reached through `names` only, and let go once saved
      // (saveLeaves): an 18k-entry directory held ~9 MB of lstat objects to its end.
      visit.entries = [];
    } else {
      this.warn(dir, `cannot list directory: ${visit.listError ?? 'unknown error'}`);
      names = [];
    }
    // Files of one directory are saved concurrently (bounded), subdirectories one after the
    // other: memory stays proportional to the depth and width of the tree, not its size.
    // The next few subdirectories are prepared (listed, small files read) ahead, on the
    // thread pool, while this one's entries are stored.
    // Each entry's node is encoded as soon as it is saved, and let go (but a directory's):
    // a node object costs ~4x its encoding, and a directory's nodes were all held to its end.
    const tree = new TreeEncoder();
    const dirNodes: TreeNode[] = [];
    let files = 0;
    // Whether every entry so far is the same as in the parent tree (then, if none is gone,
    // the tree is the parent's: nothing to store).
    let asParent = true;
    const one = async ({ name, spec: childSpec, scanned, dir: isDir }: { name: Buffer; spec: Spec | null; scanned?: ScannedEntry; dir: boolean }, next?: Promise<Visit>) => {
      const node = await this.saveEntry(joinPath(dir, name), name, childSpec, visit.parentNodes.get(nameKey(name)) ?? null, scanned, visit.contents.get(scanned!), next);
      if (childSpec?.target && !spec?.target && !sameTarget(node, visit.parentNodes.get(nameKey(name)))) this.targetsChanged = true;
      if (!node) return;
      if (asParent) {
        const p = visit.parentNodes.get(nameKey(node.name));
        asParent = !!p && sameNode(node, p);
      }
      this.xattrKinds.note(node.xattrs);
      tree.add(node);
      if (node.type === 'file') files++;
      if (isDir) dirNodes.push(node);
    };
    const subdirs = names.filter((n) => n.dir);
    const leaves = names.filter((n) => !n.dir);
    const ahead: Array<Promise<Visit> | undefined> = visit.ahead;
    const prepareAhead = (upTo: number) => {
      for (let i = ahead.length; i < Math.min(upTo, subdirs.length); i++) ahead.push(this.prepareSubdir(joinPath(dir, subdirs[i]!.name), subdirs[i]!, visit.parentNodes));
    };
    const saveLeaves = async () => {
      // In groups: up to ENTRY_BATCH entries, and small files not read ahead up to
      // READ_AHEAD_BATCH bytes, read in one call on the pool before the group is stored. The
      // next group's files are read while this one is stored, and the next group is started
      // while this one's stragglers (a large file) finish: two groups stored at most, so the
      // walk does not stop at every group's slowest entry nor wait for each group's read.
      // (A group is let go once started: its entries' lstat objects must not live to the
      // directory's end, see above.)
      const groups: Array<{ group: typeof leaves; late: ScannedEntry[]; bytes: number } | null> = [];
      for (let i = 0; i < leaves.length; ) {
        const group: typeof leaves = [];
        const late: ScannedEntry[] = [];
        let bytes = 0;
        for (; i < leaves.length && group.length < ENTRY_BATCH; i++) {
          const e = leaves[i]!.scanned;
          const size = e && this.wantsRead(e, visit) ? Number(e.st!.size) : 0;
          if (size && bytes + size > READ_AHEAD_BATCH && group.length) break;
          group.push(leaves[i]!);
          if (size) late.push(e!);
          bytes += size;
        }
        groups.push({ group, late, bytes });
      }
      const read = async ({ late, bytes }: NonNullable<(typeof groups)[number]>): Promise<() => void> => {
        if (!late.length) return () => {};
        const sp = shortPath(visit.at ?? dir);
        try {
          return await this.readInto(sp.path, late, bytes, visit);
        } finally {
          sp.close();
        }
      };
      let next: Promise<() => void> | null = groups.length ? read(groups[0]!) : null;
      let last: Promise<void> | null = null;
      try {
        for (let k = 0; k < groups.length; k++) {
          const { group, late } = groups[k]!;
          groups[k] = null;
          const release = await next!;
          next = k + 1 < groups.length && GROUPS_IN_FLIGHT > 1 ? read(groups[k + 1]!) : null;
          const stored = Promise.all(group.map((l) => one(l))).then(() => {}).finally(() => {
            release();
            for (const e of late) visit.contents.delete(e);
            for (const l of group) l.scanned = undefined;
          });
          stored.catch(() => {}); // awaited below, after the next group started
          if (GROUPS_IN_FLIGHT === 1) {
            await stored;
            if (k + 1 < groups.length) next = read(groups[k + 1]!);
            continue;
          }
          if (last) {
            // A failed group ends the directory once the other one is done with the visit's buffers.
            await last.catch(async (e) => {
              await stored.catch(() => {});
              throw e;
            });
          }
          last = stored;
        }
      } catch (e) {
        // Nothing may still use the visit's buffers when the error goes up (saveDir releases them).
        await last?.catch(() => {});
        await next?.then((release) => release(), () => {});
        throw e;
      }
      if (last) await last;
      visit.release(); // the read-ahead contents are stored
    };
    const saveSubdirs = async () => {
      // One after the other, but a subdirectory may be left finishing (its last large files
      // read and hashed) while the next one starts, as long as the run has a token for it
      // (DIRS_OVERLAPPED in all): the walk no longer stops at each directory's slowest file.
      const overlapped: Array<Promise<void>> = [];
      try {
        for (let i = 0; i < subdirs.length; i++) {
          prepareAhead(i + 1 + DIRS_AHEAD);
          const saved = one(subdirs[i]!, ahead[i]).finally(() => {
            // Not visited after all (excluded, not a directory any more): give its read-ahead back.
            ahead[i]?.then(dropVisit, () => {});
            ahead[i] = undefined;
          });
          if (i + 1 < subdirs.length && DIRS_OVERLAPPED > 0 && this.overlappedDirs.tryAcquire()) {
            const left = saved.finally(() => this.overlappedDirs.release());
            left.catch(() => {}); // awaited below
            overlapped.push(left);
          } else {
            await saved;
          }
        }
      } finally {
        // Every subdirectory is done (or failed) before the directory's tree is made or the error goes up.
        const settled = await Promise.allSettled(overlapped);
        const failed = settled.find((r) => r.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
      }
    };
    prepareAhead(DIRS_AHEAD);
    if (visit.known) {
      // Listed as in the last run: the tree is the same if the subdirectories' are.
      await saveSubdirs();
      const sub = subdirsHash(dirNodes);
      if (sub.equals(visit.known.subdirs) && this.repo.hasBlob(visit.known.tree) && !this.dirtyDirs.has(dir.toString('latin1'))) {
        this.nextDirs?.set(dir, visit.known);
        this.progress.files += visit.known.files;
        this.dirsUnchanged++;
        return visit.known.tree;
      }
      await this.loadParent(visit, visit.known.tree);
      await saveLeaves();
    } else {
      await saveLeaves();
      await saveSubdirs();
    }
    const id = await this.treeOf(tree, asParent, visit);
    if (this.nextDirs && (!spec || spec.target)) {
      // Recorded even when it cannot be reused (no fingerprint: it never matches), so that
      // next time its subdirectories find their parent trees under an unchanged parent.
      const reusable = visit.fingerprint && !this.dirtyDirs.has(dir.toString('latin1'));
      this.nextDirs.set(dir, { fingerprint: reusable ? visit.fingerprint! : NEVER_MATCHES, subdirs: subdirsHash(dirNodes), tree: id, files });
    }
    return id;
  }

  /** The id of the tree of these entries, stored if new; asParent: each entry is as in the parent tree. */
  private async treeOf(tree: TreeEncoder, asParent: boolean, visit: Visit): Promise<Buffer> {
    const { parent, parentId } = visit;
    // Every entry as in the parent tree, and as many: its bytes, hence its id, would be the
    // same, and it is stored already. Nothing to encode, hash or save. (Not a parent tree
    // with refused entries: its bytes hold more than its nodes.)
    if (asParent && parent && parentId && !parent.rejected && tree.count === parent.nodes.length && this.repo.hasBlob(parentId)) return parentId;
    const bytes = tree.finish();
    const { id } = await this.repo.saveTreeBytes(bytes);
    if (this.cache && !this.repo.canRead && !this.repo.isDryRun) await this.cache.saveTree(id, bytes).catch(() => {});
    return id;
  }

  /** Paths named inside a listed directory that the listing does not hold: gone since the run started. */
  private reportMissing(dir: Buffer, named: Map<string, { name: Buffer }>, entries: ScannedEntry[]): void {
    const listed = new Set(entries.map((e) => nameKey(e.name)));
    for (const [key, { name }] of named) if (!listed.has(key)) this.warn(joinPath(dir, name), 'cannot back up: no longer there');
  }

  /** prepareDir for a subdirectory about to be visited; undefined where saveEntry must look itself (not listed, another device, a symlink to follow). */
  private prepareSubdir(p: Buffer, d: { spec: Spec | null; scanned?: ScannedEntry; name: Buffer }, parentNodes: Map<string, TreeNode>): Promise<Visit> | undefined {
    const st = d.scanned?.st;
    if (!st || !isDirectory(st) || (this.opts.oneFileSystem && !d.spec && !this.rootDevs.has(st.dev))) return undefined;
    const v = this.prepareDir(p, this.parentSubtree(p, d.name, parentNodes), !d.spec || d.spec.target, st);
    v.catch(() => {}); // awaited later, or dropped if the entry turns out excluded
    return v;
  }

  private async saveEntry(p: Buffer, name: Buffer, spec: Spec | null, parent: TreeNode | null, scanned?: ScannedEntry, content?: ReadAhead, visit?: Promise<Visit>): Promise<TreeNode | null> {
    let st: EntryStat;
    // The path syscalls use for this entry: `p/.` for a symlink to follow (see Spec.follow).
    let at = p;
    if (spec?.follow && (!scanned?.st || isSymlink(scanned.st))) {
      at = Buffer.from(followed(p.toString('latin1')), 'latin1');
      scanned = content = visit = undefined; // what the listing saw is the symlink
    }
    if (scanned?.st) {
      st = scanned.st;
    } else if (scanned && scanned.errno === ENOENT && !spec) {
      return null; // vanished since the listing: not an error
    } else {
      try {
        // Synchronous: a cached lstat is a microsecond; the promise version a thread-pool round trip.
        st = withShortPathSync(at, (sp) => lstatSync(sp, { bigint: true }));
      } catch (e: any) {
        // Vanished since the listing: not an error, unless the user named it.
        if (e.code !== 'ENOENT' || spec) this.warn(p, `cannot stat: ${e.code ?? e.message}`);
        return null;
      }
    }
    const isDir = isDirectory(st);
    if (spec && !spec.target && !isDir) {
      // A parent of a named path that is no longer a directory: what was named cannot be reached.
      this.warn(p, 'cannot back up the paths named below it: not a directory any more');
      return null;
    }
    // Hardlinks: reading one name can move the shared inode's atime before another name is
    // lstat'ed (readlink of a hardlinked symlink always does; so does reading a file where
    // O_NOATIME is refused), and the restore applies the metadata of whichever name it
    // creates first. So every name records the atime of the inode's first lstat result,
    // which no read of ours can have preceded (reads start only after an lstat returned).
    let inodeAtime: bigint | undefined;
    if (st.nlink > 1n && !isDir) {
      const key = `${st.dev}:${st.ino}`;
      inodeAtime = this.inodeAtimes.get(key);
      if (inodeAtime === undefined) this.inodeAtimes.set(key, st.atimeNs);
    }
    if (!spec && this.opts.exclude && (await this.opts.exclude.excludes(p, isDir, st))) return null;
    let node: TreeNode;
    try {
      node = await captureMeta(at, st, name, parent, scanned?.xattrs);
    } catch (e: any) {
      this.warn(p, `cannot read metadata: ${e.code ?? e.message}`);
      return null;
    }
    if (inodeAtime !== undefined) node.atimeNs = inodeAtime;
    this.progress.current = p.toString();
    if (node.type === 'dir') {
      const crossesDevice = this.opts.oneFileSystem && !spec && !this.rootDevs.has(st.dev);
      if (crossesDevice) {
        node.subtree = (await this.repo.saveTree({ nodes: [] })).id;
        return node;
      }
      const v = await (visit ?? this.prepareDir(p, parent ? (parent.type === 'dir' && parent.subtree ? parent.subtree : null) : this.lastDirs?.get(p)?.tree ?? null, !spec || spec.target, st, at === p ? undefined : at));
      node.subtree = await this.saveDir(p, spec, v);
      return node;
    }
    if (st.nlink > 1n) node.hardlink = `${st.dev}:${st.ino}`;
    if (node.type !== 'file') return node;
    this.progress.files++;
    try {
      Object.assign(node, await this.fileContent(p, st, parent, content));
      if (this.opts.onChange) {
        const same = parent?.type === 'file' && parent.content?.length === node.content?.length && parent.content!.every((id, i) => id.equals(node.content![i]!));
        if (!same) this.opts.onChange(p.toString(), parent?.type === 'file' ? 'modified' : 'new');
      }
    } catch (e: any) {
      // The repository side failed (disk full, network): not this file's fault; the run ends.
      if (this.repo.writeFailure) throw this.repo.writeFailure;
      this.warn(p, `cannot read: ${e instanceof TsbakError ? e.message : e.code ?? e.message}`);
      return null;
    }
    this.opts.onProgress?.(this.progress);
    return node;
  }

  private async fileContent(p: Buffer, st: EntryStat, parent: TreeNode | null, readAhead?: ReadAhead): Promise<Pick<TreeNode, 'content' | 'extents' | 'size'>> {
    // Unchanged since the parent snapshot (and its data still indexed): not read again.
    if (unchangedSince(parent, st) && parent!.content!.every((id) => this.repo.hasBlob(id))) {
      return { content: parent!.content!, size: parent!.size, ...(parent!.extents ? { extents: parent!.extents } : {}) };
    }
    if (readAhead) {
      // Read by readAhead, checked then against this lstat.
      this.progress.bytesRead += readAhead.bytes.length;
      const { id } = await this.repo.saveBlob('data', readAhead.bytes, readAhead.id);
      return { content: [id], size: readAhead.bytes.length };
    }
    if (st.nlink > 1n) {
      // Several names of one inode: read it once.
      const key = `${st.dev}:${st.ino}`;
      let pr = this.inodes.get(key);
      if (!pr) this.inodes.set(key, (pr = this.readFile(p, st)));
      return pr;
    }
    return this.readFile(p, st);
  }

  private smallBuf: Buffer | null = null;

  private async readFile(p: Buffer, st: EntryStat): Promise<Pick<TreeNode, 'content' | 'extents' | 'size'>> {
    const size = Number(st.size);
    if (size === 0) return { content: [], size: 0 };
    // One-chunk files without holes: synchronous read into a reused buffer (which the
    // packer copies at once at these sizes).
    if (this.oneSmallBlob(size) && Number(st.blocks) * 512 >= size) {
      this.smallBuf ??= Buffer.allocUnsafeSlow(this.chunker.params.min);
      const n = readSmallSync(p, st, this.smallBuf);
      if (n !== null) {
        this.progress.bytesRead += n;
        // saveBlob hashes and copies the bytes before it first yields, so the buffer can be reused.
        const { id } = await this.repo.saveBlob('data', this.smallBuf.subarray(0, n));
        return { content: [id], size: n };
      }
    }
    return this.readFileAsync(p, size);
  }

  private async readFileAsync(p: Buffer, size: number): Promise<Pick<TreeNode, 'content' | 'extents' | 'size'>> {
    // Two sizes of read buffer only (the pool reuses them; a size per file would not).
    const bufSize = size <= SMALL_READ_BUFFER ? SMALL_READ_BUFFER : readBufferSize(this.chunker, Infinity);
    await this.files.acquire();
    await this.readBytes.acquire(bufSize);
    const ab = this.readBuffers.take(bufSize);
    try {
      const retries = this.opts.changeRetries ?? 3;
      for (let attempt = 0; ; attempt++) {
        // A file read into the small buffer (up to 1 MiB) is opened, read and closed with
        // synchronous calls (from the page cache, microseconds each); larger ones on the pool.
        const f = size <= SMALL_READ_BUFFER ? openForBackupSync(p) : await openForBackupAsync(p);
        try {
          const ids: Array<Promise<Buffer>> = [];
          for (const [off, len] of f.extents) {
            let pos = off;
            const read = async (buf: Buffer, at: number, n: number) => {
              const bytesRead = await f.read(buf, at, n, pos);
              pos += bytesRead;
              return bytesRead;
            };
            // The file may have grown since the lstat: a buffer too small for it gets its own.
            const buf = ab.byteLength >= readBufferSize(this.chunker, len) ? Buffer.from(ab) : undefined;
            for await (const chunk of chunkReader(this.chunker, len, read, buf)) {
              this.progress.bytesRead += chunk.length;
              // The view is reused for the next chunk once this resolves; the id comes later
              // (large chunks are hashed while the next one is cut).
              ids.push((await this.repo.saveBlobDeferred('data', chunk)).id);
            }
          }
          const content = await Promise.all(ids);
          const after = await f.stat();
          if (changedBetween(f.st, after) && attempt < retries) continue;
          if (changedBetween(f.st, after)) {
            this.changed.push(p.toString());
            this.markDirty(p);
            this.opts.onWarning?.(p.toString(), `changed while being read ${retries + 1} times; stored as last read`);
          }
          const size = Number(f.st.size);
          const sparse = !(f.extents.length === 0 || (f.extents.length === 1 && f.extents[0]![0] === 0 && f.extents[0]![1] === size));
          return sparse ? { content, size, extents: f.extents } : { content, size };
        } finally {
          await f.close();
        }
      }
    } finally {
      this.readBuffers.give(ab);
      this.readBytes.release(bufSize);
      this.files.release();
    }
  }
}

/** Whether a given path's entry is as in the parent snapshot: the same subtree or content, the same metadata but its atime. */
function sameTarget(node: TreeNode | null, parent: TreeNode | undefined): boolean {
  if (!node || !parent || !sameNode({ ...node, atimeNs: parent.atimeNs }, parent)) return false;
  if (node.type === 'dir') return !!node.subtree && !!parent.subtree && node.subtree.equals(parent.subtree);
  const a = node.content ?? [];
  const b = parent.content ?? [];
  return a.length === b.length && a.every((id, i) => id.equals(b[i]!));
}

/**
 * What a directory's tree depends on besides its listing: the program, the exclude rules,
 * --one-file-system, and the user and group names (from /etc/passwd and /etc/group). null
 * when the excluder cannot say what it depends on.
 */
function dirCacheSettings(opts: BackupOptions): string | null {
  if (opts.exclude && opts.exclude.fingerprint === undefined) return null;
  const stamp = (f: string) => {
    try {
      const st = lstatSync(f, { bigint: true });
      return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch {
      return '';
    }
  };
  return JSON.stringify([program(), opts.exclude?.fingerprint ?? null, !!opts.oneFileSystem, stamp('/etc/passwd'), stamp('/etc/group')]);
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}
