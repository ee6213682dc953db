// Writes a snapshot (or part of it) back to disk with its metadata. Files are written in
// place (holes of sparse files stay holes), hardlinks are recreated as one inode, and a
// directory's metadata is applied after its children so its times survive. Nothing is
// written outside the target, whatever the snapshot or the target holds: every entry is
// named through its directory's handle, and nothing is followed (dir-fd.ts).
import { closeSync, constants as C, ftruncateSync, linkSync, openSync, promises as fsp, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { nameProblem, type RejectedNode, type Tree, type TreeNode } from '../format/tree.js';
import type { Repository, Snapshot } from '../repo/repository.js';
import { CorruptError, NotInIndexError, TsbakError } from '../errors.js';
import { chunkLayout } from '../format/file-layout.js';
import { applyMetaAtSync, createSpecial, type ApplyMetaOptions, type CreatedAs } from './apply-meta.js';
import { entryAt, fdPath, makeDirAt, openDirAt, openTarget, tidyMessage } from './dir-fd.js';
import { lgetxattr } from '../platform/native/syscalls.js';
import { copyRangeAsync } from '../platform/native/restore.js';
import { ChunkPlaces, type ChunkPlace } from './chunk-places.js';
import { Semaphore } from '../repo/semaphore.js';
import { BufferPool, sizeClass } from '../repo/buffer-pool.js';
import type { BlobLocation, PackRef } from '../repo/blob-index.js';
import { pathOf, restoreSmallFiles, type SmallFile, type SmallFilesResult } from './small-files.js';
import { ReadPlan, type PlanOptions, type SealedBlobsRead } from './read-plan.js';
import { ReadForecast } from './read-forecast.js';
import { TreeAhead } from './tree-ahead.js';
import { TreeBatchLoader } from '../repo/tree-batch.js';
import { makeDirs } from '../platform/make-dirs.js';

export interface RestoreOptions extends Partial<ApplyMetaOptions> {
  target: string;
  /** Absolute paths inside the snapshot; only these (and what is below them) are restored. Raw bytes (a string is its UTF-8). */
  include?: Array<string | Buffer>;
  /** Leaves out an entry (and what is below it) by its path inside the snapshot (--exclude). */
  exclude?: (snapPath: Buffer, isDir: boolean) => boolean;
  onWarning?: (path: string, message: string) => void;
  /** A file was restored, of this many bytes (progress). */
  onFile?: (bytes: number) => void;
}

export interface RestoreResult {
  files: number;
  dirs: number;
  bytes: number;
  /** damage: an entry the snapshot's tree holds but no restore may trust (format/tree.ts Tree.rejected). */
  errors: Array<{ path: string; message: string; damage?: boolean }>;
  /** Ranged reads of data and of trees made by the read plans, and the most bytes of data the plan held against its budget. */
  reads?: { data: number; trees: number; peakBytes: number; budgetBytes: number };
}

/** Which entries a set of include paths selects: inside one, or on the way to one. */
// Paths here are byte strings (latin1: one char per byte), so names that are not UTF-8
// compare by their bytes: a lossy decoding would make two different names equal.
export class Selector {
  private readonly inc: string[] | null;
  constructor(include?: Array<string | Buffer>) {
    this.inc = include && include.length ? include.map(byteString) : null;
  }
  /** 'all': restore this and everything below; 'path': only a directory on the way; 'no'. */
  test(p: string): 'all' | 'path' | 'no' {
    if (!this.inc) return 'all';
    let r: 'all' | 'path' | 'no' = 'no';
    for (const i of this.inc) {
      if (p === i || p.startsWith(i === '/' ? '/' : i + '/')) return 'all';
      if (i.startsWith(p === '/' ? '/' : p + '/')) r = 'path';
    }
    return r;
  }
}

export async function restoreSnapshot(repo: Repository, snap: Snapshot, opts: RestoreOptions): Promise<RestoreResult> {
  const rootId = Buffer.from(snap.info.tree, 'hex');
  // A whole snapshot's walk wants most of its root's tree pack (written by its backup): one GET, not the root's and then the pack's.
  const root = await repo.loadTree(rootId, { wholePack: !opts.include?.length });
  await checkIncludes(repo, snap, root, opts.include ?? []);
  const r = new RestoreRun(repo, opts);
  // Of a blob's copies, the one its snapshot's signer listed is read first (THREAT-MODEL.md).
  repo.preferSigner(snap.signer?.id ?? null);
  await makeDirs(opts.target);
  await r.run(root, rootId, Buffer.from(path.resolve(opts.target)));
  r.result.reads = r.reads;
  return r.result;
}

/** Every --include path must name something in the snapshot (NOT_FOUND otherwise, before anything is written). */
async function checkIncludes(repo: Repository, snap: Snapshot, root: Tree, include: Array<string | Buffer>): Promise<void> {
  for (const inc of include) {
    let tree: Tree | null = root;
    for (const comp of byteString(inc).split('/').filter(Boolean)) {
      const name = Buffer.from(comp, 'latin1');
      const node: TreeNode | undefined = tree?.nodes.find((n) => n.name.equals(name));
      if (!node) throw new TsbakError('NOT_FOUND', `${inc} is not in snapshot ${snap.id.slice(0, 8)}; list it with 'tsbak ls'`);
      tree = node.type === 'dir' && node.subtree ? await repo.loadTree(node.subtree) : null;
    }
  }
}

/** The path inside the snapshot of entry `name` of directory `dir` (a byte string, see Selector), as bytes. */
export function snapshotPath(dir: string, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(dir === '/' || dir === '' ? '' : dir, 'latin1'), Buffer.from('/'), name]);
}

