// The mount of an S3 repository reads ahead of a walk, with the real mount.tsbak and the S3
// dev server, every request counted by a proxy: `cat` of the small files of one directory
// costs fewer GETs than files (their blobs lie side by side in a pack and come in one
// ranged GET), and a second mount lists the snapshot without a GET of a tree (trees are
// cached on disk).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { run } from './lib/cli.js';
import { withCountingProxy } from './lib/counting-proxy.js';
import { cleanupMount, mountBg, mountPoint, waitFor } from './lib/fuse-helpers.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['pf'] });
const proxy = await withCountingProxy(t, server);
const dir = tempDir(t, 'tsbak-fuse-prefetch-');
const mnt = mountPoint(t, path.join(dir, 'mnt'));
const env = { ...devServerEnv(server), AWS_ENDPOINT_URL_S3: proxy.url, TSBAK_CACHE_DIR: path.join(dir, 'cache') };
const REPO = 's3://pf/repo';

const src = path.join(dir, 'src');
const FILES = 24;
for (const d of ['docs', 'more/deeper']) {
  mkdirSync(path.join(src, d), { recursive: true });
  for (let i = 0; i < FILES; i++) writeFileSync(path.join(src, d, `note-${i}.txt`), `${d} note ${i}\n`.repeat(50 + i));
}
t.equal(run('tsbak', ['init', REPO], env).code, 0);
const w = run('tsbak-write', [REPO, src], env);
t.equal(w.code, 0, w.stderr);

const gets = async (what: RegExp) => (await proxy.requests()).filter(([m, p]) => m === 'GET' && what.test(p)).length;
const mount = () => {
  const m = mountBg(REPO, mnt, [], env);
  if (m.code !== 0) throw new Error(`mount failed: ${m.stderr}`);
};
const snapDir = () => {
  const snaps = readdirSync(path.join(mnt, 'snapshots')).filter((n) => n !== 'latest');
  return path.join(mnt, 'snapshots', snaps[0]!, src);
};

t.test('cat of the small files of a directory: fewer GETs than files', async (t) => {
  mount();
  const docs = path.join(snapDir(), 'docs');
  const names = readdirSync(docs).sort();
  t.equal(names.length, FILES);
  await proxy.reset();
  const cat = spawnSync('cat', names.map((n) => path.join(docs, n)), { maxBuffer: 16 << 20 });
  t.equal(cat.status, 0, String(cat.stderr));
  const want = names.map((n) => readFileSync(path.join(src, 'docs', n))).join('');
  t.equal(cat.stdout.toString(), want, 'the bytes of every file');
  const data = await gets(/\/packs\/data\//);
  t.ok(data >= 1, `data read from the repository (${data} GETs)`);
  t.ok(data < FILES / 2, `${data} GETs of data packs for ${FILES} files`);
});

t.test('a second mount lists the snapshot without a GET of a tree', async (t) => {
  await cleanupMount(mnt);
  mount();
  await proxy.reset();
  const ls = spawnSync('ls', ['-lR', snapDir()], { encoding: 'utf8' });
  t.equal(ls.status, 0, ls.stderr);
  t.match(ls.stdout, /note-23\.txt/);
  t.match(ls.stdout, /deeper/);
  t.equal(await gets(/\/packs\/tree\//), 0, 'trees come from the disk cache');
});

t.test("readdir starts loading the subdirectories' trees", async (t) => {
  await cleanupMount(mnt);
  mount();
  const stats = () => JSON.parse(spawnSync('getfattr', ['--only-values', '-n', 'user.tsbak.stats', mnt], { encoding: 'utf8' }).stdout);
  const dirOfSrc = snapDir();
  t.ok(statSync(dirOfSrc).isDirectory()); // the trees above it are loaded now
  const before: number = stats().treeLoads;
  t.same(readdirSync(dirOfSrc).sort(), ['docs', 'more']);
  // The listing loads src's tree; docs', more's and more/deeper's follow without being looked
  // up (the listings of the next three levels are built ahead of a walk: fuse/listings-ahead.ts).
  await waitFor('the subdirectories to be loaded', () => stats().treeLoads >= before + 4);
  t.equal(stats().treeLoads - before, 4, 'src, docs, more and more/deeper');
});
