// The chunker a new repository gets (format/config.ts DEFAULT_CHUNKER), and repositories
// made with other parameters (1 MiB on average, before) keeping theirs: backed up and
// restored byte for byte, their config unchanged.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../src/backend/local.js';
import { DEFAULT_CHUNKER } from '../src/format/config.js';
import { readaheadChunks } from '../src/fuse/fs.js';
import { Repository } from '../src/repo/repository.js';
import { lastJson, newRepo, run } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

process.env.TSBAK_FAST_KDF = '1';

t.test('tsbak init writes the default chunker: 64 KiB / 256 KiB / 4 MiB', async (t) => {
  t.same(DEFAULT_CHUNKER, { min: 64 << 10, avg: 256 << 10, max: 4 << 20 });
  const repo = newRepo(t);
  const r = run('tsbak', ['config', 'show', repo, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.same(lastJson(r.stdout).chunker, DEFAULT_CHUNKER);
});

t.test('a repository with the earlier 256 KiB / 1 MiB / 4 MiB chunker keeps it', async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const old = { min: 256 << 10, avg: 1 << 20, max: 4 << 20 };
  await Repository.init(new LocalBackend(repo), 'correct horse', { chunker: old });
  const src = path.join(dir, 'src');
  mkdirSync(src);
  // Files below each minimum are one chunk whatever the cut points: 200 KiB is one blob
  // under the old minimum, however the default would cut it.
  for (let i = 0; i < 3; i++) writeFileSync(path.join(src, `small${i}`), randomBytes(200 << 10));
  writeFileSync(path.join(src, 'large'), Buffer.concat([randomBytes(3 << 20), Buffer.alloc(2 << 20), randomBytes(1 << 20)]));
  const b = run('tsbak-write', [repo, src, '--json']);
  t.equal(b.code, 0, b.stderr);
  const show = lastJson(run('tsbak', ['config', 'show', repo, '--json']).stdout);
  t.same(show.chunker, old, 'its config is as it was made');
  const target = path.join(dir, 'restored');
  const r = run('tsbak', ['restore', repo, 'latest', '--target', target]);
  t.equal(r.code, 0, r.stderr);
  const restoredSrc = path.join(target, src);
  for (const f of ['small0', 'small1', 'small2', 'large']) {
    t.ok(readFileSync(path.join(restoredSrc, f)).equals(readFileSync(path.join(src, f))), `${f} restored byte for byte`);
  }
  const raw = lastJson(run('tsbak', ['stats', repo, '--mode', 'raw-data', '--json']).stdout);
  // 3 small files (one blob each) + the large file's chunks (at least 6 MiB / 4 MiB = 2) + a tree or more
  t.ok(raw.total_blob_count >= 3 + 2 + 1, `${raw.total_blob_count} blobs`);
});

t.test("the mount reads ahead ~4 MiB whatever the repository's average chunk", async (t) => {
  t.equal(readaheadChunks(1 << 20), 4, 'repositories made before: 4 chunks of 1 MiB, as it was');
  t.equal(readaheadChunks(DEFAULT_CHUNKER.avg), 16, 'the default: 16 chunks of 256 KiB');
  t.equal(readaheadChunks(8 << 20), 4, 'never fewer than 4 chunks');
});
