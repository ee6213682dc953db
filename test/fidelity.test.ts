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
import { buildTree, fdPath, INVALID_UTF8, MiB, P, sanity, setTimes, sh } from './lib/linux-tree.js';
import { tempDir } from './lib/temp.js';


const isRoot = process.getuid?.() === 0;

/** Runs a command in the directory open as `dirFd` (it becomes the child's cwd via fd 3). */
function inDir(dirFd: number, cmd: string, ...args: string[]): void {
  const r = spawnSync('bash', ['-c', 'cd -P /proc/self/fd/3 && exec "$@"', 'bash', cmd, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', dirFd],
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status} ${r.stderr}`);
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
