// Walks a directory tree and records everything a careful comparison looks at, so that two
// trees (an original and its restored copy) can be compared entry by entry:
// name (raw bytes), type, mode (incl. setuid/setgid/sticky), uid/gid, size, sha256 of the
// content, mtime and atime in ns, symlink target, rdev, every xattr (as `getfattr -h -d -m -`
// shows them), the ACL (as `getfacl` shows it), hardlink groups and allocated blocks.
//
// Independence from the code under test: the walk uses only node:fs and the attr/acl
// command-line tools (getfattr, getfacl). The one exception is lutimensNs (to put back
// times that the walk itself disturbs, see `preserveAtime`), since Node cannot set
// nanosecond times.
//
// Deep trees: every syscall goes through /proc/self/fd/<dirfd>/<name> on an open handle of
// the parent directory, so paths deeper than PATH_MAX are walked like any other. The
// getfattr/getfacl child gets the directory handle as its fd 3 and works relative to it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants as C, lstatSync, openSync, readSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { lutimensNs } from '../../src/platform/native.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev' | 'blockdev' | 'socket';

export interface Entry {
  /** Path relative to the root, shown with non-printable bytes as \xHH ('' = the root). */
  rel: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Files and symlinks; 0 for the others (a directory's size depends on its history). */
  size: number;
  sha256?: string;
  mtimeNs: bigint;
  atimeNs: bigint;
  /** Symlink target bytes, as hex. */
  target?: string;
  /** Devices: major:minor. */
  rdev?: string;
  /** `getfattr -h -d -m - -e hex` output, one "name=0x..." per line, sorted. */
  xattrs: string[];
  /** `getfacl -n --omit-header` output (absent for symlinks, which have no ACL of their own). */
  acl?: string;
  nlink: number;
  ino: bigint;
  /** st_blocks * 512 */
  allocated: number;
}

export interface WalkOptions {
  /**
   * Put back atime (and mtime) of every entry after the walk read it (readdir and readlink
   * move atime under relatime), so that walking the original before a backup does not
   * change what the backup records, and so that reading one name of a hardlinked symlink
   * does not change what the next name shows. The walk records each entry's times from an
   * lstat done before anything of the entry is read. Default true.
   */
  preserveAtime?: boolean;
  /** Compare security.* xattrs too (tsbak restores them only on request). Default false. */
  security?: boolean;
}

/** Name bytes shown readably and injectively: printable ASCII as is, '\' and the rest as \xHH. */
export function showName(b: Buffer): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}

function typeOf(mode: bigint): EntryType {
  switch (Number(mode) & C.S_IFMT) {
    case C.S_IFREG: return 'file';
    case C.S_IFDIR: return 'dir';
    case C.S_IFLNK: return 'symlink';
    case C.S_IFIFO: return 'fifo';
    case C.S_IFCHR: return 'chardev';
    case C.S_IFBLK: return 'blockdev';
    case C.S_IFSOCK: return 'socket';
    default: throw new Error(`unknown type ${mode}`);
  }
}

const major = (d: bigint) => Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
const minor = (d: bigint) => Number((d & 0xffn) | ((d >> 12n) & ~0xffn));

function fdPath(dirFd: number, name?: Buffer): Buffer {
  const base = Buffer.from(`/proc/self/fd/${dirFd}`);
  return name ? Buffer.concat([base, Buffer.from('/'), name]) : base;
}

