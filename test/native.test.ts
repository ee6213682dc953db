// Real-filesystem tests for the native addon and the metadata capture/restore built on it.
// Runs as root (trusted.* xattrs, chown, device nodes) on whatever filesystem os.tmpdir() is.

import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TreeNode } from '../src/format/tree.js';
import * as native from '../src/platform/native.js';
import { gidOf, groupName, resetUserCache, uidOf, userName } from '../src/platform/users.js';
import { applyMeta, createSpecial, type ApplyMetaOptions } from '../src/restore/apply-meta.js';
import { captureMeta, fileExtents, isSparse, nodeType } from '../src/writer/capture.js';
import { tempDir } from './lib/temp.js';

const isRoot = process.getuid?.() === 0;
const dir = tempDir(t, 'tsbak-native-');
fs.chmodSync(dir, 0o755); // the unprivileged child process below must reach its subdirectory

/** Raw path bytes: dir + '/' + name (name may be invalid UTF-8). */
const P = (name: string | Buffer): Buffer => Buffer.concat([Buffer.from(dir + '/'), Buffer.from(name)]);
const lst = (p: Buffer) => fs.lstatSync(p, { bigint: true });
const capture = async (p: Buffer) => (await captureMeta(p, lst(p))) as TreeNode;
const ALL: ApplyMetaOptions = { owner: true, securityXattrs: true, mapByName: false };
const MiB = 1024 * 1024;
/** Every byte value, NULs included: xattr values are binary. */
const BIN = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));

function getfacl(p: Buffer | string): string {
  return execFileSync('getfacl', ['--omit-header', '--numeric', '--physical', p.toString()], { encoding: 'utf8' });
}

t.test('errors look like Node fs errors', async (t) => {
  const missing = P('missing');
  const err = t.throws(() => native.lgetxattr(missing, 'user.x')) as NodeJS.ErrnoException;
  t.equal(err.code, 'ENOENT');
  t.equal(err.errno, -2);
  t.equal(err.syscall, 'lgetxattr');
  t.ok(Buffer.isBuffer(err.path) && (err.path as unknown as Buffer).equals(missing), 'path is the argument as given');
  t.equal(err.message, `ENOENT: no such file or directory, lgetxattr '${missing}'`);
  t.throws(() => native.llistxattr(missing.toString()), { code: 'ENOENT', syscall: 'llistxattr', path: missing.toString() });
  t.throws(() => native.lutimensNs(missing, 0n, 0n), { code: 'ENOENT', syscall: 'utimensat' });
  t.throws(() => native.mknod(P('nodir/x'), fs.constants.S_IFIFO | 0o644), { code: 'ENOENT', syscall: 'mknod' });
  fs.writeFileSync(P('plain'), 'x');
  t.equal(native.lgetxattr(P('plain'), 'user.absent'), null, 'absent attribute is null');
  t.throws(() => native.lsetxattr(P('plain'), 'nonamespace', Buffer.from('v')), { code: 'ENOTSUP' });
  t.throws(() => native.lremovexattr(P('plain'), 'user.absent'), { code: 'ENODATA', syscall: 'lremovexattr' });
  t.throws(() => native.lgetxattr(42 as unknown as string, 'user.x'), TypeError);
  t.throws(() => native.lgetxattr('a\0b', 'user.x'), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => native.lutimensNs(P('plain'), 1.5 as unknown as bigint, 0n), RangeError);
  t.throws(() => native.dataExtents(-1, 10), RangeError);
  t.throws(() => native.dataExtents(987654, 10), { code: 'EBADF', syscall: 'lseek' });
});

t.test('xattrs with binary values on file, dir and symlink', async (t) => {
  fs.writeFileSync(P('xf'), 'data');
  fs.mkdirSync(P('xd'));
  fs.symlinkSync('xf', P('xl'));
  const values: Array<[string, Buffer]> = [
    ['trusted.bin', BIN],
    ['user.empty', Buffer.alloc(0)],
    ['user.zeros', Buffer.alloc(300)],
    ['user.\u00e9t\u00e9', Buffer.from([0xff, 0x00, 0xfe])],
  ];
  for (const p of [P('xf'), P('xd')]) for (const [k, v] of values) native.lsetxattr(p, k, v);
  // Symlinks: trusted.* works; user.* is refused by Linux (EPERM), not stored on the target.
  native.lsetxattr(P('xl'), 'trusted.link', BIN);
  t.throws(() => native.lsetxattr(P('xl'), 'user.x', BIN), { code: 'EPERM' });
  t.throws(() => native.lsetxattr(P('xf'), 'user.empty', BIN, native.XATTR_CREATE), { code: 'EEXIST' });

  for (const p of [P('xf'), P('xd')]) {
    const want = [...values].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    t.same(native.llistxattr(p).sort(), want.map(([k]) => k).sort());
    for (const [k, v] of values) t.ok(native.lgetxattr(p, k)?.equals(v), `${k} value`);
    const node = await capture(p);
    t.same(node.xattrs?.map(([k]) => k), want.map(([k]) => k), 'captured sorted by name');
    t.ok(node.xattrs?.every(([k, v], i) => k === want[i][0] && v.equals(want[i][1])), 'captured values');
    // Cross-check with getfattr.
    const dump = execFileSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', p.toString()], { encoding: 'utf8' });
    t.match(dump, `trusted.bin=0x${BIN.toString('hex')}`);
  }
  const ln = await capture(P('xl'));
  t.equal(ln.type, 'symlink');
  t.ok(ln.target?.equals(Buffer.from('xf')));
  t.same(ln.xattrs?.map(([k]) => k), ['trusted.link'], "a symlink's own xattrs, not its target's");
  t.ok(ln.xattrs?.[0][1].equals(BIN));

  // Restore onto fresh entries and capture again.
  fs.writeFileSync(P('xf2'), 'data');
  fs.mkdirSync(P('xd2'));
  fs.symlinkSync('xf2', P('xl2'));
  const pairs: Array<[string, string]> = [['xf', 'xf2'], ['xd', 'xd2'], ['xl', 'xl2']];
  for (const [a, b] of pairs) {
    const src = await capture(P(a));
    if (src.type === 'symlink') src.xattrs!.push(['user.skipped', Buffer.from('x')]); // must be skipped quietly
    t.same(await applyMeta(P(b), src, ALL), [], `${a}: no warnings`);
    const got = await capture(P(b));
    t.same(got.xattrs?.map(([k]) => k), (await capture(P(a))).xattrs?.map(([k]) => k), `${b} xattr names`);
    t.ok(got.xattrs?.every(([, v], i) => v.equals(src.xattrs![i][1])), `${b} xattr values`);
  }
  native.lremovexattr(P('xf2'), 'user.zeros');
  t.equal(native.lgetxattr(P('xf2'), 'user.zeros'), null);
});

