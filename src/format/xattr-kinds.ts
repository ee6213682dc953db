// The kinds of xattr a snapshot's entries hold (SnapshotInfo.xattrKinds, docs/FORMAT.md
// "Snapshots"): a mount of snapshots without ACLs or security labels tells `ls` that the file
// system has none, so that it stops asking for them entry by entry.
import type { XattrKind } from './snapshot.js';

export const XATTR_KINDS: readonly XattrKind[] = ['acl', 'security'];

export function xattrKindOf(name: string): XattrKind | undefined {
  if (name === 'system.posix_acl_access' || name === 'system.posix_acl_default') return 'acl';
  if (name.startsWith('security.')) return 'security';
  return undefined;
}

/** The field as read from a snapshot: undefined (any kind may be there) unless it is a list of known kinds. */
export function parseXattrKinds(v: unknown): Set<XattrKind> | undefined {
  if (!Array.isArray(v) || v.length > XATTR_KINDS.length) return undefined;
  const out = new Set<XattrKind>();
  for (const k of v) {
    if (typeof k !== 'string' || !XATTR_KINDS.includes(k as XattrKind)) return undefined;
    out.add(k as XattrKind);
  }
  return out;
}

/** Collects the kinds of the entries a backup writes. */
export class XattrKindsSeen {
  private readonly kinds = new Set<XattrKind>();

  note(xattrs: ReadonlyArray<readonly [string, unknown]> | undefined): void {
    if (!xattrs || this.kinds.size === XATTR_KINDS.length) return;
    for (const [name] of xattrs) {
      const k = xattrKindOf(name);
      if (k) this.kinds.add(k);
    }
  }

  /** With `inherited` (the parent's field) merged in when trees were taken over unread; undefined when those are unknown. */
  result(takenOver: boolean, inherited: Set<XattrKind> | undefined): XattrKind[] | undefined {
    if (takenOver) {
      if (!inherited) return undefined;
      for (const k of inherited) this.kinds.add(k);
    }
    return XATTR_KINDS.filter((k) => this.kinds.has(k));
  }
}
