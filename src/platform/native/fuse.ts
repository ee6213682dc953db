// A read-only FUSE session over libfuse 3's low-level API (native/fuse_ll.c): the kernel's
// requests come to onRequest on the main thread, and each is answered once with a reply.
import { addon } from './addon.js';

/** A kernel request waiting for its answer (opaque). */
export type FuseReq = { readonly __fuseReq: unique symbol };
/** A mounted session (opaque). */
export type FuseSession = { readonly __fuseSession: unique symbol };

export const FuseOp = {
  lookup: 1,
  getattr: 2,
  readlink: 3,
  open: 4,
  read: 5,
  release: 6,
  opendir: 7,
  readdir: 8,
  readdirplus: 9,
  releasedir: 10,
  getxattr: 11,
  listxattr: 12,
  statfs: 13,
} as const;

/** Numbers per stat in a Float64Array (see statFields). */
export const STAT_FIELDS = 16;

/**
 * The last of a stat's numbers: what the session thread may answer about the entry's
 * extended attributes itself. NO_GET: getxattr of any name but user.tsbak.state is ENODATA;
 * NO_LIST: listxattr is empty.
 */
export const XATTR_NO_GET = 1;
export const XATTR_NO_LIST = 2;

/** fuseSetXattrsAbsent: kinds of xattr no entry has; getxattr of one answers EOPNOTSUPP (ls stops asking). */
export const ABSENT_SECURITY = 1;
/** Only with noAcls (the kernel does not check ACLs): its permission checks would fail on the error. */
export const ABSENT_ACL = 2;

export interface FuseHandlers {
  /**
   * One request: a and b are, per op, open: flags; read/readdir(plus): size, offset;
   * getxattr/listxattr: the caller's buffer size. fh: the handle of read, release,
   * readdir(plus), releasedir (0 for readdir where the kernel skips opendir: list by inode).
   * name: lookup's and getxattr's name, raw bytes.
   */
  onRequest(op: number, req: FuseReq, ino: number, a: number, b: number, fh: number, name: Buffer | undefined): void;
  /** The kernel side is gone (unmounted); no request comes after this. */
  onEnd(): void;
  /**
   * Let the kernel skip open and release where it can (FUSE_CAP_NO_OPEN_SUPPORT): reads
   * then come with fh 0 and must be served by inode.
   */
  noOpen?: boolean;
  /** Do not ask the kernel to check POSIX ACLs (no FUSE_CAP_POSIX_ACL): it checks the mode bits. */
  noAcls?: boolean;
  /**
   * The session thread answered a readdirplus of directory `ino` from the listing given to
   * fuseSetListing (at its first entry): called after, not waited for.
   */
  onListed?(ino: number): void;
}

interface Native {
  fuseMount(mountpoint: string, options: string[], handlers: FuseHandlers): FuseSession;
  fuseExit(s: FuseSession): void;
  fuseReplyErr(req: FuseReq, errno: number): void;
  fuseReplyEntry(req: FuseReq, stat: Float64Array, entryTimeout: number, attrTimeout: number): void;
  fuseReplyAttr(req: FuseReq, stat: Float64Array, timeout: number): void;
  fuseReplyBuf(req: FuseReq, data: Buffer): void;
  /** Read data in pieces, sent as they are (fuse_reply_iov: no copy into one buffer). */
  fuseReplyIov(req: FuseReq, pieces: Buffer[]): void;
  /** Requests the session thread answered itself (xattrs of entries without any). */
  fuseAnsweredHere(s: FuseSession): number;
  /** listxattr of every inode goes to JavaScript again (the lists with XATTR_NO_LIST may be stale). */
  /** ABSENT_SECURITY | ABSENT_ACL: what getxattr of an entry without xattrs answers EOPNOTSUPP for. */
  fuseSetXattrsAbsent(s: FuseSession, bits: number): void;
  fuseForgetXattrLists(s: FuseSession): void;
  fuseReplyReadlink(req: FuseReq, target: Buffer): void;
  fuseReplyOpen(req: FuseReq, fh: number, keepCache: boolean): void;
  fuseReplyXattrSize(req: FuseReq, size: number): void;
  fuseReplyStatfs(req: FuseReq, files: number): void;
  /**
   * A listing's entries from offsets[-1]; `end` > 0: directory `ino`'s listing never changes
   * and ends at offset `end`, so the session answers reads past it itself.
   */
  fuseReplyDir(req: FuseReq, plus: boolean, size: number, names: Buffer[], stats: Float64Array, offsets: Float64Array, timeout: number, ino: number, end: number): number;
  /**
   * The whole listing of directory `ino`, which never changes ('.' and '..' first; entry i
   * at offset i), for the session thread to answer readdirplus with; false if not kept.
   */
  fuseSetListing(s: FuseSession, ino: number, names: Buffer[], stats: Float64Array, timeout: number): boolean;
  /** Targets of symlinks inside snapshots (they never change), by inode: the session thread answers their readlink. */
  fuseSetLinkTargets(s: FuseSession, inos: Float64Array, targets: Buffer[]): void;
}

/** The native functions, for src/fuse (options are libfuse's mount options, e.g. ["-o", "ro,allow_other"]). */
export function fuseNative(): Native {
  return addon<Native>();
}
