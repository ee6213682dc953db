// Restore-side metadata: create special files, then put back owner, mode, xattrs/ACLs and
// times on an entry whose data is already in place.
//
// Order matters (the same as tar and rsync):
//   1. lchown     — chown clears setuid/setgid and security.capability, so it goes first;
//   2. chmod      — restores setuid/setgid/sticky after the chown;
//   3. xattrs     — ACLs, capabilities, labels; after chown so capabilities survive;
//   4. times last — every step above changes ctime, and writing a directory's children
//                   changes its mtime: callers apply a directory's metadata after its
//                   contents.

import { constants, lchownSync, lstatSync } from 'node:fs';
import type { TreeNode } from '../format/tree.js';
import { lchmod, lgetxattr, lremovexattr, lsetxattr, lutimensNs, mknod } from '../platform/native/syscalls.js';
import { gidOf, uidOf } from '../platform/users.js';
import { withShortPathSync } from '../platform/long-path.js';

export interface ApplyMetaOptions {
  /** Restore uid/gid (needs root for anything but one's own uid and groups). */
  owner: boolean;
  /** Restore security.* xattrs (SELinux labels, file capabilities, IMA/EVM). */
  securityXattrs: boolean;
  /** Prefer the local ids of the recorded user/group names when those names exist here. */
  mapByName: boolean;
}

/**
 * What an entry just created by the restore already has: its owner, and whether it may have
 * inherited ACLs from its directory's default ACL. Lets applyMeta skip a chown that changes
 * nothing and an ACL check that cannot find anything (two syscalls per file on big trees).
 */
export interface CreatedAs {
  uid: number;
  /** null: not known (e.g. a directory that existed before), so chown is not skipped. */
  gid: number | null;
  aclInherited: boolean;
}

/** A metadata item that could not be restored; the entry itself is there. */
export interface MetaWarning {
  op: 'chown' | 'chmod' | 'xattr' | 'times';
  /** errno name, e.g. 'EPERM' */
  code: string;
  /** the xattr concerned, for op 'xattr' */
  xattr?: string;
  message: string;
}

const ACL_ACCESS = 'system.posix_acl_access';
const ACL_DEFAULT = 'system.posix_acl_default';

// errno values that mean "not allowed / not supported here" rather than "the restore is
// broken": they become warnings. Anything else (ENOENT, EIO, EROFS, ...) is thrown.
export const SOFT: Record<MetaWarning['op'], Set<string>> = {
  chown: new Set(['EPERM', 'EINVAL']), // EINVAL: id not mapped in this user namespace
  chmod: new Set(['EPERM']),
  // EINVAL: label/ACL the kernel rejects; E2BIG/ENOSPC/EDQUOT: no room for the value here
  xattr: new Set(['EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP', 'EINVAL', 'E2BIG', 'ERANGE', 'ENOSPC', 'EDQUOT']),
  times: new Set(['EPERM', 'EACCES']),
};

/** Run one step; soft failures are recorded in `warnings`, hard ones thrown. */
function step(warnings: MetaWarning[], op: MetaWarning['op'], fn: () => unknown, xattr?: string): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (!err.code || !SOFT[op].has(err.code)) throw e;
    const w: MetaWarning = { op, code: err.code, message: `${op}${xattr ? ` ${xattr}` : ''}: ${err.message}` };
    if (xattr !== undefined) w.xattr = xattr;
    warnings.push(w);
    return false;
  }
}

const SPECIAL_TYPE_BITS: Partial<Record<TreeNode['type'], number>> = {
  fifo: constants.S_IFIFO,
  chardev: constants.S_IFCHR,
  blockdev: constants.S_IFBLK,
  socket: constants.S_IFSOCK, // a socket inode, as tar and rsync restore it; nothing listens
};

/**
 * Create a fifo, character/block device or socket at path (which must not exist).
 * Permissions are set by applyMeta afterwards (mknod is subject to the umask).
 * Devices need CAP_MKNOD: without it this throws EPERM.
 */
