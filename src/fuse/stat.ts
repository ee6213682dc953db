// struct stat for the mount, in the shape fuse-native takes.
//
// fuse-native hands times to libfuse as whole milliseconds (unsigned 64-bit), so the mount
// shows mtime/atime/ctime truncated to the millisecond, and times before 1970 as 1970.
// The tree keeps nanoseconds; `tsbak restore` puts them back exactly.
import type { NodeType, TreeNode } from '../format/tree.js';
import { aclBoundMode } from './acl.js';

export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  /** milliseconds since the epoch */
  atime: number;
  mtime: number;
  ctime: number;
}

export interface Owner {
  /** Show every entry as owned by this uid/gid (mount options uid=, gid=). */
  uid?: number;
  gid?: number;
  /** allow_other: nodes with an extended ACL show bits no caller's ACL is below (acl.ts). */
  aclBound?: boolean;
}

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

const TYPE_BITS: Record<NodeType, number> = {
  file: S_IFREG,
  dir: S_IFDIR,
  symlink: S_IFLNK,
  fifo: 0o010000,
  chardev: 0o020000,
  blockdev: 0o060000,
  socket: 0o140000,
};

/** The I/O size hint: one FUSE read (libfuse 2 reads at most 128 KiB at a time). */
export const BLKSIZE = 128 << 10;

export function nsToMs(ns: bigint): number {
  return ns > 0n ? Number(ns / 1_000_000n) : 0;
}

/** dev_t as the kernel's FUSE protocol carries it (32 bits, Linux new_encode_dev). */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** 512-byte blocks allocated to a file's data: each extent rounded up to 4 KiB. */
export function allocatedBlocks(node: TreeNode): number {
  if (node.type !== 'file') return 0;
  const extents = node.extents ?? (node.size > 0 ? [[0, node.size]] : []);
  let pages = 0;
  for (const [, len] of extents) pages += Math.ceil(len / 4096);
  return pages * 8;
}

export function nodeStat(node: TreeNode, ino: number, owner: Owner): FuseStat {
  const isDir = node.type === 'dir';
  const size = node.type === 'file' ? node.size : node.type === 'symlink' ? (node.target?.length ?? 0) : isDir ? 4096 : 0;
  return {
    mode: TYPE_BITS[node.type] | (owner.aclBound && node.xattrs ? aclBoundMode(node.mode, node.xattrs) : node.mode & 0o7777),
    uid: owner.uid ?? node.uid,
    gid: owner.gid ?? node.gid,
    size,
    nlink: node.nlink > 0 ? node.nlink : 1,
    ino,
    rdev: node.type === 'chardev' || node.type === 'blockdev' ? encodeDev(node.rdevMajor ?? 0, node.rdevMinor ?? 0) : 0,
    blksize: BLKSIZE,
    blocks: isDir ? 8 : allocatedBlocks(node),
    atime: nsToMs(node.atimeNs),
    mtime: nsToMs(node.mtimeNs),
    ctime: nsToMs(node.ctimeNs),
  };
}

/** A directory the mount makes up (the root, snapshots/, hosts/..., a snapshot's root). */
export function virtualDirStat(ino: number, mtimeMs: number, nlink: number, owner: Owner): FuseStat {
  return { mode: S_IFDIR | 0o555, uid: owner.uid ?? 0, gid: owner.gid ?? 0, size: 4096, nlink, ino, rdev: 0, blksize: BLKSIZE, blocks: 8, atime: mtimeMs, mtime: mtimeMs, ctime: mtimeMs };
}

export function virtualLinkStat(ino: number, target: string, mtimeMs: number, owner: Owner): FuseStat {
  return { mode: S_IFLNK | 0o777, uid: owner.uid ?? 0, gid: owner.gid ?? 0, size: Buffer.byteLength(target), nlink: 1, ino, rdev: 0, blksize: BLKSIZE, blocks: 0, atime: mtimeMs, mtime: mtimeMs, ctime: mtimeMs };
}

/** A read-only file the mount makes up (the status file's copies). */
export function virtualFileStat(ino: number, size: number, mtimeMs: number, owner: Owner): FuseStat {
  return { mode: S_IFREG | 0o444, uid: owner.uid ?? 0, gid: owner.gid ?? 0, size, nlink: 1, ino, rdev: 0, blksize: BLKSIZE, blocks: Math.ceil(size / 4096) * 8, atime: mtimeMs, mtime: mtimeMs, ctime: mtimeMs };
}
