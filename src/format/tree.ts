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

/** An entry a decoder dropped from a tree: a restore, the mount or ls must not trust it. */
export interface RejectedNode {
  /** The raw name bytes as stored (possibly empty, '..', or holding '/'). */
  name: Buffer;
  /** Why, in a few words ("a name holding '/'", "a duplicate name"). */
  reason: string;
}

export interface Tree {
  nodes: TreeNode[];
  /** Entries left out of `nodes` because they were unsafe or inconsistent (absent when none): the tree is damaged. */
  rejected?: RejectedNode[];
}

const TYPES: NodeType[] = ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev', 'socket'];
const TYPE_CODE = new Map(TYPES.map((t, i) => [t, i]));

// The binary encoding (version 2) of docs/FORMAT.md "Trees". Version 1 (JSON) is still read.
const MAGIC = 0x54425354; // "TSBT" read as a little-endian u32
const VERSION = 2;
const HEADER = 9; // magic, version, u32 count
const F_HARDLINK = 1;
const F_RDEV = 2;
const F_TARGET = 4;
const F_XATTRS = 8;
const F_CONTENT = 16;
const F_EXTENTS = 32;
const F_SUBTREE = 64;
/** A time outside int64 nanoseconds (years before 1678 or after 2262): the four times as decimal strings. */
const F_WIDE_TIMES = 128;
const FIXED = 2 + 1 + 1 + 4 * 3 + 2 * 2 + 8 * 4 + 8 * 3 + 4; // through nlink, with the name, user and group lengths
const ID = 32;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const TWO32 = 2 ** 32;

// The six 64-bit fields of a node (times, inode, device) are contiguous: they go through an
// aligned scratch buffer as BigInt64Array elements, much faster than Buffer's BigInt methods.
// Decoding is on the restore's and the mount's hot path, so it also reads bytes by hand.
const scratch = new Uint8Array(48);
const signed = new BigInt64Array(scratch.buffer);
const unsigned = new BigUint64Array(scratch.buffer);
const outside = (t: bigint): boolean => t < I64_MIN || t > I64_MAX;
const byName = (a: TreeNode, b: TreeNode): number => Buffer.compare(a.name, b.name);

/**
 * Canonical encoding (docs/FORMAT.md "Trees"): little-endian binary, entries sorted by raw
 * name bytes, xattrs by name bytes, absent fields flagged off. Equal trees give equal bytes.
 */
export function encodeTree(tree: Tree): Buffer {
  const nodes = sortedByName(tree.nodes);
  const w = new TreeWriter(encodedSize(nodes));
  w.u32(MAGIC);
  w.u8(VERSION);
  w.u32(nodes.length);
  for (const n of nodes) w.node(n);
  return w.done();
}

/**
 * encodeTree for nodes that arrive one by one, in any order: each is encoded when added
 * and can be let go, and finish() puts the records in name order behind the header. The
 * bytes are encodeTree's. A node object of a wide directory costs ~4x its encoding (the
 * 18k entries of /usr/share/man/man1 held ~9 MB of them until the directory was done).
 */
export class TreeEncoder {
  private readonly w = new TreeWriter(64 << 10);
  /** Where each record starts in the writer, in the order added. */
  private readonly starts: number[] = [];

  constructor() {
    this.w.skip(HEADER); // written by finish(), when the records need no reordering
  }

  get count(): number {
    return this.starts.length;
  }

  /** Encodes the node (a node that cannot be encoded throws, and leaves nothing behind). */
  add(node: TreeNode): void {
    const at = this.w.offset;
    try {
      this.w.node(node);
    } catch (e) {
      this.w.rewind(at);
      throw e;
    }
    this.starts.push(at);
  }

  finish(): Buffer {
    const b = this.w.done();
    const starts = this.starts;
    const n = starts.length;
    const end = (i: number) => (i + 1 < n ? starts[i + 1]! : b.length);
    // A record starts with its name: u16 length, then the bytes. cmp: name i against name j.
    const nameEnd = (at: number) => at + 2 + (b[at]! | (b[at + 1]! << 8));
    const cmp = (i: number, j: number) => b.compare(b, starts[j]! + 2, nameEnd(starts[j]!), starts[i]! + 2, nameEnd(starts[i]!));
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) sorted = cmp(i - 1, i) < 0;
    const out = sorted ? b : Buffer.allocUnsafe(b.length);
    out.writeUInt32LE(MAGIC, 0);
    out[4] = VERSION;
    out.writeUInt32LE(n, 5);
    if (sorted) return out;
    let o = HEADER;
    for (const i of Array.from({ length: n }, (_, i) => i).sort(cmp)) o += b.copy(out, o, starts[i]!, end(i));
    return out;
  }
}

