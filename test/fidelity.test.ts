// Issue 3: backup + restore loses nothing that `cp -a` as root keeps. Builds a tree with
// every kind of entry and metadata Linux has, backs it up with the real executables,
// restores it, and compares the two trees entry by entry (test/lib/tree-compare.ts).
// Runs as root (mknod of devices, chown to unnamed ids, trusted.* xattrs).
import t, { type Test } from 'tap';
import { spawnSync, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants as C,
  lchownSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  ftruncateSync,
} from 'node:fs';
import * as path from 'node:path';
import { lutimensNs, mknod } from '../src/platform/native.js';
import { lastJson, run } from './lib/cli.js';
import { compareTrees, hardlinkGroups, showName, subtree, walkTree, type Entry } from './lib/tree-compare.js';
import { tempDir } from './lib/temp.js';

const MiB = 1 << 20;

const isRoot = process.getuid?.() === 0;

/** Joins path parts (strings or raw bytes) into one raw path. */
function P(...parts: Array<string | Buffer>): Buffer {
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push(Buffer.from('/'));
    out.push(Buffer.isBuffer(p) ? p : Buffer.from(p));
  });
  return Buffer.concat(out);
}

/** A path through an open directory handle: short whatever the directory's depth. */
function fdPath(fd: number, name?: string | Buffer): Buffer {
  return name === undefined ? Buffer.from(`/proc/self/fd/${fd}`) : P(`/proc/self/fd/${fd}`, name);
}