/** An include path as an absolute, normalized byte string (see Selector). */
function byteString(p: string | Buffer): string {
  return path.posix.resolve('/', (typeof p === 'string' ? Buffer.from(p) : p).toString('latin1'));
}

function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

/**
 * A directory being restored. Its metadata goes on once everything below it is done
 * (`pending` counts its unfinished children, plus one while its tree is being walked).
 */
interface Dir {
  /** Where it is in the target, for messages only: nothing is done through it. */
  path: Buffer;
  /** Its name (a copy: the tree it came from is let go), to open it again from its parent. */
  name: Buffer;
  /** Its O_PATH handle while it has unfinished entries (-1 once its metadata is on), and its fdPath. */
  fd: number;
  at: Buffer;
  /** Its tree node, until its metadata is on. */
  node: TreeNode | null;
  parent: Dir | null;
  pending: number;
  /** Its subtree could not be read: what is below is missing, so its metadata stays off. */
  broken?: boolean;
  /** Entries created in it start as: null when it existed before (its old entries must be removed first, and nothing is known). */
  created: CreatedAs | null;
}

const S_ISGID = 0o2000;

/** Files being restored at once (the tree walk waits for one to finish beyond this). */
const FILES_IN_FLIGHT = 16;
/** Bound of the blob bytes (sealed and plain) held by the files being restored. */
const BLOB_BYTES_IN_FLIGHT = 12 << 20;
/** Files whose sealed blobs take at most this, and whose plaintext too, are restored in batches (small-files.ts)... */
const BATCH_FILE_MAX = 512 << 10;
/** ...of at most this many files, sealed bytes and plaintext bytes... */
const BATCH_FILES = 128;
// 1 and 2 MiB rather than 2 and 4: corpus restore peak RSS 122 -> 115 MB, as fast.
const BATCH_BYTES = 1 << 20;
const BATCH_RAW = 2 << 20;
/** ...with this many batches being opened and written at once (enough to keep the pool's threads busy). */
const BATCHES_IN_FLIGHT = 4;

/** Chunks this large that repeat, in a file or across files, are copied from their first place, not opened again. */
const COPY_MIN = 64 << 10;
/** How many chunks are remembered for that (~100 bytes each)... */
const COPY_TRACKED = 1 << 16;
/** ...and how many finished files are kept open to copy from. */
const COPY_FILES = 64;

/**
 * Reads of data (read-plan.ts). On a local disk (1-2 reads at once) a read past a gap costs
 * more than another read; over a network a round trip is worth megabytes, and the budget
 * must cover what is in flight while a round trip passes. Reads fill pooled buffers where
 * the backend can (local, SFTP): a fresh buffer per read costs its page faults and a copy.
 */
function planOptions(concurrency: number, readsInto: boolean): PlanOptions {
  return concurrency > 2
    ? { concurrency, gap: 1 << 20, span: 8 << 20, budget: 64 << 20, readsInto }
    : { concurrency, gap: 64 << 10, span: 2 << 20, budget: 24 << 20, readsInto };
}

