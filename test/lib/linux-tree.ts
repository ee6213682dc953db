// A tree with every kind of entry and metadata Linux has (names as bytes, ns times before
// 1970 and after 2038, modes, owners, xattrs, ACLs, hardlinks, devices, fifos, sockets,
// symlinks, sparse files), for tests that compare a copy of it with the original
// (fidelity.test.ts: backup + restore; fuse-fidelity.test.ts: the mount). Needs root.
import type { Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, constants as C, ftruncateSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { lutimensNs, mknod } from '../../src/platform/native.js';
import { hardlinkGroups, showName, type Entry } from './tree-compare.js';

export const MiB = 1 << 20;
/** Joins path parts (strings or raw bytes) into one raw path. */
export function P(...parts: Array<string | Buffer>): Buffer {
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push(Buffer.from('/'));
    out.push(Buffer.isBuffer(p) ? p : Buffer.from(p));
  });
  return Buffer.concat(out);
}

/** A path through an open directory handle: short whatever the directory's depth. */
export function fdPath(fd: number, name?: string | Buffer): Buffer {
  return name === undefined ? Buffer.from(`/proc/self/fd/${fd}`) : P(`/proc/self/fd/${fd}`, name);
}

export function sh(cmd: string, ...args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A UNIX socket inode left behind by a process that bound it and exited (Node unlinks on close). */
function makeSocket(p: string): void {
  const r = spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', p]);
  if (r.status !== 0) mknod(p, C.S_IFSOCK | 0o755); // no python3: the inode is the same
}

// Times that exercise the encoding: before 1970 (also -1 ns), 0, ordinary with ns, after
// 2038 (32-bit overflow) and far in the future (ext4 stores up to 2446).
export const TIMES: bigint[] = [
  -1234567890123456789n, // 1930
  -1n,
  0n,
  1700000000123456789n,
  2200000000000000001n, // 2039
  4102444800999999999n, // 2100
  951782400500000000n,
];

/** Gives every entry below root (root included) distinct atime/mtime, children before parents, on symlinks themselves. */
export function setTimes(root: string): void {
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

export const INVALID_UTF8 = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x80, 0x2e, 0xc3, 0x28]);
export const LONG_NAME = 'L'.repeat(251) + '.txt'; // 255 bytes

/** sparseGiB: the size of sparse.img (three 1 MiB extents: start, middle, end); default 2. */
export function buildTree(src: string, opts: { sparseGiB?: number } = {}): void {
  const sparse = (opts.sparseGiB ?? 2) * 1024 * MiB;
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

  // a sparse file (2 GiB by default) with three 1 MiB data extents (start, middle, end)
  const fd = openSync(path.join(src, 'sparse.img'), 'w');
  try {
    ftruncateSync(fd, sparse);
    for (const off of [0, sparse / 2, sparse - MiB]) writeSync(fd, randomBytes(MiB), 0, MiB, off);
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
export function sanity(t: Test, m: Map<string, Entry>): void {
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

