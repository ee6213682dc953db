// Kinds of xattr no snapshot has (SnapshotInfo.xattrKinds, fuse/fs.ts missingXattrErrno,
// native/fuse_ll.c fuseSetXattrsAbsent): on a mount whose snapshots hold no security labels
// (and no ACLs, when the kernel does not check them) getxattr of those names answers
// "not supported", from the session thread and from JavaScript alike, so that `ls -l` stops
// asking every entry; where a snapshot has them, an entry without one answers "no such
// attribute" and `ls -Z`, `ls -l` and getfacl show the labels and ACLs as on the original,
// also for a snapshot that appears while the mount runs.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { newRepo, run } from './lib/cli.js';
import { backupAndMount, waitFor } from './lib/fuse-helpers.js';
import { tempDir } from './lib/temp.js';

const canRun = process.getuid?.() === 0 && existsSync('/dev/fuse');
const skip = canRun ? false : 'needs root (security.* xattrs) and /dev/fuse';
const LABEL = 'system_u:object_r:tsbak_test_t:s0';

function sh(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** A directory of plain files (a, c, e: no xattrs), one with a user xattr, and a subdirectory. */
function plainTree(src: string): void {
  mkdirSync(path.join(src, 'sub'), { recursive: true });
  for (const n of ['a', 'c', 'e', 'sub/f']) writeFileSync(path.join(src, n), `${n}\n`);
  writeFileSync(path.join(src, 'with-xattr'), 'x');
  sh('setfattr', '-n', 'user.note', '-v', 'kept', path.join(src, 'with-xattr'));
}

const getfattr = (file: string, name: string) => spawnSync('getfattr', ['--only-values', '-n', name, file], { encoding: 'utf8' });
/** `ls` output with the directory's own path taken out of it. */
const ls = (args: string[], dir: string) => {
  const r = spawnSync('ls', [...args, '--time-style=+%s', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ls ${args.join(' ')} ${dir}: ${r.stderr}`);
  return r.stdout.split(dir).join('DIR');
};

t.test('no labels or ACLs anywhere: getxattr of them is "not supported", and ls stops asking', { skip }, async (t) => {
  const dir = tempDir(t, 'tsbak-fuse-kinds-');
  const src = path.join(dir, 'src');
  plainTree(src);
  for (let i = 0; i < 40; i++) writeFileSync(path.join(src, 'sub', `n${i}`), `${i}\n`);
  const repo = newRepo(t);
  const { mnt, inMount } = backupAndMount(t, src, dir, repo);
  const stats = () => JSON.parse(spawnSync('getfattr', ['--only-values', '-n', 'user.tsbak.stats', mnt], { encoding: 'utf8' }).stdout);

  // The first requests of a fresh mount: nothing about these entries is cached yet.
  t.match(getfattr(path.join(inMount, 'a'), 'security.selinux').stderr, /Operation not supported/, 'no xattrs (session thread): security.* not supported');
  t.match(getfattr(path.join(inMount, 'a'), 'system.posix_acl_access').stderr, /Operation not supported/, 'no xattrs: ACL not supported');
  t.match(getfattr(path.join(inMount, 'sub'), 'system.posix_acl_default').stderr, /Operation not supported/, 'a directory: default ACL not supported');
  t.match(getfattr(path.join(inMount, 'a'), 'user.other').stderr, /No such attribute/, 'other names: no such attribute');
  const x = path.join(inMount, 'with-xattr');
  t.equal(getfattr(x, 'user.note').stdout, 'kept', 'an xattr the snapshot holds');
  t.match(getfattr(x, 'security.selinux').stderr, /Operation not supported/, 'an entry with xattrs (JavaScript): security.* not supported');
  t.match(getfattr(x, 'system.posix_acl_access').stderr, /Operation not supported/, 'an entry with xattrs: ACL not supported');
  t.match(getfattr(x, 'user.other').stderr, /No such attribute/, 'an entry with xattrs: other names, no such attribute');

  const before = stats();
  const asked = (s: any) => s.answeredNatively + (s.requests.getxattr ?? 0);
  t.equal(ls(['-lR'], inMount), ls(['-lR'], src), 'ls -lR prints what it prints of the original');
  const after = stats();
  // 47 entries: without the answer ls would ask two or three names of each (~100 requests);
  // with it, two in all, plus the listings answered by the session thread and the stats.
  t.ok(asked(after) - asked(before) < 47, `ls -lR asked few xattrs (${asked(after) - asked(before)} requests in all)`);
  t.equal(ls(['-Z'], inMount), ls(['-Z'], src), 'ls -Z: no labels, as on the original');
  t.equal(spawnSync('getfacl', ['-p', path.join(inMount, 'a')], { encoding: 'utf8' }).stdout.replace(inMount, src), spawnSync('getfacl', ['-p', path.join(src, 'a')], { encoding: 'utf8' }).stdout, 'getfacl: the mode bits');
});

t.test('labels and ACLs in the snapshot: entries without them answer "no such attribute"', { skip }, async (t) => {
  const dir = tempDir(t, 'tsbak-fuse-kinds-');
  const src = path.join(dir, 'src');
  plainTree(src);
  // Listed after an unlabelled entry (a): ls must still ask, and show the label.
  writeFileSync(path.join(src, 'b-labelled'), 'b');
  sh('setfattr', '-n', 'security.selinux', '-v', LABEL, path.join(src, 'b-labelled'));
  writeFileSync(path.join(src, 'd-acl'), 'd');
  sh('setfacl', '-m', 'u:12345:r--', path.join(src, 'd-acl'));
  const repo = newRepo(t);
  const { inMount } = backupAndMount(t, src, dir, repo);

  t.match(getfattr(path.join(inMount, 'a'), 'security.selinux').stderr, /No such attribute/, 'unlabelled: no such attribute');
  t.equal(getfattr(path.join(inMount, 'b-labelled'), 'security.selinux').stdout.replace(/\0$/, ''), LABEL, 'the label');
  t.match(getfattr(path.join(inMount, 'with-xattr'), 'security.selinux').stderr, /No such attribute/, 'an entry with other xattrs: no such attribute');
  t.match(getfattr(path.join(inMount, 'a'), 'system.posix_acl_access').stderr, /No such attribute/, 'no ACL: no such attribute');
  t.match(spawnSync('getfacl', ['-p', path.join(inMount, 'd-acl')], { encoding: 'utf8' }).stdout, /user:12345:r--/, 'the ACL');
  t.equal(ls(['-Z'], inMount), ls(['-Z'], src), 'ls -Z shows the label as on the original');
  t.equal(ls(['-lR'], inMount), ls(['-lR'], src), 'ls -lR shows the ACL (+) as on the original');
});

t.test('a snapshot with labels and ACLs that appears while the mount runs shows them', { skip }, async (t) => {
  const dir = tempDir(t, 'tsbak-fuse-kinds-');
  const src = path.join(dir, 'src');
  plainTree(src);
  const repo = newRepo(t);
  const { mnt, inMount } = backupAndMount(t, src, dir, repo);
  const stats = () => JSON.parse(spawnSync('getfattr', ['--only-values', '-n', 'user.tsbak.stats', mnt], { encoding: 'utf8' }).stdout);
  t.match(getfattr(path.join(inMount, 'a'), 'security.selinux').stderr, /Operation not supported/, 'first snapshot: not supported');
  const first = readlinkSync(path.join(mnt, 'snapshots/latest'));

  writeFileSync(path.join(src, 'b-labelled'), 'b');
  sh('setfattr', '-n', 'security.selinux', '-v', LABEL, path.join(src, 'b-labelled'));
  writeFileSync(path.join(src, 'd-acl'), 'd');
  sh('setfacl', '-m', 'u:12345:r--', path.join(src, 'd-acl'));
  const w = run('tsbak-write', [repo, src]);
  t.equal(w.code, 0, w.stderr);
  await waitFor('the mount to show the second snapshot', () => stats().snapshots === 2, 60_000);
  const second = path.join(mnt, 'snapshots', readlinkSync(path.join(mnt, 'snapshots/latest')), src);
  t.not(readlinkSync(path.join(mnt, 'snapshots/latest')), first, 'latest is the new one');

  t.match(getfattr(path.join(second, 'a'), 'security.selinux').stderr, /No such attribute/, 'unlabelled: no such attribute now');
  t.match(getfattr(path.join(inMount.replace('/latest/', `/${first}/`), 'a'), 'security.selinux').stderr, /No such attribute/, 'in the first snapshot too');
  t.equal(getfattr(path.join(second, 'b-labelled'), 'security.selinux').stdout.replace(/\0$/, ''), LABEL, 'the label');
  t.equal(ls(['-Z'], second), ls(['-Z'], src), 'ls -Z shows the label as on the original');
  t.match(getfattr(path.join(second, 'a'), 'system.posix_acl_access').stderr, /No such attribute/, 'no ACL: no such attribute now');
  t.match(spawnSync('getfacl', ['-p', path.join(second, 'd-acl')], { encoding: 'utf8' }).stdout, /user:12345:r--/, 'the ACL');
  t.equal(ls(['-lR'], second), ls(['-lR'], src), 'ls -lR shows the ACL (+) as on the original');
});