function sha256(path: Buffer): string {
  // O_NOATIME: we are root (or the owner); reading should not move atime.
  const fd = openSync(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NOATIME);
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(4 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

// One child process per directory: for each name (passed as \xHH escapes), its xattrs and
// (unless the name is marked as a symlink) its ACL, each block closed by a marker line.
const ATTR_SCRIPT = `
cd -P /proc/self/fd/3 || exit 90
for arg in "$@"; do
  kind=\${arg%%:*}; esc=\${arg#*:}
  n=$(printf "$esc"; printf x); n=\${n%x}
  getfattr -h -d -m - -e hex -- "$n" 2>/dev/null
  echo "@@ACL@@"
  if [ "$kind" = acl ]; then getfacl -n --omit-header -- "$n" || exit 91; fi
  echo "@@END@@"
done
`;

interface Attrs {
  xattrs: string[];
  acl?: string;
}

/** xattrs (getfattr) and ACLs (getfacl) of entries of the open directory dirFd. */
function attrs(dirFd: number, items: Array<{ name: Buffer; acl: boolean }>, security: boolean): Attrs[] {
  if (!items.length) return [];
  // Keep each command line well below ARG_MAX (a 255-byte name is 1 KiB escaped).
  if (items.length > 256) return [...attrs(dirFd, items.slice(0, 256), security), ...attrs(dirFd, items.slice(256), security)];
  const args = items.map(({ name, acl }) => `${acl ? 'acl' : 'noacl'}:${[...name].map((c) => `\\x${c.toString(16).padStart(2, '0')}`).join('')}`);
  const r = spawnSync('bash', ['-c', ATTR_SCRIPT, 'bash', ...args], {
    stdio: ['ignore', 'pipe', 'pipe', dirFd],
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  if (r.status !== 0) throw new Error(`getfattr/getfacl failed: ${r.status} ${r.stderr}`);
  const blocks = r.stdout.split('@@END@@\n');
  return items.map(({ acl: withAcl }, i) => {
    const [x, acl] = (blocks[i] ?? '').split('@@ACL@@\n') as [string, string];
    const xattrs = x
      .split('\n')
      .filter((l) => l && !l.startsWith('# file:'))
      .filter((l) => security || !l.startsWith('security.'))
      .sort();
    return withAcl ? { xattrs, acl } : { xattrs };
  });
}

/** An entry from its lstat, before anything of it is read. */
function fromStat(rel: string, st: BigIntStats): Entry {
  const type = typeOf(st.mode);
  const e: Entry = {
    rel,
    type,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === 'file' || type === 'symlink' ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    atimeNs: st.atimeNs,
    xattrs: [],
    nlink: Number(st.nlink),
    ino: st.ino,
    allocated: Number(st.blocks) * 512,
  };
  if (type === 'chardev' || type === 'blockdev') e.rdev = `${major(st.rdev)}:${minor(st.rdev)}`;
  return e;
}

/** Puts back the times recorded in `st` if reading the entry moved them. */
function putBackTimes(p: Buffer, st: BigIntStats): void {
  const now = lstatSync(p, { bigint: true });
  if (now.atimeNs !== st.atimeNs || now.mtimeNs !== st.mtimeNs) lutimensNs(p, st.atimeNs, st.mtimeNs);
}

/** Every entry below (and including) root, keyed by relative path. */
export function walkTree(root: string | Buffer, opts: WalkOptions = {}): Map<string, Entry> {
  const out = new Map<string, Entry>();
  // The root is recorded through a handle on its parent, like everything else.
  const rootBuf = Buffer.isBuffer(root) ? root : Buffer.from(root);
  const slash = rootBuf.lastIndexOf(0x2f);
  const parentFd = openSync(slash <= 0 ? Buffer.from('/') : rootBuf.subarray(0, slash), C.O_RDONLY | C.O_DIRECTORY);
  try {
    visitNames(parentFd, [rootBuf.subarray(slash + 1)], () => '', out, opts);
  } finally {
    closeSync(parentFd);
  }
  return out;
}

/**
 * Records `names` of the open directory dirFd (and, recursively, what is below them):
 * first every lstat (so that no read of ours precedes it, also across the names of one
 * hardlinked inode), then xattrs/ACLs in one child process, then content and targets.
 */
function visitNames(dirFd: number, names: Buffer[], relOf: (n: Buffer) => string, out: Map<string, Entry>, opts: WalkOptions): void {
  const items = names.map((name) => {
    const st = lstatSync(fdPath(dirFd, name), { bigint: true });
    return { name, st, e: fromStat(relOf(name), st) };
  });
  const as = attrs(dirFd, items.map(({ name, e }) => ({ name, acl: e.type !== 'symlink' })), opts.security ?? false);
  items.forEach((it, i) => Object.assign(it.e, as[i]));
  for (const { name, st, e } of items) {
    const p = fdPath(dirFd, name);
    if (e.type === 'file') e.sha256 = sha256(p);
    if (e.type === 'symlink') e.target = readlinkSync(p, { encoding: 'buffer' }).toString('hex');
    out.set(e.rel, e);
    if (e.type === 'dir') {
      const fd = openSync(p, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
      try {
        const children = readdirSync(fdPath(fd), { encoding: 'buffer' }).sort(Buffer.compare);
        visitNames(fd, children, (n) => (e.rel === '' ? showName(n) : `${e.rel}/${showName(n)}`), out, opts);
      } finally {
        closeSync(fd);
      }
    }
    if (opts.preserveAtime ?? true) putBackTimes(p, st);
  }
}

/** Groups of paths sharing one inode (non-directories with nlink > 1), canonically sorted. */
export function hardlinkGroups(tree: Map<string, Entry>): string[][] {
  const byIno = new Map<bigint, string[]>();
  for (const e of tree.values()) {
    if (e.type === 'dir' || e.nlink < 2) continue;
    let g = byIno.get(e.ino);
    if (!g) byIno.set(e.ino, (g = []));
    g.push(e.rel);
  }
  return [...byIno.values()].map((g) => g.sort()).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

const FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'mtimeNs', 'atimeNs', 'target', 'rdev', 'xattrs', 'acl', 'nlink'] as const;
export type Field = (typeof FIELDS)[number];

export interface CompareOptions {
  /** Fields not compared for particular entries (by relative path). */
  ignore?: Record<string, Field[]>;
  /** Fields not compared at all (e.g. nlink when only part of a hardlink group is restored). */
  skip?: Field[];
  /** Compare hardlink groups (default true). */
  hardlinks?: boolean;
}

/** The entries below `rel` (a directory in the tree), re-keyed relative to it. */
export function subtree(tree: Map<string, Entry>, rel: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const [k, e] of tree) {
    if (k === rel) out.set('', { ...e, rel: '' });
    else if (k.startsWith(rel + '/')) out.set(k.slice(rel.length + 1), { ...e, rel: k.slice(rel.length + 1) });
  }
  return out;
}

/** Differences between two walked trees, one readable line each; [] when they match. */
export function compareTrees(a: Map<string, Entry>, b: Map<string, Entry>, opts: CompareOptions = {}): string[] {
  const raw = compareTreesRaw(a, b, opts);
  // Deep trees have very long paths: shorten runs of one character for reading.
  return raw.map((d) => d.replace(/(.)\1{15,}/g, (run, c: string) => `${c}{${run.length}}`));
}

function compareTreesRaw(a: Map<string, Entry>, b: Map<string, Entry>, opts: CompareOptions): string[] {
  const diffs: string[] = [];
  for (const rel of a.keys()) if (!b.has(rel)) diffs.push(`missing: ${rel || '.'}`);
  for (const rel of b.keys()) if (!a.has(rel)) diffs.push(`extra: ${rel || '.'}`);
  for (const [rel, x] of a) {
    const y = b.get(rel);
    if (!y) continue;
    for (const f of FIELDS) {
      if (opts.skip?.includes(f) || opts.ignore?.[rel]?.includes(f)) continue;
      const vx = JSON.stringify(x[f], (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
      const vy = JSON.stringify(y[f], (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
      if (vx !== vy) diffs.push(`${rel || '.'}: ${f} ${vx} != ${vy}`);
    }
  }
  if (opts.hardlinks ?? true) {
    const ga = JSON.stringify(hardlinkGroups(a));
    const gb = JSON.stringify(hardlinkGroups(b));
    if (ga !== gb) diffs.push(`hardlink groups ${ga} != ${gb}`);
  }
  return diffs;
}
