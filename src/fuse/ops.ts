// FUSE low-level requests (src/platform/native/fuse.ts) over a SnapshotFs: inode numbers to
// paths, promises to replies, errors to errno. Nothing here writes: the mount is `ro`, the
// kernel refuses changes, and the operations that would change something are not
// implemented (libfuse answers ENOSYS; open for writing answers EROFS).
import { constants as F } from 'node:fs';
import { constants } from 'node:os';
import { TsbakError } from '../errors.js';
import { FuseOp, fuseNative, STAT_FIELDS, type FuseHandlers, type FuseReq, type FuseSession } from '../platform/native/fuse.js';
import { FsError, type Entry, type SnapshotFs } from './fs.js';
import { ROOT_INO } from './inodes.js';
import { textOfPath } from './names.js';
import { statFields, type FuseStat } from './stat.js';
import { COLD_ERRNO } from './cold.js';
import { ListingsAhead, type Listing } from './listings-ahead.js';

const ERRNO = constants.errno as Record<string, number>;

/** Negative errno values, as the replies take them. */
export function errno(name: string): number {
  return -(ERRNO[name] ?? ERRNO.EIO!);
}

export const EROFS = errno('EROFS');
export const ENODATA = errno('ENODATA');
export const ERANGE = errno('ERANGE');

/** The errno a failed operation answers, and whether the failure is worth a log line. */
export function errnoFor(e: unknown): { errno: number; report: boolean } {
  if (e instanceof FsError) return { errno: errno(e.errno), report: false };
  if (e instanceof TsbakError) {
    switch (e.code) {
      case 'COLD':
        return { errno: errno(COLD_ERRNO), report: true };
      case 'WRITE_ONLY_KEY':
        return { errno: errno('EACCES'), report: true };
      default:
        return { errno: errno('EIO'), report: true };
    }
  }
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && ERRNO[code]) return { errno: errno(code), report: true };
  return { errno: errno('EIO'), report: true };
}

const O_ACCMODE = 3;
const WRITE_FLAGS = F.O_CREAT | F.O_TRUNC | F.O_APPEND;

export interface OpsOptions {
  /** Seconds the kernel may keep names and attributes of what can change (the snapshot list). */
  cacheTimeout: number;
  /** The same inside a snapshot, which never changes. */
  snapshotTimeout: number;
  /** A request not answered after this many ms fails with ETIMEDOUT. */
  opTimeoutMs: number;
  /** The same for reads (longer with cold=wait). */
  readTimeoutMs: number;
}

/** A request in flight: answered exactly once (a second fuse_reply_* would use freed memory). */
interface Pending {
  req: FuseReq;
  deadline: number;
  /** The operation and inode number, for log lines (named only then: most requests never log). */
  op: number;
  ino: number;
}