t.test('POSIX ACLs survive capture and apply (getfacl identical)', async (t) => {
  fs.writeFileSync(P('af'), 'x');
  fs.mkdirSync(P('ad'));
  execFileSync('setfacl', ['-m', 'u:65534:rwx,g:1:r-x,m:rwx', P('af').toString()]);
  execFileSync('setfacl', ['-m', 'u:65534:rx,g:1:rwx', '-d', '-m', 'u:65534:rwx,g:1:r,o::-', P('ad').toString()]);
  const f = await capture(P('af'));
  const d = await capture(P('ad'));
  t.ok(f.xattrs?.some(([k]) => k === 'system.posix_acl_access'), 'file access ACL captured');
  t.ok(d.xattrs?.some(([k]) => k === 'system.posix_acl_default'), 'dir default ACL captured');

  fs.writeFileSync(P('af2'), 'x');
  fs.mkdirSync(P('ad2'));
  t.same(await applyMeta(P('af2'), f, ALL), []);
  t.same(await applyMeta(P('ad2'), d, ALL), []);
  t.equal(getfacl(P('af2')), getfacl(P('af')));
  t.equal(getfacl(P('ad2')), getfacl(P('ad')));
  t.match(getfacl(P('ad2')), /default:user:65534:rwx/);
  t.equal(fs.lstatSync(P('af2')).mode & 0o7777, f.mode, 'mode agrees with the ACL mask');

  // A new file inside 'ad' inherits its default ACL; restoring a node recorded without
  // ACLs must remove the inherited one.
  fs.writeFileSync(P('plain-src'), 'x');
  fs.chmodSync(P('plain-src'), 0o640);
  const plain = await capture(P('plain-src'));
  fs.writeFileSync(P('ad/inherits'), 'x');
  t.match(getfacl(P('ad/inherits')), /user:65534:rwx/, 'inherited an ACL');
  t.same(await applyMeta(P('ad/inherits'), plain, ALL), []);
  t.equal(getfacl(P('ad/inherits')), getfacl(P('plain-src')), 'inherited ACL removed');
  t.equal(fs.lstatSync(P('ad/inherits')).mode & 0o7777, 0o640);
});

t.test('sparse file extents', async (t) => {
  const size = 2 * 1024 * MiB;
  const want: Array<[number, number]> = [[64 * MiB, MiB], [1024 * MiB + 4096, MiB], [size - MiB, MiB]];
  const fd = fs.openSync(P('sparse'), 'w+');
  t.teardown(() => fs.closeSync(fd));
  fs.ftruncateSync(fd, size);
  const chunk = Buffer.alloc(MiB, 0xab);
  for (const [off] of want) fs.writeSync(fd, chunk, 0, MiB, off);
  t.same(fileExtents(fd, size), want, 'exactly the written extents (before fsync)');
  fs.fsyncSync(fd);
  t.same(fileExtents(fd, size), want, 'and after fsync');
  t.equal(isSparse(want, size), true);
  // The fd's own offset is left alone.
  fs.readSync(fd, Buffer.alloc(10), 0, 10, null);
  fileExtents(fd, size);
  t.equal(fs.readSync(fd, Buffer.alloc(1), 0, 1, null), 1);
  t.equal(native.dataExtents(fd, 64 * MiB + 10).at(-1)?.[1], 10, 'clipped to the given size');
  t.same(fileExtents(fd, 10 * MiB), [], 'a range that is all hole');
  t.equal(isSparse([], 10 * MiB), true);
  t.equal((await capture(P('sparse'))).size, size);

  // Adjacent writes are one extent; a dense file is [[0, size]]; an empty one [].
  const fd2 = fs.openSync(P('dense'), 'w+');
  fs.writeSync(fd2, Buffer.alloc(3 * MiB + 5, 1), 0, 3 * MiB + 5, 0);
  t.same(fileExtents(fd2, 3 * MiB + 5), [[0, 3 * MiB + 5]]);
  t.equal(isSparse([[0, 3 * MiB + 5]], 3 * MiB + 5), false);
  fs.ftruncateSync(fd2, 0);
  t.same(fileExtents(fd2, 0), []);
  t.equal(isSparse([], 0), false);
  fs.closeSync(fd2);

  const fd3 = fs.openSync(P('adjacent'), 'w+');
  fs.ftruncateSync(fd3, 100 * MiB);
  fs.writeSync(fd3, chunk, 0, MiB, 10 * MiB);
  fs.writeSync(fd3, chunk, 0, MiB, 11 * MiB);
  t.same(fileExtents(fd3, 100 * MiB), [[10 * MiB, 2 * MiB]]);
  fs.closeSync(fd3);
});

t.test('special files via mknod', { skip: !isRoot && 'needs root (CAP_MKNOD)' }, async (t) => {
  const base = { uid: 0, gid: 0, user: '', group: '', mtimeNs: 0n, atimeNs: 0n, ctimeNs: 0n, btimeNs: 0n, size: 0, ino: 0n, dev: 0n, nlink: 1 };
  const specs: TreeNode[] = [
    { ...base, name: Buffer.from('fifo'), type: 'fifo', mode: 0o640 },
    { ...base, name: Buffer.from('null'), type: 'chardev', mode: 0o666, rdevMajor: 1, rdevMinor: 3 },
    { ...base, name: Buffer.from('loop'), type: 'blockdev', mode: 0o660, rdevMajor: 7, rdevMinor: 0 },
    { ...base, name: Buffer.from('big'), type: 'chardev', mode: 0o600, rdevMajor: 300, rdevMinor: 70000 /* > 8 bits each; Linux allows 12 + 20 */ },
    { ...base, name: Buffer.from('sock'), type: 'socket', mode: 0o755 },
  ];
  for (const spec of specs) {
    const p = P(spec.name);
    await createSpecial(p, spec);
    t.same(await applyMeta(p, spec, ALL), []);
    const st = lst(p);
    t.equal(nodeType(st.mode), spec.type, `${spec.type} created`);
    const got = await capture(p);
    t.equal(got.type, spec.type);
    t.equal(got.mode, spec.mode, 'mode (umask undone by applyMeta)');
    t.equal(got.mtimeNs, 0n);
    t.equal(got.rdevMajor, spec.rdevMajor);
    t.equal(got.rdevMinor, spec.rdevMinor);
    if (spec.rdevMajor !== undefined) {
      t.equal(st.rdev, native.makedev(spec.rdevMajor, spec.rdevMinor!), 'makedev agrees with the kernel');
      const [maj, min] = execFileSync('stat', ['-c', '%t %T', p.toString()], { encoding: 'utf8' }).trim().split(' ');
      t.same([parseInt(maj, 16), parseInt(min, 16)], [spec.rdevMajor, spec.rdevMinor], 'stat(1) agrees');
    }
  }
  t.equal(native.major(native.makedev(0xfffff, 0xffffffff)), 0xfffff);
  t.equal(native.minor(native.makedev(0xfffff, 0xffffffff)), 0xffffffff);
  await t.rejects(createSpecial(P('x'), { ...specs[0], type: 'file' }), TypeError);
  await t.rejects(createSpecial(P('fifo'), specs[0]), { code: 'EEXIST' });
});

