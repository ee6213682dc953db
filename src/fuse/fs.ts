// The file system the mount shows, over the repository's read API, independent of FUSE:
//
//   /snapshots/<time>/...        one directory per snapshot (UTC to the second; -2, -3 on
//                                collisions), holding the snapshot's root tree
//   /snapshots/latest            -> <time> of the newest snapshot
//   /hosts/<host>/<time>         -> ../../snapshots/<time>
//   /tags/<tag>/<time>           -> ../../snapshots/<time>
//   /ids/<short id>              -> ../snapshots/<time>
//   /.tsbak-status               -> .tsbak-status@<n>   (repositories with cold storage, S3)
//
// The status file lists pending restores (./cold.ts, statusText). It is a symlink to an
// immutable copy of the status made when the link is followed: FUSE here cannot mark one
// file direct_io, and the kernel keeps a file's size for attr_timeout seconds, so a file
// whose content changed in place could read truncated; each copy has its own name, size
// and content. `cat /mnt/.tsbak-status` follows the link, and so always reads a fresh,
// complete status. The last copies stay readable under their names for a while.
//
// Paths are byte strings: each char one byte of the name (latin1), so names that are not
// UTF-8 stay what they are; the names the mount makes up are UTF-8 in the same form
// (byteName). src/fuse/ops.ts turns inode numbers into paths; resolved entries inside snapshots are remembered in an
// LRU keyed by path, trees are cached by id (tree-cache.ts), so each lookup costs a map
// access once its parent is known.
import { LRUCache } from 'lru-cache';
import type { TreeNode } from '../format/tree.js';
import type { SnapshotInfo, XattrKind } from '../format/snapshot.js';
import { parseXattrKinds, XATTR_KINDS, xattrKindOf } from '../format/xattr-kinds.js';
import { mapLimit, type Repository, type Snapshot } from '../repo/repository.js';
import { isFuture, type SnapshotSigner } from '../repo/snapshot-select.js';
import { bySnapshotTime, suffixedName } from '../repo/snapshot-names.js';
import { TsbakError } from '../errors.js';
import { buildChunkMap, type ChunkMap } from './chunk-map.js';
import { COLD_ERRNO, ColdReads, isReadable, STATE_XATTR, statusText, type ColdFile, type ColdReadOptions } from './cold.js';
import { FsError } from './fs-error.js';
import { XATTR_NO_GET, XATTR_NO_LIST } from '../platform/native/fuse.js';
import { InodeTable } from './inodes.js';
import { byteName, componentName, textOfPath, timeMs, timeName } from './names.js';
import { PackGroups, PackReadAhead, SMALL_FILE } from './pack-group.js';
import { ChunkSource, OpenFile } from './reader.js';
import { nodeStat, virtualDirStat, virtualFileStat, virtualLinkStat, type FuseStat, type Owner } from './stat.js';
import { TreeCache } from './tree-cache.js';

export { FsError };

/** Chunks fetched ahead of a sequential reader: 4 MiB of the repository's average chunk, 4 chunks at least (4 of 1 MiB, 16 of 256 KiB). */
export function readaheadChunks(avgChunk: number): number {
  return Math.max(4, Math.round((4 << 20) / avgChunk));
}

export interface SnapshotFsOptions extends Owner {
  /** Chunks fetched ahead of a sequential reader (default readaheadChunks of the repository's chunker). */
  readaheadChunks?: number;
  /** Bytes of a pack fetched ahead of small files read through it in order (default 16 MiB; keep it well below the blob cache). */
  packReadAheadBytes?: number;
  /** Memory for decoded trees (default 64 MiB). */
  treeCacheBytes?: number;
  /** Memory for decrypted chunks of large files, kept apart from the blob cache (default 128 MiB; reader.ts). */
  chunkCacheBytes?: number;
  /** Where to report problems that only the daemon sees (unreadable snapshots, read errors, restores requested). */
  log?: (msg: string) => void;
  /** How reads of data in cold storage behave (only for repositories with cold storage). */
  cold?: ColdReadOptions;
  /** Where the file system is mounted: log lines name files by their full path. */
  mountpoint?: string;
}

export interface Snap {
  /** Small number for inode keys. */
  no: number;
  id: string;
  info: SnapshotInfo;
  /** Directory name under /snapshots. */
  name: string;
  ino: number;
  tree: Buffer;
  mtimeMs: number;
  /** Who signed it (the SIGNER_XATTR of its directory). */
  signer: SnapshotSigner;
}

