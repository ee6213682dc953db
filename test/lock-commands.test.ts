// Issue 24: locks through the real programs (exit 13, tsbak unlock, write-only keys),
// SIGINT/SIGTERM during a backup, and index checkpoints that a rerun after kill -9 reuses.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, lastJson, newRepo, run, start, testEnv } from './lib/cli.js';
import { listFiles } from './lib/files.js';
import { tempDir } from './lib/temp.js';

function plantLock(repo: string, body: object, name = randomBytes(16).toString('hex')): string {
  mkdirSync(path.join(repo, 'locks'), { recursive: true });
  writeFileSync(path.join(repo, 'locks', name), JSON.stringify(body));
  return name;
}

const namesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : []);
const locksIn = (repo: string) => namesIn(path.join(repo, 'locks'));
const tempsIn = (repo: string) => listFiles(repo).filter((f) => path.basename(f).startsWith('.tmp-'));

function smallTree(t: any): string {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'a.txt'), 'hello\n');
  return src;
}

/** A tree of `mib` MiB of incompressible data in 1 MiB files. */
function bigTree(t: any, mib: number): string {
  const src = tempDir(t);
  for (let i = 0; i < mib; i++) writeFileSync(path.join(src, `f${String(i).padStart(4, '0')}.bin`), randomBytes(1 << 20));
  return src;
}

function packBytes(repo: string): number {
  // Data and tree packs (parity across packs, on by default here, is on top: FORMAT.md "Parity").
  return listFiles(path.join(repo, 'packs')).filter((f) => !f.startsWith('parity/')).reduce((n, f) => n + statSync(path.join(repo, 'packs', f)).size, 0);
}

t.test('a conflicting lock makes backup and check exit 13 with one line; unlock keeps a live one, --remove-all removes it', async (t) => {
  const repo = newRepo(t);
  const src = smallTree(t);
  const name = plantLock(repo, { host: 'otherhost', pid: 4242, time: new Date().toISOString(), exclusive: true, operation: 'prune' });
  const w = run('tsbak-write', [repo, src]);
  t.equal(w.code, 13, 'tsbak-write exits 13 (LOCKED)');
  t.match(w.stderr, /^tsbak-write: repository .* is locked: exclusive lock locks\/[0-9a-f]{32} of prune on host otherhost pid 4242, \d+ s old .*run `tsbak unlock` if that process is gone\n$/);
  t.same(locksIn(repo), [name], 'the refused backup took its lock back');
  const c = run('tsbak', ['check', repo]);
  t.equal(c.code, 13, 'check exits 13');

  const u = run('tsbak', ['unlock', repo]);
  t.equal(u.code, 0, u.stderr);
  t.match(u.stdout, /kept exclusive lock .* on host otherhost pid 4242.*\n0 locks removed, 1 kept/);
  t.same(locksIn(repo), [name]);
  const all = run('tsbak', ['unlock', repo, '--remove-all', '--json']);
  t.equal(all.code, 0, all.stderr);
  const j = lastJson(all.stdout);
  t.equal(j.removed.length, 1);
  t.match(j.removed[0], { name: `locks/${name}`, host: 'otherhost', pid: 4242, exclusive: true, operation: 'prune', stale: null, unreadable: null });
  t.same(j.kept, []);
  t.same(locksIn(repo), []);
  t.equal(run('tsbak-write', [repo, src]).code, 0, 'the backup runs now');
  t.same(locksIn(repo), [], 'and leaves no lock');
  // A shared lock of another process does not stop a backup or a check.
  plantLock(repo, { host: 'otherhost', pid: 4243, time: new Date().toISOString(), exclusive: false });
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  t.equal(run('tsbak', ['check', repo]).code, 0);
});

