// What a command lists before it holds its lock is not what it works on. Opening a
// repository starts the snapshot and index listings early (backend/warm-start.ts); a
// command held right before its lock is written (TSBAK_CRASH_AT=locks/#1:pause) while
// another one changes the repository must still work on the repository as it is once its
// lock is held:
// - a backup must not reuse blobs of packs a prune deleted meanwhile (its snapshot would
//   name data that is gone);
// - a prune must not take a backup that completed meanwhile for absent (it would delete
//   that backup's packs as unindexed).
// Whatever the timing, the assertions are about the result: every snapshot restores.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { lastJson, run, start } from './lib/cli.js';
import { tempDir } from './lib/temp.js';
import { whenFiles } from './lib/file-events.js';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repo/repository.js';
import { backup } from '../src/writer/backup.js';
import { TsbakError } from '../src/errors.js';

function heldBeforeLock(t: Test, bin: string, args: string[], dir: string): { done: Promise<{ code: number | null; stdout: string; stderr: string }>; paused: Promise<void>; go: () => void } {
  const pauseDir = path.join(dir, `pause-${bin}`);
  mkdirSync(pauseDir);
  const child = start(bin, args, { TSBAK_CRASH_AT: 'locks/#1:pause', TSBAK_PAUSE_DIR: pauseDir });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  const paused = whenFiles(pauseDir, () => existsSync(path.join(pauseDir, 'paused')), {
    failed: done.then((r) => new Error(`${bin} exited (${r.code}) before its lock: ${r.stderr}`)),
  });
  t.teardown(() => void child.kill('SIGKILL'));
  return { done, paused, go: () => writeFileSync(path.join(pauseDir, 'go'), '') };
}

function restoresAll(t: Test, repo: string, dir: string): void {
  const check = run('tsbak', ['check', repo, '--read-data']);
  t.equal(check.code, 0, `check --read-data: ${check.stdout}${check.stderr}`);
  const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout) as Array<{ id: string }>;
  for (const s of snaps) {
    const r = run('tsbak', ['restore', repo, s.id, '--target', path.join(dir, 'out', s.id)]);
    t.equal(r.code, 0, `snapshot ${s.id.slice(0, 8)} restores: ${r.stderr}`);
  }
}

/** A repository (no parity) with one snapshot of src, which holds one 300 kB random file. */
function oneSnapshot(t: Test): { dir: string; repo: string; src: string; firstId: string } {
  const dir = tempDir(t, 'tsbak-lock-fresh-');
  const repo = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  mkdirSync(src);
  t.equal(run('tsbak', ['init', repo, '--parity', 'none']).code, 0);
  writeFileSync(path.join(src, 'kept'), randomBytes(300_000));
  const first = run('tsbak-write', [repo, src, '--json']);
  t.equal(first.code, 0, first.stderr);
  return { dir, repo, src, firstId: lastJson(first.stdout).snapshot_id as string };
}

t.test('a backup held before its lock while a prune deletes what it would reuse', async (t) => {
  const { dir, repo, src, firstId } = oneSnapshot(t);
  // The second backup opens (listing the index that holds `kept`'s blobs) and waits.
  const b = heldBeforeLock(t, 'tsbak-write', [repo, src, '--json'], dir);
  await b.paused;
  // Meanwhile the only snapshot is forgotten and its packs pruned.
  t.equal(run('tsbak', ['forget', repo, firstId]).code, 0);
  const p = run('tsbak', ['prune', repo]);
  t.equal(p.code, 0, p.stderr);
  t.match(p.stdout, /deleted [1-9]\d* packs/, 'the prune deleted packs');
  b.go();
  const r = await b.done;
  t.equal(r.code, 0, r.stderr);
  t.ok(lastJson(r.stdout).bytes_added > 250_000, `the backup stored kept's data again (${lastJson(r.stdout).bytes_added} bytes added)`);
  restoresAll(t, repo, dir);
});

t.test('a prune held before its lock while a backup completes', async (t) => {
  const { dir, repo, src } = oneSnapshot(t);
  // The prune opens (listing snapshots and index files) and waits.
  const p = heldBeforeLock(t, 'tsbak', ['prune', repo, '--json'], dir);
  await p.paused;
  writeFileSync(path.join(src, 'two'), randomBytes(300_000));
  const b = run('tsbak-write', [repo, src, '--json']);
  t.equal(b.code, 0, b.stderr);
  p.go();
  const r = await p.done;
  t.equal(r.code, 0, r.stderr);
  restoresAll(t, repo, dir);
  t.equal((JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout) as unknown[]).length, 2, 'both snapshots are there');
});

t.test('a process that loaded the index before a prune replaced it refuses to back up on it (watch reopens)', async (t) => {
  const { repo: repoDir, src, firstId } = oneSnapshot(t);
  const repo = await Repository.open(new LocalBackend(repoDir), { password: 'correct horse' });
  await repo.loadIndex();
  t.equal(run('tsbak', ['forget', repoDir, firstId, '--prune']).code, 0);
  const failed = await backup(repo, { paths: [src], cacheDir: null }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(failed instanceof TsbakError && failed.code === 'LOCKED', `LOCKED: ${String(failed)}`);
  t.match(String((failed as Error)?.message), /deleted since \(a prune or repair ran meanwhile\); nothing was saved/);
  t.same(JSON.parse(run('tsbak', ['snapshots', repoDir, '--json']).stdout), [], 'no snapshot saved');
  t.same(readdirSync(path.join(repoDir, 'locks')), [], 'its lock released');
});