t.test('lutimensNs: ns precision, before 1970, after 2038, on symlinks', async (t) => {
  fs.writeFileSync(P('tf'), 'x');
  fs.symlinkSync('tf', P('tl'));
  const cases: Array<[bigint, bigint]> = [
    [-1n, 1n],
    [-1_500_000_001n, -1_000_000_000n], // 1969-12-31T23:59:58.499999999Z, exactly -1 s
    [-315_619_200_123_456_789n, -2_147_483_648_000_000_000n], // 1960, 1901-12-13 (32-bit min)
    [2_147_483_648_000_000_001n, 4_102_444_800_987_654_321n], // 2038 + 1ns, 2100
  ];
  for (const [a, m] of cases) {
    native.lutimensNs(P('tf'), a, m);
    const st = lst(P('tf'));
    t.equal(st.atimeNs, a, `atime ${a}`);
    t.equal(st.mtimeNs, m, `mtime ${m}`);
  }
  // Beyond int64 nanoseconds (year 2500) is accepted; the filesystem may clamp (ext4: 2446).
  native.lutimensNs(P('tf'), 16_725_225_600_999_999_999n, 0n);
  t.ok(lst(P('tf')).atimeNs > 9_223_372_036_854_775_807n, 'time past 2262 stored');
  t.throws(() => native.lutimensNs(P('tf'), 2n ** 200n, 0n), RangeError);
  native.lutimensNs(P('tf'), 1_234_567_890_123_456_789n, 987_654_321_987_654_321n);
  native.lutimensNs(P('tl'), -123_456_789n, 42n);
  t.equal(lst(P('tl')).mtimeNs, 42n, 'the symlink itself');
  t.equal(lst(P('tl')).atimeNs, -123_456_789n);
  t.equal(lst(P('tf')).mtimeNs, 987_654_321_987_654_321n, 'not its target');
  native.lutimensNs(P('tf'), null, 5n);
  t.equal(lst(P('tf')).atimeNs, 1_234_567_890_123_456_789n, 'null leaves a time alone');
  t.equal(lst(P('tf')).mtimeNs, 5n);
  native.lutimensNs(P('tf'), 7 as unknown as bigint, -7 as unknown as bigint);
  t.equal(lst(P('tf')).mtimeNs, -7n, 'integral numbers are accepted');

  // Through capture/apply, on a symlink too.
  const node = await capture(P('tl'));
  fs.symlinkSync('tf', P('tl2'));
  t.same(await applyMeta(P('tl2'), node, ALL), []);
  t.equal(lst(P('tl2')).mtimeNs, 42n);
  t.equal(lst(P('tl2')).atimeNs, -123_456_789n);
});

t.test('setuid/setgid/sticky/000 modes survive chown', async (t) => {
  const modes = [0o4755, 0o2755, 0o6711, 0o1777, 0o000, 0o7777];
  for (const mode of modes) {
    const isDir = mode === 0o1777;
    const src = P(`m${mode.toString(8)}`);
    const dst = P(`m${mode.toString(8)}-restored`);
    if (isDir) fs.mkdirSync(src); else fs.writeFileSync(src, 'x');
    if (isRoot) fs.lchownSync(src, 65534, 1); // before chmod: chown clears setuid/setgid
    fs.chmodSync(src, mode);
    const node = await capture(src);
    t.equal(node.mode, mode, `captured 0${mode.toString(8)}`);
    if (isDir) fs.mkdirSync(dst); else fs.writeFileSync(dst, 'x');
    t.same(await applyMeta(dst, node, ALL), []);
    const st = fs.lstatSync(dst);
    t.equal(st.mode & 0o7777, mode, `restored 0${mode.toString(8)}`);
    if (isRoot) t.same([st.uid, st.gid], [65534, 1], 'owner restored');
  }
});

t.test('names and targets that are not valid UTF-8', async (t) => {
  const name = Buffer.from([0x66, 0xff, 0xfe, 0x80, 0x2e, 0xc3]);
  const p = P(name);
  fs.writeFileSync(p, 'x');
  native.lsetxattr(p, 'user.k', Buffer.from('v'));
  t.ok(native.lgetxattr(p, Buffer.from('user.k'))?.equals(Buffer.from('v')), 'xattr name as Buffer');
  native.lutimensNs(p, 1n, 2n);
  const node = await capture(p);
  t.ok(node.name.equals(name), 'name bytes kept');
  t.equal(node.mtimeNs, 2n);
  t.same(node.xattrs?.map(([k]) => k), ['user.k']);

  const linkName = Buffer.from([0x6c, 0x80, 0x81]);
  const target = Buffer.from([0x2e, 0x2f, 0x66, 0xff, 0xfe]);
  fs.symlinkSync(target, P(linkName));
  const ln = await capture(P(linkName));
  t.ok(ln.target?.equals(target), 'target bytes kept');
  t.ok(ln.name.equals(linkName));

  if (isRoot) {
    const fifo = P(Buffer.from([0x70, 0xfe]));
    native.mknod(fifo, fs.constants.S_IFIFO | 0o600, 0, 0);
    t.equal((await capture(fifo)).type, 'fifo');
  }
  const missing = P(Buffer.from([0x6d, 0xff]));
  const err = t.throws(() => native.llistxattr(missing)) as NodeJS.ErrnoException;
  t.equal(err.code, 'ENOENT');
  t.match(err.message, /^ENOENT: no such file or directory, llistxattr '.*m\uFFFD'$/);
});

t.test('users and groups', async (t) => {
  t.equal(userName(0), 'root');
  t.equal(groupName(0), 'root');
  t.equal(uidOf('root'), 0);
  t.equal(gidOf('root'), 0);
  t.equal(userName(4_000_000_000), '');
  t.equal(uidOf('no-such-user-xyz'), undefined);
  t.equal(uidOf(''), undefined);

  fs.writeFileSync(P('passwd'), '# comment\nalice:x:1234:1234::/home/alice:/bin/sh\nroot:x:0:0::/root:/bin/sh\nalias:x:1234:1::/:/bin/sh\nbroken-line\n');
  fs.writeFileSync(P('group'), 'staff:x:4321:\nroot:x:0:\n');
  resetUserCache({ passwd: P('passwd').toString(), group: P('group').toString() });
  t.teardown(() => resetUserCache({ passwd: '/etc/passwd', group: '/etc/group' }));
  t.equal(userName(1234), 'alice', 'first entry wins');
  t.equal(uidOf('alias'), 1234);
  t.equal(gidOf('staff'), 4321);

  if (!isRoot) return;
  fs.writeFileSync(P('owned'), 'x');
  const node = await capture(P('owned'));
  Object.assign(node, { uid: 999, gid: 998, user: 'alice', group: 'staff' });
  t.same(await applyMeta(P('owned'), node, { ...ALL, mapByName: true }), []);
  t.same([fs.lstatSync(P('owned')).uid, fs.lstatSync(P('owned')).gid], [1234, 4321], 'mapped by name');
  Object.assign(node, { user: 'nobody-here', group: '' });
  await applyMeta(P('owned'), node, { ...ALL, mapByName: true });
  t.same([fs.lstatSync(P('owned')).uid, fs.lstatSync(P('owned')).gid], [999, 998], 'unknown names keep the ids');
  await applyMeta(P('owned'), { ...node, uid: 5, gid: 6 }, { ...ALL, owner: false });
  t.equal(fs.lstatSync(P('owned')).uid, 999, 'owner: false leaves the owner');
});

