// Issue 4: the read-only FUSE mount, with real mounts (the addon's libfuse 3 binding, /dev/fuse).
import t, { type Test } from 'tap';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, linkSync, writeFileSync, writeSync, utimesSync, chownSync, chmodSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { lastJson, run, testEnv, BIN } from './lib/cli.js';
import { sha256File as sha } from './lib/files.js';
import { alive, daemonPids, isMounted, mountBg, mountPoint, waitFor } from './lib/fuse-helpers.js';
import { tempDir } from './lib/temp.js';

const execFileP = promisify(execFile);
const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

const SNAP_NAME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

/** A home directory with every kind of entry and metadata the mount must show. */
function makeHome(src: string): void {
  const me = path.join(src, 'home/me');
  mkdirSync(path.join(me, 'docs/deep'), { recursive: true });
  writeFileSync(path.join(me, 'small.txt'), 'hello, mount\n');
  writeFileSync(path.join(me, 'empty'), '');
  writeFileSync(path.join(me, 'big.bin'), randomBytes(20 << 20));
  for (let i = 0; i < 30; i++) writeFileSync(path.join(me, 'docs', `note-${i}.txt`), `note ${i}\n`.repeat(i + 1));
  writeFileSync(path.join(me, 'docs/deep/leaf.txt'), 'leaf\n');

  // Sparse: 64 MiB with 2 small data regions.
  const fd = openSync(path.join(me, 'sparse.img'), 'w');
  writeSync(fd, Buffer.alloc(4096, 0x61), 0, 4096, 10 << 20);
  writeSync(fd, Buffer.alloc(4096, 0x62), 0, 4096, (64 << 20) - 4096);
  closeSync(fd);

  writeFileSync(path.join(me, 'script.sh'), '#!/bin/sh\necho hi\n');
  chownSync(path.join(me, 'script.sh'), 1234, 2345); // before chmod: chown clears setuid
  chmodSync(path.join(me, 'script.sh'), 0o4751);
  symlinkSync('small.txt', path.join(me, 'link-to-small'));
  symlinkSync('/nonexistent/target', path.join(me, 'dangling'));
  writeFileSync(path.join(me, 'hl-a'), 'linked twice\n');
  linkSync(path.join(me, 'hl-a'), path.join(me, 'docs/hl-b'));
  writeFileSync(Buffer.from(path.join(me, 'latin1-\xe9.txt'), 'latin1'), 'not utf-8 name\n');
  sh('mkfifo', [path.join(me, 'fifo')]);
  sh('mknod', [path.join(me, 'null-dev'), 'c', '1', '3']);

  sh('setfattr', ['-n', 'user.color', '-v', 'blue', path.join(me, 'small.txt')]);
  sh('setfattr', ['-n', 'user.bin', '-v', '0x00ff10', path.join(me, 'small.txt')]);
  sh('setfacl', ['-m', 'u:1234:r-x,g:2345:rw-', path.join(me, 'small.txt')]);
  sh('setfacl', ['-d', '-m', 'u:1234:rwx', path.join(me, 'docs')]);

  // Nanosecond times (the mount can show milliseconds; see src/fuse/stat.ts).
  sh('touch', ['-h', '-d', '2021-03-04 05:06:07.123456789Z', path.join(me, 'small.txt')]);
  utimesSync(path.join(me, 'docs/deep/leaf.txt'), new Date('2001-02-03T04:05:06.789Z'), new Date('2001-02-03T04:05:06.789Z'));
}

async function setup(t: Test) {
  const dir = tempDir(t, 'tsbak-fuse-');
  const src = path.join(dir, 'src');
  makeHome(src);
  const repo = path.join(dir, 'repo');
  const mnt = mountPoint(t, path.join(dir, 'mnt'));
  const init = run('tsbak', ['init', repo]);
  t.equal(init.code, 0, init.stderr);
  const w = run('tsbak-write', [repo, path.join(src, 'home'), '--host', 'testhost', '--tag', 'daily', '--json']);
  t.equal(w.code, 0, w.stderr);
  const snapId: string = lastJson(w.stdout).snapshot_id;
  return { dir, src, repo, mnt, snapId };
}