export type Entry =
  | { kind: 'vdir'; ino: number; mtimeMs: number; nlink: number; children: Map<string, Entry> }
  | { kind: 'vlink'; ino: number; mtimeMs: number; target: string }
  | { kind: 'snap'; ino: number; snap: Snap }
  | { kind: 'node'; ino: number; snap: Snap; node: TreeNode }
  | { kind: 'vfile'; ino: number; mtimeMs: number; data: Buffer };

type InSnapshot = Extract<Entry, { kind: 'snap' | 'node' }>;

/** Xattr of each snapshot directory: who signed the snapshot, JSON {"id","name"} ("master", or a writer key's id and name). */
export const SIGNER_XATTR = 'user.tsbak.signer';

/** Hidden xattr on the mount root with counters, for tests and curious users. */
export const STATS_XATTR = 'user.tsbak.stats';

/** The status file at the mount root, and the names of its copies (`.tsbak-status@<n>`). */
export const STATUS_NAME = '.tsbak-status';
const STATUS_COPY = /^\/\.tsbak-status@(\d+)$/;
/** Copies of the status kept readable after a newer one was made. */
const STATUS_KEEP = 32;

/** A file being read: repository data, or a copy of the status file. */
interface Handle {
  reader: { views(len: number, pos: number): Buffer[] | Promise<Buffer[]>; close?(): void };
  /** Set for regular files of a repository with cold storage. */
  cold?: ColdFile;
  /** Whether its data was found readable (not cold, not restoring). */
  ready: boolean;
  /** Opened as hot (no pack in cold storage): cold data met by a read is news (coldFound). */
  hot?: boolean;
}

class BufferReader {
  constructor(private readonly data: Buffer) {}
  views(len: number, pos: number): Buffer[] {
    if (pos >= this.data.length || len <= 0) return [];
    return [this.data.subarray(pos, Math.min(this.data.length, pos + len))];
  }
}

export class SnapshotFs {
  private readonly owner: Owner;
  private readonly log: (msg: string) => void;
  private readonly readahead: number;
  private readonly inodes = new InodeTable();
  private readonly trees: TreeCache;
  private readonly chunks: ChunkSource;
  private readonly groups: PackGroups;
  private readonly ahead: PackReadAhead;
  private readonly chunkMaps = new WeakMap<TreeNode, ChunkMap>();
  private readonly paths = new LRUCache<string, Entry>({ max: 200_000 });
  private readonly files = new Map<number, Handle>();
  private nextFd = 1;
  /** Cold-storage behaviour; null when the repository has none (local, SFTP). */
  readonly cold: ColdReads | null;
  private readonly mountpoint: string;
  private statusCopies = new Map<number, Entry & { kind: 'vfile' }>();
  private statusLast: { n: number; body: string } = { n: 0, body: '' };

  private readonly snaps = new Map<string, Snap>(); // by id
  private readonly usedNames = new Set<string>();
  private readonly unreadable = new Set<string>(); // snapshot ids already reported
  private nextSnapNo = 1;
  private refreshing: Promise<boolean> | null = null;
  private readonly startedMs = Date.now();
  private root: Entry & { kind: 'vdir' };

  constructor(
    readonly repo: Repository,
    opts: SnapshotFsOptions = {},
  ) {
    this.owner = { uid: opts.uid, gid: opts.gid };
    this.log = opts.log ?? (() => {});
    this.readahead = opts.readaheadChunks ?? readaheadChunks(repo.config.chunker.avg);
    this.trees = new TreeCache(repo, opts.treeCacheBytes ?? 64 << 20, (m) => this.log(m));
    this.chunks = new ChunkSource(repo, opts.chunkCacheBytes);
    this.groups = new PackGroups(repo);
    this.ahead = new PackReadAhead(repo, (ids) => this.chunks.group(ids), opts.packReadAheadBytes);
    this.cold = repo.coldStorage ? new ColdReads(repo, opts.cold ?? {}, this.log) : null;
    this.mountpoint = opts.mountpoint && opts.mountpoint !== '/' ? opts.mountpoint : '';
    this.root = this.buildViews();
  }