/** Where the walk is: the path inside the snapshot (while selecting), and whether everything below is selected. */
interface WalkAt {
  snapPath: string;
  all: boolean;
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** Small files gathered for one batch, from one directory or several. */
/** A file whose tree entry no restore may trust (format/file-layout.ts): damage, like a refused name. */
class UntrustedFile extends TsbakError {
  constructor(message: string) {
    super('CORRUPT', message);
  }
}

class Batch {
  readonly files: Array<SmallFile & { dir: Dir }> = [];
  readonly locs: BlobLocation[] = [];
  readonly ids: Buffer[] = [];
  /** Blob number by pack and offset: a blob two files share is read once. */
  private readonly blobNo = new Map<PackRef, Map<number, number>>();
  /** Each file's blobs, one file after the other (SmallFile.start, .end). */
  readonly blobList: number[] = [];
  sealed = 0;
  raw = 0;

  add(dir: Dir, node: TreeNode, locs: BlobLocation[]): void {
    const start = this.blobList.length;
    for (let i = 0; i < locs.length; i++) {
      const l = locs[i]!;
      let inPack = this.blobNo.get(l.pack);
      if (!inPack) this.blobNo.set(l.pack, (inPack = new Map()));
      let b = inPack.get(l.offset);
      if (b === undefined) {
        inPack.set(l.offset, (b = this.ids.length));
        this.ids.push(node.content![i]!);
        this.locs.push(l);
        this.sealed += l.length;
        this.raw += l.rawLength;
      }
      this.blobList.push(b);
    }
    this.files.push({ dir, node, start, end: this.blobList.length });
  }
}

class RestoreRun {
  readonly result: RestoreResult = { files: 0, dirs: 0, bytes: 0, errors: [] };
  private readonly sel: Selector;
  /** Hardlink id -> the name that carries the inode (one this run created), once it exists (null: it failed). */
  private readonly links = new Map<string, Promise<{ dir: Dir; name: Buffer } | null>>();
  private readonly meta: ApplyMetaOptions;
  private readonly files = new Semaphore(FILES_IN_FLIGHT);
  private readonly blobBytes = new Semaphore(BLOB_BYTES_IN_FLIGHT);
  private readonly processing = new Semaphore(BATCHES_IN_FLIGHT);
  /**
   * Batches' plaintext buffers, reused instead of left to the GC, all at the batch limit's
   * size so that every one fits every batch (docs/PERFORMANCE.md, "Memory").
   */
  private readonly buffers = new BufferPool(BATCHES_IN_FLIGHT * BATCH_RAW);
  /** Reads of data blobs, by pack (read-plan.ts); exposed for tests of its bounds. */
  readonly plan: ReadPlan;
  private readonly trees: TreeAhead<WalkAt>;
  /** Over a network: the blobs the walk will ask for, from the trees loaded ahead of it (read-forecast.ts). */
  private readonly forecast: ReadForecast | null;
  /** Hardlinks and large chunks the forecast has seen (the walk reads each once). */
  private readonly foreseen = new Set<string>();
  private readonly treeLoader: TreeBatchLoader;
  private batch = new Batch();
  private readonly places = new ChunkPlaces(COPY_FILES, COPY_TRACKED);
  private readonly euid = process.geteuid?.() ?? 0;
  private finished!: () => void;
  private lastBreath = performance.now();

  constructor(
    private readonly repo: Repository,
    private readonly opts: RestoreOptions,
  ) {
    this.sel = new Selector(opts.include);
    this.meta = { owner: opts.owner ?? process.getuid?.() === 0, securityXattrs: opts.securityXattrs ?? false, mapByName: opts.mapByName ?? false };
    const po = planOptions(repo.readConcurrency, repo.readsInto);
    // Where reads fill buffers given (local disk, SFTP) a read per stretch of the walk is cheap, and reads into work's buffers save copies.
    this.forecast = po.concurrency > 2 && !po.readsInto ? new ReadForecast() : null;
    this.plan = new ReadPlan(repo, po, this.forecast ?? undefined);
    const loader = (this.treeLoader = new TreeBatchLoader(repo));
    this.trees = new TreeAhead<WalkAt>(
      { loadTrees: (ids) => repo.loadTrees(ids, loader) },
      (tree, at) => this.subdirs(tree, at),
      (id) => repo.locate(id)?.rawLength ?? 0,
      this.forecast ? (quiet) => this.plan.foreseen(quiet) : undefined,
    );
  }