t.test('a mounted repository', async (t) => {
  const { src, repo, mnt, snapId } = await setup(t);
  const m = mountBg(repo, mnt, ['ro', 'noauto', 'cache_size=64M']);
  t.equal(m.code, 0, m.stderr);
  t.equal(m.stderr, '');
  t.ok(isMounted(mnt), 'mount.tsbak returns once the mount is there');
  t.equal(daemonPids(mnt).length, 1, 'one daemon serves it');

  const snapsDir = path.join(mnt, 'snapshots');
  const name = readdirSync(snapsDir).find((n) => SNAP_NAME.test(n))!;
  const snap = path.join(snapsDir, name);
  // The backed-up path appears rooted in the snapshot directory.
  const me = path.join(snap, src.slice(1), 'home/me');
  const orig = path.join(src, 'home/me');

  t.test('layout', async (t) => {
    t.same(readdirSync(mnt).sort(), ['hosts', 'ids', 'snapshots', 'tags']);
    t.same(readdirSync(snapsDir).sort(), [name, 'latest']);
    t.equal(readlinkSync(path.join(snapsDir, 'latest')), name);
    t.ok(statSync(path.join(snapsDir, 'latest')).isDirectory(), 'latest leads to the snapshot');
    t.same(readdirSync(path.join(mnt, 'hosts')), ['testhost']);
    t.equal(readlinkSync(path.join(mnt, 'hosts/testhost', name)), `../../snapshots/${name}`);
    t.same(readdirSync(path.join(mnt, 'tags')), ['daily']);
    t.equal(readlinkSync(path.join(mnt, 'tags/daily', name)), `../../snapshots/${name}`);
    t.same(readdirSync(path.join(mnt, 'ids')), [snapId.slice(0, 8)]);
    t.equal(readlinkSync(path.join(mnt, 'ids', snapId.slice(0, 8))), `../snapshots/${name}`);
    t.ok(statSync(path.join(mnt, 'ids', snapId.slice(0, 8), src.slice(1), 'home/me/small.txt')).isFile(), 'ids/ leads into the snapshot');
    t.same(readdirSync(me, { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort(), readdirSync(orig, { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort(), 'same entries, names as bytes (one is not UTF-8)');
    t.same(readdirSync(path.join(me, 'docs')).sort(), readdirSync(path.join(orig, 'docs')).sort());
    t.match(statSync(snap).mtime.toISOString(), name.slice(0, 19), 'a snapshot directory has the snapshot time');
  });

  t.test('file contents', async (t) => {
    t.equal(readFileSync(path.join(me, 'small.txt'), 'utf8'), 'hello, mount\n');
    t.equal(readFileSync(path.join(me, 'empty')).length, 0);
    t.equal(sha(path.join(me, 'big.bin')), sha(path.join(orig, 'big.bin')), '20 MiB of random data');
    for (let i = 0; i < 30; i += 7) t.equal(readFileSync(path.join(me, `docs/note-${i}.txt`), 'utf8'), `note ${i}\n`.repeat(i + 1));
    t.equal(readFileSync(Buffer.from(path.join(me, 'latin1-\xe9.txt'), 'latin1'), 'utf8'), 'not utf-8 name\n');

    // Reads at odd offsets and across chunk boundaries, as a random-access reader does.
    const fh = await fsp.open(path.join(me, 'big.bin'), 'r');
    const whole = readFileSync(path.join(orig, 'big.bin'));
    for (const [off, len] of [[0, 1], [1_000_003, 300_000], [(20 << 20) - 10, 100], [5 << 20, 3 << 20]] as const) {
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, off);
      t.equal(bytesRead, Math.min(len, (20 << 20) - off));
      t.ok(buf.subarray(0, bytesRead).equals(whole.subarray(off, off + bytesRead)), `bytes at ${off}`);
    }
    await fh.close();
  });

  t.test('sparse file: same bytes, true allocation', async (t) => {
    const st = statSync(path.join(me, 'sparse.img'));
    t.equal(st.size, 64 << 20);
    t.ok(st.blocks * 512 <= 64 << 10, `st_blocks tells the allocation (${st.blocks} blocks)`);
    t.equal(sha(path.join(me, 'sparse.img')), sha(path.join(orig, 'sparse.img')), 'holes read as zeros');
  });

  t.test('metadata', async (t) => {
    for (const rel of ['small.txt', 'script.sh', 'big.bin', 'docs', 'docs/deep/leaf.txt', 'link-to-small', 'fifo', 'null-dev', 'sparse.img']) {
      const a = lstatSync(path.join(orig, rel), { bigint: true });
      const b = lstatSync(path.join(me, rel), { bigint: true });
      t.equal(b.mode, a.mode, `${rel}: mode (type and permission bits)`);
      t.equal(b.uid, a.uid, `${rel}: uid`);
      t.equal(b.gid, a.gid, `${rel}: gid`);
      if (!a.isDirectory()) t.equal(b.size, a.size, `${rel}: size`);
      t.equal(b.nlink, a.nlink, `${rel}: nlink`);
      t.equal(b.mtimeNs, a.mtimeNs, `${rel}: mtime to the nanosecond`);
    }
    // Files nothing has read since the backup still have the atime it recorded.
    for (const rel of ['small.txt', 'docs/deep/leaf.txt']) {
      const a = lstatSync(path.join(orig, rel), { bigint: true });
      t.equal(lstatSync(path.join(me, rel), { bigint: true }).atimeNs, a.atimeNs, `${rel}: atime to the nanosecond`);
    }
    t.equal(lstatSync(path.join(me, 'script.sh')).mode & 0o7777, 0o4751, 'setuid bit kept');
    t.equal(lstatSync(path.join(me, 'script.sh')).uid, 1234);
    t.equal(statSync(path.join(me, 'null-dev')).rdev, statSync(path.join(orig, 'null-dev')).rdev, 'device numbers');
    t.ok(lstatSync(path.join(me, 'fifo')).isFIFO());
    t.equal(readlinkSync(path.join(me, 'link-to-small')), 'small.txt');
    t.equal(readlinkSync(path.join(me, 'dangling')), '/nonexistent/target');
    t.equal(readFileSync(path.join(me, 'link-to-small'), 'utf8'), 'hello, mount\n');
  });

  t.test('xattrs and ACLs', async (t) => {
    const strip = (s: string) => s.split('\n').filter((l) => !l.startsWith('# file:')).join('\n');
    const ga = sh('getfattr', ['-d', '-m', '-', '-e', 'hex', path.join(orig, 'small.txt')]);
    const gb = sh('getfattr', ['-d', '-m', '-', '-e', 'hex', path.join(me, 'small.txt')]);
    t.equal(gb.status, 0, gb.stderr);
    t.match(gb.stdout, /user\.color=0x626c7565/);
    t.match(gb.stdout, /system\.posix_acl_access=/);
    t.equal(strip(gb.stdout), strip(ga.stdout), 'getfattr shows the same attributes');
    const fa = sh('getfacl', ['-c', path.join(orig, 'small.txt')]);
    const fb = sh('getfacl', ['-c', path.join(me, 'small.txt')]);
    t.equal(fb.status, 0, fb.stderr);
    t.equal(fb.stdout, fa.stdout, 'getfacl: access ACL');
    t.match(fb.stdout, /user:1234:r-x/);
    const da = sh('getfacl', ['-c', path.join(orig, 'docs')]);
    const db = sh('getfacl', ['-c', path.join(me, 'docs')]);
    t.equal(db.stdout, da.stdout, 'getfacl: default ACL of a directory');
    t.match(db.stdout, /default:user:1234:rwx/);
    const ls = sh('ls', ['-l', me]);
    t.match(ls.stdout, /^-\S{9}\+ .* small\.txt$/m, "ls -l shows '+' for a file with an ACL");
    const noattr = sh('getfattr', ['-n', 'user.none', path.join(me, 'small.txt')]);
    t.match(noattr.stderr, /No such attribute/);
  });

  t.test('hardlinks share one inode', async (t) => {
    const a = statSync(path.join(me, 'hl-a'));
    const b = statSync(path.join(me, 'docs/hl-b'));
    t.equal(a.ino, b.ino);
    t.equal(a.nlink, 2);
    t.not(statSync(path.join(me, 'small.txt')).ino, a.ino);
    t.equal(statSync(path.join(me, 'small.txt')).ino, statSync(path.join(me, 'small.txt')).ino, 'stable inode numbers');
  });

  t.test('cp -a out of the mount recreates the tree', async (t) => {
    const outDir = tempDir(t, 'tsbak-fuse-cp-');
    const out = path.join(outDir, 'me');
    const cp = sh('cp', ['-a', '--sparse=always', me, out]);
    t.equal(cp.status, 0, cp.stderr);
    t.equal(statSync(path.join(out, 'hl-a')).ino, statSync(path.join(out, 'docs/hl-b')).ino, 'hardlink kept');
    t.equal(sha(path.join(out, 'big.bin')), sha(path.join(orig, 'big.bin')));
    t.ok(statSync(path.join(out, 'sparse.img')).blocks * 512 <= 1 << 20, 'sparse copy stays sparse');
    t.equal(sh('getfacl', ['-c', path.join(out, 'small.txt')]).stdout, sh('getfacl', ['-c', path.join(orig, 'small.txt')]).stdout, 'ACL copied');
    t.equal(sh('getfattr', ['--only-values', '-n', 'user.color', path.join(out, 'small.txt')]).stdout, 'blue');
    t.equal(lstatSync(path.join(out, 'script.sh')).mode, lstatSync(path.join(orig, 'script.sh')).mode);
    t.equal(readlinkSync(path.join(out, 'link-to-small')), 'small.txt');
  });

  t.test('trees are read once', async (t) => {
    const stats = () => JSON.parse(sh('getfattr', ['--only-values', '-n', 'user.tsbak.stats', mnt]).stdout);
    t.equal(sh('ls', ['-lR', snap]).status, 0);
    const first = stats().treeLoads;
    t.equal(sh('ls', ['-lR', snap]).status, 0);
    t.equal(stats().treeLoads, first, 'a second ls -lR loads no tree again');
  });

  t.test('concurrent readers', async (t) => {
    const want = sha(path.join(orig, 'big.bin'));
    const sums = await Promise.all(
      Array.from({ length: 4 }, (_, i) => execFileP('sha256sum', [path.join(me, i % 2 ? 'big.bin' : 'sparse.img')]).then((r) => r.stdout.split(' ')[0])),
    );
    const sparse = sha(path.join(orig, 'sparse.img'));
    t.same(sums, [sparse, want, sparse, want]);
    const reads = await Promise.all(Array.from({ length: 8 }, () => fsp.readFile(path.join(me, 'big.bin'))));
    for (const r of reads) t.equal(createHash('sha256').update(r).digest('hex'), want);
  });

  t.test('writes fail with EROFS', async (t) => {
    const erofs = /Read-only file system/;
    t.match(sh('touch', [path.join(me, 'new-file')]).stderr, erofs, 'touch a new file');
    t.match(sh('touch', [path.join(me, 'small.txt')]).stderr, erofs, 'touch an existing file');
    t.match(sh('mkdir', [path.join(me, 'newdir')]).stderr, erofs, 'mkdir');
    t.match(sh('rm', ['-f', path.join(me, 'small.txt')]).stderr, erofs, 'rm');
    t.match(sh('mv', [path.join(me, 'small.txt'), path.join(me, 'moved')]).stderr, erofs, 'mv');
    t.match(sh('chmod', ['777', path.join(me, 'small.txt')]).stderr, erofs, 'chmod');
    t.match(sh('setfattr', ['-n', 'user.x', '-v', '1', path.join(me, 'small.txt')]).stderr, erofs, 'setfattr');
    t.match(sh('mkdir', [path.join(mnt, 'snapshots/x')]).stderr, erofs, 'mkdir in the virtual tree');
    t.throws(() => openSync(path.join(me, 'small.txt'), 'r+'), { code: 'EROFS' });
    t.throws(() => writeFileSync(path.join(me, 'small.txt'), 'x'), { code: 'EROFS' });
    t.equal(readFileSync(path.join(me, 'small.txt'), 'utf8'), 'hello, mount\n', 'unchanged');
  });

  t.test('a snapshot written while mounted appears', async (t) => {
    writeFileSync(path.join(orig, 'added-later.txt'), 'new\n');
    const w = run('tsbak-write', [repo, path.join(src, 'home'), '--host', 'otherhost', '--tag', 'later', '--json']);
    t.equal(w.code, 0, w.stderr);
    const id2: string = lastJson(w.stdout).snapshot_id;
    // The mount looks every 3 s; the bound only stops a test that would never pass.
    await waitFor('the new snapshot in snapshots/', () => readdirSync(snapsDir).filter((n) => n !== 'latest').length === 2, 120_000);
    const names = readdirSync(snapsDir).filter((n) => n !== 'latest').sort();
    const name2 = names.find((n) => n !== name)!;
    t.ok(name2 === name + '-2' || name2 > name, `unique, sortable name ${name2}`);
    t.equal(readlinkSync(path.join(snapsDir, 'latest')), name2, 'latest moves to it');
    t.equal(readFileSync(path.join(snapsDir, name2, src.slice(1), 'home/me/added-later.txt'), 'utf8'), 'new\n');
    t.same(readdirSync(path.join(mnt, 'hosts')).sort(), ['otherhost', 'testhost']);
    t.same(readdirSync(path.join(mnt, 'tags')).sort(), ['daily', 'later']);
    t.ok(readdirSync(path.join(mnt, 'ids')).includes(id2.slice(0, 8)));
    t.same(readdirSync(path.join(snapsDir, name)).length, 1, 'the first snapshot is unchanged');
  });

  t.test('umount ends the daemon', async (t) => {
    const pids = daemonPids(mnt);
    t.equal(pids.length, 1);
    const u = sh('umount', [mnt]);
    t.equal(u.status, 0, u.stderr);
    await waitFor('the daemon to exit after umount', () => !alive(pids[0]!), 5000);
    t.notOk(isMounted(mnt));
  });
});

t.test('lifecycle: SIGTERM, a killed daemon, errors', async (t) => {
  const { repo, mnt } = await setup(t);

  t.test('tsbak mount (foreground) unmounts cleanly on SIGTERM', async (t) => {
    const child = spawn(BIN('tsbak'), ['mount', repo, mnt], { env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => child.kill('SIGKILL')); // if the test fails before it does (a no-op once exited)
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor('the foreground mount', () => isMounted(mnt), 15_000);
    t.ok(readdirSync(path.join(mnt, 'snapshots')).includes('latest'));
    child.kill('SIGTERM');
    t.equal(await exited, 0, `exit code 0 after SIGTERM ${stderr}`);
    t.notOk(isMounted(mnt), 'unmounted');
    t.same(readdirSync(mnt), [], 'the mountpoint is an empty directory again');
  });

  t.test('mounting again after the daemon was killed', async (t) => {
    t.equal(mountBg(repo, mnt).code, 0);
    const [pid] = daemonPids(mnt);
    process.kill(pid!, 'SIGKILL');
    await waitFor('the daemon to die', () => !alive(pid!), 5000);
    t.throws(() => readdirSync(mnt), { code: 'ENOTCONN' }, 'the dead mount is stale');
    const again = mountBg(repo, mnt);
    t.equal(again.code, 0, again.stderr);
    t.ok(readdirSync(path.join(mnt, 'snapshots')).includes('latest'), 'serving again');
    const u = sh('fusermount', ['-u', mnt]);
    t.equal(u.status, 0, u.stderr);
    await waitFor('the daemon to exit after fusermount -u', () => daemonPids(mnt).length === 0, 5000);
  });

  t.test('failures: non-zero exit, one line', async (t) => {
    const bad = mountBg(repo, mnt, [], { TSBAK_PASSWORD: 'wrong' });
    t.equal(bad.code, 11, 'wrong passphrase');
    t.match(bad.stderr, /^mount\.tsbak: wrong passphrase[^\n]*\n$/);
    t.notOk(isMounted(mnt));
    const nodir = mountBg(repo, path.join(mnt, 'missing'));
    t.equal(nodir.code, 2);
    t.match(nodir.stderr, /^mount\.tsbak: mountpoint .* does not exist[^\n]*\n$/);
    const opt = mountBg(repo, mnt, ['no_such_option']);
    t.equal(opt.code, 2);
    t.match(opt.stderr, /unknown mount option 'no_such_option'/);
    const norepo = mountBg(path.join(mnt, '..', 'src'), mnt);
    t.equal(norepo.code, 10);
    t.equal(daemonPids(mnt).length, 0, 'no daemon left behind');
    t.equal(mountBg(repo, mnt).code, 0);
    const twice = mountBg(repo, mnt);
    t.equal(twice.code, 2);
    t.match(twice.stderr, /already a mount point/);
  });
});
