// The mount's access checks and secrets (issue 16), with real mounts:
// - with allow_other, a file whose ACL denies a user (setfacl -m u:bob:---) is not readable by
//   that user through the mount, although its "other" bits would let them: the kernel checks
//   the stored ACLs itself (FUSE_CAP_POSIX_ACL with default_permissions);
// - no child of the mount (fusermount) gets TSBAK_PASSWORD in its environment.
// Reads as another user run `setpriv --reuid --regid --clear-groups`, so the test runs as root.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, newRepo, run, testEnv } from './lib/cli.js';
import { daemonPids, isMounted, mountBg, mountPoint, waitFor } from './lib/fuse-helpers.js';
import { tempDir } from './lib/temp.js';

const BOB = 12345; // a user the ACLs name
const CAROL = 12346; // owns a file
const EVE = 12347; // named nowhere

/** Reads `file` as uid:gid with no supplementary groups; the exit status and stderr of cat. */
function readAs(uid: number, file: string): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'cat', '--', file], { encoding: 'utf8' });
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr };
}

function setfacl(args: string[]): void {
  const r = spawnSync('setfacl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`setfacl ${args.join(' ')}: ${r.stderr}`);
}

const canRun = process.getuid?.() === 0 && existsSync('/dev/fuse') && spawnSync('setpriv', ['--version']).status === 0 && spawnSync('setfacl', ['--version']).status === 0;

t.test('allow_other: ACLs are enforced for other users, mode bits as before', { skip: canRun ? false : 'needs root, /dev/fuse, setpriv and setfacl' }, async (t) => {
  const dir = tempDir(t, 'tsbak-acl-');
  chmodSync(dir, 0o755); // other users must reach the files, and the mount below
  const src = path.join(dir, 'src');
  mkdirSync(src);
  const file = (name: string, mode: number, uid = 0) => {
    const p = path.join(src, name);
    writeFileSync(p, `${name}\n`);
    chownSync(p, uid, uid);
    chmodSync(p, mode);
    return p;
  };
  file('open.txt', 0o644);
  file('private.txt', 0o600);
  setfacl(['-m', `u:${BOB}:---`, file('denied.txt', 0o644)]);
  setfacl(['-m', `g:${BOB}:---`, file('group-denied.txt', 0o644)]);
  setfacl(['-m', `u:${BOB}:---`, file('carols.txt', 0o644, CAROL)]);
  setfacl(['-m', `u:${BOB}:r--`, file('granted.txt', 0o640)]);

  const repo = newRepo(t);
  const w = run('tsbak-write', [repo, src]);
  t.equal(w.code, 0, w.stderr);
  const mnt = mountPoint(t, path.join(dir, 'mnt'));
  const m = mountBg(repo, mnt, ['allow_other']);
  t.equal(m.code, 0, m.stderr);
  const at = (name: string) => path.join(mnt, 'snapshots/latest', src, name);

  t.ok(readAs(BOB, at('open.txt')).ok, 'mode bits: other users read a world-readable file');
  t.equal(readAs(BOB, at('open.txt')).stdout, 'open.txt\n');
  t.match(readAs(BOB, at('private.txt')).stderr, /Permission denied/, 'mode bits: a 0600 file is not theirs to read');
  t.match(readAs(BOB, at('denied.txt')).stderr, /Permission denied/, 'u:bob:--- denies bob');
  t.equal(readAs(EVE, at('denied.txt')).stdout, 'denied.txt\n', 'a user the ACL does not name gets the other entry');
  t.match(readAs(BOB, at('group-denied.txt')).stderr, /Permission denied/, 'g:bob:--- denies a member of group bob');
  t.match(readAs(BOB, at('carols.txt')).stderr, /Permission denied/, "u:bob:--- on carol's file denies bob");
  t.equal(readAs(CAROL, at('carols.txt')).stdout, 'carols.txt\n', 'the owner reads her own file');
  t.equal(readAs(BOB, at('granted.txt')).stdout, 'granted.txt\n', 'u:bob:r-- grants bob more than the other bits do');
  t.match(readAs(EVE, at('granted.txt')).stderr, /Permission denied/, '...and no one else');
  t.equal(readFileSync(at('denied.txt'), 'utf8'), 'denied.txt\n', 'root reads everything, as on any file system');
  // What ls -l shows: the stored mode (its group bits are the ACL's mask).
  t.equal(statSync(at('denied.txt')).mode & 0o777, 0o644);
  t.equal(statSync(at('open.txt')).mode & 0o777, 0o644);
  const acl = spawnSync('getfacl', ['-n', '--omit-header', at('denied.txt')], { encoding: 'utf8' });
  t.match(acl.stdout, new RegExp(`user:${BOB}:---`), 'getfacl shows the stored ACL');
});

t.test('without allow_other the mode bits are shown as stored', { skip: canRun ? false : 'needs root, /dev/fuse and setfacl' }, async (t) => {
  const dir = tempDir(t, 'tsbak-acl-');
  const src = path.join(dir, 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'denied.txt'), 'x\n');
  chmodSync(path.join(src, 'denied.txt'), 0o644);
  setfacl(['-m', `u:${BOB}:---`, path.join(src, 'denied.txt')]);
  const repo = newRepo(t);
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  const mnt = mountPoint(t, path.join(dir, 'mnt'));
  t.equal(mountBg(repo, mnt).code, 0);
  t.equal(statSync(path.join(mnt, 'snapshots/latest', src, 'denied.txt')).mode & 0o777, 0o644);
});

