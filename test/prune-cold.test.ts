// Prune's economics on the S3 dev server with DEEP_ARCHIVE data packs and the server's
// clock (--manual-clock, /__dev/advance): objects are dated by that clock and prune ages
// them by it (the servers' Date header). Inside the 180-day minimum, deleting an unused pack
// shows its early-deletion charge and a partly used one is kept with the date deleting it
// is free; 181 days later the charge is gone. An incomplete multipart upload under the
// repository's prefix is aborted.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { lastJson, run } from './lib/cli.js';
import { DEV_CREDENTIALS, devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['cold'], manualClock: true });
const dir = tempDir(t, 'tsbak-prune-cold-');
const env = devServerEnv(server, { TSBAK_CACHE_DIR: path.join(dir, 'cache') });
const REPO = 's3://cold/repo';
const S3 = ['--s3-endpoint', server.url, '--s3-path-style'];
const src = path.join(dir, 'src');
mkdirSync(src);
const DAY = 86_400_000;
const s3 = new S3Client({ endpoint: server.url, forcePathStyle: true, region: 'us-east-1', credentials: DEV_CREDENTIALS });
t.teardown(() => s3.destroy());
const uploads = async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: 'cold', Prefix: 'repo/' }))).Uploads ?? [];

t.test('prune ages cold packs by the storage clock', async (t) => {
  t.equal(run('tsbak', ['init', REPO, '--data-class', 'DEEP_ARCHIVE', '--pack-size', '1', ...S3], env).code, 0);
  // The first pack holds a file that stays (partly used after forget); later ones only the
  // file replaced each time (unused after forget).
  writeFileSync(path.join(src, 'stays'), randomBytes(200_000));
  for (let i = 0; i < 3; i++) {
    writeFileSync(path.join(src, 'changes'), randomBytes(300_000));
    const w = run('tsbak-write', [REPO, src, '-q', ...S3], env);
    t.equal(w.code, 0, w.stderr);
  }
  t.equal(run('tsbak', ['forget', REPO, '--keep-last', '1', ...S3], env).code, 0);
  // A multipart upload a killed writer left, and one outside the repository's prefix.
  const mine = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'cold', Key: `repo/packs/data/ab/${'ab'.repeat(32)}`, StorageClass: 'DEEP_ARCHIVE' }));
  const other = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'cold', Key: 'elsewhere/x' }));
  t.equal((await uploads()).length, 1, 'ListMultipartUploads answers, by prefix');

  const dry = run('tsbak', ['prune', REPO, '--dry-run', '--json', ...S3], env);
  t.equal(dry.code, 0, dry.stderr);
  const p = lastJson(dry.stdout);
  const cold = (p.decisions as any[]).filter((d) => d.storage_class === 'DEEP_ARCHIVE');
  const unused = cold.filter((d) => d.fate === 'delete');
  t.ok(unused.length >= 1, 'unused cold packs are deleted');
  t.ok(unused.every((d) => d.early_deletion_usd > 0 && d.age_days < 1), 'each with its early-deletion charge (days old)');
  t.ok(p.early_deletion_usd > 0, 'the charge is in the one-time costs');
  t.ok(p.break_even_months > 0 && p.break_even_months <= 6, `break-even within the 6 months left of the minimum (${p.break_even_months}; the STANDARD tree packs deleted save more per byte)`);
  const partly = cold.filter((d) => d.fate === 'keep' && d.unused_bytes > 0);
  t.equal(partly.length, 1, 'the partly used cold pack is kept');
  t.match(partly[0].why, /cold: not repacked without --repack-cold/);
  t.same(p.waiting.map((w: any) => w.pack), [partly[0].pack], 'and listed with its free date');
  const free = Date.parse(p.waiting[0].free_from);
  t.ok(Math.abs(free - (Date.parse(p.now) + 180 * DAY)) < DAY, 'free 180 days after it was written');
  t.same(p.unfinished.map((u: any) => u.upload_id), [mine.UploadId], 'the incomplete upload under the prefix, only');
  const human = run('tsbak', ['prune', REPO, '--dry-run', ...S3], env);
  t.match(human.stdout, /early deletion \$0\.0/);
  t.match(human.stdout, /Free to delete from/);
  t.match(human.stdout, /break-even: \d\.\d months/);

  // 181 days later by the server's clock.
  await server.advance(181 * DAY);
  const later = lastJson(run('tsbak', ['prune', REPO, '--dry-run', '--json', ...S3], env).stdout);
  t.ok(Date.parse(later.now) - Date.parse(p.now) > 180 * DAY, 'prune read the clock from the server');
  t.equal(later.early_deletion_usd, 0, 'no early-deletion charge past the minimum');
  t.ok(later.packs.delete_packs >= unused.length, 'the unused packs still go');
  t.same(later.waiting, [], 'nothing waits');
  t.equal(later.break_even_months, 0, 'no one-time cost: pays back at once');
  const rc = lastJson(run('tsbak', ['prune', REPO, '--dry-run', '--repack-cold', '--json', ...S3], env).stdout);
  const d = (rc.decisions as any[]).find((x) => x.pack === partly[0].pack);
  t.ok(d.fate === 'repack' || /would not pay back/.test(d.why), `--repack-cold weighs the restore: ${d.fate}, ${d.why}`);

  const real = run('tsbak', ['prune', REPO, '--json', ...S3], env);
  t.equal(real.code, 0, real.stderr);
  const res = lastJson(real.stdout).result;
  t.ok(res.packs_deleted >= unused.length);
  t.equal(res.unfinished_removed, 1);
  t.same(await uploads(), [], 'the upload was aborted');
  const after = lastJson(run('tsbak', ['prune', REPO, '--dry-run', '--json', ...S3], env).stdout);
  const still = (after.decisions as any[]).find((x) => x.pack === partly[0].pack);
  t.equal(still.unused_bytes, partly[0].unused_bytes, 'the kept cold pack still counts its unused bytes (the compact index keeps its entries)');
  t.equal(after.packs.delete_packs, 0, 'nothing left to delete');
  const check = run('tsbak', ['check', REPO, ...S3], env);
  t.equal(check.code, 0, check.stdout + check.stderr);
  const ls = run('tsbak', ['ls', REPO, 'latest', ...S3], env);
  t.equal(ls.code, 0, ls.stderr);
  t.match(ls.stdout, /stays/);
  await s3.send(new AbortMultipartUploadCommand({ Bucket: 'cold', Key: 'elsewhere/x', UploadId: other.UploadId }));
});
