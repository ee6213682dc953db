// Issue 3, the file finder under real conditions: a file that keeps changing while it is
// backed up, and entries the backup cannot read. In both cases the backup completes, says
// what happened (stderr, --json) and stores everything else.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, lastJson, run, start, testEnv } from './lib/cli.js';
import { mountGrowingFs } from './lib/growing-fs.js';
import { tempDir } from './lib/temp.js';

const isRoot = process.getuid?.() === 0;
const canFuse = isRoot && existsSync('/dev/fuse');
const MiB = 1 << 20;

/** Waits for a child to exit; resolves with its code and output. */
function finished(child: ReturnType<typeof start>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

// Appends numbered lines to a file as fast as it can (a log being written), until killed.
const APPENDER = `
const fs = require('fs');
const fd = fs.openSync(process.argv[1], 'a');
let n = 0;
const append = () => {
  let s = '';
  for (let i = 0; i < 100; i++) s += 'appended line ' + (n++) + '\\n';
  fs.writeSync(fd, s);
};
// One append before 'ready': the file has grown by the time the test goes on.
append();
process.stdout.write('ready\\n');
const tick = () => {
  append();
  setTimeout(tick, 1);
};
setTimeout(tick, 1);
`;

t.test('a file appended to during the backup', async (t) => {
  const src = tempDir(t, 'tsbak-changing-');
  // Large enough that every read of it takes many milliseconds (the appender writes every ~1 ms).
  const initial = Buffer.concat(Array.from({ length: 64 }, (_, i) => Buffer.concat([randomBytes(MiB - 16), Buffer.from(`\nblock ${String(i).padStart(8)}\n`)])));
  const log = path.join(src, 'growing.log');
  writeFileSync(log, initial);
  writeFileSync(path.join(src, 'steady.txt'), 'does not change\n');
  mkdirSync(path.join(src, 'sub'));
  writeFileSync(path.join(src, 'sub/other.bin'), randomBytes(4 * MiB));

  const repo = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', repo]).code, 0);

  const appender = spawn(process.execPath, ['-e', APPENDER, log], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => appender.stdout!.once('data', () => resolve()));
  let w: Awaited<ReturnType<typeof finished>>;
  try {
    w = await finished(start('tsbak-write', [repo, src, '--json']));
  } finally {
    appender.kill('SIGTERM');
    await new Promise((r) => appender.on('close', r));
  }
  t.ok(w.code === 0 || w.code === 3, `the backup completes (exit ${w.code}): ${w.stderr}`);
  const out = lastJson(w.stdout);
  t.same(out.errors, [], 'no entry was skipped');
  const final = readFileSync(log);
  t.ok(final.length > initial.length, `the file grew during the backup (${initial.length} -> ${final.length})`);

  // Whether the appender wrote during every one of the writer's reads is up to the scheduler:
  // if it did, the file is reported and stored as last read; if one read saw it still, it is
  // stored as that read saw it. The report itself is the next test's, where every read changes it.
  const reported = out.changed_while_read.length > 0;
  t.same(out.changed_while_read, reported ? [log] : [], `reported in --json only as itself (${reported ? 'reported' : 'one read saw it still'})`);
  t.equal(w.stderr.includes(`${log}: changed while being read`), reported, 'stderr says so exactly when --json does');

  const target = tempDir(t);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', target]);
  t.equal(r.code, 0, r.stderr);
  const restored = readFileSync(path.join(target, log));
  t.ok(restored.length >= initial.length, `at least what was there before (${restored.length} bytes)`);
  t.ok(restored.length <= final.length, 'no more than the final file');
  t.ok(restored.equals(final.subarray(0, restored.length)), 'the restored content is a prefix of the final file');
  t.equal(restored.length, statSync(path.join(target, log)).size);
  t.equal(readFileSync(path.join(target, src, 'steady.txt'), 'utf8'), 'does not change\n', 'other files are stored as usual');
  t.ok(readFileSync(path.join(target, src, 'sub/other.bin')).equals(readFileSync(path.join(src, 'sub/other.bin'))));

  const c = run('tsbak', ['check', repo, '--read-data']);
  t.equal(c.code, 0, c.stdout + c.stderr);
});

t.test('a file that changes at every read: stored as last read, reported in --json and on stderr', { skip: !canFuse && 'needs root and /dev/fuse (the file is served by this test through FUSE)' }, async (t) => {
  const mnt = tempDir(t, 'tsbak-growing-');
  const full = randomBytes(24 * MiB);
  const initial = 4 * MiB;
  const steady = Buffer.from('does not change\n');
  const served = mountGrowingFs(mnt, full, initial, steady);
  t.teardown(() => served.unmount());
  const log = path.join(mnt, 'growing.log');

  const repo = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', repo]).code, 0);
  // Started, not run: this process serves the file system the backup reads.
  const w = await finished(start('tsbak-write', [repo, mnt, '--json']));
  t.equal(w.code, 0, `the backup completes: ${w.stderr}`);
  const out = lastJson(w.stdout);
  t.same(out.errors, [], 'no entry was skipped');
  t.same(out.changed_while_read, [log], 'reported in --json changed_while_read');
  t.match(w.stderr, `${log}: changed while being read 4 times; stored as last read`, 'and on stderr');
  t.ok(served.reads() >= 4, `read at least once per attempt (${served.reads()} reads)`);

  const target = tempDir(t);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', target]);
  t.equal(r.code, 0, r.stderr);
  const restored = readFileSync(path.join(target, log));
  t.ok(restored.length > initial, `as last read: longer than at the first read (${restored.length} bytes)`);
  t.ok(restored.length < served.current().length, 'and shorter than the file is now');
  t.ok(restored.equals(full.subarray(0, restored.length)), 'its bytes are the file\'s bytes');
  t.equal(readFileSync(path.join(target, mnt, 'steady.txt'), 'utf8'), 'does not change\n', 'the other file is stored as usual');
  const c = run('tsbak', ['check', repo, '--read-data']);
  t.equal(c.code, 0, c.stdout + c.stderr);
});

t.test('unreadable entries are reported and skipped; the rest is backed up (exit 3)', { skip: !isRoot && 'needs root (to run the backup as nobody)' }, async (t) => {
  // As root everything is readable, so the backup runs as nobody over a tree that root owns.
  const NOBODY = 65534;
  const base = tempDir(t, 'tsbak-unreadable-');
  chmodSync(base, 0o755);
  const src = path.join(base, 'src');
  mkdirSync(path.join(src, 'sub'), { recursive: true });
  writeFileSync(path.join(src, 'public.txt'), 'anyone may read this\n');
  writeFileSync(path.join(src, 'secret.txt'), 'root only\n');
  chmodSync(path.join(src, 'secret.txt'), 0o600);
  writeFileSync(path.join(src, 'sub/also-public.txt'), 'readable too\n');
  mkdirSync(path.join(src, 'private-dir'));
  writeFileSync(path.join(src, 'private-dir/hidden.txt'), 'cannot even be listed\n');
  chmodSync(path.join(src, 'private-dir'), 0o700);
  // nobody's own corner: the repository, the writer's cache, HOME
  const home = path.join(base, 'nobody');
  mkdirSync(home);
  chownSync(home, NOBODY, NOBODY);
  const repo = path.join(home, 'repo');
  const env = testEnv({ HOME: home, TSBAK_CACHE_DIR: path.join(home, 'cache') });
  const asNobody = (bin: string, args: string[]) => {
    // env -u NODE_OPTIONS: tap's process-info hook re-adds itself to every child's
    // NODE_OPTIONS and would try (and fail, as nobody) to write under .tap/.
    const cmd = ['-u', 'NODE_OPTIONS', 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', BIN(bin), ...args];
    const r = spawnSync('env', cmd, { env, encoding: 'utf8' });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const init = asNobody('tsbak', ['init', repo]);
  t.equal(init.code, 0, init.stderr);

  const w = asNobody('tsbak-write', [repo, src, '--json']);
  t.equal(w.code, 3, `exit 3: the snapshot is partial (${w.stderr})`);
  const secret = path.join(src, 'secret.txt');
  const priv = path.join(src, 'private-dir');
  t.match(w.stderr, `${secret}: `, 'the unreadable file is named on stderr');
  t.match(w.stderr, `${priv}: `, 'the unlistable directory is named on stderr');
  const out = lastJson(w.stdout);
  t.same(out.errors.map((e: { path: string }) => e.path).sort(), [priv, secret].sort(), 'both are in --json errors');
  t.match(out.errors.find((e: { path: string }) => e.path === secret)?.message, /EACCES/);

  // The snapshot exists and holds everything else (restored as root, who can read the repository).
  const target = tempDir(t);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', target], { TSBAK_CACHE_DIR: path.join(home, 'cache-root') });
  t.equal(r.code, 0, r.stderr);
  const restored = path.join(target, src);
  t.equal(readFileSync(path.join(restored, 'public.txt'), 'utf8'), 'anyone may read this\n');
  t.equal(readFileSync(path.join(restored, 'sub/also-public.txt'), 'utf8'), 'readable too\n');
  t.notOk(existsSync(path.join(restored, 'secret.txt')), 'the unreadable file is not in the snapshot');
  t.ok(statSync(path.join(restored, 'private-dir')).isDirectory(), 'the unlistable directory is there (its own metadata was readable)');
  t.same(readdirSync(path.join(restored, 'private-dir')), [], '...without its contents');
  t.equal(statSync(path.join(restored, 'private-dir')).mode & 0o7777, 0o700);

  const c = run('tsbak', ['check', repo, '--read-data']);
  t.equal(c.code, 0, c.stdout + c.stderr);
});
