// prune --repack-cold on the S3 dev server: a DEEP_ARCHIVE pack past its 180 days that is
// almost all unused pays a Bulk restore back within a year when prune runs in the region
// (--in-region). The first run requests the restore and exits 15 changing nothing; once the
// restore is done the next run repacks it; the kept snapshot is intact.
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { lastJson, run } from './lib/cli.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['cold'], manualClock: true });
const dir = tempDir(t, 'tsbak-repack-cold-');
const env = devServerEnv(server, { TSBAK_CACHE_DIR: path.join(dir, 'cache') });
const REPO = 's3://cold/repo';
const S3 = ['--s3-endpoint', server.url, '--s3-path-style'];
const src = path.join(dir, 'src');
mkdirSync(src);

t.test('a cold pack repacked after its restore', async (t) => {
  t.equal(run('tsbak', ['init', REPO, '--data-class', 'DEEP_ARCHIVE', '--pack-size', '128', ...S3], env).code, 0);
  writeFileSync(path.join(src, 'stays'), 'a small file that stays\n'.repeat(40));
  writeFileSync(path.join(src, 'big'), randomBytes(72 << 20));
  t.equal(run('tsbak-write', [REPO, src, '-q', ...S3], env).code, 0);
  writeFileSync(path.join(src, 'big'), 'small now\n');
  t.equal(run('tsbak-write', [REPO, src, '-q', ...S3], env).code, 0);
  t.equal(run('tsbak', ['forget', REPO, '--keep-last', '1', ...S3], env).code, 0);
  await server.advance(200 * 86_400_000);

  const out = lastJson(run('tsbak', ['prune', REPO, '--dry-run', '--json', ...S3], env).stdout);
  const big = (out.decisions as any[]).find((d) => d.storage_class === 'DEEP_ARCHIVE' && d.unused_bytes > 70 << 20);
  t.ok(big, 'the big pack is almost all unused');
  t.match(big.why, /--repack-cold/, 'not repacked by default');
  const away = lastJson(run('tsbak', ['prune', REPO, '--dry-run', '--repack-cold', '--json', ...S3], env).stdout);
  t.match((away.decisions as any[]).find((d) => d.pack === big.pack).why, /would not pay back/, 'downloaded out of AWS it never pays back');
  const here = lastJson(run('tsbak', ['prune', REPO, '--dry-run', '--repack-cold', '--in-region', '--json', ...S3], env).stdout);
  const d = (here.decisions as any[]).find((x) => x.pack === big.pack);
  t.equal(d.fate, 'repack', 'in the region it pays back');
  t.ok(here.restore_usd > 0 && here.break_even_months > 0 && here.break_even_months < 12, `restore ${here.restore_usd}, break-even ${here.break_even_months} months`);

  const first = run('tsbak', ['prune', REPO, '--repack-cold', '--in-region', ...S3], env);
  t.equal(first.code, 15, `restores requested, exit 15: ${first.stderr}`);
  t.match(first.stderr, /being restored/);
  const again = lastJson(run('tsbak', ['prune', REPO, '--dry-run', '--repack-cold', '--in-region', '--json', ...S3], env).stdout);
  t.equal(again.packs.packs, here.packs.packs, 'nothing was changed');
  t.equal(await server.completeRestores(), 1, 'one restore');

  const done = run('tsbak', ['prune', REPO, '--repack-cold', '--in-region', '--json', ...S3], env);
  t.equal(done.code, 0, done.stderr);
  const res = lastJson(done.stdout).result;
  t.equal(res.packs_repacked, 1);
  t.ok(res.bytes_written < 1 << 20, `the used blobs only (${res.bytes_written} bytes)`);
  const after = lastJson(run('tsbak', ['prune', REPO, '--dry-run', '--json', ...S3], env).stdout);
  t.ok(after.packs.bytes < 1 << 20, `the repository holds ${after.packs.bytes} bytes of packs`);
  t.equal(run('tsbak', ['check', REPO, ...S3], env).code, 0);
  const ls = run('tsbak', ['ls', REPO, 'latest', ...S3], env);
  t.match(ls.stdout, /stays/);
  // The new pack is DEEP_ARCHIVE too: restore the snapshot through the usual way.
  const target = path.join(dir, 'out');
  const r1 = run('tsbak', ['restore', REPO, 'latest', '--target', target, '--no-wait', ...S3], env);
  t.equal(r1.code, 15, 'the new pack is cold: restore requested');
  await server.completeRestores();
  const r2 = run('tsbak', ['restore', REPO, 'latest', '--target', target, ...S3], env);
  t.equal(r2.code, 0, r2.stderr);
  t.equal(readFileSync(path.join(target, src, 'stays'), 'utf8'), 'a small file that stays\n'.repeat(40), 'the repacked file restores');
  t.equal(readFileSync(path.join(target, src, 'big'), 'utf8'), 'small now\n');
});
