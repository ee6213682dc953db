// POSIX ACLs under allow_other.
//
// The mount is made with default_permissions: the kernel checks the mode bits getattr
// returns, and nothing else. libfuse 2.9 (fuse-native) has no FUSE_POSIX_ACL, so the kernel
// does not read system.posix_acl_access, and fuse-native passes no caller identity (uid,
// gid, pid) to the operations, so the mount cannot run the POSIX.1e check for each caller
// itself. With allow_other, a file whose ACL denies a named user (u:bob:---) would then be
// readable by bob through its "other" bits.
//
// Instead, with allow_other a node with an extended ACL shows group and other bits that
// no caller's ACL outcome is below: the kernel's mode-bit check then never grants more than
// the ACL would. Owners keep their bits (ACL_USER_OBJ is the owner's class); a named user or
// group that the ACL grants more than the others loses the difference through the mount
// (fail closed). A damaged ACL shows owner bits only. docs/THREAT-MODEL.md states this.

/** The xattr holding a node's access ACL, in the kernel's encoding (linux/posix_acl_xattr.h). */
export const ACCESS_ACL = 'system.posix_acl_access';

const VERSION = 2;
const USER_OBJ = 0x01;
const USER = 0x02;
const GROUP_OBJ = 0x04;
const GROUP = 0x08;
const MASK = 0x10;
const OTHER = 0x20;

export interface Acl {
  userObj: number;
  groupObj: number;
  other: number;
  mask?: number;
  users: Array<{ id: number; perm: number }>;
  groups: Array<{ id: number; perm: number }>;
}

/**
 * Decodes the kernel's ACL xattr: u32 version (2), then 8-byte entries u16 tag, u16 perm,
 * u32 id, little-endian. null when it is not a valid ACL (then nothing is granted by it).
 */
export function decodeAcl(b: Buffer): Acl | null {
  if (b.length < 4 || (b.length - 4) % 8 !== 0 || b.readUInt32LE(0) !== VERSION) return null;
  const single = new Map<number, number>(); // USER_OBJ, GROUP_OBJ, MASK, OTHER: at most once each
  const users: Acl['users'] = [];
  const groups: Acl['groups'] = [];
  for (let at = 4; at < b.length; at += 8) {
    const tag = b.readUInt16LE(at);
    const perm = b.readUInt16LE(at + 2);
    const id = b.readUInt32LE(at + 4);
    if (perm & ~7) return null;
    if (tag === USER) users.push({ id, perm });
    else if (tag === GROUP) groups.push({ id, perm });
    else if ((tag === USER_OBJ || tag === GROUP_OBJ || tag === MASK || tag === OTHER) && !single.has(tag)) single.set(tag, perm);
    else return null;
  }
  const userObj = single.get(USER_OBJ);
  const groupObj = single.get(GROUP_OBJ);
  const other = single.get(OTHER);
  const mask = single.get(MASK);
  if (userObj === undefined || groupObj === undefined || other === undefined) return null;
  if ((users.length || groups.length) && mask === undefined) return null;
  return { userObj, groupObj, other, users, groups, ...(mask !== undefined ? { mask } : {}) };
}

/**
 * The permission bits (0o7777) to show for a node with these xattrs when the kernel's
 * mode-bit check must not grant more than the POSIX.1e check of its access ACL would:
 *  - group bits: what a member of the owning group gets at least (ACL_GROUP_OBJ, or a
 *    named-user entry if the member has one, each through the mask);
 *  - other bits: what anyone else gets at least (ACL_OTHER, or a named-user or named-group
 *    entry through the mask).
 * A node without an extended ACL keeps its mode.
 */
export function aclBoundMode(mode: number, xattrs: ReadonlyArray<readonly [string, Buffer]> | undefined): number {
  const raw = xattrs?.find(([name]) => name === ACCESS_ACL)?.[1];
  if (!raw) return mode & 0o7777;
  const acl = decodeAcl(raw);
  if (!acl) return mode & 0o7700; // damaged: the owner's bits only
  if (acl.mask === undefined) return mode & 0o7777; // a minimal ACL is the mode bits
  const m = acl.mask;
  let group = acl.groupObj & m;
  let other = acl.other;
  for (const u of acl.users) {
    group &= u.perm & m;
    other &= u.perm & m;
  }
  for (const g of acl.groups) other &= g.perm & m;
  return (mode & 0o7700) | (group << 3) | other;
}