  get reads(): NonNullable<RestoreResult['reads']> {
    return { data: this.plan.reads, trees: this.treeLoader.reads, peakBytes: this.plan.peak, budgetBytes: this.plan.budget };
  }

  /** Whether --exclude leaves out `node`, an entry of the snapshot's directory `dir`. */
  private excluded(dir: string, node: TreeNode): boolean {
    return !!this.opts.exclude && this.opts.exclude(snapshotPath(dir, node.name), node.type === 'dir');
  }

  /** The subtrees walk() enters below `tree`, in its order (what it skips is skipped here too). */
  private subdirs(tree: Tree, at: WalkAt): Array<{ id: Buffer; ctx: WalkAt }> {
    if (this.forecast) this.foresee(tree, at);
    const out: Array<{ id: Buffer; ctx: WalkAt }> = [];
    for (const node of tree.nodes) {
      if (node.type !== 'dir' || !node.subtree || nameProblem(node.name) !== null) continue;
      const childSnap = at.all && !this.opts.exclude ? '' : path.posix.join(at.snapPath, node.name.toString('latin1'));
      const sel = at.all ? 'all' : this.sel.test(childSnap);
      if (sel !== 'no' && this.excluded(at.snapPath, node)) continue;
      if (sel !== 'no') out.push({ id: node.subtree, ctx: { snapPath: childSnap, all: sel === 'all' } });
    }
    return out;
  }

  /** Tells the forecast the blobs of the files walk() will restore from `tree` (as it selects them). */
  private foresee(tree: Tree, at: WalkAt): void {
    const f = this.forecast!;
    for (const node of tree.nodes) {
      if (node.type !== 'file' || !node.content || nameProblem(node.name) !== null) continue;
      if (!at.all) {
        if (this.sel.test(path.posix.join(at.snapPath, node.name.toString('latin1'))) !== 'all') continue;
      }
      if (this.excluded(at.snapPath, node)) continue;
      if (node.hardlink) {
        if (this.foreseen.has('h' + node.hardlink)) continue;
        this.foreseen.add('h' + node.hardlink);
      }
      for (const id of node.content) {
        const loc = this.repo.locateHot(id);
        if (!loc) continue;
        if (loc.rawLength >= COPY_MIN && this.foreseen.size < COPY_TRACKED) {
          const key = id.toString('latin1');
          if (this.foreseen.has(key)) continue;
          this.foreseen.add(key);
        }
        f.add(loc);
      }
    }
  }

  /**
   * Walks the tree depth first, one directory at a time, starting files as room allows: only
   * the trees on the way down and the files in flight are in memory, however large the tree.
   */
  async run(tree: Tree, treeId: Buffer, target: Buffer): Promise<void> {
    const done = new Promise<void>((r) => (this.finished = r));
    const created = this.createdInTarget(target);
    const fd = openTarget(target.toString());
    const root: Dir = { path: target, name: Buffer.alloc(0), fd, at: fdPath(fd), node: null, parent: null, pending: 1, created };
    this.trees.start(tree, { snapPath: '/', all: false });
    try {
      await this.walk(tree, treeId, root, '/', false);
      await this.flush();
      this.childDone(root);
      await done;
    } finally {
      this.places.closeAll();
      this.plan.dropStash();
    }
    // Only now: a handle closed while entries still named through it could have its number
    // reused by another open, and /proc/self/fd/<fd>/<name> would then lead there.
    closeSync(fd);
  }

  /** What entries created in the target get, when the target is empty; null when it is not. */
  private createdInTarget(target: Buffer): CreatedAs | null {
    try {
      if (readdirSync(target).length) return null;
      const st = statSync(target);
      return {
        uid: this.euid,
        // A setgid directory gives new entries its group (and new directories the setgid bit).
        gid: st.mode & S_ISGID ? st.gid : (process.getegid?.() ?? 0),
        aclInherited: hasDefaultAcl(target),
      };
    } catch {
      return null;
    }
  }

  private fail(p: Buffer, e: unknown): void {
    const message = e instanceof TsbakError ? e.message : describeFailure(e);
    this.result.errors.push({ path: p.toString(), message, ...(e instanceof UntrustedFile ? { damage: true } : {}) });
    this.opts.onWarning?.(p.toString(), message);
  }