t.test('full round trip of a file, and what becomes a warning', async (t) => {
  const src = P('rt');
  fs.writeFileSync(src, 'payload');
  fs.chmodSync(src, 0o4750);
  native.lsetxattr(src, 'user.note', BIN);
  execFileSync('setfacl', ['-m', 'u:65534:r', src.toString()]);
  native.lutimensNs(src, -42n, 2_500_000_000_000_000_001n);
  const node = await capture(src);
  t.equal(node.type, 'file');
  t.equal(node.size, 7);
  t.equal(node.nlink, 1);
  t.equal(node.user, userName(node.uid));
  t.equal(node.ino, lst(src).ino);
  t.equal(typeof node.btimeNs, 'bigint');
  fs.copyFileSync(src, P('rt2'));
  t.same(await applyMeta(P('rt2'), node, ALL), []);
  const back = await capture(P('rt2'));
  for (const k of ['type', 'mode', 'uid', 'gid', 'user', 'group', 'mtimeNs', 'atimeNs', 'size', 'nlink'] as const) {
    t.equal(back[k], node[k], k);
  }
  t.same(back.xattrs?.map(([k, v]) => [k, v.toString('hex')]), node.xattrs?.map(([k, v]) => [k, v.toString('hex')]));

  // security.* is skipped unless asked for; a value the kernel rejects is a warning.
  const bad: TreeNode = { ...node, xattrs: [['security.capability', Buffer.from('garbage')]] };
  t.same(await applyMeta(P('rt2'), bad, { ...ALL, securityXattrs: false }), []);
  const warnings = await applyMeta(P('rt2'), bad, ALL);
  t.equal(warnings.length, 1);
  t.match(warnings[0], { op: 'xattr', code: 'EINVAL', xattr: 'security.capability' });
  t.equal(lst(P('rt2')).mtimeNs, node.mtimeNs, 'times still applied after a warning');
  await t.rejects(applyMeta(P('gone'), node, ALL), { code: 'ENOENT' }, 'a missing entry is a real failure');
});

t.test('without root, chown and trusted.* become warnings', { skip: !isRoot && 'needs root to switch user' }, async (t) => {
  // A child process drops to nobody and restores a root-owned node onto its own file.
  const work = fs.mkdtempSync(path.join(dir, 'nobody-'));
  fs.chownSync(work, 65534, 65534);
  const node: TreeNode = {
    name: Buffer.from('f'), type: 'file', mode: 0o644, uid: 0, gid: 0, user: 'root', group: 'root',
    mtimeNs: 123n, atimeNs: 456n, ctimeNs: 0n, btimeNs: 0n, size: 0, ino: 0n, dev: 0n, nlink: 1,
    xattrs: [['trusted.t', Buffer.from('x')], ['user.u', Buffer.from('y')]],
  };
  const mod = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/restore/apply-meta.js');
  const script = `
    process.setgroups([]); process.setgid(65534); process.setuid(65534);
    const { applyMeta } = await import(${JSON.stringify(mod)});
    const fs = await import('node:fs');
    const p = Buffer.from(${JSON.stringify(work + '/f')});
    fs.writeFileSync(p, '');
    const n = JSON.parse(process.argv[1], (k, v) => typeof v === 'string' && /^-?\\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v);
    n.name = Buffer.from(n.name); n.xattrs = n.xattrs.map(([k, v]) => [k, Buffer.from(v)]);
    const w = await applyMeta(p, n, { owner: true, securityXattrs: true, mapByName: false });
    const st = fs.lstatSync(p, { bigint: true });
    console.log(JSON.stringify({ w: w.map((x) => [x.op, x.code]), mtime: String(st.mtimeNs), mode: Number(st.mode) & 0o7777 }));
  `;
  const arg = JSON.stringify(node, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, arg], { encoding: 'utf8', cwd: work, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }); // no tap NODE_OPTIONS
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { w: string[][]; mtime: string; mode: number };
  t.same(out.w, [['chown', 'EPERM'], ['xattr', 'EPERM']]);
  t.equal(out.mtime, '123', 'times restored anyway');
  t.equal(out.mode, 0o644);
  t.equal(native.lgetxattr(Buffer.from(work + '/f'), 'user.u')?.toString(), 'y');
});

t.test('scanDir: every entry, sorted by bytes, with the lstat Node gives and the xattrs', async (t) => {
  const d = path.join(dir, 'scan');
  fs.mkdirSync(d);
  const names = [Buffer.from('b.txt'), Buffer.from('a'), Buffer.from([0x66, 0xff, 0x2e]), Buffer.from('Z'), Buffer.from('sub'), Buffer.from('link'), Buffer.from('fifo')];
  const at = (n: Buffer) => Buffer.concat([Buffer.from(d + '/'), n]);
  fs.writeFileSync(at(names[0]!), 'hello');
  fs.writeFileSync(at(names[1]!), '');
  fs.writeFileSync(at(names[2]!), BIN);
  fs.writeFileSync(at(names[3]!), 'z');
  fs.mkdirSync(at(names[4]!));
  fs.symlinkSync('b.txt', at(names[5]!));
  execFileSync('mkfifo', [at(names[6]!).toString()]);
  native.lsetxattr(at(names[0]!), 'user.two', BIN);
  native.lsetxattr(at(names[0]!), 'user.one', Buffer.from('1'));
  native.lsetxattr(at(names[4]!), 'user.dir', Buffer.alloc(0));

  const scan = await native.scanDir(Buffer.from(d), true);
  const scanned = scan.entries;
  const without = await native.scanDir(Buffer.from(d), false);
  t.ok(without.entries.every((e) => e.xattrs === null), 'withXattrs false: none read');
  t.ok(without.fingerprint().equals(scan.fingerprint()), 'the fingerprint does not depend on reading xattrs');

  const sorted = [...names].sort(Buffer.compare);
  t.same(scanned.map((e) => e.name.toString('hex')), sorted.map((n) => n.toString('hex')), 'names sorted by raw bytes');
  for (const e of scanned) {
    const st = fs.lstatSync(at(e.name), { bigint: true });
    t.equal(e.errno, 0);
    for (const k of ['mode', 'uid', 'gid', 'nlink', 'size', 'blocks', 'ino', 'dev', 'rdev', 'mtimeNs', 'ctimeNs', 'birthtimeNs'] as const) {
      t.equal(e.st![k], st[k], `${e.name.toString()}: ${k}`);
    }
    t.same(e.xattrs, (await captureMeta(at(e.name), st)).xattrs ?? [], `${e.name.toString()}: xattrs as captureMeta reads them`);
  }
  fs.utimesSync(at(names[3]!), new Date(1e12), new Date(1e12));
  t.notOk((await native.scanDir(Buffer.from(d), false)).fingerprint().equals(scan.fingerprint()), 'a changed time changes the fingerprint');
  const err = (await native.scanDir(at(Buffer.from('missing')), false).catch((e) => e)) as NodeJS.ErrnoException;
  t.equal(err.code, 'ENOENT', 'a missing directory rejects like fs');
  const notDir = (await native.scanDir(at(names[0]!), false).catch((e) => e)) as NodeJS.ErrnoException;
  t.equal(notDir.code, 'ENOTDIR');
  const viaLink = (await native.scanDir(at(names[5]!), false).catch((e) => e)) as NodeJS.ErrnoException;
  t.ok(viaLink instanceof Error, 'a symlink to a directory is not followed');

  // scanDirSync, the same scan on the calling thread (the walk's small directories)
  const again = await native.scanDir(Buffer.from(d), true);
  const sync = native.scanDirSync(Buffer.from(d), true);
  t.ok(sync.fingerprint().equals(again.fingerprint()), 'scanDirSync: the same names and stats');
  t.same(sync.entries, again.entries, 'scanDirSync: the same entries and xattrs');
  t.ok(native.scanDirSync(Buffer.from(d), false).entries.every((e) => e.xattrs === null), 'scanDirSync: withXattrs false');
  const syncErr = (() => {
    try {
      native.scanDirSync(at(Buffer.from('missing')), false);
    } catch (e) {
      return e as NodeJS.ErrnoException;
    }
    return null;
  })();
  t.equal(syncErr?.code, 'ENOENT', 'scanDirSync: a missing directory throws like fs');
  t.equal(syncErr?.syscall, 'open');
});

