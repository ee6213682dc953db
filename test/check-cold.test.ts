// Issue 24: check --read-data(-subset) on Deep Archive data (the S3 dev server, manual
// clock): the packs chosen are requested in one batch after a cost line, not reported as
// damage (exit 15); once restored, the same check reads them.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, run } from './lib/cli.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['coldcheck'], manualClock: true });
const env = devServerEnv(server, { TSBAK_CACHE_DIR: tempDir(t) });
const S3 = ['--s3-endpoint', server.url, '--s3-path-style'];
const REPO = 's3://coldcheck/r';

t.test('cold packs: cost shown, restores requested in one batch, exit 15; read once restored', async (t) => {
  t.equal(run('tsbak', ['init', REPO, '--data-class', 'DEEP_ARCHIVE', '--pack-size', '1', ...S3], env).code, 0);
  const src = tempDir(t);
  for (let i = 0; i < 6; i++) writeFileSync(path.join(src, `f${i}`), randomBytes(400_000));
  t.equal(run('tsbak-write', [REPO, src, ...S3], env).code, 0);
  const plain = run('tsbak', ['check', REPO, ...S3], env);
  t.equal(plain.code, 0, 'check without reading data needs no restore');

  await server.resetStats();
  const first = run('tsbak', ['check', REPO, '--read-data-subset', '1/1', ...S3], env);
  t.equal(first.code, 15, first.stdout + first.stderr);
  t.match(first.stderr, /tsbak: \d+ packs \(.*\) in DEEP_ARCHIVE: \d+ cold/);
  t.match(first.stderr, /to restore: \d+ objects, .* tier Bulk, kept 7 days: \$/);
  t.match(first.stderr, /requested (\d+) restores \(tier Bulk/);
  const requested = Number(/requested (\d+) restores/.exec(first.stderr)![1]);
  t.equal((await server.stats()).requests.RestoreObject, requested, 'one request per cold pack');
  t.match(first.stdout, /no errors\n\d+ packs \(.*\) in cold storage were not read: their restores are requested.*run this check again then \(the same n\/t reads the same packs\)/);
  t.notMatch(first.stdout, /error:/, 'not damage');

  const again = run('tsbak', ['check', REPO, '--read-data', '--json', ...S3], env);
  t.equal(again.code, 15, 'still restoring: not read, not damage');
  t.equal(lastJson(again.stdout).errors.length, 0);
  t.ok(lastJson(again.stdout).cold_not_read.packs >= requested);

  // A request that retries first (stats): the dev server may have closed the kept-alive connection.
  await server.stats();
  t.ok((await server.completeRestores()) >= requested, 'restores completed');
  const done = run('tsbak', ['check', REPO, '--read-data', '--json', ...S3], env);
  t.equal(done.code, 0, done.stderr);
  const j = lastJson(done.stdout);
  t.same(j.cold_not_read, { packs: 0, bytes: 0 });
  t.ok(j.packs_read >= requested, `${j.packs_read} packs read`);
  t.ok(j.blobs_read >= 6, `${j.blobs_read} blobs read`);
});