  /** An entry of tree `treeId` that is not restored because no restore may trust it: damage. */
  private refuse(dir: Dir, treeId: Buffer, r: RejectedNode): void {
    // The name as JSON escapes it, so that a newline in it cannot break the line.
    const p = `${dir.path.toString()}/${JSON.stringify(r.name.toString()).slice(1, -1)}`;
    const message = `entry ${JSON.stringify(r.name.toString())} of tree ${treeId.toString('hex').slice(0, 16)} refused (${r.reason}); the snapshot is damaged or was made to attack: run 'tsbak check'`;
    this.result.errors.push({ path: p, message, damage: true });
    this.opts.onWarning?.(p, message);
  }

  /** Metadata of the entry at `at` (a handle path, dir-fd.ts); `p` names it in messages. */
  private applyMeta(p: Buffer, at: Buffer, node: TreeNode, created: CreatedAs | null): void {
    for (const w of applyMetaAtSync(at, node, this.meta, created ?? undefined)) this.opts.onWarning?.(p.toString(), tidyMessage(w.message));
  }

  /** One child of `dir` is finished; the last one puts the directory's metadata on and lets its handle go. */
  private childDone(dir: Dir): void {
    if (--dir.pending > 0) return;
    if (!dir.parent) return this.finished();
    try {
      if (!dir.broken) this.applyMeta(dir.path, entryAt(dir.parent.at, dir.name), dir.node!, dir.parent.created);
    } catch (e) {
      this.fail(dir.path, e);
    }
    closeSync(dir.fd);
    dir.fd = -1;
    dir.node = null;
    this.childDone(dir.parent);
  }