/** A directory with a `fusermount` that writes its environment to `log`, then runs the real one. */
function fusermountSpy(dir: string): { path: string; log: string } {
  const bin = path.join(dir, 'spy-bin');
  mkdirSync(bin);
  const log = path.join(dir, 'fusermount.env');
  const real = spawnSync('sh', ['-c', 'command -v fusermount'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(path.join(bin, 'fusermount'), `#!/bin/sh\nenv >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  return { path: `${bin}:${process.env.PATH}`, log };
}

t.test('no child of the mount gets the passphrase', { skip: existsSync('/dev/fuse') ? false : 'needs /dev/fuse' }, async (t) => {
  const dir = tempDir(t, 'tsbak-env-');
  const src = path.join(dir, 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'f'), 'f\n');
  const repo = newRepo(t);
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  const mnt = mountPoint(t, path.join(dir, 'mnt'));
  const spy = fusermountSpy(dir);

  t.test('the background daemon: its environment never holds it; its fusermount neither', async (t) => {
    const m = mountBg(repo, mnt, [], { PATH: spy.path });
    t.equal(m.code, 0, m.stderr);
    const [pid] = daemonPids(mnt);
    t.ok(pid, 'a daemon');
    // What the daemon was started with (and would pass on unchanged had it not been changed).
    const environ = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
    t.ok(environ.some((e) => e.startsWith('PATH=')), 'environ read');
    t.notOk(environ.some((e) => e.startsWith('TSBAK_PASSWORD=')), 'no TSBAK_PASSWORD in /proc/<daemon>/environ');
    process.kill(pid!, 'SIGTERM'); // the daemon unmounts with fusermount -u
    await waitFor('the daemon to exit', () => daemonPids(mnt).length === 0, 10_000);
    t.notOk(isMounted(mnt));
    const env = readFileSync(spy.log, 'utf8');
    t.match(env, /^PATH=/m, 'fusermount ran');
    t.notMatch(env, /TSBAK_PASSWORD/, 'fusermount got no passphrase');
  });

  t.test('the foreground mount, given TSBAK_PASSWORD: its fusermount does not get it', async (t) => {
    writeFileSync(spy.log, '');
    const child = spawn(BIN('tsbak'), ['mount', repo, mnt], { env: testEnv({ PATH: spy.path }), stdio: ['ignore', 'ignore', 'pipe'] });
    t.teardown(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor('the foreground mount', () => isMounted(mnt), 15_000);
    child.kill('SIGTERM');
    t.equal(await exited, 0, stderr);
    const env = readFileSync(spy.log, 'utf8');
    t.match(env, /^PATH=/m, 'fusermount ran');
    t.notMatch(env, /TSBAK_PASSWORD/, 'fusermount got no passphrase');
  });
});
