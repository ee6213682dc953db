// Tree blobs: one per directory, a canonical and deterministic encoding of its entries,
// so that an unchanged directory encodes to the same bytes and dedups.
// The exact encoding is documented in docs/FORMAT.md ("Tree blobs").

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev' | 'blockdev' | 'socket';

/** One directory entry with every piece of metadata tsbak records. */
export interface TreeNode {
  /** Raw name bytes (not every name is valid UTF-8). */
  name: Buffer;
  type: NodeType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** User and group names at backup time; '' when the id had no name. */
  user: string;
  group: string;
  /** Timestamps in nanoseconds since the epoch (may be negative). */
  mtimeNs: bigint;
  atimeNs: bigint;
  ctimeNs: bigint;
  btimeNs: bigint;
  /** Logical size for files (sparse files included), 0 otherwise. */
  size: number;
  /** Inode and device at backup time: parent-snapshot change detection and hardlinks. */
  ino: bigint;
  dev: bigint;
  nlink: number;
  /** For entries whose inode has nlink > 1 (not dirs): an id shared by every name of that inode in the snapshot. */
  hardlink?: string;
  /** chardev/blockdev */
  rdevMajor?: number;
  rdevMinor?: number;
  /** symlink target, raw bytes */
  target?: Buffer;
  /** Extended attributes (including system.posix_acl_*), sorted by name. */
  xattrs?: Array<[string, Buffer]>;
  /** Files: blob ids (32 bytes each) of the data chunks, in order, covering only the data extents. */
  content?: Buffer[];
  /** Sparse files: [offset, length] of each data extent; absent means one extent [0, size). */
  extents?: Array<[number, number]>;
  /** Directories: id of the subtree blob. */
  subtree?: Buffer;
}

export interface Tree {
  nodes: TreeNode[];
}

const TYPES: NodeType[] = ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev', 'socket'];

/**
 * Canonical encoding: UTF-8 JSON with a fixed key order, entries sorted by raw name bytes,
 * binary values as base64, nanosecond times as decimal strings.
 */
export function encodeTree(tree: Tree): Buffer {
  const nodes = [...tree.nodes].sort((a, b) => Buffer.compare(a.name, b.name));
  const out = nodes.map((n) => {
    const o: Record<string, unknown> = {
      name: n.name.toString('base64'),
      type: n.type,
      mode: n.mode,
      uid: n.uid,
      gid: n.gid,
      user: n.user,
      group: n.group,
      mtime: n.mtimeNs.toString(),
      atime: n.atimeNs.toString(),
      ctime: n.ctimeNs.toString(),
      btime: n.btimeNs.toString(),
      size: n.size,
      ino: n.ino.toString(),
      dev: n.dev.toString(),
      nlink: n.nlink,
    };
    if (n.hardlink !== undefined) o.hardlink = n.hardlink;
    if (n.rdevMajor !== undefined) o.rdev = [n.rdevMajor, n.rdevMinor ?? 0];
    if (n.target !== undefined) o.target = n.target.toString('base64');
    if (n.xattrs && n.xattrs.length) {
      const xs = [...n.xattrs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      o.xattrs = xs.map(([k, v]) => [k, v.toString('base64')]);
    }
    if (n.content !== undefined) o.content = n.content.map((c) => c.toString('hex'));
    if (n.extents !== undefined) o.extents = n.extents;
    if (n.subtree !== undefined) o.subtree = n.subtree.toString('hex');
    return o;
  });
  return Buffer.from(JSON.stringify({ v: 1, nodes: out }), 'utf8');
}

export function decodeTree(bytes: Buffer): Tree {
  const j = JSON.parse(bytes.toString('utf8')) as { v: number; nodes: Record<string, any>[] };
  if (j.v !== 1 || !Array.isArray(j.nodes)) throw new Error('unknown tree version');
  const nodes = j.nodes.map((o): TreeNode => {
    if (!TYPES.includes(o.type)) throw new Error(`unknown node type ${o.type}`);
    const n: TreeNode = {
      name: Buffer.from(o.name, 'base64'),
      type: o.type,
      mode: o.mode,
      uid: o.uid,
      gid: o.gid,
      user: o.user,
      group: o.group,
      mtimeNs: BigInt(o.mtime),
      atimeNs: BigInt(o.atime),
      ctimeNs: BigInt(o.ctime),
      btimeNs: BigInt(o.btime),
      size: o.size,
      ino: BigInt(o.ino),
      dev: BigInt(o.dev),
      nlink: o.nlink,
    };
    if (o.hardlink !== undefined) n.hardlink = o.hardlink;
    if (o.rdev !== undefined) [n.rdevMajor, n.rdevMinor] = o.rdev;
    if (o.target !== undefined) n.target = Buffer.from(o.target, 'base64');
    if (o.xattrs !== undefined) n.xattrs = o.xattrs.map(([k, v]: [string, string]) => [k, Buffer.from(v, 'base64')]);
    if (o.content !== undefined) n.content = o.content.map((c: string) => Buffer.from(c, 'hex'));
    if (o.extents !== undefined) n.extents = o.extents;
    if (o.subtree !== undefined) n.subtree = Buffer.from(o.subtree, 'hex');
    return n;
  });
  return { nodes };
}

/**
 * True when encodeTree writes the same bytes for `a` as for `b` (so a directory whose
 * entries are all the same as in a decoded tree encodes to that tree's bytes, and has its
 * id). It may answer false for nodes that would encode alike (xattrs in another order):
 * callers then encode, which is only slower.
 */
export function sameNode(a: TreeNode, b: TreeNode): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.user === b.user &&
    a.group === b.group &&
    a.mtimeNs === b.mtimeNs &&
    a.atimeNs === b.atimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.btimeNs === b.btimeNs &&
    a.size === b.size &&
    a.ino === b.ino &&
    a.dev === b.dev &&
    a.nlink === b.nlink &&
    a.hardlink === b.hardlink &&
    a.rdevMajor === b.rdevMajor &&
    (a.rdevMajor === undefined || (a.rdevMinor ?? 0) === (b.rdevMinor ?? 0)) &&
    a.name.equals(b.name) &&
    sameBytes(a.target, b.target) &&
    sameBytes(a.subtree, b.subtree) &&
    sameList(a.content, b.content, (x, y) => x.equals(y)) &&
    sameList(a.extents, b.extents, (x, y) => x[0] === y[0] && x[1] === y[1]) &&
    // encodeTree writes no xattrs for an empty list
    sameList(a.xattrs?.length ? a.xattrs : undefined, b.xattrs?.length ? b.xattrs : undefined, (x, y) => x[0] === y[0] && x[1].equals(y[1]))
  );
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.equals(b));
}

function sameList<T>(a: T[] | undefined, b: T[] | undefined, eq: (x: T, y: T) => boolean): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!eq(a[i]!, b[i]!)) return false;
  return true;
}