t.test('unlock removes stale locks: a dead process of this host, an old one; check reports them', async (t) => {
  const repo = newRepo(t);
  // A pid that is no process: one that ran and exited.
  const gone = start('tsbak', ['--version']);
  const pid = gone.pid!;
  await new Promise((r) => gone.on('exit', r));
  plantLock(repo, { host: hostname(), pid, time: new Date().toISOString(), exclusive: true });
  plantLock(repo, { host: 'otherhost', pid: 7, time: new Date(Date.now() - 45 * 60_000).toISOString(), exclusive: true });
  const c = run('tsbak', ['check', repo]);
  t.equal(c.code, 0, `stale locks do not block check: ${c.stderr}`);
  t.match(c.stdout, new RegExp(`warning: exclusive lock .* pid ${pid}.* is stale \\(its process \\(pid ${pid} on this host\\) is gone\\)`));
  t.match(c.stdout, /warning: exclusive lock .* pid 7, 45 min old is stale \(not refreshed for 45 min/);
  const src = smallTree(t);
  t.equal(run('tsbak-write', [repo, src]).code, 0, 'nor a backup');
  const u = run('tsbak', ['unlock', repo]);
  t.equal(u.code, 0);
  t.match(u.stdout, /removed exclusive lock .*: stale, its process/);
  t.match(u.stdout, /2 locks removed, 0 kept/);
  t.same(locksIn(repo), []);
});

t.test('a write-only key takes a shared lock, and is refused by an exclusive one', async (t) => {
  const repo = newRepo(t);
  const key = path.join(tempDir(t), 'writer.key');
  t.equal(run('tsbak', ['key', 'add-writer', repo, '--name', 'w', '--out', key]).code, 0);
  const src = smallTree(t);
  const env = { TSBAK_PASSWORD: '' };
  const ok = run('tsbak-write', [repo, src, '--key-file', key], env);
  t.equal(ok.code, 0, ok.stderr);
  t.same(locksIn(repo), []);
  plantLock(repo, { host: 'otherhost', pid: 1, time: new Date().toISOString(), exclusive: true });
  const no = run('tsbak-write', [repo, src, '--key-file', key], env);
  t.equal(no.code, 13, no.stderr);
  t.equal(run('tsbak', ['unlock', repo, '--remove-all', '--key-file', key], env).code, 0, 'a write-only key can unlock too');
  t.same(locksIn(repo), []);
});

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  t.test(`${signal} during a backup removes its lock and temp files; the repository stays consistent`, async (t) => {
    const repo = newRepo(t);
    const src = bigTree(t, 48);
    // A lock rewritten every 20 ms, so the signal may come while a refresh is in flight; the
    // signal comes as the second pack is committed (src/backend/crash-point.ts), while
    // other packs are being streamed into temp files.
    const child = start('tsbak-write', [repo, src], { TSBAK_LOCK_REFRESH_SECONDS: '0.02', TSBAK_CRASH_AT: `packs/#2:${signal}` });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const got = await exited;
    t.equal(got, code, `exit ${code}`);
    t.match(stderr, new RegExp(`^tsbak-write: backup interrupted by ${signal}: no snapshot saved; its lock and temporary files were removed.*\\n$`), `one line: ${JSON.stringify(stderr)}`);
    t.same(locksIn(repo), [], 'no lock left');
    t.same(tempsIn(repo), [], 'no temp file left');
    t.same(namesIn(path.join(repo, 'snapshots')), [], 'no snapshot');
    const c = run('tsbak', ['check', repo, '--read-data']);
    t.equal(c.code, 0, `check --read-data passes: ${c.stdout}`);
    t.equal(run('tsbak-write', [repo, src]).code, 0, 'a rerun completes');
  });
}

/** A new repository with 1 MiB data packs. */
function smallPackRepo(t: any): string {
  const repo = path.join(tempDir(t), 'repo');
  const r = run('tsbak', ['init', repo, '--pack-size', '1']);
  if (r.code !== 0) throw new Error(r.stderr);
  return repo;
}

t.test('kill -9 after an index checkpoint: the rerun stores only what the checkpoints did not list', async (t) => {
  const repo = smallPackRepo(t);
  const mib = 40;
  const src = bigTree(t, mib);
  // Small checkpoints so that a test tree has several (the default is 64 MiB or 5 minutes).
  const env = { TSBAK_CHECKPOINT_BYTES: String(2 << 20) };
  // Killed (SIGKILL) right after its third index file: src/backend/crash-point.ts.
  const killed = spawnSync(BIN('tsbak-write'), [repo, src, '--json'], { env: testEnv({ ...env, TSBAK_CRASH_AT: 'index/#3:after' }) });
  t.equal(killed.signal, 'SIGKILL', 'killed after three index checkpoints');
  const indexes = () => namesIn(path.join(repo, 'index'));
  t.same(namesIn(path.join(repo, 'snapshots')), [], 'killed before its snapshot');
  const checkpointed = indexes().length;
  t.ok(checkpointed >= 3, `${checkpointed} index files written before the kill`);
  const before = packBytes(repo);
  // Its lock is left behind; its process is gone, so the rerun ignores it.
  t.equal(locksIn(repo).length, 1, 'kill -9 leaves a lock');
  const again = run('tsbak-write', [repo, src, '--json'], env);
  t.equal(again.code, 0, again.stderr);
  const s = lastJson(again.stdout);
  t.comment(`killed run stored ${before} bytes of packs in ${checkpointed} index checkpoint(s); rerun added ${s.bytes_added} bytes, ${s.blobs_added} blobs`);
  const c = run('tsbak', ['check', repo, '--read-data']);
  t.equal(c.code, 0, `check --read-data passes: ${c.stdout}`);
  // What the snapshot uses, in this repository (another repository cuts chunks elsewhere:
  // its chunker's parameters are its own, so its blob counts are not comparable).
  const used = lastJson(run('tsbak', ['stats', repo, '--mode', 'raw-data', '--json']).stdout);
  t.comment(`the snapshot uses ${used.total_blob_count} blobs, ${used.total_size} bytes stored`);
  // Each checkpoint lists at least TSBAK_CHECKPOINT_BYTES of packs the rerun does not upload again.
  t.ok(s.bytes_added <= used.total_size - checkpointed * (2 << 20) + (256 << 10), `the rerun stored at least ${checkpointed} x 2 MiB less than the snapshot holds`);
  t.ok(s.blobs_added < used.total_blob_count, `fewer blobs than the snapshot uses (${s.blobs_added} < ${used.total_blob_count})`);
  t.ok(packBytes(repo) < 1.3 * used.total_size, `the repository is not much larger than one backup (${packBytes(repo)} bytes of packs)`);
});