/**
 * The encoding's size, exact for the usual nodes (ASCII owner names, int64 times), so that
 * the writer seldom grows: a guess of 144 bytes a node grew the 18k-entry tree of
 * /usr/share/man/man1 from 2.6 to 5.2 MB, with a copy, at a first backup's memory peak.
 */
function encodedSize(nodes: TreeNode[]): number {
  let n = HEADER;
  for (const x of nodes) {
    n += FIXED + x.name.length + x.user.length + x.group.length;
    if (x.hardlink !== undefined) n += 2 + x.hardlink.length;
    if (x.rdevMajor !== undefined) n += 8;
    if (x.target) n += 4 + x.target.length;
    if (x.xattrs) {
      n += 4;
      for (const [k, v] of x.xattrs) n += 6 + k.length + v.length;
    }
    if (x.content) n += 4 + ID * x.content.length;
    if (x.extents) n += 4 + 16 * x.extents.length;
    if (x.subtree) n += ID;
  }
  return n;
}

/** The nodes in name order; a directory listing comes sorted already, and is then not copied. */
function sortedByName(nodes: TreeNode[]): TreeNode[] {
  for (let i = 1; i < nodes.length; i++) if (Buffer.compare(nodes[i - 1]!.name, nodes[i]!.name) > 0) return [...nodes].sort(byName);
  return nodes;
}

class TreeWriter {
  private b: Buffer;
  private o = 0;
  private readonly strings = new Map<string, Buffer>();

  constructor(size: number) {
    this.b = Buffer.allocUnsafe(size);
  }

  done(): Buffer {
    return this.b.subarray(0, this.o);
  }

  get offset(): number {
    return this.o;
  }

  /** Leaves k bytes to be written later (through the buffer done() returns). */
  skip(k: number): void {
    this.room(k);
    this.o += k;
  }

  /** Forgets what was written from offset `to` on. */
  rewind(to: number): void {
    this.o = to;
  }

