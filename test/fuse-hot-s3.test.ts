// Issue 23, the mount of an S3 repository whose data is in a warm class (STANDARD): the
// kernel skips open and release (as for a local repository), and files whose packs are all
// hot list their xattrs in the session thread, so `cp -a` costs one request in JavaScript
// per file (its read), and copies no user.tsbak.state. A pack archived behind the
// repository's back (a lifecycle rule) is found by the first read of a file in it: that
// read fails with ENODATA and requests the restore, the file's state is listed again, and
// it reads once restored. Real dev server (manual clock), real mount.tsbak.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CopyObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { run } from './lib/cli.js';
import { cleanupMount, mountBg, mountPoint, waitFor } from './lib/fuse-helpers.js';
import { DEV_CREDENTIALS, devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

const server = await withDevServer(t, { manualClock: true, buckets: ['hot'] });
const s3 = new S3Client({ endpoint: server.url, region: 'us-east-1', credentials: DEV_CREDENTIALS, forcePathStyle: true });
const dir = tempDir(t, 'tsbak-fuse-hot-s3-');
const mnt = mountPoint(t, path.join(dir, 'mnt'));
const env = devServerEnv(server, { TSBAK_CACHE_DIR: path.join(dir, 'writer-cache') });
const REPO = 's3://hot/repo';

const src = path.join(dir, 'src');
mkdirSync(path.join(src, 'docs'), { recursive: true });
for (let i = 0; i < 20; i++) writeFileSync(path.join(src, 'docs', `note-${i}.txt`), `note ${i}\n`.repeat(40 + i));
writeFileSync(path.join(src, 'empty'), '');
writeFileSync(path.join(src, 'colored.txt'), 'blue\n');
t.equal(sh('setfattr', ['-n', 'user.color', '-v', 'blue', path.join(src, 'colored.txt')]).status, 0, 'setfattr');

t.equal(run('tsbak', ['init', REPO], env).code, 0, 'init (data in STANDARD)');
const w1 = run('tsbak-write', [REPO, src], env);
t.equal(w1.code, 0, w1.stderr);

const dataPacks = async (): Promise<string[]> => {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: 'hot', Prefix: 'repo/packs/data/' }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
};
const late = randomBytes(300 << 10);
let latePacks: string[] = [];
const snap = () => path.join(mnt, 'snapshots', readlinkSync(path.join(mnt, 'snapshots', 'latest')), src);
const stats = () => JSON.parse(sh('getfattr', ['--only-values', '-n', 'user.tsbak.stats', mnt]).stdout);
const state = (f: string) => sh('getfattr', ['--only-values', '-n', 'user.tsbak.state', f]).stdout;
const listed = (f: string) => sh('getfattr', ['-d', '-m', '-', f]).stdout;

t.test('a second backup with late.bin alone in its packs, mounted', async (t) => {
  const before = await dataPacks();
  writeFileSync(path.join(src, 'late.bin'), late);
  const w2 = run('tsbak-write', [REPO, src], env);
  t.equal(w2.code, 0, w2.stderr);
  latePacks = (await dataPacks()).filter((k) => !before.includes(k));
  t.ok(latePacks.length >= 1, `late.bin's data packs (${latePacks.length})`);
  const m = mountBg(REPO, mnt, [`s3_endpoint=${server.url}`, 's3_path_style', `cache_dir=${path.join(dir, 'cache')}`, 'cold_poll=1'], env);
  t.equal(m.code, 0, m.stderr);
});

t.test('cp -a of hot data: no open, release or listxattr in JavaScript, no state copied', async (t) => {
  const before = stats();
  const out = path.join(dir, 'copy');
  mkdirSync(out);
  const copy = sh('cp', ['-a', path.join(snap(), 'docs'), path.join(snap(), 'colored.txt'), path.join(snap(), 'empty'), out]);
  t.equal(copy.status, 0, copy.stderr);
  for (let i = 0; i < 20; i++) t.equal(readFileSync(path.join(out, 'docs', `note-${i}.txt`), 'utf8'), `note ${i}\n`.repeat(40 + i));
  t.equal(readFileSync(path.join(out, 'empty'), 'utf8'), '');
  t.match(listed(path.join(out, 'colored.txt')), /user\.color="blue"/, "the file's own xattr is copied");
  const copies = readdirSync(path.join(out, 'docs')).map((n) => path.join(out, 'docs', n));
  for (const f of [...copies, path.join(out, 'empty')]) t.notMatch(listed(f), /tsbak/, `no user.tsbak.state on ${path.basename(f)}`);
  const after = stats();
  const delta = (op: string) => (after.requests[op] ?? 0) - (before.requests[op] ?? 0);
  t.equal(delta('open'), 0, 'no open reached JavaScript');
  t.equal(delta('release'), 0, 'no release reached JavaScript');
  const lists = delta('listxattr');
  t.ok(lists >= 1 && lists <= 2, `listxattr reached JavaScript for the file with xattrs of its own only (${lists})`);
  t.ok(after.answeredNatively - before.answeredNatively >= 2 * 21, `xattr lists answered in the session thread (${after.answeredNatively - before.answeredNatively})`);
  t.equal(state(path.join(snap(), 'docs', 'note-0.txt')), 'hot', 'user.tsbak.state still answers');
});

t.test('a pack archived by a lifecycle rule: the first read finds it, the state is listed again', async (t) => {
  const f = path.join(snap(), 'late.bin');
  t.notMatch(listed(f), /tsbak/, 'hot: the state is not listed');
  for (const key of latePacks) {
    await s3.send(new CopyObjectCommand({ Bucket: 'hot', Key: key, CopySource: `hot/${key}`, StorageClass: 'GLACIER', MetadataDirective: 'REPLACE' }));
  }
  await server.resetStats();
  const cat = sh('cat', [f]);
  t.not(cat.status, 0, 'the read fails');
  t.match(cat.stderr, /No data available/, 'ENODATA: restore requested, try again later');
  const st = await server.stats();
  t.equal(st.requests.RestoreObject ?? 0, latePacks.length, 'the restore of its packs was requested');
  t.match(listed(f), /user\.tsbak\.state="restoring"/, 'listxattr shows the state again');
  t.equal(state(f), 'restoring');
  t.notMatch(listed(path.join(snap(), 'docs', 'note-1.txt')), /tsbak/, 'files in hot packs still list no state');

  t.equal(await server.completeRestores(), latePacks.length, 'the restores complete');
  await waitFor('the mount to see late.bin restored', () => state(f) === 'available', 15_000, 200);
  const again = spawnSync('cat', [f]);
  t.equal(again.status, 0, String(again.stderr));
  t.ok(again.stdout.equals(late), 'the bytes of late.bin, once restored');
});

t.test('unmount', async () => {
  s3.destroy();
  await cleanupMount(mnt);
});