  /**
   * fn with a handle path of `dir`: its own while it is open, else one opened again from
   * its nearest open ancestor, name by name, never following a symlink (a hardlink's first
   * name may be in a directory that is done).
   */
  private withDirAt<T>(dir: Dir, fn: (at: Buffer) => T): T {
    if (dir.fd >= 0) return fn(dir.at);
    const chain: Dir[] = [];
    for (let d = dir; d.fd < 0; d = d.parent!) chain.push(d);
    const fds: number[] = [];
    try {
      let at = chain[chain.length - 1]!.parent!.at;
      for (let i = chain.length - 1; i >= 0; i--) {
        fds.push(openDirAt(at, chain[i]!.name));
        at = fdPath(fds[fds.length - 1]!);
      }
      return fn(at);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  private async walk(tree: Tree, treeId: Buffer, dir: Dir, snapPath: string, all: boolean): Promise<void> {
    for (const r of tree.rejected ?? []) {
      if (all || this.sel.test(snapPath === '/' ? '/' + r.name.toString('latin1') : snapPath + '/' + r.name.toString('latin1')) !== 'no') this.refuse(dir, treeId, r);
    }
    for (const node of tree.nodes) {
      // Trees from the repository come checked (format/tree.ts); a name that is not one path component never reaches the disk.
      const bad = nameProblem(node.name);
      if (bad !== null) {
        this.refuse(dir, treeId, { name: node.name, reason: bad });
        continue;
      }
      // The path inside the snapshot matters only while selecting (--include).
      const childSnap = all && !this.opts.exclude ? '' : path.posix.join(snapPath, node.name.toString('latin1'));
      const sel = all ? 'all' : this.sel.test(childSnap);
      if (sel === 'no') continue;
      if (this.excluded(snapPath, node)) continue;
      if (sel === 'path' && node.type !== 'dir') continue;
      if (node.type === 'dir') {
        await this.walkSubdir(node, dir, childSnap, sel === 'all');
        continue;
      }
      const small = this.batchable(node);
      if (small) {
        const b = this.batch;
        if (b.files.length >= BATCH_FILES || b.sealed + small.sealed > BATCH_BYTES || b.raw + node.size > BATCH_RAW) await this.flush();
        dir.pending++;
        this.batch.add(dir, node, small.locs);
        continue;
      }
      if (!this.files.tryAcquire()) await this.plan.whileBlocked(this.files.acquire());
      await this.breathe();
      dir.pending++;
      void this.restoreLeaf(node, dir).finally(() => {
        this.files.release();
        this.childDone(dir);
      });
    }
  }

  /**
   * Small files restore without ever waiting on I/O (synchronous reads and writes), so the
   * walk would run as one long chain of microtasks: worker replies and finished writes of
   * large files would wait for its end. Yield to the event loop every few milliseconds.
   */
  private async breathe(): Promise<void> {
    const now = performance.now();
    if (now - this.lastBreath < 5) return;
    await new Promise<void>((r) => setImmediate(r));
    this.lastBreath = performance.now();
  }

  /** Where a file's blobs are and their sealed size, when it can go in a batch: small, whole (no holes), not a hardlink, every blob hot. */
  private batchable(node: TreeNode): { locs: BlobLocation[]; sealed: number } | null {
    if (node.type !== 'file' || node.hardlink || node.extents || !node.content) return null;
    if (node.atimeNs < INT64_MIN || node.atimeNs > INT64_MAX || node.mtimeNs < INT64_MIN || node.mtimeNs > INT64_MAX) return null;
    const locs: BlobLocation[] = [];
    let sealed = 0;
    let raw = 0;
    for (const id of node.content) {
      const loc = this.repo.locateHot(id);
      if (!loc || (sealed += loc.length) > BATCH_FILE_MAX || (raw += loc.rawLength) > BATCH_FILE_MAX) return null;
      locs.push(loc);
    }
    return raw === node.size ? { locs, sealed } : null;
  }

  /** Sends the batch gathered so far on its way (waiting while the reads' budget is full). */
  private async flush(): Promise<void> {
    const b = this.batch;
    if (!b.files.length) return;
    this.batch = new Batch();
    const { ready } = await this.plan.request(b.locs);
    void this.runBatch(b, ready)
      .catch((e) => {
        for (const f of b.files) this.fail(pathOf(f), e);
      })
      .finally(() => {
        for (const f of b.files) this.childDone(f.dir);
      });
  }

  /**
   * Reads a batch's blobs and restores its files on libuv's pool (small-files.ts). A file
   * that could not be restored there for want of a good blob, or all of them when the batch
   * itself failed (a pack that cannot be read), is restored the usual way, which reports
   * the damage (or retries a read) for that file alone.
   */
  private async runBatch(b: Batch, reading: Promise<SealedBlobsRead>): Promise<void> {
    let res: SmallFilesResult;
    let read: SealedBlobsRead | undefined;
    try {
      read = await reading;
      await this.processing.acquire();
      try {
        const keys: Buffer[] = [];
        const keyNo = new Map<PackRef, number>();
        const keyOf = Uint16Array.from(b.locs, (l) => {
          let k = keyNo.get(l.pack);
          if (k === undefined) keyNo.set(l.pack, (k = keys.push(this.repo.packKey(l.pack)) - 1));
          return k;
        });
        const ids = Buffer.allocUnsafe(b.ids.length * 32);
        b.ids.forEach((id, i) => id.copy(ids, i * 32));
        const blobs = { sealed: read.bytes, offsets: read.offsets, lengths: Uint32Array.from(b.locs, (l) => l.length), keyOf, keys, macKey: this.repo.secrets.macKey, ids, rawLengths: Uint32Array.from(b.locs, (l) => l.rawLength) };
        res = await restoreSmallFiles(b.files, Uint32Array.from(b.blobList), blobs, this.meta, this.buffers, BATCH_RAW);
      } finally {
        this.processing.release();
      }
    } catch {
      return this.oneByOne(b.files);
    } finally {
      if (read) this.plan.release(read);
    }
    const again: Batch['files'] = [];
    res.outcomes.forEach((o, i) => {
      const f = b.files[i]!;
      if (o === 'blob') again.push(f);
      else if (typeof o === 'number') {
        this.result.files++;
        this.result.bytes += o;
        this.opts.onFile?.(o);
      } else this.fail(pathOf(f), Object.assign(new Error(o.message), { code: o.code }));
    });
    for (const [i, message] of res.warnings) this.opts.onWarning?.(pathOf(b.files[i]!).toString(), message);
    await this.oneByOne(again);
  }

  private async oneByOne(files: Batch['files']): Promise<void> {
    for (const f of files) await this.restoreLeaf(f.node, f.dir);
  }

  private async walkSubdir(node: TreeNode, parent: Dir, snapPath: string, all: boolean): Promise<void> {
    const p = join(parent.path, node.name);
    let made: { fd: number; fresh: boolean };
    try {
      made = makeDirAt(parent.at, node.name);
    } catch (e) {
      if (node.subtree) this.trees.skip(node.subtree);
      this.fail(p, e);
      return;
    }
    this.result.dirs++;
    // A new directory hands on what it got from its parent: its group (and setgid bit), and
    // any default ACL (only the parent's: its own metadata goes on after its contents).
    const created = made.fresh && parent.created ? parent.created : null;
    const dir: Dir = { path: p, name: Buffer.from(node.name), fd: made.fd, at: fdPath(made.fd), node, parent, pending: 1, created };
    parent.pending++;
    try {
      if (node.subtree) {
        const ready = this.trees.ready(node.subtree);
        const tree = this.trees.take(node.subtree);
        await this.walk(ready ? await tree : await this.plan.whileBlocked(tree), node.subtree, dir, snapPath, all);
      }
    } catch (e) {
      this.fail(p, e);
      dir.broken = true;
    }
    this.childDone(dir);
  }

  private async restoreLeaf(node: TreeNode, dir: Dir): Promise<void> {
    const p = join(dir.path, node.name);
    // Hardlinks: the first name to get here claims the inode (synchronously, before any
    // await) and announces its path once the entry exists; later names wait for that and
    // link to it. (Before, a later name linked as soon as the first was *chosen*: its
    // link() was queued right after the first name's open(), and both run on the thread
    // pool, so nothing ordered them; and when the first name failed, every later one
    // failed with ENOENT.) If the first name could not be created, a later one is restored
    // in full instead.
    let created: ((first: { dir: Dir; name: Buffer } | null) => void) | undefined;
    let first: Promise<{ dir: Dir; name: Buffer } | null> | undefined;
    if (node.hardlink) {
      first = this.links.get(node.hardlink);
      if (!first) this.links.set(node.hardlink, new Promise((r) => (created = r)));
    }
    try {
      const at = entryAt(dir.at, node.name);
      // In a directory this run created there is nothing to replace; elsewhere what is in
      // the way goes (a symlink is removed, not followed), and the entry is created anew.
      if (!dir.created) rmSync(at, { force: true });
      const firstName = first ? await first : null;
      if (firstName) {
        // Only ever to a name this run created, inside the target (link() follows neither).
        this.withDirAt(firstName.dir, (fa) => linkSync(entryAt(fa, firstName.name), at));
        return;
      }
      switch (node.type) {
        case 'file':
          await this.writeFile(node, at);
          this.result.files++;
          break;
        case 'symlink':
          symlinkSync(node.target ?? Buffer.alloc(0), at);
          break;
        default:
          await createSpecial(at, node);
      }
      created?.({ dir, name: Buffer.from(node.name) });
      this.applyMeta(p, at, node, dir.created);
    } catch (e) {
      created?.(null);
      this.fail(p, e);
    }
  }

  /**
   * Creates the file and writes its chunks at their places (chunks fill the extents in
   * order; holes stay holes). Chunks are written as they come, several at once and out of
   * order: large ones by the workers that open them, small ones here. Blob bytes in flight
   * stay within the byte budget, however large the file.
   */
  private async writeFile(node: TreeNode, at: Buffer): Promise<void> {
    const layout = chunkLayout(node, (id) => this.repo.locate(id));
    if ('missing' in layout) throw new NotInIndexError(layout.missing);
    if ('problem' in layout) throw new UntrustedFile(`${layout.problem}; the snapshot is damaged or was made to attack: run 'tsbak check'`);
    const { places } = layout;
    // O_EXCL: always a new file (restoreLeaf removed what was there), never one written through.
    // Readable too: copy_file_range reads the chunks that repeat (copyChunk).
    const fd = openSync(at, C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    // A large chunk that comes back in this file or one restored earlier (zeros, repeated
    // blocks, a disk image and its snapshot) is opened once and then copied from its first
    // place, in the kernel (chunk-places.ts).
    const source = this.places.open(fd);
    let ok = false;
    try {
      // Its size first: the chunks' writes, several at once and out of order, then never
      // extend the file (on ext4 each extending write updates the inode in the journal).
      if (places.length > 1) ftruncateSync(fd, node.size);
      const writes: Array<Promise<void>> = [];
      let end = 0;
      let bytes = 0;
      for (const { at: pos, id, length: raw, loc } of places) {
        const key = raw >= COPY_MIN ? id.toString('latin1') : null;
        const first = key !== null ? this.places.get(key) : undefined;
        if (first) {
          writes.push(this.copyChunk(first, id, loc.length, raw, fd, pos));
        } else {
          const written = this.writeChunk(id, loc.length, raw, fd, pos);
          if (key !== null) this.places.add(key, source, pos, written);
          writes.push(written);
        }
        bytes += raw;
        end = pos + raw;
      }
      // Every write must be over before the descriptor is closed, failed or not.
      const failed = (await Promise.allSettled(writes)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (end !== node.size) ftruncateSync(fd, node.size); // trailing hole, the size of an all-hole file, or chunks longer than the size says
      ok = true;
      this.result.bytes += bytes; // counted once the file is whole (a failed one is removed)
    } finally {
      this.places.done(source, ok); // closes fd, now or once no later file copies from it
      if (!ok) rmSync(at, { force: true });
    }
    this.opts.onFile?.(node.size);
  }

  /**
   * A chunk already written (or being written) at first.pos of a file, copied from there;
   * written again where the file system cannot copy or the first write failed.
   */
  private async copyChunk(first: ChunkPlace, id: Buffer, sealedLen: number, rawLen: number, fd: number, pos: number): Promise<void> {
    const from = this.places.hold(first);
    try {
      let copied = false;
      try {
        await first.written;
        copied = await copyRangeAsync(fd, first.pos, pos, rawLen, from.fd);
      } catch {
        copied = false;
      }
      if (!copied) await this.writeChunk(id, sealedLen, rawLen, fd, pos);
    } finally {
      this.places.release(from);
    }
  }

  private async writeChunk(id: Buffer, sealedLen: number, rawLen: number, fd: number, pos: number): Promise<void> {
    const wrote = await this.writePlanned(id, fd, pos);
    if (wrote === null) return this.writeChunkAlone(id, sealedLen, rawLen, fd, pos);
    if (wrote !== rawLen) throw new CorruptError(`blob ${id.toString('hex').slice(0, 16)}`, `${wrote} bytes, the index says ${rawLen}`);
  }

  /**
   * A chunk read through the read plan and written: the bytes written, or null when it must
   * be read alone (its pack is cold, its read failed, or this copy is damaged: writeBlobAt
   * tries the other copies and says what is wrong).
   */
  private async writePlanned(id: Buffer, fd: number, pos: number): Promise<number | null> {
    const loc = this.repo.locateHot(id);
    if (!loc) return null;
    let read: SealedBlobsRead;
    try {
      read = await (await this.plan.request([loc])).ready;
    } catch {
      return null;
    }
    try {
      const wrote = await this.repo.writeSealedAt(id, loc, read.bytes, fd, pos);
      return typeof wrote === 'number' ? wrote : null;
    } catch (e) {
      if (e instanceof TsbakError && e.code === 'CORRUPT') return null;
      throw e;
    } finally {
      this.plan.release(read);
    }
  }

  private async writeChunkAlone(id: Buffer, sealedLen: number, rawLen: number, fd: number, pos: number): Promise<void> {
    // What the blob holds while it is opened: its sealed bytes, in a buffer of the pool's
    // size class (up to twice their length), and its plaintext (a large blob stored raw is
    // decrypted in place and written from there, but that is not known yet).
    const n = sizeClass(sealedLen) + rawLen;
    await this.blobBytes.acquire(n);
    try {
      const wrote = await this.repo.writeBlobAt(id, fd, pos);
      if (wrote !== rawLen) throw new CorruptError(`blob ${id.toString('hex').slice(0, 16)}`, `${wrote} bytes, the index says ${rawLen}`);
    } finally {
      this.blobBytes.release(n);
    }
  }
}

/** A failed step as one line: Node's fs message (which starts with the code) or code: message; what to do about a full disk. */
function describeFailure(e: unknown): string {
  const code: string | undefined = (e as any)?.code;
  const text = tidyMessage(String((e as Error)?.message ?? e));
  const line = code && !text.startsWith(code) ? `${code}: ${text}` : text;
  return code === 'ENOSPC' || code === 'EDQUOT' ? `${line} (the target is full: free space and run the restore again)` : line;
}

function hasDefaultAcl(dir: Buffer): boolean {
  try {
    return lgetxattr(dir, 'system.posix_acl_default') !== null;
  } catch {
    return false; // no ACL support here
  }
}