export async function createSpecial(path: Buffer, node: TreeNode): Promise<void> {
  const typeBits = SPECIAL_TYPE_BITS[node.type];
  if (typeBits === undefined) throw new TypeError(`createSpecial: not a special file type: ${node.type}`);
  const isDev = node.type === 'chardev' || node.type === 'blockdev';
  // withShortPathSync: paths deeper than PATH_MAX are reached through a directory handle.
  withShortPathSync(path, (sp) => mknod(sp, typeBits | (node.mode & 0o777), isDev ? (node.rdevMajor ?? 0) : 0, isDev ? (node.rdevMinor ?? 0) : 0));
}

/** Whether Linux lets this xattr be set on this node type (user.* only on files and dirs). */
function xattrAllowed(name: string, node: TreeNode, opts: ApplyMetaOptions): boolean {
  if (name.startsWith('security.') && !opts.securityXattrs) return false;
  if (name.startsWith('user.') && node.type !== 'file' && node.type !== 'dir') return false;
  if (name === ACL_DEFAULT && node.type !== 'dir') return false;
  return true;
}

/**
 * Restore ownership, mode, xattrs (including POSIX ACLs) and times of the entry at path,
 * never following a symlink. Returns warnings for what could not be restored for lack of
 * privilege or support (e.g. EPERM on chown when not root); throws on real failures.
 */
export async function applyMeta(path: Buffer, node: TreeNode, opts: ApplyMetaOptions): Promise<MetaWarning[]> {
  return applyMetaSync(path, node, opts);
}

/**
 * The same, synchronously: a handful of metadata syscalls on a just-written entry cost
 * microseconds each, less than one thread-pool round trip of the promise API.
 */
export function applyMetaSync(path: Buffer, node: TreeNode, opts: ApplyMetaOptions, created?: CreatedAs): MetaWarning[] {
  // Paths deeper than PATH_MAX are reached through a directory handle (see long-path.ts).
  return withShortPathSync(path, (sp) => applyMetaAtSync(sp, node, opts, created));
}

/**
 * applyMetaSync for a path that fits in PATH_MAX (the restore's /proc/self/fd/<dir>/<name>).
 * No step follows a symlink in the path's last place: lchown, fchmodat and utimensat with
 * AT_SYMLINK_NOFOLLOW, l*xattr.
 */
export function applyMetaAtSync(path: Buffer, node: TreeNode, opts: ApplyMetaOptions, created?: CreatedAs): MetaWarning[] {
  const warnings: MetaWarning[] = [];
  const isLink = node.type === 'symlink';

  if (opts.owner) {
    let uid = node.uid;
    let gid = node.gid;
    if (opts.mapByName) {
      uid = uidOf(node.user) ?? uid;
      gid = gidOf(node.group) ?? gid;
    }
    if (!created || created.uid !== uid || created.gid !== gid) step(warnings, 'chown', () => lchownSync(path, uid, gid));
  }

  // Symlink permissions are always 0777 on Linux and cannot be changed.
  const mode = node.mode & 0o7777;
  if (!isLink) step(warnings, 'chmod', () => lchmod(path, mode));

  const xattrs = node.xattrs ?? [];
  let setAcl = false;
  for (const [name, value] of xattrs) {
    if (!xattrAllowed(name, node, opts)) continue;
    const ok = step(warnings, 'xattr', () => lsetxattr(path, name, value), name);
    if (ok && name.startsWith('system.posix_acl_')) setAcl = true;
  }
  if (!isLink && (!created || created.aclInherited)) {
    // A new entry inherits ACLs from its parent's default ACL; drop those the backup did
    // not have, so the restored entry's ACL (getfacl) is exactly the recorded one.
    for (const acl of node.type === 'dir' ? [ACL_ACCESS, ACL_DEFAULT] : [ACL_ACCESS]) {
      if (xattrs.some(([n]) => n === acl)) continue;
      step(warnings, 'xattr', () => {
        try {
          if (lgetxattr(path, acl) !== null) lremovexattr(path, acl);
        } catch (e) {
          // No ACL support here: nothing can have been inherited either.
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
        }
      }, acl);
    }
  }
  // Setting an access ACL rewrites the mode's permission bits from the ACL and may drop
  // setgid; they agree when captured together, but re-check rather than trust it.
  if (setAcl) {
    const st = lstatSync(path);
    if ((st.mode & 0o7777) !== mode) step(warnings, 'chmod', () => lchmod(path, mode));
  }

  step(warnings, 'times', () => lutimensNs(path, node.atimeNs, node.mtimeNs));
  return warnings;
}