t.test('readSmallFiles: contents, and files that are not what was scanned', async (t) => {
  const d = path.join(dir, 'small');
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'one'), 'first file');
  fs.writeFileSync(path.join(d, 'two'), 'second');
  fs.writeFileSync(path.join(d, 'grows'), 'abc');
  fs.writeFileSync(path.join(d, 'gone'), 'x');
  const scanned = (await native.scanDir(Buffer.from(d), false)).entries;
  const by = new Map(scanned.map((e) => [e.name.toString(), e]));
  fs.appendFileSync(path.join(d, 'grows'), 'def'); // changed since the scan
  fs.unlinkSync(path.join(d, 'gone'));
  const order = ['one', 'grows', 'gone', 'two'].map((n) => by.get(n)!);
  const expect = new BigInt64Array(order.length * 3);
  order.forEach((e, i) => {
    expect[i * 3] = e.st!.size;
    expect[i * 3 + 1] = e.st!.mtimeNs;
    expect[i * 3 + 2] = e.st!.ctimeNs;
  });
  const out = Buffer.alloc(10 + 3 + 1 + 6);
  const r = await native.readSmallFiles(Buffer.from(d), order.map((e) => e.name), expect, out);
  t.same([...r], [10, -1, -2, 6], 'length, changed, -ENOENT, length');
  t.equal(out.subarray(0, 10).toString(), 'first file');
  t.equal(out.subarray(14, 20).toString(), 'second', 'each file at its place by scanned size');
  const short = await native.readSmallFiles(Buffer.from(d), [by.get('one')!.name], expect.subarray(0, 3), Buffer.alloc(4));
  t.ok(short[0]! < 0, 'an output buffer too small is refused, not overrun');
  // With a MAC key: each file's blob id, hashed on the pool thread, as blobId computes it.
  const { blobId } = await import('../src/crypto/hash.js');
  for (const macKey of [Buffer.alloc(32, 7), Buffer.alloc(32, 9)]) {
    const ids = Buffer.alloc(32 * order.length);
    const h = await native.readSmallFiles(Buffer.from(d), order.map((e) => e.name), expect, Buffer.alloc(out.length), { macKey, ids });
    t.same([...h], [...r], 'the same results with hashing');
    t.ok(ids.subarray(0, 32).equals(blobId(macKey, Buffer.from('first file'))), 'the id of the first file');
    t.ok(ids.subarray(96, 128).equals(blobId(macKey, Buffer.from('second'))), 'the id of the last file (under this key, not the last one used)');
  }
  t.rejects(async () => native.readSmallFiles(Buffer.from(d), [by.get('one')!.name], expect.subarray(0, 3), Buffer.alloc(10), { macKey: Buffer.alloc(31), ids: Buffer.alloc(32) }), /macKey/, 'a MAC key of the wrong size is refused');
});

// ---- restore.c: a restore's batch of small files ----------------------------------------

t.test('openBlobs opens raw and zstd blobs and flags every kind of damage', async (t) => {
  const { sealBlob } = await import('../src/format/blob.js');
  const { padme } = await import('../src/backend/padme.js');
  const { blobId } = await import('../src/crypto/hash.js');
  const { randomBytes } = await import('node:crypto');
  const macKey = randomBytes(32);
  const keyA = randomBytes(32);
  const keyB = randomBytes(32);
  const plains = [Buffer.alloc(0), randomBytes(1000), Buffer.from('text '.repeat(5000)), randomBytes(300 << 10), Buffer.from('x')];
  const keyOf = Uint16Array.from([0, 1, 0, 1, 0]);
  const ids = plains.map((p) => blobId(macKey, p));
  const sealedList = plains.map((p, i) => sealBlob(keyOf[i] ? keyB : keyA, ids[i]!, p, 3));
  t.ok(sealedList[2]!.length < plains[2]!.length / 10, 'the text blob is stored compressed');
  t.equal(sealedList[1]!.length, plains[1]!.length + 29, 'the random blob is stored raw, unpadded');
  const open = (sealed: Buffer[], idList: Buffer[], raw = plains.map((p) => p.length), mac = macKey) => {
    const offsets = new Uint32Array(sealed.length);
    let o = 0;
    sealed.forEach((s, i) => ((offsets[i] = o), (o += s.length)));
    const outOffsets = new Uint32Array(sealed.length);
    let r = 0;
    raw.forEach((n, i) => ((outOffsets[i] = r), (r += n)));
    const out = Buffer.alloc(r);
    const ok = native.openBlobs(
      { sealed: Buffer.concat(sealed), offsets, lengths: Uint32Array.from(sealed, (s) => s.length), keyOf, keys: [keyA, keyB], ids: Buffer.concat(idList), macKey: mac, rawLengths: Uint32Array.from(raw) },
      out,
      outOffsets,
    );
    return { ok: [...ok], out, outOffsets };
  };
  const good = open(sealedList, ids);
  t.same(good.ok, [1, 1, 1, 1, 1], 'every blob opens');
  plains.forEach((p, i) => t.ok(good.out.subarray(good.outOffsets[i]!, good.outOffsets[i]! + p.length).equals(p), `blob ${i} has its plaintext`));

  const flipped = sealedList.map((s) => Buffer.from(s));
  flipped[1]![40] ^= 1;
  flipped[2]![flipped[2]!.length - 1] ^= 1; // in the tag
  t.same(open(flipped, ids).ok, [1, 0, 0, 1, 1], 'a flipped byte in the body or the tag fails that blob only');
  const swapped = [...ids];
  [swapped[3], swapped[4]] = [swapped[4]!, swapped[3]!];
  t.same(open(sealedList, swapped).ok, [1, 1, 1, 0, 0], 'a blob under another id fails (the id is the AAD)');
  t.same(open(sealedList, ids, plains.map((p) => p.length), randomBytes(32)).ok, [0, 0, 0, 0, 0], 'a plaintext that does not match its id under the MAC key fails');
  t.same(open(sealedList, ids, [0, 1000, 24999, 300 << 10, 1]).ok, [1, 1, 0, 1, 1], 'a zstd blob of another length than the index says fails');
  t.same(open([sealedList[0]!.subarray(0, 20), ...sealedList.slice(1)], ids).ok, [0, 1, 1, 1, 1], 'a blob shorter than its envelope fails');
  // A sealed blob whose plaintext decrypts fine but whose flag byte is unknown.
  const { aeadSeal } = await import('../src/crypto/aead.js');
  const badFlag = aeadSeal(keyA, Buffer.concat([Buffer.from([7]), plains[4]!]), ids[4]!);
  t.same(open([...sealedList.slice(0, 4), badFlag], ids).ok, [1, 1, 1, 1, 0], 'an unknown flag byte fails');
  t.ok(sealedList.every((b) => b[12] !== undefined), 'every blob has its flag byte');
  // Padded envelopes (flag 2 raw, 3 zstd: a u32 pad length, the body, that many zeros), as
  // older versions wrote them, still open in C and in TypeScript.
  const { zstdCompress } = await import('../src/format/compress.js');
  const { openBlob } = await import('../src/format/blob.js');
  const padded = (flag: number, body: Buffer, pad: number) => {
    const h = Buffer.alloc(5);
    h[0] = flag;
    h.writeUInt32BE(pad, 1);
    return Buffer.concat([h, body, Buffer.alloc(pad)]);
  };
  const legacy = [
    aeadSeal(keyA, padded(2, plains[0]!, 7), ids[0]!),
    aeadSeal(keyB, padded(2, plains[1]!, 24), ids[1]!),
    aeadSeal(keyA, padded(3, zstdCompress(plains[2]!, 3), 100), ids[2]!),
    ...sealedList.slice(3),
  ];
  t.same(open(legacy, ids).ok, [1, 1, 1, 1, 1], 'padded blobs (flags 2 and 3) open in C');
  t.ok(openBlob(keyA, ids[2]!, legacy[2]!).equals(plains[2]!) && openBlob(keyB, ids[1]!, legacy[1]!).equals(plains[1]!), 'and in TypeScript');
  // A padded envelope whose pad length runs past its body.
  const head = Buffer.from([2, 0, 0, 0, 0]);
  head.writeUInt32BE(plains[4]!.length + 1, 1);
  const badPad = aeadSeal(keyA, Buffer.concat([head, plains[4]!]), ids[4]!);
  t.same(open([...sealedList.slice(0, 4), badPad], ids).ok, [1, 1, 1, 1, 0], 'a pad length beyond the body fails in C');
  t.throws(() => openBlob(keyA, ids[4]!, badPad), 'and in TypeScript');
  t.same([padme(1000), padme(1 << 20), padme((1 << 20) + 1), padme(33)], [1024, 1 << 20, (1 << 20) + (1 << 15), 36], 'Padmé keeps O(log log n) bits of a length');
  const okAsync = await native.openBlobsAsync(
    { sealed: Buffer.concat(flipped), offsets: Uint32Array.from(flipped, (_, i) => flipped.slice(0, i).reduce((n, s) => n + s.length, 0)), lengths: Uint32Array.from(flipped, (s) => s.length), keyOf, keys: [keyA, keyB], ids: Buffer.concat(ids), macKey, rawLengths: Uint32Array.from(plains, (p) => p.length) },
    good.out,
    good.outOffsets,
  );
  t.same([...okAsync], [1, 0, 0, 1, 1], 'the same on the thread pool');
  t.throws(() => native.openBlobs({ sealed: Buffer.alloc(0), offsets: new Uint32Array(2), lengths: new Uint32Array(1), keyOf: new Uint16Array(2), keys: [keyA], ids: Buffer.alloc(64), macKey, rawLengths: new Uint32Array(2) }, Buffer.alloc(0), new Uint32Array(2)), /lengths/, 'arrays shorter than the blob count are refused');
});

