// struct stat for the mount: times in nanoseconds as the tree keeps them (before 1970 and
// after 2038 too), written into the Float64Array native/fuse_ll.c reads (statFields).
import type { NodeType, TreeNode } from '../format/tree.js';

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
  /** nanoseconds since the epoch (negative before 1970) */
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** XATTR_NO_GET | XATTR_NO_LIST (platform/native/fuse.ts): what FUSE may answer without asking. */
  xattrFlags?: number;
}

export interface Owner {
  /** Show every entry as owned by this uid/gid (mount options uid=, gid=). */
  uid?: number;
  gid?: number;
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

/** The I/O size hint: one FUSE read (libfuse 3 reads up to 1 MiB at a time). */
export const BLKSIZE = 1 << 20;

const NS = 1_000_000_000n;

/** Writes a stat at `at` of a Float64Array as native/fuse_ll.c reads it (STAT_FIELDS numbers). */
export function statFields(st: FuseStat, out: Float64Array, at = 0): void {
  out[at] = st.ino;
  out[at + 1] = st.mode;
  out[at + 2] = st.nlink;
  out[at + 3] = st.uid;
  out[at + 4] = st.gid;
  out[at + 5] = st.rdev;
  out[at + 6] = st.size;
  out[at + 7] = st.blksize;
  out[at + 8] = st.blocks;
  timeFields(st.atimeNs, out, at + 9);
  timeFields(st.mtimeNs, out, at + 11);
  timeFields(st.ctimeNs, out, at + 13);
  out[at + 15] = st.xattrFlags ?? 0;
}

/** A struct timespec: whole seconds rounded down (also before 1970) and 0..999999999 ns. */
function timeFields(ns: bigint, out: Float64Array, at: number): void {
  let s = ns / NS;
  let rest = ns % NS;
  if (rest < 0n) {
    s -= 1n;
    rest += NS;
  }
  out[at] = Number(s);
  out[at + 1] = Number(rest);
}

function msToNs(ms: number): bigint {
  return BigInt(Math.trunc(ms)) * 1_000_000n;
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
    mode: TYPE_BITS[node.type] | (node.mode & 0o7777),
    uid: owner.uid ?? node.uid,
    gid: owner.gid ?? node.gid,
    size,
    nlink: node.nlink > 0 ? node.nlink : 1,
    ino,
    rdev: node.type === 'chardev' || node.type === 'blockdev' ? encodeDev(node.rdevMajor ?? 0, node.rdevMinor ?? 0) : 0,
    blksize: BLKSIZE,
    blocks: isDir ? 8 : allocatedBlocks(node),
    atimeNs: node.atimeNs,
    mtimeNs: node.mtimeNs,
    ctimeNs: node.ctimeNs,
  };
}

/** A directory the mount makes up (the root, snapshots/, hosts/..., a snapshot's root). */
export function virtualDirStat(ino: number, mtimeMs: number, nlink: number, owner: Owner): FuseStat {
  return { mode: S_IFDIR | 0o555, uid: owner.uid ?? 0, gid: owner.gid ?? 0, size: 4096, nlink, ino, rdev: 0, blksize: BLKSIZE, blocks: 8, ...virtualTimes(mtimeMs) };
}

export function virtualLinkStat(ino: number, target: string, mtimeMs: number, owner: Owner): FuseStat {
  return { mode: S_IFLNK | 0o777, uid: owner.uid ?? 0, gid: owner.gid ?? 0, size: Buffer.byteLength(target), nlink: 1, ino, rdev: 0, blksize: BLKSIZE, blocks: 0, ...virtualTimes(mtimeMs) };
}

/** A read-only file the mount makes up (the status file's copies). */
export function virtualFileStat(ino: number, size: number, mtimeMs: number, owner: Owner): FuseStat {
  return { mode: S_IFREG | 0o444, uid: owner.uid ?? 0, gid: owner.gid ?? 0, size, nlink: 1, ino, rdev: 0, blksize: BLKSIZE, blocks: Math.ceil(size / 4096) * 8, ...virtualTimes(mtimeMs) };
}

function virtualTimes(mtimeMs: number): Pick<FuseStat, 'atimeNs' | 'mtimeNs' | 'ctimeNs'> {
  const ns = msToNs(mtimeMs);
  return { atimeNs: ns, mtimeNs: ns, ctimeNs: ns };
}
