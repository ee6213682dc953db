// Metadata capture: turn an lstat result (plus xattrs, ACLs, symlink target) into the
// TreeNode fields the tree format records. Data (content, extents) and hardlink identity
// are filled in by the caller, which owns the open fd and the inode bookkeeping.

import { constants, readlinkSync } from 'node:fs';
import type { NodeType, TreeNode } from '../format/tree.js';
import { dataExtents, lgetxattr, llistxattr, major, minor } from '../platform/native/syscalls.js';
import type { EntryStat } from '../platform/native/scan.js';
import { groupName, userName } from '../platform/users.js';
import { withShortPath } from '../platform/long-path.js';

/** A TreeNode as captureMeta returns it: everything but data, subtree and hardlink identity. */
export type CapturedMeta = Omit<TreeNode, 'content' | 'subtree' | 'hardlink' | 'extents'>;

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK } = constants;

/** The node type of an st_mode. Throws for types tsbak cannot record. */
export function nodeType(mode: number | bigint): NodeType {
  switch (Number(mode) & S_IFMT) {
    case S_IFREG: return 'file';
    case S_IFDIR: return 'dir';
    case S_IFLNK: return 'symlink';
    case S_IFIFO: return 'fifo';
    case S_IFCHR: return 'chardev';
    case S_IFBLK: return 'blockdev';
    case S_IFSOCK: return 'socket';
    default: throw new Error(`unknown file type 0o${(Number(mode) & S_IFMT).toString(8)}`);
  }
}

/** Errors meaning "this filesystem/entry has no xattrs (of this name)", not a failure. */
function noXattrs(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENODATA';
}

/**
 * Every extended attribute of the entry (not following symlinks), sorted by name in the
 * order tree.ts uses. This includes system.posix_acl_access/default (ACLs in their kernel
 * xattr encoding), security.* (SELinux labels, capabilities) and, as root, trusted.*.
 */
export function captureXattrs(path: Buffer): Array<[string, Buffer]> {
  let names: string[];
  try {
    names = llistxattr(path);
  } catch (e) {
    if (noXattrs(e)) return [];
    throw e;
  }
  const out: Array<[string, Buffer]> = [];
  for (const name of names) {
    let value: Buffer | null;
    try {
      value = lgetxattr(path, name);
    } catch (e) {
      if (noXattrs(e)) continue;
      throw e;
    }
    if (value !== null) out.push([name, value]); // null: removed since the listing
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Last component of a raw path (bytes after the last '/', trailing slashes ignored). */
function baseName(path: Buffer): Buffer {
  let end = path.length;
  while (end > 1 && path[end - 1] === 0x2f) end--;
  const slash = path.lastIndexOf(0x2f, end - 1);
  return path.subarray(slash + 1, end);
}

/**
 * All metadata of one entry. `st` must come from lstat(path, { bigint: true }) so that
 * nanoseconds, inode and device numbers are exact. `name` defaults to path's last component.
 * xattrs is present only when the entry has some. `knownXattrs`: the entry's xattrs as
 * already read (by scanDir, sorted), so they are not read again.
 */
export async function captureMeta(path: Buffer, st: EntryStat, name: Buffer = baseName(path), previous?: TreeNode | null, knownXattrs?: Array<[string, Buffer]> | null): Promise<CapturedMeta> {
  const type = nodeType(st.mode);
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const node: CapturedMeta = {
    name: Buffer.from(name),
    type,
    mode: Number(st.mode) & 0o7777,
    uid,
    gid,
    user: userName(uid),
    group: groupName(gid),
    mtimeNs: st.mtimeNs,
    atimeNs: st.atimeNs,
    ctimeNs: st.ctimeNs,
    // Node fills birthtime from statx; filesystems without it report 0.
    btimeNs: st.birthtimeNs ?? 0n,
    size: type === 'file' ? Number(st.size) : 0,
    ino: st.ino,
    dev: st.dev,
    nlink: Number(st.nlink),
  };
  if (type === 'chardev' || type === 'blockdev') {
    node.rdevMajor = major(st.rdev);
    node.rdevMinor = minor(st.rdev);
  }
  // The same inode with the same ctime as in the previous snapshot: its xattrs and symlink
  // target cannot have changed (changing either updates ctime), so they are not read again.
  // On an unchanged tree this saves a listxattr (and a readlink) per entry.
  if (previous && previous.type === type && previous.ino === st.ino && previous.ctimeNs === st.ctimeNs && previous.dev === st.dev) {
    if (previous.xattrs) node.xattrs = previous.xattrs;
    if (type === 'symlink') node.target = previous.target;
    return node;
  }
  if (knownXattrs && type !== 'symlink') {
    if (knownXattrs.length) node.xattrs = knownXattrs;
    return node;
  }
  // withShortPath: paths deeper than PATH_MAX are reached through a directory handle.
  await withShortPath(path, async (sp) => {
    if (type === 'symlink') {
      // The atime recorded is the one from before this readlink (which moves it): restores
      // give back the times as they were. Under relatime that costs a new tree for the
      // directory once a day, the same as for directories (readdir moves their atime too).
      node.target = readlinkSync(sp, { encoding: 'buffer' });
    }
    const xattrs = knownXattrs ?? captureXattrs(sp);
    if (xattrs.length) node.xattrs = xattrs;
  });
  return node;
}

/**
 * Data extents of an open regular file within [0, size): sorted, non-empty, with adjacent
 * or overlapping ones merged. A file without holes gives [[0, size]]; an empty one [].
 */
export function fileExtents(fd: number, size: number): Array<[number, number]> {
  const merged: Array<[number, number]> = [];
  for (const [off, len] of dataExtents(fd, size)) {
    if (len <= 0) continue;
    const last = merged[merged.length - 1];
    if (last && off <= last[0] + last[1]) last[1] = Math.max(last[1], off + len - last[0]);
    else merged.push([off, len]);
  }
  return merged;
}

/**
 * Whether extents describe a file with holes, i.e. anything but one extent covering
 * [0, size). Only sparse files record `extents` in the tree (absent = [[0, size]]).
 */
export function isSparse(extents: Array<[number, number]>, size: number): boolean {
  if (size === 0) return false;
  return !(extents.length === 1 && extents[0][0] === 0 && extents[0][1] === size);
}