/** Runs a command in the directory open as `dirFd` (it becomes the child's cwd via fd 3). */
function inDir(dirFd: number, cmd: string, ...args: string[]): void {
  const r = spawnSync('bash', ['-c', 'cd -P /proc/self/fd/3 && exec "$@"', 'bash', cmd, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', dirFd],
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status} ${r.stderr}`);
}

function sh(cmd: string, ...args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A UNIX socket inode left behind by a process that bound it and exited (Node unlinks on close). */
function makeSocket(p: string): void {
  const r = spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', p]);
  if (r.status !== 0) mknod(p, C.S_IFSOCK | 0o755); // no python3: the inode is the same
}

// Times that exercise the encoding: before 1970 (also -1 ns), 0, ordinary with ns, after
// 2038 (32-bit overflow) and far in the future (ext4 stores up to 2446).
const TIMES: bigint[] = [
  -1234567890123456789n, // 1930
  -1n,
  0n,
  1700000000123456789n,
  2200000000000000001n, // 2039
  4102444800999999999n, // 2100
  951782400500000000n,
];

/** Gives every entry below root (root included) distinct atime/mtime, children before parents, on symlinks themselves. */
function setTimes(root: string): void {
  let i = 0;
  const visit = (dirFd: number, name: Buffer): void => {
    const p = fdPath(dirFd, name);
    const st = lstatSync(p);
    if (st.isDirectory()) {
      const fd = openSync(p, C.O_RDONLY | C.O_DIRECTORY);
      try {
        for (const n of readdirSync(fdPath(fd), { encoding: 'buffer' })) visit(fd, n);
      } finally {
        closeSync(fd);
      }
    }
    const a = TIMES[i % TIMES.length]!;
    const m = TIMES[(i + 3) % TIMES.length]! + BigInt(i);
    i++;
    lutimensNs(p, a, m);
  };
  const parent = openSync(path.dirname(root), C.O_RDONLY | C.O_DIRECTORY);
  try {
    visit(parent, Buffer.from(path.basename(root)));
  } finally {
    closeSync(parent);
  }
}

/** Bytes of all files in a directory (the repository's size). */
function du(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? du(p) : statSync(p).size;
  }
  return n;
}

const INVALID_UTF8 = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x80, 0x2e, 0xc3, 0x28]);
const LONG_NAME = 'L'.repeat(251) + '.txt'; // 255 bytes

function buildTree(src: string): void {
  const w = (rel: string | Buffer, data: string | Buffer = '') => writeFileSync(P(src, rel), data);
  const d = (rel: string, mode = 0o755) => {
    mkdirSync(path.join(src, rel));
    chmodSync(path.join(src, rel), mode);
  };

  // names
  w('with space.txt', 'spaces\n');
  w('new\nline', 'newline in the name\n');
  w(INVALID_UTF8, 'invalid utf-8 name\n');
  w(LONG_NAME, 'long name\n');
  w(Buffer.from('tab\tand\\backslash and ünïcödé ☃'), 'more\n');
  w('.hidden', 'dotfile\n');
  w('-starts-with-dash', 'x');
  w('*?[glob] chars', 'x');
  w(Buffer.from([0xff]), 'a one-byte name that is not UTF-8\n');

  // regular files and directories
  w('empty');
  w('tiny', 'x');
  w('random-1m', randomBytes(MiB));
  const block = randomBytes(64 << 10);
  w('repeated', Buffer.concat(Array.from({ length: 16 }, () => block)));
  d('sub');
  d('sub/nested');
  w('sub/nested/file', 'nested\n');
  d('sub/empty-dir');

  // symlinks: relative, absolute, dangling, to a directory, with a non-UTF-8 target
  symlinkSync('tiny', path.join(src, 'link-rel'));
  symlinkSync('/etc/passwd', path.join(src, 'link-abs'));
  symlinkSync('no/such/target', path.join(src, 'link-dangling'));
  symlinkSync('../sub', path.join(src, 'sub/nested/link-dir'));
  symlinkSync(INVALID_UTF8, P(src, 'link-binary'));

  // hardlinks: three names of one inode in two directories
  d('hl');
  d('hl2');
  w('hl/one', 'one inode, three names\n');
  linkSync(path.join(src, 'hl/one'), path.join(src, 'hl/two'));
  linkSync(path.join(src, 'hl/one'), path.join(src, 'hl2/three'));
  // a hardlinked empty file and a hardlinked FIFO
  w('hl/empty-a');
  linkSync(path.join(src, 'hl/empty-a'), path.join(src, 'hl2/empty-b'));

  // special files
  sh('mkfifo', '-m', '0640', path.join(src, 'fifo'));
  linkSync(path.join(src, 'fifo'), path.join(src, 'hl2/fifo-link'));
  sh('mknod', '-m', '0620', path.join(src, 'chardev'), 'c', '1', '3');
  sh('mknod', '-m', '0660', path.join(src, 'blockdev'), 'b', '7', '0');
  makeSocket(path.join(src, 'socket'));
  sh('mknod', '-m', '0600', path.join(src, 'chardev-big'), 'c', '511', '1048575'); // major/minor beyond 8 bits
  linkSync(path.join(src, 'chardev'), path.join(src, 'hl2/chardev-link'));
  // a hardlink to a symlink (link(2) does not follow it)
  symlinkSync('../tiny', path.join(src, 'hl/symlink'));
  linkSync(path.join(src, 'hl/symlink'), path.join(src, 'hl2/symlink-link'));

  // modes (chmod after any chown: chown clears setuid/setgid)
  w('setuid', '#!/bin/sh\n');
  chmodSync(path.join(src, 'setuid'), 0o4755);
  w('setgid', '#!/bin/sh\n');
  chmodSync(path.join(src, 'setgid'), 0o2711);
  w('all-special', 'x');
  chmodSync(path.join(src, 'all-special'), 0o7777);
  d('setgid-dir', 0o2775);
  w('setgid-dir/in', 'x');
  d('sticky-dir', 0o1777);
  w('mode000', 'nobody may read me (but root)\n');
  chmodSync(path.join(src, 'mode000'), 0o000);
  d('dir000');
  w('dir000/inside', 'behind a mode 000 directory\n');
  chmodSync(path.join(src, 'dir000'), 0o000);

  // owners without names
  w('unnamed-owner', 'x');
  chownSync(path.join(src, 'unnamed-owner'), 12345, 54321);
  d('unnamed-dir');
  chownSync(path.join(src, 'unnamed-dir'), 23456, 12345);
  symlinkSync('unnamed-owner', path.join(src, 'unnamed-link'));
  lchownSync(path.join(src, 'unnamed-link'), 34567, 45678);
  w('setuid-unnamed', 'x');
  chownSync(path.join(src, 'setuid-unnamed'), 12345, 54321);
  chmodSync(path.join(src, 'setuid-unnamed'), 0o6755);

  // xattrs with binary values (every byte value, NULs, empty)
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  w('xattr-file', 'has xattrs\n');
  sh('setfattr', '-n', 'user.all-bytes', '-v', '0x' + all.toString('hex'), path.join(src, 'xattr-file'));
  sh('setfattr', '-n', 'user.empty', path.join(src, 'xattr-file'));
  sh('setfattr', '-n', 'trusted.secret', '-v', '0x' + randomBytes(100).toString('hex'), path.join(src, 'xattr-file'));
  d('xattr-dir');
  sh('setfattr', '-n', 'user.dir', '-v', '0x00ff00', path.join(src, 'xattr-dir'));
  sh('setfattr', '-n', 'trusted.dir', '-v', '0xdeadbeef', path.join(src, 'xattr-dir'));
  // many names, and one value near ext4's limit (everything must fit in one 4 KiB block)
  w('many-xattrs', 'x');
  for (let i = 0; i < 40; i++) sh('setfattr', '-n', `user.n${String(i).padStart(2, '0')}`, '-v', `0x${randomBytes(8).toString('hex')}`, path.join(src, 'many-xattrs'));
  w('big-xattr', 'x');
  sh('setfattr', '-n', 'user.big', '-v', '0x' + randomBytes(3000).toString('hex'), path.join(src, 'big-xattr'));
  sh('setfattr', '-h', '-n', 'trusted.on-link', '-v', '0x000102', path.join(src, 'link-rel'));
  sh('setfattr', '-h', '-n', 'trusted.on-dangling', '-v', '0x41', path.join(src, 'link-dangling'));

  // POSIX ACLs: access ACL on a file, access + default ACL on a directory, and entries
  // created inside it that inherit the default
  w('acl-file', 'x');
  sh('setfacl', '-m', 'u:12345:r--,g:54321:rw-,m::rw-', path.join(src, 'acl-file'));
  d('acl-dir');
  sh('setfacl', '-m', 'u:12345:rwx,g:54321:r-x', path.join(src, 'acl-dir'));
  sh('setfacl', '-d', '-m', 'u::rwx,g::r-x,o::---,u:12345:rwx,g:54321:r--,m::rwx', path.join(src, 'acl-dir'));
  w('acl-dir/inherited', 'x');
  mkdirSync(path.join(src, 'acl-dir/inherited-dir'));
  // ...and one whose inherited ACL was removed afterwards (the restore must not leave the inherited one)
  w('acl-dir/no-acl', 'x');
  sh('setfacl', '-b', path.join(src, 'acl-dir/no-acl'));
  // sticky + ACL + setgid together
  d('acl-setgid', 0o3770);
  sh('setfacl', '-m', 'g:54321:rwx', path.join(src, 'acl-setgid'));

  // a 2 GiB sparse file with three 1 MiB data extents (start, middle, end)
  const fd = openSync(path.join(src, 'sparse.img'), 'w');
  try {
    ftruncateSync(fd, 2 * 1024 * MiB);
    for (const off of [0, 1024 * MiB, 2 * 1024 * MiB - MiB]) writeSync(fd, randomBytes(MiB), 0, MiB, off);
  } finally {
    closeSync(fd);
  }
  // data only in the middle: a leading and a trailing hole
  const fd3 = openSync(path.join(src, 'sparse-middle.img'), 'w');
  ftruncateSync(fd3, 100 * MiB);
  writeSync(fd3, randomBytes(4096), 0, 4096, 50 * MiB + 123);
  closeSync(fd3);
  // a file that is all hole
  const fd2 = openSync(path.join(src, 'all-hole.img'), 'w');
  ftruncateSync(fd2, 10 * MiB);
  closeSync(fd2);
}

/** Checks that the tree really has what the test is about, so that an equal comparison means something. */
function sanity(t: Test, m: Map<string, Entry>): void {
  const get = (rel: string) => m.get(rel);
  t.equal(get('chardev')?.rdev, '1:3', 'char device 1,3');
  t.equal(get('blockdev')?.rdev, '7:0', 'block device 7,0');
  t.equal(get('socket')?.type, 'socket', 'a socket');
  t.equal(get('fifo')?.type, 'fifo', 'a fifo');
  t.equal(get('setuid')?.mode, 0o4755);
  t.equal(get('sticky-dir')?.mode, 0o1777);
  t.equal(get('mode000')?.mode, 0);
  t.equal(get('unnamed-owner')?.uid, 12345);
  t.equal(get('unnamed-link')?.gid, 45678);
  t.equal(get(showName(INVALID_UTF8))?.type, 'file', 'invalid UTF-8 name');
  t.equal(get('new\\x0aline')?.type, 'file', 'newline in a name');
  t.ok(get('xattr-file')?.xattrs.some((x) => x.startsWith('trusted.secret=0x')), 'trusted xattr');
  t.ok(get('xattr-file')?.xattrs.some((x) => x.startsWith('user.all-bytes=0x000102')), 'binary xattr');
  t.ok(get('link-rel')?.xattrs.some((x) => x.startsWith('trusted.on-link')), 'xattr on a symlink');
  t.match(get('acl-dir')?.acl, /default:user:12345:rwx/, 'default ACL');
  t.match(get('acl-dir/inherited')?.acl, /user:12345:rwx/, 'inherited ACL');
  t.notMatch(get('acl-dir/no-acl')?.acl, /user:12345/, 'removed ACL');
  t.ok(get('sparse.img')!.allocated < 8 * MiB, 'the original sparse file is sparse');
  t.ok([...m.values()].some((e) => e.mtimeNs < 0n), 'times before 1970');
  t.ok([...m.values()].some((e) => e.atimeNs > 2n ** 31n * 1_000_000_000n), 'times after 2038');
  t.equal(get('chardev-big')?.rdev, '511:1048575', 'large device numbers');
  t.equal(get('hl2/symlink-link')?.type, 'symlink', 'a hardlinked symlink');
  t.same(hardlinkGroups(m).map((g) => g.length).sort(), [2, 2, 2, 2, 3], 'hardlink groups: a file x3, an empty file, a fifo, a device, a symlink x2');
}

/** Backs src up into a fresh repository, restores it, returns both walks and the write summary. */
function roundTrip(t: Test, src: string): { before: Map<string, Entry>; after: Map<string, Entry>; write: any; repo: string; repoGrowth: number } {
  // Walk the original first, putting back the atimes the walk moves, so the backup sees what we recorded.
  const before = walkTree(src, { preserveAtime: true });
  const repo = path.join(tempDir(t), 'repo');
  const init = run('tsbak', ['init', repo]);
  t.equal(init.code, 0, init.stderr);
  const repoBefore = du(repo);
  const w = run('tsbak-write', [repo, src, '--json']);
  t.equal(w.code, 0, `tsbak-write exits 0: ${w.stderr}`);
  t.equal(w.stderr, '', 'no warnings from the backup');
  const write = lastJson(w.stdout);
  const repoGrowth = du(repo) - repoBefore;
  const target = tempDir(t);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', target]);
  t.equal(r.code, 0, `restore exits 0: ${r.stderr}`);
  t.equal(r.stderr, '', 'no warnings from the restore');
  const after = walkTree(path.join(target, src));
  return { before, after, write, repo, repoGrowth };
}

t.test('every kind of entry and metadata survives backup and restore', { skip: !isRoot && 'needs root' }, async (t) => {
  const src = tempDir(t, 'tsbak-fidelity-');
  buildTree(src);
  setTimes(src);
  const { before, after, write, repo, repoGrowth } = roundTrip(t, src);
  sanity(t, before);

  t.same(compareTrees(before, after), [], 'the restored tree equals the original');
  t.same(write.errors, [], 'no errors');
  t.same(write.changed_while_read, [], 'nothing changed while read');

  // Sparse: holes are neither read, nor stored, nor written.
  t.ok(write.bytes_read < 16 * MiB, `holes are not read (${write.bytes_read} bytes read)`);
  t.ok(repoGrowth < 16 * MiB, `the repository grew by a few MiB (${repoGrowth} bytes), not 2 GiB`);
  const restoredSparse = after.get('sparse.img')!;
  t.equal(restoredSparse.size, 2 * 1024 * MiB);
  t.ok(restoredSparse.allocated >= 3 * MiB && restoredSparse.allocated < 8 * MiB, `restored sparse file allocates a few MiB (${restoredSparse.allocated})`);
  t.ok(after.get('all-hole.img')!.allocated < MiB, 'an all-hole file stays a hole');
  t.ok(after.get('sparse-middle.img')!.allocated < MiB, 'leading and trailing holes stay holes');
  t.equal(after.get('many-xattrs')!.xattrs.length, 40, 'all 40 xattrs');

  // Every name of a hardlinked inode carries the inode's full metadata: restoring only the
  // second directory (so its names are the first, and only, ones) gives the same entries.
  const part = tempDir(t);
  const rp = run('tsbak', ['restore', repo, 'latest', '--target', part, '--include', path.join(src, 'hl2')]);
  t.equal(rp.code, 0, rp.stderr);
  const partWalk = walkTree(path.join(part, src, 'hl2'));
  t.same(compareTrees(subtree(before, 'hl2'), partWalk, { skip: ['nlink'], hardlinks: false }), [], 'a partial restore of hardlinked names');

  // One inode per hardlink group after restore, with the right link count.
  t.equal(after.get('hl/one')!.nlink, 3);
  t.equal(after.get('hl/one')!.ino, after.get('hl2/three')!.ino);

  const c = run('tsbak', ['check', repo, '--read-data']);
  t.equal(c.code, 0, c.stdout + c.stderr);
  t.match(c.stdout, /no errors/);

  // A second backup of the unchanged tree (parent snapshot: data not read again, metadata
  // captured afresh) restores identically too. The first backup moved the atimes of
  // directories and symlinks (readdir, readlink), so the original is walked again first.
  const before2 = walkTree(src);
  const w2 = run('tsbak-write', [repo, src, '--json']);
  t.equal(w2.code, 0, w2.stderr);
  t.ok(lastJson(w2.stdout).bytes_read < MiB, 'unchanged files are not read again');
  const target2 = tempDir(t);
  const r2 = run('tsbak', ['restore', repo, 'latest', '--target', target2]);
  t.equal(r2.code, 0, r2.stderr);
  t.same(compareTrees(before2, walkTree(path.join(target2, src))), [], 'the second snapshot restores identically');
  t.ok(walkTree(path.join(target2, src)).get('sparse.img')!.allocated < 8 * MiB, 'its sparse file too');
});

/** Nested directories whose joined path is longer than PATH_MAX (4096). */
function buildDeepTree(src: string): { deepRel: string } {
  const names = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}-${'d'.repeat(240)}`);
  writeFileSync(path.join(src, 'top'), 'top of a deep tree\n');
  let fd = openSync(src, C.O_RDONLY | C.O_DIRECTORY);
  const fds = [fd];
  try {
    for (const n of names) {
      mkdirSync(fdPath(fd, n), { mode: 0o750 });
      fd = openSync(fdPath(fd, n), C.O_RDONLY | C.O_DIRECTORY);
      fds.push(fd);
    }
    writeFileSync(fdPath(fd, 'leaf'), randomBytes(100_000));
    chmodSync(fdPath(fd, 'leaf'), 0o4711);
    writeFileSync(fdPath(fd, 'sparse'), '');
    const sfd = openSync(fdPath(fd, 'sparse'), 'r+');
    ftruncateSync(sfd, 64 * MiB);
    writeSync(sfd, randomBytes(4096), 0, 4096, 32 * MiB);
    closeSync(sfd);
    symlinkSync('leaf', fdPath(fd, 'leaf-link'));
    symlinkSync(Buffer.from('/'.padEnd(4000, 'x')), fdPath(fd, 'long-target')); // a target near PATH_MAX
    linkSync(path.join(src, 'top'), fdPath(fd, 'hardlink-to-top'));
    inDir(fd, 'mkfifo', 'fifo');
    inDir(fd, 'setfattr', '-n', 'user.deep', '-v', '0x00010203', 'leaf');
    inDir(fd, 'setfattr', '-h', '-n', 'trusted.deep', '-v', '0xff', 'leaf-link');
    inDir(fd, 'setfacl', '-m', 'u:12345:rwx', '.');
    lchownSync(fdPath(fd, 'leaf-link'), 12345, 12345);
  } finally {
    for (const f of fds) closeSync(f);
  }
  return { deepRel: names.join('/') };
}