  /** FUSE requests answered so far, by operation (ops.ts counts them; shown in STATS_XATTR). */
  readonly requests: Record<string, number> = {};
  /** Requests the FUSE session answered without asking (set by mount.ts). */
  answeredNatively: () => number = () => 0;
  /**
   * Cold data turned up in a pack not known to be cold (archived by a lifecycle rule): the
   * xattr lists the session answers itself for hot files are stale (set by mount.ts).
   */
  xattrListsStale: () => void = () => {};
  /** Per file: whether its packs were all hot, and in which generation (bumped by coldFound). */
  private readonly hotNodes = new WeakMap<TreeNode, { gen: number; hot: boolean }>();
  private hotGen = 0;
  /** Listings built ahead of a walk and handed to the session thread (set by ops.ts). */
  listingsAhead: () => number = () => 0;
  /**
   * The kernel does not check ACLs on this mount (mount.ts: no snapshot had any when it was
   * mounted, and no other user can reach it): a missing ACL may answer EOPNOTSUPP.
   */
  aclsUnchecked = false;
  /** Kinds of xattr no snapshot shown has; empty when one did not record its kinds. */
  private absentKinds = new Set<XattrKind>();
  /** The kinds no entry has changed (set by mount.ts: the session thread answers by them too). */
  xattrsAbsentChanged: () => void = () => {};

  /** Kinds of xattr no snapshot shown has, for getxattr's answers (ACLs only when aclsUnchecked). */
  get xattrKindsAbsent(): ReadonlySet<XattrKind> {
    return this.absentKinds;
  }

  /** The errno of getxattr of a name an entry does not have: EOPNOTSUPP when no entry shown has its kind (`ls` stops asking). */
  missingXattrErrno(name: string): 'ENODATA' | 'EOPNOTSUPP' {
    const k = xattrKindOf(name);
    if (!k || (k === 'acl' && !this.aclsUnchecked)) return 'ENODATA';
    return this.absentKinds.has(k) ? 'EOPNOTSUPP' : 'ENODATA';
  }

  /** Before new snapshots are shown: a kind one of them may have is no longer absent. */
  private updateXattrKindsAbsent(): void {
    const absent = new Set<XattrKind>(XATTR_KINDS);
    for (const s of this.snaps.values()) {
      const k = parseXattrKinds(s.info.xattrKinds);
      if (!k) absent.clear();
      for (const x of k ?? []) absent.delete(x);
    }
    const changed = absent.size !== this.absentKinds.size || [...absent].some((k) => !this.absentKinds.has(k));
    this.absentKinds = absent;
    if (changed) this.xattrsAbsentChanged();
  }

  get snapshotCount(): number {
    return this.snaps.size;
  }

  // ---- snapshots and the virtual directories ----