t.test('blobIdNative and blobIdNativeAsync compute blobId, on the calling thread and on the pool', async (t) => {
  const { blobId } = await import('../src/crypto/hash.js');
  const { randomBytes } = await import('node:crypto');
  // Two keys in turn: the addon keeps the last key's HMAC states, and must notice a new key.
  for (const macKey of [randomBytes(32), randomBytes(32), randomBytes(32)]) {
    for (const data of [Buffer.alloc(0), Buffer.from('abc'), randomBytes(63), randomBytes(64), randomBytes(3300), randomBytes(1 << 20)]) {
      const want = blobId(macKey, data);
      t.ok(native.blobIdNative(macKey, data).equals(want), `${data.length} bytes: the same id on the calling thread`);
      t.ok((await native.blobIdNativeAsync(macKey, data)).equals(want), `${data.length} bytes: the same id on the pool`);
    }
  }
  t.throws(() => native.blobIdNative(Buffer.alloc(16), Buffer.from('x')), /macKey/, 'a MAC key of the wrong size is refused');
  await t.rejects(native.blobIdNativeAsync(Buffer.alloc(16), Buffer.from('x')), /macKey/, 'a MAC key of the wrong size is refused on the pool');
});

t.test('openBlobToFileAsync writes a raw or zstd blob at its offset, and writes nothing of a damaged one', async (t) => {
  const { sealBlob } = await import('../src/format/blob.js');
  const { blobId } = await import('../src/crypto/hash.js');
  const { randomBytes } = await import('node:crypto');
  const { openSync, closeSync, readFileSync, writeFileSync, constants: C } = fs;
  const macKey = randomBytes(32);
  const key = randomBytes(32);
  const random = randomBytes(300 << 10);
  const text = Buffer.from('some text, again and again. '.repeat(20000));
  const [rawSealed, zSealed] = [random, text].map((p) => sealBlob(key, blobId(macKey, p), p, 3));
  t.equal(rawSealed!.length, random.length + 29, 'the random blob is stored raw (unpadded)');
  t.ok(zSealed!.length < text.length / 10, 'the text blob is stored compressed');
  const file = path.join(dir, 'blob-to-file.bin');
  const at = 4096;
  const write = async (sealed: Buffer, plain: Buffer, opts: { mac?: Buffer; raw?: number; flags?: number; path?: string } = {}) => {
    const f = opts.path ?? file;
    if (!opts.path) writeFileSync(f, Buffer.alloc(at + plain.length + 100));
    const fd = openSync(f, opts.flags ?? C.O_WRONLY);
    try {
      return await native.openBlobToFileAsync(key, opts.mac ?? macKey, blobId(macKey, plain), Buffer.from(sealed), opts.raw ?? plain.length, fd, at);
    } finally {
      closeSync(fd);
    }
  };
  for (const [what, sealed, plain] of [['raw', rawSealed!, random], ['zstd', zSealed!, text]] as const) {
    t.equal(await write(sealed, plain), plain.length, `a ${what} blob: its length`);
    const got = readFileSync(file);
    t.ok(got.subarray(at, at + plain.length).equals(plain), `a ${what} blob: its plaintext at its offset`);
    t.ok(got.subarray(0, at).equals(Buffer.alloc(at)) && got.subarray(at + plain.length).equals(Buffer.alloc(100)), `a ${what} blob: nothing around it`);

    const flipped = Buffer.from(sealed);
    flipped[40] ^= 1;
    t.equal(await write(flipped, plain), 'auth', `a ${what} blob with a flipped byte does not open`);
    t.ok(readFileSync(file).equals(Buffer.alloc(at + plain.length + 100)), `a ${what} blob with a flipped byte: nothing written`);
    t.equal(await write(sealed, plain, { mac: randomBytes(32) }), 'id', `a ${what} blob whose plaintext does not match its id under the MAC key`);
    t.ok(readFileSync(file).equals(Buffer.alloc(at + plain.length + 100)), `a ${what} blob that does not match its id: nothing written`);
    t.equal(await write(sealed, plain, { raw: plain.length - 1 }), 'auth', `a ${what} blob of another length than the index says does not open`);
    await t.rejects(write(sealed, plain, { flags: C.O_RDONLY }), { code: 'EBADF', syscall: 'write' }, `a ${what} blob: a failed write rejects with its errno`);
  }
  await t.rejects(write(zSealed!, text, { path: '/dev/full' }), { code: 'ENOSPC', message: /^ENOSPC: no space left on device, write$/ }, 'a full disk rejects with ENOSPC');
  await t.rejects(native.openBlobToFileAsync(key, macKey, blobId(macKey, text), Buffer.from(zSealed!), text.length, -1, 0), /fd, pos or rawLength/, 'a negative fd is refused');
  await t.rejects(native.openBlobToFileAsync(key, macKey, blobId(macKey, text), Buffer.from(zSealed!), text.length, 1, 0.5), /fd, pos or rawLength/, 'a fractional offset is refused');
});