t.test('paths deeper than PATH_MAX', { skip: !isRoot && 'needs root' }, async (t) => {
  const src = tempDir(t, 'tsbak-deep-');
  const { deepRel } = buildDeepTree(src);
  t.ok(Buffer.byteLength(path.join(src, deepRel, 'leaf')) > 4096, 'the joined path is longer than PATH_MAX');
  setTimes(src);
  const { before, after, write, repo } = roundTrip(t, src);
  t.ok(before.has(`${deepRel}/leaf`), 'the walk sees the deepest file');
  t.same(write.errors, [], 'no errors');
  t.same(compareTrees(before, after), [], 'the restored deep tree equals the original');
  const c = run('tsbak', ['check', repo, '--read-data']);
  t.equal(c.code, 0, c.stdout + c.stderr);
});

// The comparison itself: `cp -a` (the yardstick of issue 3) must compare equal, and every
// kind of difference must be noticed. Otherwise an empty diff above would prove nothing.
t.test('the tree comparison: cp -a compares equal, any difference is noticed', { skip: !isRoot && 'needs root' }, async (t) => {
  const src = tempDir(t, 'tsbak-cmp-');
  buildTree(src);
  setTimes(src);
  const before = walkTree(src, { preserveAtime: true });
  t.same(compareTrees(before, walkTree(src, { preserveAtime: true })), [], 'walking twice changes nothing (atimes put back)');
  const dst = path.join(tempDir(t), 'copy');
  execFileSync('cp', ['-a', src, dst]);
  t.same(compareTrees(before, walkTree(dst, { preserveAtime: true })), [], 'cp -a compares equal');

  const D = (rel: string | Buffer) => P(dst, rel);
  const st = (rel: string) => lstatSync(D(rel), { bigint: true });
  lutimensNs(D('tiny'), st('tiny').atimeNs + 1n, null); // 1 ns of atime
  lutimensNs(D('link-abs'), null, st('link-abs').mtimeNs - 1n); // mtime of a symlink itself
  sh('setfattr', '-n', 'user.all-bytes', '-v', '0x00', path.join(dst, 'xattr-file'));
  sh('setfattr', '-h', '-x', 'trusted.on-link', path.join(dst, 'link-rel'));
  sh('setfacl', '-m', 'u:12345:r-x', path.join(dst, 'acl-file'));
  sh('setfacl', '-d', '-m', 'g:54321:rwx', path.join(dst, 'acl-dir'));
  chmodSync(D('setuid'), 0o755);
  lchownSync(D('unnamed-link'), 34567, 1);
  writeFileSync(D('hl2/three'), 'one inode, three names\n'); // same content, still linked
  execFileSync('sh', ['-c', `cd '${dst}/hl' && cp one one.tmp && mv one.tmp two`]); // a broken hardlink
  execFileSync('sh', ['-c', `cd '${dst}' && rm chardev && mknod -m 0620 chardev c 1 5`]);
  execFileSync('sh', ['-c', `cd '${dst}' && rm link-dangling && ln -s no/such/targeT link-dangling`]);
  const fd = openSync(D('random-1m'), 'r+');
  writeSync(fd, Buffer.from([0]), 0, 1, 12345);
  closeSync(fd);
  writeFileSync(D('extra'), '');
  execFileSync('rm', [path.join(dst, 'sub/nested/file')]);

  const diffs = compareTrees(before, walkTree(dst)).join('\n');
  for (const [what, re] of [
    ['atime off by 1 ns', /^tiny: atimeNs/m],
    ['mtime of a symlink', /^link-abs: mtimeNs/m],
    ['xattr value', /^xattr-file: xattrs/m],
    ['xattr on a symlink', /^link-rel: xattrs/m],
    ['access ACL', /^acl-file: acl/m],
    ['default ACL', /^acl-dir: acl .*default:group:54321/m],
    ['setuid bit', /^setuid: mode/m],
    ['gid of a symlink', /^unnamed-link: gid/m],
    ['broken hardlink', /^hardlink groups/m],
    ['device number', /^chardev: rdev "1:3" != "1:5"/m],
    ['symlink target', /^link-dangling: target/m],
    ['content', /^random-1m: sha256/m],
    ['extra entry', /^extra: extra$/m],
    ['missing entry', /^missing: sub\/nested\/file/m],
  ] as const) t.match(diffs, re, what);
});