  private room(k: number): void {
    if (this.o + k <= this.b.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.b.length * 2, this.o + k));
    this.b.copy(grown, 0, 0, this.o);
    this.b = grown;
  }

  u8(v: number): void {
    this.room(1);
    this.b[this.o++] = v;
  }

  private u16(v: number, what: string): void {
    if (v > 0xffff) throw new Error(`tree: ${what} longer than 65535 bytes`);
    this.room(2);
    const b = this.b;
    const o = this.o;
    b[o] = v;
    b[o + 1] = v >>> 8;
    this.o = o + 2;
  }

  u32(v: number): void {
    this.room(4);
    this.b.writeUInt32LE(v, this.o);
    this.o += 4;
  }

  private u64(v: number): void {
    this.u32(v % TWO32);
    this.u32(Math.floor(v / TWO32));
  }

  private bytes(src: Uint8Array): void {
    const k = src.length;
    this.room(k);
    const b = this.b;
    const o = this.o;
    // a loop beats TypedArray.set for the short names and ids of most entries
    if (k > 64) b.set(src, o);
    else for (let i = 0; i < k; i++) b[o + i] = src[i]!;
    this.o = o + k;
  }

  /** A string as UTF-8 with a u16 length; the user and group of a directory's entries repeat, so their bytes are kept. */
  private string(s: string, what: string): void {
    let b = this.strings.get(s);
    if (!b) this.strings.set(s, (b = Buffer.from(s, 'utf8')));
    this.u16(b.length, what);
    this.bytes(b);
  }

  private id(id: Buffer, what: string): void {
    if (id.length !== ID) throw new Error(`tree: ${what} is not 32 bytes`);
    this.bytes(id);
  }

  node(n: TreeNode): void {
    const type = TYPE_CODE.get(n.type);
    if (type === undefined) throw new Error(`tree: unknown node type ${n.type}`);
    const wide = outside(n.mtimeNs) || outside(n.atimeNs) || outside(n.ctimeNs) || outside(n.btimeNs);
    const xattrs = n.xattrs?.length ? n.xattrs.map(([k, v]): [Buffer, Buffer] => [Buffer.from(k, 'utf8'), v]).sort((a, b) => Buffer.compare(a[0], b[0])) : undefined;
    let flags = 0;
    if (n.hardlink !== undefined) flags |= F_HARDLINK;
    if (n.rdevMajor !== undefined) flags |= F_RDEV;
    if (n.target) flags |= F_TARGET;
    if (xattrs) flags |= F_XATTRS;
    if (n.content) flags |= F_CONTENT;
    if (n.extents) flags |= F_EXTENTS;
    if (n.subtree) flags |= F_SUBTREE;
    if (wide) flags |= F_WIDE_TIMES;
    this.u16(n.name.length, 'a name');
    this.bytes(n.name);
    this.u8(type);
    this.u8(flags);
    this.u32(n.mode);
    this.u32(n.uid);
    this.u32(n.gid);
    this.string(n.user, 'a user name');
    this.string(n.group, 'a group name');
    if (wide) {
      for (const t of [n.mtimeNs, n.atimeNs, n.ctimeNs, n.btimeNs]) {
        const digits = Buffer.from(t.toString(), 'latin1');
        if (digits.length > 0xff) throw new Error('tree: a time beyond 255 digits');
        this.u8(digits.length);
        this.bytes(digits);
      }
    } else {
      signed[0] = n.mtimeNs;
      signed[1] = n.atimeNs;
      signed[2] = n.ctimeNs;
      signed[3] = n.btimeNs;
    }
    unsigned[4] = n.ino;
    unsigned[5] = n.dev;
    if (unsigned[4] !== n.ino || unsigned[5] !== n.dev) throw new Error('tree: an inode or device number beyond 64 bits');
    this.bytes(wide ? scratch.subarray(32, 48) : scratch);
    this.u64(n.size);
    this.u32(n.nlink);
    if (n.hardlink !== undefined) this.string(n.hardlink, 'a hardlink id');
    if (n.rdevMajor !== undefined) {
      this.u32(n.rdevMajor);
      this.u32(n.rdevMinor ?? 0);
    }
    if (n.target) {
      this.u32(n.target.length);
      this.bytes(n.target);
    }
    if (xattrs) {
      this.u32(xattrs.length);
      for (const [k, v] of xattrs) {
        this.u16(k.length, 'an xattr name');
        this.bytes(k);
        this.u32(v.length);
        this.bytes(v);
      }
    }
    if (n.content) {
      this.u32(n.content.length);
      for (const c of n.content) this.id(c, 'a content id');
    }
    if (n.extents) {
      this.u32(n.extents.length);
      for (const [off, len] of n.extents) {
        this.u64(off);
        this.u64(len);
      }
    }
    if (n.subtree) this.id(n.subtree, 'a subtree id');
  }
}

/**
 * Decodes a tree blob of either version. Names, targets, xattr values and ids are views of
 * `bytes`, which they keep alive. Throws on anything out of bounds or left over. Entries
 * no consumer may trust (a name that is not one path component, a duplicate name, an
 * unusable xattr name, extents beyond the size) are left out of `nodes` and listed in
 * `rejected`: the rest of the tree stays usable.
 */
export function decodeTree(bytes: Buffer): Tree {
  if (bytes.length > 0 && bytes[0] === 0x7b) return decodeJsonTree(bytes);
  if (bytes.length < HEADER || bytes.readUInt32LE(0) !== MAGIC) throw new Error('not a tree blob');
  if (bytes[4] !== VERSION) throw new Error(`unknown tree version ${bytes[4]}`);
  return new TreeReader(bytes).tree(bytes.readUInt32LE(5));
}


interface NameMemo {
  s: string;
  at: number;
  len: number;
}

class TreeReader {
  private o = HEADER;
  // The last user and group name read, and where their bytes were.
  private readonly user: NameMemo = { s: '', at: -1, len: 0 };
  private readonly group: NameMemo = { s: '', at: -1, len: 0 };
  /** The node just read has an xattr name that is empty or holds NUL. */
  private badXattr = false;

  constructor(private readonly b: Buffer) {}

  tree(count: number): Tree {
    const v = new NodeChecker();
    for (let i = 0; i < count; i++) {
      this.badXattr = false;
      const n = this.node();
      v.add(n, this.badXattr);
    }
    if (this.o !== this.b.length) throw new Error('tree blob has bytes after its last entry');
    return v.tree();
  }

  private need(k: number): void {
    if (this.o + k > this.b.length) throw new Error('tree blob truncated');
  }