  /**
   * Picks up snapshots added or removed since the last call (and the index files of the
   * new ones). Returns whether anything changed. Concurrent calls share one run.
   */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    const ids = await this.repo.listSnapshotIds();
    const present = new Set(ids);
    const added = ids.filter((id) => !this.snaps.has(id));
    const removed = [...this.snaps.keys()].filter((id) => !present.has(id));
    const loaded: Snapshot[] = [];
    await mapLimit(added, 8, async (id) => {
      try {
        loaded.push(await this.repo.loadSnapshot(id));
        this.unreadable.delete(id);
      } catch (e) {
        // A snapshot being uploaded right now, or a damaged one: try again next time, say it once.
        if (!this.unreadable.has(id)) this.log(`snapshot ${id.slice(0, 8)} is not shown: ${(e as Error).message}`);
        this.unreadable.add(id);
      }
    });
    if (!loaded.length && !removed.length) return false;
    // The snapshot object is written after its index files, so they are there now.
    if (loaded.length) await this.repo.loadIndex();
    for (const id of removed) {
      const s = this.snaps.get(id)!;
      this.snaps.delete(id);
      this.usedNames.delete(s.name);
    }
    if (removed.length) this.paths.clear();
    loaded.sort(bySnapshotTime);
    for (const s of loaded) {
      const base = timeName(s.info.time);
      let name = base;
      for (let k = 2; this.usedNames.has(name); k++) name = suffixedName(base, k);
      this.usedNames.add(name);
      const tree = Buffer.from(s.info.tree, 'hex');
      this.snaps.set(s.id, { no: this.nextSnapNo++, id: s.id, info: s.info, name, ino: this.inodes.get(`s:${s.id}`), tree, mtimeMs: timeMs(s.info.time), signer: s.signer });
    }
    this.updateXattrKindsAbsent();
    this.root = this.buildViews();
    return true;
  }

  private buildViews(): Entry & { kind: 'vdir' } {
    const snaps = [...this.snaps.values()].sort((a, b) => bySnapshotTime(a, b));
    // Never a snapshot dated more than a day ahead (it keeps its own directory).
    const now = Date.now();
    const latest = [...snaps].reverse().find((s) => !isFuture(s.info, now));
    const mtimeMs = latest?.mtimeMs ?? this.startedMs;
    const vdir = (path: string, children: Map<string, Entry>): Entry & { kind: 'vdir' } => {
      let nlink = 2;
      for (const c of children.values()) if (c.kind === 'vdir' || c.kind === 'snap') nlink++;
      return { kind: 'vdir', ino: this.inodes.get(`v:${path}`), mtimeMs, nlink, children };
    };
    const vlink = (path: string, target: string, ms: number): Entry => ({ kind: 'vlink', ino: this.inodes.get(`v:${path}`), mtimeMs: ms, target });

    const snapshots = new Map<string, Entry>();
    for (const s of snaps) snapshots.set(s.name, { kind: 'snap', ino: s.ino, snap: s });
    if (latest) snapshots.set('latest', vlink('/snapshots/latest', latest.name, latest.mtimeMs));

    const grouped = (dir: string, keysOf: (s: Snap) => string[]) => {
      const groups = new Map<string, Map<string, Entry>>();
      for (const s of snaps) {
        for (const key of keysOf(s)) {
          const k = byteName(componentName(key));
          let g = groups.get(k);
          if (!g) groups.set(k, (g = new Map()));
          g.set(s.name, vlink(`/${dir}/${k}/${s.name}`, `../../snapshots/${s.name}`, s.mtimeMs));
        }
      }
      const children = new Map<string, Entry>();
      for (const [k, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) children.set(k, vdir(`/${dir}/${k}`, g));
      return vdir(`/${dir}`, children);
    };

    // Short ids as restic shows them (8 hex digits); the full id where 8 are ambiguous.
    const shortCount = new Map<string, number>();
    for (const s of snaps) shortCount.set(s.id.slice(0, 8), (shortCount.get(s.id.slice(0, 8)) ?? 0) + 1);
    const ids = new Map<string, Entry>();
    for (const s of snaps) {
      const short = shortCount.get(s.id.slice(0, 8))! > 1 ? s.id : s.id.slice(0, 8);
      ids.set(short, vlink(`/ids/${short}`, `../snapshots/${s.name}`, s.mtimeMs));
    }

    // The table hands out ROOT_INO for v:/.
    return vdir('/', new Map<string, Entry>([
      ['snapshots', vdir('/snapshots', snapshots)],
      ['hosts', grouped('hosts', (s) => [s.info.host])],
      ['tags', grouped('tags', (s) => s.info.tags ?? [])],
      ['ids', vdir('/ids', ids)],
    ]));
  }

  // ---- lookups ----

  async resolve(path: string): Promise<Entry | undefined> {
    if (path === '/') return this.root;
    if (this.cold && path.startsWith('/.tsbak-status')) {
      if (path === `/${STATUS_NAME}`) return this.statusLink();
      const m = STATUS_COPY.exec(path);
      if (m) return this.statusCopies.get(Number(m[1]));
    }
    const hit = this.paths.get(path);
    if (hit) return hit;
    const slash = path.lastIndexOf('/');
    const parent = slash === 0 ? this.root : await this.resolve(path.slice(0, slash));
    if (!parent) return undefined;
    const name = path.slice(slash + 1);
    if (parent.kind === 'vdir') return parent.children.get(name);
    if (parent.kind === 'vlink' || parent.kind === 'vfile') return undefined;
    const dir = await this.dirOf(parent);
    if (!dir) return undefined;
    const node = dir.byName.get(name);
    if (!node) return undefined;
    const e = this.nodeEntry(parent, name, node);
    this.paths.set(path, e);
    return e;
  }

  private async must(path: string): Promise<Entry> {
    const e = await this.resolve(path);
    if (!e) throw new FsError('ENOENT');
    return e;
  }

  /** The tree under a snapshot root or a directory node; undefined for anything else. */
  private dirOf(e: Entry) {
    if (e.kind === 'snap') return this.trees.get(e.snap.tree);
    if (e.kind === 'node' && e.node.type === 'dir') return e.node.subtree ? this.trees.get(e.node.subtree) : { names: [], nodes: [], byName: new Map<string, TreeNode>() };
    return undefined;
  }

  private nodeEntry(parent: InSnapshot, name: string, node: TreeNode): Entry {
    // Every name of a hardlinked inode gets the same number, so cp -a/rsync -H/tar link them again.
    const key = node.hardlink !== undefined && node.type !== 'dir' ? `h${parent.snap.no}:${node.hardlink}` : `${parent.ino}/${name}`;
    return { kind: 'node', ino: this.inodes.get(key), snap: parent.snap, node };
  }

  stat(e: Entry): FuseStat {
    switch (e.kind) {
      case 'vdir':
        return virtualDirStat(e.ino, e.mtimeMs, e.nlink, this.owner);
      case 'vlink':
        return virtualLinkStat(e.ino, e.target, e.mtimeMs, this.owner);
      case 'snap':
        // nlink 1: "not counted", so tools do not infer subdirectory counts without loading the tree.
        return virtualDirStat(e.ino, e.snap.mtimeMs, 1, this.owner);
      case 'node': {
        const st = nodeStat(e.node, e.ino, this.owner);
        // user.tsbak.state is always asked of JavaScript; it is listed only for files with cold data.
        if (!e.node.xattrs?.length) st.xattrFlags = XATTR_NO_GET | (this.stateMayBeListed(e.node) ? 0 : XATTR_NO_LIST);
        return st;
      }
      case 'vfile':
        return virtualFileStat(e.ino, e.data.length, e.mtimeMs, this.owner);
    }
  }

  /** Whether listxattr of this node may list user.tsbak.state (cold.ts, listed). */
  private stateMayBeListed(node: TreeNode): boolean {
    return !!this.cold && this.cold.listStateXattr && node.type === 'file' && !this.knownHot(node);
  }

  /**
   * Whether every chunk of the file lies in a pack not in cold storage (repo.locateHot): its
   * state is `hot` until a read meets cold data there (coldFound), so opening it needs no
   * look at cold storage and listing its xattrs never shows the state.
   */
  private knownHot(node: TreeNode): boolean {
    if (!this.cold) return true;
    const seen = this.hotNodes.get(node);
    if (seen && seen.gen === this.hotGen) return seen.hot;
    const hot = (node.content ?? []).every((id) => this.repo.locateHot(id) !== undefined);
    this.hotNodes.set(node, { gen: this.hotGen, hot });
    return hot;
  }

  /** A file opened as hot met cold data: what was decided from packs being hot is stale. */
  private coldFound(): void {
    this.hotGen++;
    this.xattrListsStale();
  }

  async getattr(path: string): Promise<FuseStat> {
    return this.stat(await this.must(path));
  }

  /** Entries of a directory with their stats, '.' and '..' first. */
  async readdir(path: string): Promise<{ names: string[]; stats: FuseStat[]; links?: { inos: number[]; targets: Buffer[] } }> {
    const e = await this.must(path);
    const names = ['.', '..'];
    const stats = [this.stat(e)];
    const slash = path.lastIndexOf('/');
    const parent = path === '/' ? e : await this.resolve(slash === 0 ? '/' : path.slice(0, slash));
    stats.push(this.stat(parent ?? e));
    if (e.kind === 'vdir') {
      if (e === this.root && this.cold) {
        names.push(STATUS_NAME);
        stats.push(this.stat(this.statusLink()));
      }
      for (const [name, child] of e.children) {
        names.push(name);
        stats.push(this.stat(child));
      }
      return { names, stats };
    }
    const dir = await this.dirOf(e);
    if (!dir) throw new FsError('ENOTDIR');
    // A walk (ls -R, cp -a, find) lists the subdirectories next: load their trees now.
    const subdirs: Buffer[] = [];
    for (const n of dir.nodes) if (n.type === 'dir' && n.subtree) subdirs.push(n.subtree);
    if (subdirs.length) this.trees.prefetch(subdirs);
    const prefix = path === '/' ? '/' : `${path}/`;
    const links = { inos: [] as number[], targets: [] as Buffer[] };
    for (let i = 0; i < dir.nodes.length; i++) {
      const name = dir.names[i]!;
      const node = dir.nodes[i]!;
      const child = this.nodeEntry(e as InSnapshot, name, node);
      // `ls -l` and `cp -r` stat every entry next: remember them now.
      this.paths.set(prefix + name, child);
      names.push(name);
      stats.push(this.stat(child));
      // ...and `ls -l` reads every symlink.
      if (node.type === 'symlink' && node.target?.length) {
        links.inos.push(child.ino);
        links.targets.push(node.target);
      }
    }
    return links.inos.length ? { names, stats, links } : { names, stats };
  }

  /** A symlink's target: text for the links the mount makes, raw bytes for a snapshot's. */
  async readlink(path: string): Promise<string | Buffer> {
    const e = await this.must(path);
    if (e.kind === 'vlink') return e.target;
    if (e.kind === 'node' && e.node.type === 'symlink') return e.node.target ?? Buffer.alloc(0);
    throw new FsError('EINVAL');
  }

  // ---- extended attributes ----

  async getxattr(path: string, name: string): Promise<Buffer | undefined> {
    const e = await this.must(path);
    if (e.kind === 'node') {
      const own = e.node.xattrs?.find(([k]) => k === name)?.[1];
      if (own || name !== STATE_XATTR || e.node.type !== 'file') return own;
      // The data's state (./cold.ts): from what is known, without reading the file.
      return Buffer.from(this.cold ? await this.cold.state(e.ino, e.node) : 'hot');
    }
    if (e.kind === 'snap' && name === SIGNER_XATTR) return Buffer.from(JSON.stringify(e.snap.signer));
    if (e === this.root && name === STATS_XATTR) return Buffer.from(JSON.stringify(this.stats()));
    return undefined;
  }

  async listxattr(path: string): Promise<string[]> {
    const e = await this.must(path);
    if (e.kind === 'snap') return [SIGNER_XATTR];
    if (e.kind !== 'node') return [];
    const names = (e.node.xattrs ?? []).map(([k]) => k);
    if (this.cold && (await this.cold.listed(e.ino, e.node))) names.push(STATE_XATTR);
    return names;
  }

  stats() {
    return { snapshots: this.snaps.size, treeLoads: this.trees.loads, groupReads: this.chunks.groupStats.groups, groupBlobs: this.chunks.groupStats.blobs, pooledChunks: this.chunks.poolStats, inodes: this.inodes.size, openFiles: this.files.size, indexedBlobs: this.repo.index.size, requests: this.requests, answeredNatively: this.answeredNatively(), listingsAhead: this.listingsAhead(), ...(this.cold ? { cold: this.cold.stats() } : {}) };
  }

  // ---- the status file ----

  /** The link /.tsbak-status, pointing at a copy of the status made now (a new one if it changed). */
  private statusLink(): Entry & { kind: 'vlink' } {
    const now = new Date();
    const text = statusText(this.repo.coldStatus(), now, this.cold!.mode);
    const body = text.slice(text.indexOf('\n') + 1); // the first line holds the time
    if (body !== this.statusLast.body || !this.statusCopies.has(this.statusLast.n) || now.getTime() - this.statusCopies.get(this.statusLast.n)!.mtimeMs >= 1000) {
      const n = this.statusLast.n + 1;
      // Inode numbers of the copies come from a ring, so the table does not grow with them.
      this.statusCopies.set(n, { kind: 'vfile', ino: this.inodes.get(`v:/${STATUS_NAME}@${n % (2 * STATUS_KEEP)}`), mtimeMs: now.getTime(), data: Buffer.from(text) });
      this.statusCopies.delete(n - STATUS_KEEP);
      this.statusLast = { n, body };
    }
    const cur = this.statusCopies.get(this.statusLast.n)!;
    return { kind: 'vlink', ino: this.inodes.get(`v:/${STATUS_NAME}`), mtimeMs: cur.mtimeMs, target: `${STATUS_NAME}@${this.statusLast.n}` };
  }

  // ---- file data ----

  async open(path: string): Promise<number> {
    const e = await this.must(path);
    if (e.kind === 'vfile') return this.addHandle({ reader: new BufferReader(e.data), ready: true });
    if (e.kind !== 'node') throw new FsError('EISDIR');
    if (e.node.type === 'dir') throw new FsError('EISDIR');
    if (e.node.type !== 'file') throw new FsError('EACCES');
    let map = this.chunkMaps.get(e.node);
    if (!map) {
      map = await this.chunkMap(e.node);
      this.chunkMaps.set(e.node, map);
    }
    const f = new OpenFile(map, this.chunks, this.readahead);
    const h: Handle = { reader: f, ready: true };
    if (this.cold && map.count) {
      h.cold = { ino: e.ino, node: e.node, where: this.mountpoint + textOfPath(path) };
      if (this.knownHot(e.node)) h.hot = true;
      else {
        this.cold.forget(e.ino);
        // Cold or being restored: fetch nothing (no GET of an archived pack); the first read says what to do.
        h.ready = isReadable(await this.cold.state(e.ino, e.node));
      }
    }
    // A small file: its neighbours in the pack come with its chunk (pack-group.ts).
    if (h.ready && map.count && e.node.size <= SMALL_FILE) {
      if (!this.chunks.ready(map.ids[0]!)) await this.fetchGroup(path, map.ids[0]!);
      this.ahead.onRead(map.ids[0]!);
    }
    // The first read follows at once: fetch its chunk while the open travels back to the caller.
    if (h.ready) f.start();
    return this.addHandle(h);
  }

  /** Starts fetching a small file's first chunk with the blobs of its directory's files around it. */
  private async fetchGroup(path: string, id: Buffer): Promise<void> {
    const slash = path.lastIndexOf('/');
    const parent = await this.resolve(slash <= 0 ? '/' : path.slice(0, slash));
    const dir = parent ? await this.dirOf(parent) : undefined;
    if (dir) this.chunks.group(this.groups.around(dir, id));
  }

  private addHandle(h: Handle): number {
    const fd = this.nextFd++;
    this.files.set(fd, h);
    return fd;
  }

  private async chunkMap(node: TreeNode): Promise<ChunkMap> {
    const rawLength = (id: Buffer) => this.repo.locate(id)?.rawLength;
    try {
      return buildChunkMap(node, rawLength);
    } catch (e) {
      if (!(e instanceof TsbakError && e.code === 'NOT_FOUND')) throw e;
      await this.repo.loadIndex(); // an index written since the last refresh
      return buildChunkMap(node, rawLength);
    }
  }

  /**
   * The bytes at pos (at most len) as views of data in memory (reader.ts views), to answer
   * a read without a copy; synchronous when the data is already in memory. Cold data: see ./cold.ts.
   */
  read(fd: number, len: number, pos: number): Buffer[] | Promise<Buffer[]> {
    const h = this.files.get(fd);
    if (!h) throw new FsError('EBADF');
    const cold = this.cold;
    if (!h.cold || !cold) return h.reader.views(len, pos);
    const f = h.cold;
    if (!h.ready) {
      return cold.ensureReadable(f).then(() => {
        h.ready = true;
        return this.readCold(h, f, len, pos);
      });
    }
    return this.readCold(h, f, len, pos);
  }

  /** A read of a file in cold storage: on cold data after all, restore (./cold.ts), then read once more. */
  private readCold(h: Handle, f: ColdFile, len: number, pos: number): Buffer[] | Promise<Buffer[]> {
    const n = h.reader.views(len, pos);
    if (Array.isArray(n)) return n;
    // A read that had to fetch may have brought packs into the local cache: the state
    // remembered at open (user.tsbak.state) is stale now, not only once the file is closed
    // (the kernel's release can come after the reader's next getxattr).
    const fetched = (got: Buffer[]) => {
      this.cold!.forget(f.ino);
      return got;
    };
    return n.then(fetched, async (e) => {
      if (!isCold(e)) throw e;
      if (h.hot) {
        h.hot = false;
        this.coldFound();
      }
      h.ready = false;
      await this.cold!.ensureReadable(f, true);
      h.ready = true;
      try {
        return fetched(await h.reader.views(len, pos));
      } catch (e2) {
        if (isCold(e2)) throw new FsError(COLD_ERRNO, `${f.where}: data in cold storage`);
        throw e2;
      }
    });
  }

  release(fd: number): void {
    const h = this.files.get(fd);
    this.files.delete(fd);
    h?.reader.close?.();
    if (h?.cold) this.cold?.forget(h.cold.ino);
  }
}

function isCold(e: unknown): boolean {
  return e instanceof TsbakError && e.code === 'COLD';
}