/** An open directory: its listing, made at the first readdir, with the stats readdirplus sends. */
interface OpenDir {
  path: string;
  names?: Buffer[];
  stats?: Float64Array;
  inos?: number[];
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** The request handlers of a mount, and a sweep that fails requests past their deadline. */
export function makeOps(fs: SnapshotFs, log: (msg: string) => void, o: OpsOptions): FuseHandlers & { sweep(now: number): void; attach(s: FuseSession): void } {
  const native = fuseNative();
  /** Inode number -> path (byte string); hardlinked names share a number, and their stats. */
  const paths = new Map<number, string>([[ROOT_INO, '/']]);
  const dirs = new Map<number, OpenDir>();
  let nextDirFh = 1;
  const pending = new Set<Pending>();
  const one = new Float64Array(STAT_FIELDS);

  const what = (p: Pending) => `${opName(p.op)} ${textOfPath(paths.get(p.ino) ?? `#${p.ino}`)}`;
  const begin = (req: FuseReq, op: number, ino: number, ms: number): Pending => {
    const p = { req, deadline: Date.now() + ms, op, ino };
    pending.add(p);
    return p;
  };
  /** Runs `answer` if the request is still waiting. */
  const finish = (p: Pending, answer: (req: FuseReq) => void) => {
    if (!pending.delete(p)) return;
    answer(p.req);
  };
  const fail = (p: Pending) => (e: unknown) => {
    const { errno: n, report } = errnoFor(e);
    if (report) log(`${what(p)}: ${(e as Error)?.message ?? String(e)}`);
    finish(p, (req) => native.fuseReplyErr(req, n));
  };
  const pathOf = (ino: number): string => {
    const path = paths.get(ino);
    if (path === undefined) throw new FsError('ESTALE');
    return path;
  };
  const timeoutOf = (e: Entry) => (e.kind === 'node' ? o.snapshotTimeout : o.cacheTimeout);
  /** For the entries of directory e. */
  const childTimeout = (e: Entry | undefined) => (e?.kind === 'node' || e?.kind === 'snap' ? o.snapshotTimeout : o.cacheTimeout);
  const stat = (st: FuseStat) => {
    statFields(st, one);
    return one;
  };

  const handle = async (op: number, p: Pending, ino: number, a: number, b: number, fh: number, name: Buffer | undefined): Promise<void> => {
    switch (op) {
      case FuseOp.lookup: {
        const parent = pathOf(ino);
        const path = `${parent === '/' ? '' : parent}/${name!.toString('latin1')}`;
        const e = await fs.resolve(path);
        if (!e) throw new FsError('ENOENT');
        paths.set(e.ino, path);
        const t = timeoutOf(e);
        return finish(p, (req) => native.fuseReplyEntry(req, stat(fs.stat(e)), t, t));
      }
      case FuseOp.getattr: {
        const e = await fs.resolve(pathOf(ino));
        if (!e) throw new FsError('ENOENT');
        return finish(p, (req) => native.fuseReplyAttr(req, stat(fs.stat(e)), timeoutOf(e)));
      }
      case FuseOp.readlink: {
        const t = await fs.readlink(pathOf(ino));
        return finish(p, (req) => native.fuseReplyReadlink(req, typeof t === 'string' ? Buffer.from(t) : t));
      }
      case FuseOp.open: {
        if ((a & O_ACCMODE) !== F.O_RDONLY || a & WRITE_FLAGS) throw new FsError('EROFS');
        const fd = await fs.open(pathOf(ino));
        // Snapshot data never changes: pages stay cached across opens.
        return finish(p, (req) => native.fuseReplyOpen(req, fd, true));
      }
      case FuseOp.read: {
        // fh 0: the kernel does not open (noOpen): the file is opened here, by inode.
        const r = fs.read(fh === 0 ? await byIno(ino) : fh, a, b);
        const views = Array.isArray(r) ? r : await r;
        // A read over many small holes and chunks: one buffer (the native reply takes 64 pieces).
        return finish(p, (req) => native.fuseReplyIov(req, views.length <= 64 ? views : [Buffer.concat(views)]));
      }
      case FuseOp.release:
        fs.release(fh);
        return finish(p, (req) => native.fuseReplyErr(req, 0));
      case FuseOp.opendir: {
        const path = pathOf(ino);
        const dfh = nextDirFh++;
        dirs.set(dfh, { path });
        return finish(p, (req) => native.fuseReplyOpen(req, dfh, false));
      }
      case FuseOp.readdir:
      case FuseOp.readdirplus: {
        // fh 0: the kernel skips opendir; the listing is made at offset 0, as at an opendir.
        const d = fh === 0 ? dirByIno(ino, b <= 0) : dirs.get(fh);
        if (!d) throw new FsError('EBADF');
        if (!d.names) await list(d);
        const from = Math.max(0, b);
        const count = d.names!.length - from;
        const offsets = new Float64Array(Math.max(0, count));
        for (let i = 0; i < count; i++) offsets[i] = from + i + 1;
        const e = await fs.resolve(d.path);
        const t = childTimeout(e);
        // A snapshot's directories never change: the session answers the read past the end.
        const end = e?.kind === 'node' || e?.kind === 'snap' ? d.names!.length : 0;
        finish(p, (req) => native.fuseReplyDir(req, op === FuseOp.readdirplus, a, d.names!.slice(from), d.stats!.subarray(from * STAT_FIELDS), offsets, t, ino, end));
        if (from === 0 && end > 0) ahead.listed(ino, d as Listing);
        return;
      }
      case FuseOp.releasedir:
        dirs.delete(fh);
        return finish(p, (req) => native.fuseReplyErr(req, 0));
      case FuseOp.getxattr: {
        const v = await fs.getxattr(pathOf(ino), name!.toString('utf8'));
        if (!v) throw new FsError(fs.missingXattrErrno(name!.toString('utf8')));
        return finish(p, (req) => sized(req, v, a));
      }
      case FuseOp.listxattr: {
        const names = await fs.listxattr(pathOf(ino));
        return finish(p, (req) => sized(req, Buffer.from(names.map((n) => `${n}\0`).join('')), a));
      }
      case FuseOp.statfs:
        return finish(p, (req) => native.fuseReplyStatfs(req, fs.snapshotCount));
      default:
        throw new FsError('ENOSYS');
    }
  };

  /** An xattr value or list: its size when the caller asks (size 0), ERANGE when it does not fit. */
  const sized = (req: FuseReq, v: Buffer, size: number) => {
    if (size === 0) native.fuseReplyXattrSize(req, v.length);
    else if (v.length > size) native.fuseReplyErr(req, ERANGE);
    else native.fuseReplyBuf(req, v);
  };

  /**
   * Files opened by inode for reads that come without an open (noOpen), the oldest closed
   * past INO_OPEN_MAX. Each remembers the path it was opened by: the status file's copies
   * take their inode numbers from a ring, so a number can name another copy later.
   */
  const inoFiles = new Map<number, { path: string; fd: Promise<number> }>();
  const byIno = (ino: number): Promise<number> => {
    const path = pathOf(ino);
    const hit = inoFiles.get(ino);
    if (hit) {
      inoFiles.delete(ino); // most recently used last
      if (hit.path === path) {
        inoFiles.set(ino, hit);
        return hit.fd;
      }
      hit.fd.then((n) => fs.release(n), () => {});
    }
    const f = { path, fd: fs.open(path) };
    f.fd.catch(() => inoFiles.get(ino) === f && inoFiles.delete(ino));
    inoFiles.set(ino, f);
    if (inoFiles.size > INO_OPEN_MAX) {
      const [oldest, old] = inoFiles.entries().next().value!;
      inoFiles.delete(oldest);
      old.fd.then((n) => fs.release(n), () => {});
    }
    return f.fd;
  };

  /** Listings by inode, for readdir without opendir (the most recent DIR_LISTINGS_MAX). */
  const dirsByIno = new Map<number, OpenDir>();
  const dirByIno = (ino: number, fresh: boolean): OpenDir => {
    let d = dirsByIno.get(ino);
    if (d && !fresh) {
      dirsByIno.delete(ino); // most recently used last
      dirsByIno.set(ino, d);
      return d;
    }
    dirsByIno.delete(ino);
    d = { path: pathOf(ino) };
    dirsByIno.set(ino, d);
    if (dirsByIno.size > DIR_LISTINGS_MAX) dirsByIno.delete(dirsByIno.keys().next().value!);
    return d;
  };

  const listing = async (path: string): Promise<Listing> => {
    const { names, stats, links } = await fs.readdir(path);
    if (links && session) native.fuseSetLinkTargets(session, Float64Array.from(links.inos), links.targets);
    const prefix = path === '/' ? '/' : `${path}/`;
    const out = new Float64Array(names.length * STAT_FIELDS);
    const bufs = names.map((n, i) => {
      statFields(stats[i]!, out, i * STAT_FIELDS);
      if (i < 2) return i === 0 ? DOT : DOTDOT;
      // readdirplus makes the kernel know these numbers without a lookup.
      paths.set(stats[i]!.ino, prefix + n);
      return Buffer.from(n, 'latin1');
    });
    return { names: bufs, stats: out };
  };
  const list = async (d: OpenDir) => {
    const l = await listing(d.path);
    d.names = l.names;
    d.stats = l.stats;
  };

  /** Set once mounted: listings built ahead go to its session thread. */
  let session: FuseSession | undefined;
  const ahead = new ListingsAhead({
    async build(ino) {
      const path = paths.get(ino);
      if (path === undefined) return undefined;
      // Only a snapshot's directories: their listings never change.
      const e = await fs.resolve(path);
      if (!(e?.kind === 'snap' || (e?.kind === 'node' && e.node.type === 'dir'))) return undefined;
      return listing(path);
    },
    hand: (ino, l) => (session ? native.fuseSetListing(session, ino, l.names, l.stats, o.snapshotTimeout) : false),
  });
  fs.listingsAhead = () => ahead.handed;

  return {
    // An open decides nothing a read cannot (a file in cold storage opens, and its first
    // read requests the restore and fails or waits, fs.ts): the kernel may skip it.
    noOpen: true,
    onRequest(op, req, ino, a, b, fh, name) {
      const opn = opName(op);
      fs.requests[opn] = (fs.requests[opn] ?? 0) + 1;
      const p = begin(req, op, ino, op === FuseOp.read ? o.readTimeoutMs : o.opTimeoutMs);
      handle(op, p, ino, a, b, fh, name).catch(fail(p));
    },
    onEnd() {},
    onListed(ino) {
      ahead.listed(ino);
    },
    attach(s) {
      session = s;
    },
    sweep(now: number) {
      for (const p of pending) {
        if (p.deadline > now) continue;
        log(`${what(p)}: no answer in time, failed with ETIMEDOUT`);
        finish(p, (req) => native.fuseReplyErr(req, errno('ETIMEDOUT')));
      }
    },
  };
}

/** Listings kept by inode (readdir without opendir): a few walkers at once, each in a few directories. */
const DIR_LISTINGS_MAX = 64;

/** Files kept open by inode (noOpen): a few readers at once, each reading forward. */
const INO_OPEN_MAX = 64;

const OP_NAMES: string[] = [];
for (const [k, v] of Object.entries(FuseOp)) OP_NAMES[v] = k;

function opName(op: number): string {
  return OP_NAMES[op] ?? `op ${op}`;
}