t.test('openBlobToFileAsync: many zstd blobs of different sizes at once (plaintext buffers shared by the pool) come out whole', async (t) => {
  const { sealBlob } = await import('../src/format/blob.js');
  const { blobId } = await import('../src/crypto/hash.js');
  const { randomBytes } = await import('node:crypto');
  const macKey = randomBytes(32);
  const key = randomBytes(32);
  // Compressible, of sizes that need 1, 2, 3 and 5 MiB buffers, each byte saying which blob it is.
  const plains = Array.from({ length: 24 }, (_, i) => Buffer.alloc([300 << 10, (1 << 20) + 5, (2 << 20) + 77, (4 << 20) + 3][i % 4]!, `blob ${i} `));
  const at: number[] = [];
  let size = 0;
  for (const p of plains) {
    at.push(size);
    size += p.length;
  }
  const file = path.join(dir, 'many-blobs.bin');
  fs.writeFileSync(file, Buffer.alloc(0));
  const fd = fs.openSync(file, fs.constants.O_WRONLY);
  try {
    const wrote = await Promise.all(plains.map((p, i) => native.openBlobToFileAsync(key, macKey, blobId(macKey, p), sealBlob(key, blobId(macKey, p), p, 3), p.length, fd, at[i]!)));
    t.same(wrote, plains.map((p) => p.length), 'every blob written whole');
  } finally {
    fs.closeSync(fd);
  }
  t.ok(fs.readFileSync(file).equals(Buffer.concat(plains)), 'every byte where it belongs');
});

t.test('copyRangeAsync copies a range within a file; false where it cannot (a descriptor open for writing only)', async (t) => {
  const { randomBytes } = await import('node:crypto');
  const file = path.join(dir, 'copy-range.bin');
  const head = randomBytes(3 << 20);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.alloc(4 << 20)]));
  const fd = fs.openSync(file, fs.constants.O_RDWR);
  try {
    t.equal(await native.copyRangeAsync(fd, 0, (4 << 20) + 7, head.length), true, 'copied');
  } finally {
    fs.closeSync(fd);
  }
  const got = fs.readFileSync(file);
  t.equal(got.length, (4 << 20) + 7 + head.length, 'the file grew to the end of the copy');
  t.ok(got.subarray(0, head.length).equals(head), 'the source is unchanged');
  t.ok(got.subarray(head.length, (4 << 20) + 7).equals(Buffer.alloc((4 << 20) + 7 - head.length)), 'nothing between');
  t.ok(got.subarray((4 << 20) + 7).equals(head), 'the copy is the source');
  const wo = fs.openSync(file, fs.constants.O_WRONLY);
  try {
    t.equal(await native.copyRangeAsync(wo, 0, 10 << 20, 4096), false, 'a write-only descriptor: false, not a throw');
  } finally {
    fs.closeSync(wo);
  }
  t.equal(fs.statSync(file).size, (4 << 20) + 7 + head.length, 'nothing copied then');
  await t.rejects(native.copyRangeAsync(-1, 0, 0, 1), /fd, offsets or length/, 'a negative fd is refused');
});

t.test('sealBlobs seals what blob.ts opens: raw, zstd, fresh nonces', async (t) => {
  const { openBlob, sealedBound } = await import('../src/format/blob.js');
  const { randomBytes } = await import('node:crypto');
  const key = randomBytes(32);
  const plains = [Buffer.alloc(0), Buffer.from('short'), randomBytes(5000), Buffer.from('compressible '.repeat(4000)), Buffer.from('x'.repeat(63))];
  const ids = plains.map(() => randomBytes(32));
  const offsets = new Uint32Array(plains.length);
  plains.forEach((_, i) => (offsets[i] = i ? offsets[i - 1]! + plains[i - 1]!.length : 0));
  const blobs = { key, level: 3, data: Buffer.concat(plains), ids: Buffer.concat(ids), offsets, lengths: Uint32Array.from(plains, (p) => p.length) };
  const out = Buffer.alloc(plains.reduce((n, p) => n + sealedBound(p.length), 0));
  const lengths = native.sealBlobs(blobs, out);
  let o = 0;
  const sealed = [...lengths].map((l) => out.subarray(o, (o += l)));
  plains.forEach((p, i) => t.ok(openBlob(key, ids[i]!, sealed[i]!).equals(p), `blob ${i} opens in TypeScript`));
  t.ok(sealed[3]!.length < plains[3]!.length / 20, 'compressible text is stored compressed');
  t.equal(sealed[2]!.length, plains[2]!.length + 29, 'random bytes are stored raw (unpadded)');
  t.equal(sealed[4]!.length, 63 + 29, 'blobs under 64 bytes are not compressed');
  t.throws(() => openBlob(key, ids[1]!, sealed[2]!), 'a blob does not open under another id');
  const again = Buffer.alloc(out.length);
  const lengths2 = await native.sealBlobsAsync(blobs, again);
  t.same([...lengths2], [...lengths], 'the same lengths on the thread pool');
  t.notOk(again.subarray(0, 12).equals(out.subarray(0, 12)), 'a fresh nonce each time');
  t.throws(() => native.sealBlobs(blobs, Buffer.alloc(100)), /out of bounds/, 'an output too small is refused');
});

t.test('sealBlobs: a large blob whose sampled slices do not compress is stored raw without compressing it', async (t) => {
  const { openBlob, sealedBound } = await import('../src/format/blob.js');
  const { randomBytes } = await import('node:crypto');
  const key = randomBytes(32);
  const KiB = 1024;
  const MiB = 1 << 20;
  const text = Buffer.from('the quick brown fox jumps over the lazy dog, then naps. '.repeat(20000)).subarray(0, MiB);
  const halfText = randomBytes(MiB);
  text.copy(halfText, MiB / 4, 0, MiB / 2);
  const tenthText = randomBytes(MiB);
  for (let o = 0; o < MiB; o += 10 * KiB) text.copy(tenthText, o, 0, KiB);
  const block = randomBytes(64 * KiB);
  const repeated = Buffer.concat(Array.from({ length: 16 }, () => block));
  // The slices: the first and last 2 KiB, and the middle 2 KiB of each 64 KiB part (31-33 KiB, 95-97 KiB, ...).
  const zerosBetween = randomBytes(MiB);
  zerosBetween.fill(0, 34 * KiB, 94 * KiB);
  const cases: Array<[string, Buffer, boolean]> = [
    ['random bytes', randomBytes(MiB), false],
    ['text', text, true],
    ['random bytes with text in the middle half', halfText, true],
    ['random bytes with a tenth of text spread through', tenthText, true],
    ['a random block repeated (alike slices)', repeated, true],
    ['random bytes with 60 KiB of zeros between two slices (what sampling misses)', zerosBetween, false],
    ['random bytes under the sampling size', randomBytes(200 * KiB), false],
  ];
  for (const [what, plain, compressed] of cases) {
    const id = randomBytes(32);
    const out = Buffer.alloc(sealedBound(plain.length));
    const [len] = native.sealBlobs({ key, level: 3, data: plain, ids: id, offsets: Uint32Array.of(0), lengths: Uint32Array.of(plain.length) }, out);
    t.ok(openBlob(key, id, out.subarray(0, len)).equals(plain), `${what}: opens`);
    if (compressed) t.ok(len! < plain.length * 0.97, `${what}: stored compressed (${len} bytes)`);
    else t.equal(len, plain.length + 29, `${what}: stored raw`);
  }
  t.equal(native.sealBlobNative(key, randomBytes(32), zerosBetween, 3)?.length, MiB + 29, 'the single-blob sealer samples the same way');
  t.ok(native.sealBlobNative(key, randomBytes(32), zerosBetween.subarray(0, 250 * KiB), 3)!.length < 230 * KiB, 'under 256 KiB zstd sees the whole blob');
});

