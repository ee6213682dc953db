// Issue 24: check while a backup writes (no false damage), check --read-data reads packs
// that only a second index file names, and check reads snapshots from the repository, not
// from the local cache.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../src/backend/local.js';
import type { Backend, ObjectInfo } from '../src/backend/backend.js';
import { Repository } from '../src/repo/repository.js';
import { checkRepository } from '../src/repo/check.js';
import { BIN, lastJson, newRepo, run, testEnv } from './lib/cli.js';
import { listFiles } from './lib/files.js';
import { tempDir } from './lib/temp.js';

process.env.TSBAK_FAST_KDF = '1';

function tree(t: any, files: number, size: number): string {
  const src = tempDir(t);
  mkdirSync(path.join(src, 'd'));
  for (let i = 0; i < files; i++) writeFileSync(path.join(src, 'd', `f${i}`), randomBytes(size));
  return src;
}

/** Flips one byte in the middle of a file. */
function damage(file: string): void {
  const at = statSync(file).size >> 1;
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x55;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

t.test('a snapshot written between listing snapshots and loading the index is not damage', async (t) => {
  const repo = newRepo(t);
  const src = tree(t, 20, 4096);
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  writeFileSync(path.join(src, 'd', 'new'), randomBytes(100_000));
  // A backend that runs a whole backup (another process) right after check lists index/:
  // its index files are then not loaded, and its snapshot must not be looked at.
  const local = new LocalBackend(repo);
  let backups = 0;
  const hooked: Backend = new Proxy(local, {
    get(target, prop, recv) {
      if (prop === 'list')
        return async function* (prefix: string): AsyncIterable<ObjectInfo> {
          yield* target.list(prefix);
          if (prefix === 'index/' && backups === 0) {
            backups++;
            const r = spawnSync(BIN('tsbak-write'), [repo, src], { env: testEnv(), encoding: 'utf8' });
            if (r.status !== 0) throw new Error(`backup during check: ${r.stderr}`);
          }
        };
      const v = Reflect.get(target, prop, recv);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const r = await checkRepository(await Repository.open(hooked, { password: 'correct horse', cacheRoot: null }));
  t.equal(backups, 1, 'a backup ran in the middle of check');
  t.same(r.errors, [], 'no damage reported');
  t.equal(r.snapshots, 1, 'the snapshot written meanwhile is for the next check');
  t.equal(readdirSync(path.join(repo, 'snapshots')).length, 2);
  const again = run('tsbak', ['check', repo, '--read-data']);
  t.equal(again.code, 0, again.stdout);
});

t.test('concurrent backup and check processes: check never reports damage', async (t) => {
  const repo = newRepo(t);
  const src = tree(t, 200, 2000);
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  const go = (bin: string, args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(BIN(bin), args, { env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.on('exit', (code) => resolve({ code, out }));
    });
  for (let round = 0; round < 4; round++) {
    writeFileSync(path.join(src, 'd', `round${round}`), randomBytes(300_000));
    const [w, c] = await Promise.all([go('tsbak-write', [repo, src]), go('tsbak', ['check', repo])]);
    t.equal(w.code, 0, `round ${round}: backup ${w.out}`);
    t.equal(c.code, 0, `round ${round}: check ${c.out}`);
  }
});

t.test('check --read-data reads a pack that only a second index file names', async (t) => {
  const repo = newRepo(t);
  const src = tree(t, 4, 200_000);
  // A writer key backs up first; the master does not count on a writer's entries: it stores
  // the same blobs again, in packs of its own that only its (second) index file names.
  const key = path.join(tempDir(t), 'w.key');
  t.equal(run('tsbak', ['key', 'add-writer', repo, '--name', 'w', '--out', key]).code, 0);
  t.equal(run('tsbak-write', [repo, src, '--key-file', key], { TSBAK_PASSWORD: '' }).code, 0);
  const packsBefore = new Set(listFiles(path.join(repo, 'packs')));
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  t.equal(readdirSync(path.join(repo, 'index')).length, 2, 'two index files');
  const theirs = listFiles(path.join(repo, 'packs')).filter((p) => !packsBefore.has(p) && p.startsWith('data/'));
  t.ok(theirs.length >= 1, 'the master stored data packs of its own');
  const ok = run('tsbak', ['check', repo, '--read-data', '--json']);
  t.equal(ok.code, 0, ok.stdout);
  const blobs = lastJson(ok.stdout).blobs_read;
  damage(path.join(repo, 'packs', theirs[0]!));
  const bad = run('tsbak', ['check', repo, '--read-data', '--json']);
  t.equal(bad.code, 14, 'damage in the second copy is found');
  const errors: string[] = lastJson(bad.stdout).errors;
  const id = path.basename(theirs[0]!);
  t.ok(errors.some((e) => e.includes(id) && /damaged|does not match/.test(e)), `the pack is named: ${errors.join(' | ')}`);
  t.ok(errors.some((e) => /another copy is good/.test(e)), 'and the good copy is said');
  t.ok(blobs >= 8, `every copy was read (${blobs} blobs)`);
});

t.test('check does not trust a cached copy of a damaged snapshot object', async (t) => {
  const repo = newRepo(t);
  const cache = tempDir(t);
  const env = { TSBAK_CACHE_DIR: cache };
  const src = tree(t, 2, 1000);
  t.equal(run('tsbak-write', [repo, src], env).code, 0);
  t.equal(run('tsbak', ['snapshots', repo], env).code, 0, 'the snapshot is in the local cache now');
  const [id] = readdirSync(path.join(repo, 'snapshots'));
  t.ok(listFiles(cache).some((f) => f.endsWith(`snapshots/${id}`)), 'cached');
  damage(path.join(repo, 'snapshots', id!));
  const c = run('tsbak', ['check', repo], env);
  t.equal(c.code, 14, c.stdout);
  t.match(c.stdout, new RegExp(`error: snapshot ${id!.slice(0, 8)} is damaged`));
});