  private u16(): number {
    this.need(2);
    const b = this.b;
    const o = (this.o += 2);
    return b[o - 2]! | (b[o - 1]! << 8);
  }

  private u32(): number {
    this.need(4);
    const b = this.b;
    const o = (this.o += 4);
    return (b[o - 4]! | (b[o - 3]! << 8) | (b[o - 2]! << 16)) + b[o - 1]! * 0x1000000;
  }

  private u64(): number {
    const v = this.u32() + this.u32() * TWO32;
    if (v > Number.MAX_SAFE_INTEGER) throw new Error('tree: a number beyond 2^53');
    return v;
  }

  private bytes(k: number): Buffer {
    this.need(k);
    return this.b.subarray(this.o, (this.o += k));
  }

  private string(k: number): string {
    this.need(k);
    return this.b.toString('utf8', this.o, (this.o += k));
  }

  /** The user or group name at the cursor; the same bytes as the last one give the same string, without decoding. */
  private owner(last: NameMemo): string {
    const k = this.u16();
    this.need(k);
    const b = this.b;
    const o = this.o;
    let same = last.at >= 0 && last.len === k;
    for (let i = 0; same && i < k; i++) same = b[last.at + i] === b[o + i];
    this.o += k;
    if (!same) last.s = b.toString('utf8', o, o + k);
    last.at = o;
    last.len = k;
    return last.s;
  }

  private node(): TreeNode {
    const b = this.b;
    const name = this.bytes(this.u16());
    this.need(14);
    const type = TYPES[b[this.o]!];
    if (type === undefined) throw new Error(`tree: unknown node type ${b[this.o]}`);
    const flags = b[this.o + 1]!;
    this.o += 2;
    const mode = this.u32();
    const uid = this.u32();
    const gid = this.u32();
    const user = this.owner(this.user);
    const group = this.owner(this.group);
    let times: bigint[] | null = null;
    if (flags & F_WIDE_TIMES) {
      times = [];
      for (let k = 0; k < 4; k++) {
        this.need(1);
        times.push(BigInt(this.string(b[this.o++]!)));
      }
      this.need(16);
      for (let k = 0; k < 16; k++) scratch[32 + k] = b[this.o + k]!;
      this.o += 16;
    } else {
      this.need(48);
      for (let k = 0, o = this.o; k < 48; k++) scratch[k] = b[o + k]!;
      this.o += 48;
    }
    const n: TreeNode = {
      name,
      type,
      mode,
      uid,
      gid,
      user,
      group,
      mtimeNs: times ? times[0]! : signed[0]!,
      atimeNs: times ? times[1]! : signed[1]!,
      ctimeNs: times ? times[2]! : signed[2]!,
      btimeNs: times ? times[3]! : signed[3]!,
      size: this.u64(),
      ino: unsigned[4]!,
      dev: unsigned[5]!,
      nlink: this.u32(),
    };
    if (flags & F_HARDLINK) n.hardlink = this.string(this.u16());
    if (flags & F_RDEV) {
      n.rdevMajor = this.u32();
      n.rdevMinor = this.u32();
    }
    if (flags & F_TARGET) n.target = this.bytes(this.u32());
    if (flags & F_XATTRS) {
      const xs: Array<[string, Buffer]> = [];
      for (let k = this.u32(); k > 0; k--) {
        const len = this.u16();
        this.need(len);
        // An empty name or one holding NUL cannot be set: the node is rejected (NodeChecker).
        if (len === 0) this.badXattr = true;
        for (let i = this.o, e = this.o + len; i < e; i++) if (b[i] === 0) this.badXattr = true;
        xs.push([this.string(len), this.bytes(this.u32())]);
      }
      n.xattrs = xs;
    }
    if (flags & F_CONTENT) {
      const ids: Buffer[] = [];
      for (let k = this.u32(); k > 0; k--) ids.push(this.bytes(ID));
      n.content = ids;
    }
    if (flags & F_EXTENTS) {
      const xs: Array<[number, number]> = [];
      for (let k = this.u32(); k > 0; k--) xs.push([this.u64(), this.u64()]);
      n.extents = xs;
    }
    if (flags & F_SUBTREE) n.subtree = this.bytes(ID);
    return n;
  }
}