/** writeFiles' arguments from files given as a path and [offset, length] segments of data. */
type FileSpec = Omit<native.NewFile, 'dir' | 'name' | 'start' | 'end'> & { path: string; segments: Array<[number, number]> };
function asNewFiles(specs: FileSpec[]): [native.NewFile[], native.Parts] {
  const offsets: number[] = [];
  const lengths: number[] = [];
  const files = specs.map(({ path: p, segments, ...rest }) => {
    const start = offsets.length;
    for (const [o, l] of segments) offsets.push(o), lengths.push(l);
    return { ...rest, dir: Buffer.from(path.dirname(p)), name: Buffer.from(path.basename(p)), start, end: offsets.length };
  });
  return [files, { offsets: Uint32Array.from(offsets), lengths: Uint32Array.from(lengths), list: Uint32Array.from(offsets, (_, i) => i) }];
}

t.test('writeFiles creates files with their bytes, mode and ns times, and reports failures', async (t) => {
  const d = path.join(dir, 'write-files');
  fs.mkdirSync(d);
  const data = Buffer.from('0123456789abcdefghij');
  fs.writeFileSync(path.join(d, 'old'), 'previous content, longer than the new one');
  fs.symlinkSync('/etc/passwd', path.join(d, 'link'));
  const [files, parts] = asNewFiles([
    { path: path.join(d, 'a'), replace: false, owner: isRoot ? { uid: 1234, gid: 2345 } : undefined, mode: 0o640, atimeNs: 1_000_000_001n, mtimeNs: 1_600_000_000_123_456_789n, segments: [[0, 10], [10, 5]] },
    { path: path.join(d, 'empty'), replace: false, mode: 0o2755, atimeNs: -1_500_000_000n, mtimeNs: -1n, segments: [] },
    { path: path.join(d, 'old'), replace: true, mode: 0o600, atimeNs: 0n, mtimeNs: 0n, segments: [[15, 5], [0, 3]] },
    { path: path.join(d, 'no-such-dir', 'x'), replace: false, mode: 0o644, atimeNs: 0n, mtimeNs: 0n, segments: [[0, 1]] },
    { path: path.join(d, 'link'), replace: false, mode: 0o644, atimeNs: 0n, mtimeNs: 0n, segments: [[0, 1]] },
  ]);
  const res = native.writeFiles(files, data, parts);
  t.same(res[0], { errno: 0, step: null, chownErrno: 0, chmodErrno: 0, timesErrno: 0 });
  const a = fs.statSync(path.join(d, 'a'), { bigint: true }); // before a read moves the atime
  t.equal(fs.readFileSync(path.join(d, 'a'), 'utf8'), '0123456789abcde', 'segments are written one after the other');
  t.equal(Number(a.mode & 0o7777n), 0o640);
  if (isRoot) t.same([a.uid, a.gid], [1234n, 2345n], 'owner set');
  t.equal(a.mtimeNs, 1_600_000_000_123_456_789n, 'mtime to the nanosecond');
  t.equal(a.atimeNs, 1_000_000_001n);
  const e = fs.statSync(path.join(d, 'empty'), { bigint: true });
  t.equal(e.size, 0n);
  t.equal(Number(e.mode & 0o7777n), 0o2755, 'setgid kept (our own group)');
  t.equal(e.mtimeNs, -1n, 'a time before 1970');
  t.equal(e.atimeNs, -1_500_000_000n);
  t.same(res[2], { errno: 0, step: null, chownErrno: 0, chmodErrno: 0, timesErrno: 0 });
  t.equal(fs.readFileSync(path.join(d, 'old'), 'utf8'), 'fghij012', 'a replaced file has only the new bytes');
  t.equal(res[3]!.errno, 2, 'ENOENT for a missing directory');
  t.equal(res[3]!.step, 'create');
  t.equal(res[4]!.errno, 17, 'EEXIST: a symlink in the way is not followed (files are created O_EXCL), nor replaced unless asked');
  t.equal(fs.readlinkSync(path.join(d, 'link')), '/etc/passwd', 'the symlink is untouched');
  const [bFiles, bParts] = asNewFiles([{ path: path.join(d, 'b'), replace: false, mode: 0o644, atimeNs: 0n, mtimeNs: 0n, segments: [[15, 10]] }]);
  t.throws(() => native.writeFiles(bFiles, data, bParts), /out of bounds/, 'a segment beyond the data is refused');
  t.notOk(fs.existsSync(path.join(d, 'b')));
  const [cFiles, cParts] = asNewFiles([
    { path: path.join(d, 'c'), replace: false, mode: 0o604, atimeNs: 5n, mtimeNs: 7n, segments: [[2, 4]] },
    { path: path.join(d, 'a'), replace: true, mode: 0o600, atimeNs: 5n, mtimeNs: 7n, segments: [[0, 2]] },
  ]);
  const asyncRes = await native.writeFilesAsync(cFiles, data, cParts);
  t.same(asyncRes.map((r) => r.errno), [0, 0], 'the same on the thread pool');
  t.equal(fs.readFileSync(path.join(d, 'c'), 'utf8'), '2345');
  t.equal(fs.readFileSync(path.join(d, 'a'), 'utf8'), '01');
  t.equal(fs.statSync(path.join(d, 'c')).mode & 0o7777, 0o604);
});

t.test('pool work runs at nice 5 under SCHED_BATCH; the main thread keeps its priority', async (t) => {
  // What the pool's threads look like once they have run our jobs (native/pool-work.c).
  const sub = path.join(dir, 'pool-priority');
  fs.mkdirSync(sub, { recursive: true });
  fs.writeFileSync(path.join(sub, 'f'), 'x');
  await Promise.all(Array.from({ length: 16 }, () => native.scanDir(sub, false)));
  // /proc/<pid>/task/<tid>/stat: fields after the ")" that ends the name start at field 3;
  // nice is field 19, the scheduling policy field 41 (SCHED_OTHER 0, SCHED_BATCH 3).
  const threads = fs.readdirSync(`/proc/self/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { tid: Number(tid), nice: Number(f[16]), policy: Number(f[38]) };
  });
  const main = threads.find((x) => x.tid === process.pid)!;
  t.same([main.nice, main.policy], [0, 0], 'main thread: nice 0, SCHED_OTHER');
  const pool = threads.filter((x) => x.nice === 5);
  t.ok(pool.length >= 1, `${pool.length} thread(s) at nice 5`);
  t.ok(pool.every((x) => x.policy === 3), 'and each under SCHED_BATCH');
});

t.test('lchmod changes the entry itself and refuses a symlink (never its target)', async (t) => {
  const d = path.join(dir, 'lchmod');
  fs.mkdirSync(d);
  const victim = path.join(d, 'victim');
  fs.writeFileSync(victim, 'v', { mode: 0o600 });
  fs.symlinkSync(victim, path.join(d, 'link'));
  fs.writeFileSync(path.join(d, 'f'), 'f', { mode: 0o600 });
  native.lchmod(path.join(d, 'f'), 0o4751);
  t.equal(fs.statSync(path.join(d, 'f')).mode & 0o7777, 0o4751);
  t.throws(() => native.lchmod(path.join(d, 'link'), 0o777), { code: 'ENOTSUP', syscall: 'fchmodat' });
  t.equal(fs.statSync(victim).mode & 0o7777, 0o600, "the link's target is untouched");
  t.throws(() => native.lchmod(path.join(d, 'f'), 0o10000), /out of range/, 'mode bits beyond 07777 are refused');
});
