// Issue 20: a repository on a real sshd over sftp://, through the programs a user runs:
// init, backup, snapshots, restore, check --read-data and a FUSE mount; then the connection
// killed in the middle of a backup, two ways: the sessions only (the backup reconnects and
// finishes), and the whole server (the backup fails with a clear error after its retries,
// the repository stays sound, and the next backup reuses what the first one stored); and
// the sessions killed in the middle of a restore (it reconnects, every file identical).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, run, start } from './lib/cli.js';
import { mountBg, mountPoint, waitFor } from './lib/fuse-helpers.js';
import { whenFiles } from './lib/file-events.js';
import { sshdOrSkip } from './lib/sshd.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, walkTree } from './lib/tree-compare.js';

const sshd = await sshdOrSkip(t);
if (sshd) {
  // The key and known_hosts by the environment here; the command-line flags are tested below.
  const env = { TSBAK_SFTP_KEY: sshd.userKey, TSBAK_SFTP_KNOWN_HOSTS: sshd.knownHosts, SSH_AUTH_SOCK: '', TSBAK_CACHE_DIR: tempDir(t, 'tsbak-sftp-cache-') };
  let n = 0;
  const newRemote = () => path.join(sshd.dir, `repo-${n++}`);

  /** A small home: text, a larger binary, nested directories, a symlink, an empty file. */
  const makeSource = (dir: string, bigMiB: number) => {
    mkdirSync(path.join(dir, 'docs/deep'), { recursive: true });
    writeFileSync(path.join(dir, 'hello.txt'), 'hello over ssh\n');
    writeFileSync(path.join(dir, 'empty'), '');
    writeFileSync(path.join(dir, 'big.bin'), randomBytes(bigMiB << 20));
    for (let i = 0; i < 40; i++) writeFileSync(path.join(dir, 'docs', `note-${i}.txt`), `note ${i}\n`.repeat(i + 1));
    writeFileSync(path.join(dir, 'docs/deep/leaf.txt'), 'leaf\n');
    symlinkSync('hello.txt', path.join(dir, 'link'));
  };

  t.test('init, backup, snapshots, restore, check and mount over sftp://', async (t) => {
    const work = tempDir(t, 'tsbak-sftp-');
    const src = path.join(work, 'src');
    makeSource(src, 6);
    const remote = newRemote();
    const url = sshd.url(remote);
    const flags = ['--sftp-key', sshd.userKey, '--sftp-known-hosts', sshd.knownHosts];
    const init = run('tsbak', ['init', url, ...flags], { SSH_AUTH_SOCK: '', TSBAK_CACHE_DIR: env.TSBAK_CACHE_DIR });
    t.equal(init.code, 0, init.stderr);
    t.match(init.stdout, new RegExp(`created tsbak repository \\S+ at sftp://${sshd.user}@127\\.0\\.0\\.1:${sshd.port}${remote}`));
    t.ok(existsSync(path.join(remote, 'config')), 'the repository is a directory on the server');
    t.equal(run('tsbak', ['init', url, ...flags], env).code !== 0, true, 'init refuses an existing repository');

    const w = run('tsbak-write', [url, src, '--json'], env);
    t.equal(w.code, 0, w.stderr);
    const first = lastJson(w.stdout);
    t.ok(first.bytes_added > 6 << 20, `stored ${first.bytes_added} bytes`);
    writeFileSync(path.join(src, 'hello.txt'), 'hello again\n');
    const w2 = run('tsbak-write', [url, src, '--json'], env);
    t.equal(w2.code, 0, w2.stderr);
    t.ok(lastJson(w2.stdout).bytes_added < 1 << 20, 'the second backup stores only the change');

    const snaps = run('tsbak', ['snapshots', url, '--json'], env);
    t.equal(snaps.code, 0, snaps.stderr);
    t.equal(JSON.parse(snaps.stdout).length, 2);

    const target = path.join(work, 'target');
    const r = run('tsbak', ['restore', url, 'latest', '--target', target], env);
    t.equal(r.code, 0, r.stderr);
    t.same(compareTrees(walkTree(src), walkTree(path.join(target, src))), [], 'the restored tree equals the source');

    const c = run('tsbak', ['check', url, '--read-data'], env);
    t.equal(c.code, 0, `check --read-data: ${c.stdout}${c.stderr}`);

    const ls = run('tsbak', ['ls', url, 'latest', path.join(src, 'docs/deep')], env);
    t.equal(ls.code, 0, ls.stderr);
    t.match(ls.stdout, /leaf\.txt/);

    const mnt = mountPoint(t, path.join(work, 'mnt'));
    const m = mountBg(url, mnt, [`sftp_key=${sshd.userKey}`, `sftp_known_hosts=${sshd.knownHosts}`], { SSH_AUTH_SOCK: '', TSBAK_CACHE_DIR: env.TSBAK_CACHE_DIR });
    t.equal(m.code, 0, m.stderr);
    const latest = path.join(mnt, 'snapshots/latest', src);
    await waitFor('the snapshot in the mount', () => existsSync(path.join(latest, 'big.bin')), 30_000);
    t.same(readFileSync(path.join(latest, 'big.bin')), readFileSync(path.join(src, 'big.bin')), 'a large file read through the mount');
    t.equal(readFileSync(path.join(latest, 'hello.txt'), 'utf8'), 'hello again\n');
    t.equal(readdirSync(path.join(latest, 'docs')).length, 41);
  });

  t.test('a host key not in known_hosts: refused with the fingerprint, nothing written', async (t) => {
    const remote = newRemote();
    const empty = path.join(tempDir(t), 'known_hosts');
    writeFileSync(empty, '');
    const r = run('tsbak', ['init', sshd.url(remote), '--sftp-key', sshd.userKey, '--sftp-known-hosts', empty], { SSH_AUTH_SOCK: '', HOME: tempDir(t) });
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, /host key of \[127\.0\.0\.1\]:\d+ is not known \(ssh-ed25519 key SHA256:[A-Za-z0-9+/]{43}; looked in .*\); check the fingerprint/);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.notOk(existsSync(remote), 'nothing was written');
  });

  t.test('the sessions killed mid-backup: the backup reconnects and finishes', async (t) => {
    const work = tempDir(t, 'tsbak-sftp-');
    const src = path.join(work, 'src');
    makeSource(src, 48);
    const remote = newRemote();
    const url = sshd.url(remote);
    t.equal(run('tsbak', ['init', url, '--pack-size', '4'], env).code, 0);
    const before = walkTree(src, { preserveAtime: true });
    // The backup holds right after its first data pack is on the server until every session
    // is killed (a fast one could otherwise be done before the cut), then goes on.
    const pauseDir = path.join(work, 'pause');
    mkdirSync(pauseDir);
    const child = start('tsbak-write', [url, src, '--json'], { ...env, TSBAK_CRASH_AT: 'packs/data/#1:after:pause', TSBAK_PAUSE_DIR: pauseDir });
    t.teardown(() => void child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    // 'close': its output read to the end too ('exit' may come first).
    const exited = new Promise<number | null>((resolve) => child.once('close', (code, signal) => resolve(code ?? (signal as any))));
    await whenFiles(pauseDir, () => existsSync(path.join(pauseDir, 'paused')), {
      failed: exited.then((c) => new Error(`the backup exited (${c}) before its first data pack was on the server: ${stderr}`)),
    });
    const packs = path.join(remote, 'packs/data');
    t.ok(readdirSync(packs).some((d) => readdirSync(path.join(packs, d)).some((f) => !f.startsWith('.tmp-'))), 'a data pack is on the server');
    t.ok(sshd.killSessions() > 0, 'the SSH sessions were killed');
    writeFileSync(path.join(pauseDir, 'go'), '');
    const code = await exited;
    t.equal(code, 0, `the backup finished: ${stderr}`);
    t.match(stderr, /warning: SFTP connection to 127\.0\.0\.1:\d+ lost \(.*\); reconnecting/, 'it said it lost the connection and reconnected');
    t.ok(lastJson(stdout).snapshot_id, 'a snapshot was made');
    const c = run('tsbak', ['check', url, '--read-data'], env);
    t.equal(c.code, 0, `check --read-data: ${c.stdout}${c.stderr}`);
    const target = path.join(work, 'target');
    t.equal(run('tsbak', ['restore', url, 'latest', '--target', target], env).code, 0);
    t.same(compareTrees(before, walkTree(path.join(target, src))), []);
    const leftovers = walkTree(remote);
    t.same([...leftovers.keys()].filter((k) => path.basename(k).startsWith('.tmp-')), [], 'no temp file left on the server');
  });

  t.test('the sessions killed mid-restore: the restore reconnects and restores every file identical', async (t) => {
    const work = tempDir(t, 'tsbak-sftp-');
    const src = path.join(work, 'src');
    makeSource(src, 64);
    const remote = newRemote();
    const url = sshd.url(remote);
    t.equal(run('tsbak', ['init', url, '--pack-size', '4'], env).code, 0);
    const before = walkTree(src, { preserveAtime: true });
    t.equal(run('tsbak-write', [url, src], env).code, 0);
    const target = path.join(work, 'target');
    const child = start('tsbak', ['restore', url, 'latest', '--target', target], env);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Once the large file is being written, cut every connection.
    const big = path.join(target, src, 'big.bin');
    await whenFiles(work, () => existsSync(big), { recursive: true, failed: exited.then((c) => new Error(`the restore exited (${c}) before writing ${big}: ${stderr}`)) });
    const killed = sshd.killSessions();
    const code = await exited;
    t.equal(code, 0, `the restore finished: ${stderr}`);
    if (killed > 0) t.match(stderr, /warning: SFTP connection to 127\.0\.0\.1:\d+ lost \(.*\); reconnecting/, 'it said it lost the connection and reconnected');
    else t.comment('the restore was done before the sessions could be killed');
    t.same(compareTrees(before, walkTree(path.join(target, src))), [], 'every file identical');
  });

  t.test('the server killed mid-backup: a clear error, the repository intact, the next backup reuses what was stored', async (t) => {
    const work = tempDir(t, 'tsbak-sftp-');
    const src = path.join(work, 'src');
    makeSource(src, 48);
    const remote = newRemote();
    const url = sshd.url(remote);
    // Without parity (SFTP's default is 10+2): with it a checkpoint lists only packs whose
    // group's parity is written, 10 packs at a time; this test is about the cut connection
    // (parity-resume.test.ts covers a killed backup with parity).
    t.equal(run('tsbak', ['init', url, '--pack-size', '4', '--parity', 'none'], env).code, 0);
    // An index checkpoint every 4 MiB of packs: what is stored before the cut is indexed. The
    // backup holds right after its second index file until the server is gone (a fast one
    // could otherwise be done before the cut).
    const pauseDir = path.join(work, 'pause');
    mkdirSync(pauseDir);
    const child = start('tsbak-write', [url, src, '--json'], { ...env, TSBAK_CHECKPOINT_BYTES: String(4 << 20), TSBAK_CRASH_AT: 'index/#2:after:pause', TSBAK_PAUSE_DIR: pauseDir });
    let stderr = '';
    let stdout = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d) => (stdout += d));
    // 'close': its output read to the end too ('exit' may come first).
    const exited = new Promise<number | null>((resolve) => child.once('close', (code, signal) => resolve(code ?? (signal as any))));
    await whenFiles(pauseDir, () => existsSync(path.join(pauseDir, 'paused')), {
      failed: exited.then((c) => new Error(`the backup exited (${c}) before two index checkpoints were on the server: ${stderr}`)),
    });
    const index = path.join(remote, 'index');
    t.equal(readdirSync(index).filter((f) => !f.startsWith('.tmp-')).length, 2, 'two index files on the server');
    await sshd.stop();
    t.teardown(() => sshd.start());
    writeFileSync(path.join(pauseDir, 'go'), '');
    const code = await exited;
    t.not(code, 0, `the backup failed: ${stdout}`);
    t.match(stderr, /cannot connect to SFTP server 127\.0\.0\.1:\d+ \(ECONNREFUSED\)|SFTP connection to 127\.0\.0\.1:\d+ lost/, `a clear error: ${stderr}`);
    await sshd.start();

    const snaps = run('tsbak', ['snapshots', url, '--json'], env);
    t.equal(snaps.code, 0, snaps.stderr);
    t.same(JSON.parse(snaps.stdout), [], 'no snapshot from the failed backup');
    const c = run('tsbak', ['check', url], env);
    t.equal(c.code, 0, `check: ${c.stdout}${c.stderr}`);

    const again = run('tsbak-write', [url, src, '--json'], env);
    t.equal(again.code, 0, again.stderr);
    const j = lastJson(again.stdout);
    t.ok(j.bytes_added < 44 << 20, `the resumed backup added ${j.bytes_added} bytes of ~48 MiB: the rest was reused`);
    const c2 = run('tsbak', ['check', url, '--read-data'], env);
    t.equal(c2.code, 0, `check --read-data: ${c2.stdout}${c2.stderr}`);
    const target = path.join(work, 'target');
    t.equal(run('tsbak', ['restore', url, 'latest', '--target', target], env).code, 0);
    t.same(compareTrees(walkTree(src), walkTree(path.join(target, src))), []);
  });
}