/** Why `name` is not one path component (empty, '.', '..', holding '/' or NUL), or null when it is. */
export function nameProblem(name: Uint8Array): string | null {
  const k = name.length;
  if (k === 0) return 'an empty name';
  if (name[0] === 0x2e && (k === 1 || (k === 2 && name[1] === 0x2e))) return k === 1 ? "the name '.'" : "the name '..'";
  for (let i = 0; i < k; i++) {
    const c = name[i]!;
    if (c === 0x2f) return "a name holding '/'";
    if (c === 0) return 'a name holding NUL';
  }
  return null;
}

/**
 * What a decoder refuses in a node (docs/FORMAT.md "Trees"), as a reason, or null when it
 * is sound. A name must be one path component: not empty, not '.' or '..', no '/' or NUL.
 */
function nodeProblem(n: TreeNode): string | null {
  const bad = nameProblem(n.name);
  if (bad !== null) return bad;
  const ext = n.extents;
  if (ext) {
    let end = 0;
    for (const [off, len] of ext) {
      if (!(off >= end && len >= 0 && off + len <= n.size)) return 'extents out of order or beyond the size';
      end = off + len;
    }
  }
  return null;
}

/**
 * Collects a tree's nodes, setting aside those nodeProblem refuses and every entry whose
 * name is there twice (which of the two is meant cannot be known). Names of a sound tree
 * come sorted, so a duplicate is the previous name; only when the order is broken does it
 * fall back to a set of every name.
 */
class NodeChecker {
  private readonly nodes: TreeNode[] = [];
  private rejected: RejectedNode[] | undefined;
  private prev: Buffer | null = null;
  private seen: Set<string> | null = null;
  private dups: Set<string> | null = null;

  /** badXattr: the node has an xattr name that is empty or holds NUL (it cannot be set). */
  add(n: TreeNode, badXattr: boolean): void {
    const name = n.name;
    const k = name.length;
    const prev = this.seen ? null : this.prev;
    // One pass over the name (this is on every decode's path): whether it holds '/' or NUL,
    // and how it sorts against the previous name (<0 before, 0 equal, >0 after).
    let order = prev ? 0 : 1;
    let slashOrNul = false;
    for (let i = 0; i < k; i++) {
      const c = name[i]!;
      if (c === 0x2f || c === 0) {
        slashOrNul = true;
        break;
      }
      if (order === 0) order = i < prev!.length ? c - prev![i]! : 1;
    }
    if (order === 0) order = k - prev!.length;
    // nodeProblem in full only where it may find one: '.', '..', an empty name, extents.
    if (badXattr || slashOrNul || k <= 2 || n.extents) {
      const problem = badXattr ? 'an xattr name that is empty or holds NUL' : nodeProblem(n);
      if (problem !== null) return this.reject(n, problem);
    }
    if (this.seen) this.addSeen(name);
    else if (order === 0) (this.dups ??= new Set()).add(name.toString('latin1'));
    else if (order < 0) {
      // Out of order: from here on every name goes through a set.
      this.seen = new Set(this.nodes.map((x) => x.name.toString('latin1')));
      this.addSeen(name);
    }
    this.prev = name;
    this.nodes.push(n);
  }

  private reject(n: TreeNode, reason: string): void {
    (this.rejected ??= []).push({ name: n.name, reason });
  }

  private addSeen(name: Buffer): void {
    const key = name.toString('latin1');
    if (this.seen!.has(key)) (this.dups ??= new Set()).add(key);
    else this.seen!.add(key);
  }

  tree(): Tree {
    let nodes = this.nodes;
    const dups = this.dups;
    if (dups) {
      nodes = [];
      for (const n of this.nodes) {
        if (dups.has(n.name.toString('latin1'))) this.reject(n, 'a duplicate name');
        else nodes.push(n);
      }
    }
    return this.rejected ? { nodes, rejected: this.rejected } : { nodes };
  }
}

/** Version 1 trees: the JSON encoding tsbak wrote before version 2 (docs/FORMAT.md "Trees, version 1"). */
function decodeJsonTree(bytes: Buffer): Tree {
  const j = JSON.parse(bytes.toString('utf8')) as { v: number; nodes: Record<string, any>[] };
  if (j.v !== 1 || !Array.isArray(j.nodes)) throw new Error('unknown tree version');
  const v = new NodeChecker();
  for (const o of j.nodes) {
    const n = jsonNode(o);
    v.add(n, n.xattrs?.some(([k]) => typeof k !== 'string' || k === '' || k.includes('\0')) ?? false);
  }
  return v.tree();
}

function jsonNode(o: Record<string, any>): TreeNode {
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
