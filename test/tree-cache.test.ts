// Trees cached on disk (src/repo/tree-store.ts), with the real executables against the S3
// dev server, every request counted by a proxy in front of it: the trees a backup writes are
// kept, a second `tsbak ls -l` of a snapshot GETs no tree; a damaged cached tree is dropped and read again, the listing
// unchanged; the cache stays within --tree-cache-size.
import t, { type Test } from 'tap';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, run } from './lib/cli.js';
import { withCountingProxy } from './lib/counting-proxy.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['trees'] });
const proxy = await withCountingProxy(t, server);
const cache = tempDir(t, 'tsbak-tree-cache-');
const env = { ...devServerEnv(server), AWS_ENDPOINT_URL_S3: proxy.url, TSBAK_CACHE_DIR: cache };
const REPO = 's3://trees/repo';

// 60 directories in three levels, a few small files each.
const src = tempDir(t, 'tsbak-tree-src-');
for (let a = 0; a < 4; a++) {
  for (let b = 0; b < 14; b++) {
    const d = path.join(src, `a${a}`, `b${b}`);
    mkdirSync(d, { recursive: true });
    for (let f = 0; f < 3; f++) writeFileSync(path.join(d, `f${f}.txt`), `${a}/${b}/${f}\n`);
  }
}

const init = run('tsbak', ['init', REPO], env);
t.equal(init.code, 0, init.stderr);
const w = run('tsbak-write', [REPO, src, '--json'], env);
t.equal(w.code, 0, w.stderr);
const snap: string = lastJson(w.stdout).snapshot_id;

const treeGets = async () => (await proxy.requests()).filter(([m, p]) => m === 'GET' && p.includes('/packs/tree/')).length;
const ls = async (t: Test, ...extra: string[]) => {
  await proxy.reset();
  const r = run('tsbak', ['ls', '-l', REPO, snap, ...extra], env);
  t.equal(r.code, 0, 'ls exits 0');
  return { out: r.stdout, gets: await treeGets() };
};
const treeDir = () => {
  const repoDir = readdirSync(cache).find((d) => statSync(path.join(cache, d, 'trees'), { throwIfNoEntry: false })?.isDirectory());
  return repoDir ? path.join(cache, repoDir, 'trees') : null;
};
const cached = () => {
  const dir = treeDir();
  return dir ? readdirSync(dir).filter((n) => !n.startsWith('.')).map((n) => ({ file: path.join(dir, n), size: statSync(path.join(dir, n)).size })) : [];
};

let listing = '';

t.test('the trees a backup writes are kept: an ls, and the next backup, GET no tree', async (t) => {
  t.ok(cached().length > 0, 'the backup kept its tree pack in the cache directory');
  const after = await ls(t);
  t.equal(after.gets, 0, 'ls right after the backup: no GET of a tree pack');
  await proxy.reset();
  const again = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(again.code, 0, again.stderr);
  t.equal(await treeGets(), 0, 'the next backup reads its parent from the cache');
  rmSync(treeDir()!, { recursive: true, force: true });
});

t.test('a second ls -l of a snapshot GETs no tree', async (t) => {
  const first = await ls(t);
  listing = first.out;
  t.match(listing, /a3\/b13\/f2\.txt/);
  t.equal(listing.split('\n').filter((l) => /\/f\d\.txt$/.test(l)).length, 4 * 14 * 3, 'every file listed');
  t.ok(first.gets > 0, `the first ls read trees (${first.gets} GETs)`);
  // 61 trees: one read alone, then their pack whole.
  t.ok(first.gets <= 3, `the first ls read the tree pack whole, not tree by tree (${first.gets} GETs)`);
  t.ok(cached().length > 0, 'trees are kept in the cache directory');
  const second = await ls(t);
  t.equal(second.out, listing, 'same listing');
  t.equal(second.gets, 0, 'no GET of a tree pack');
});

t.test('a damaged cached tree is dropped and read again', async (t) => {
  // Every cached file damaged in the middle: each one's trees fail their check.
  for (const { file, size } of cached()) {
    const b = readFileSync(file);
    b[size >> 1] ^= 0xff;
    writeFileSync(file, b);
  }
  const r = await ls(t);
  t.equal(r.out, listing, 'same listing from the damaged cache');
  t.ok(r.gets > 0, `trees read from the repository again (${r.gets} GETs)`);
  const again = await ls(t);
  t.equal(again.out, listing);
  t.equal(again.gets, 0, 'and cached again');
});

t.test('the cache stays within its bound', async (t) => {
  for (const { file } of cached()) rmSync(file);
  const bound = 4096;
  const r = await ls(t, '--tree-cache-size', String(bound));
  t.equal(r.out, listing);
  const total = cached().reduce((s, f) => s + f.size, 0);
  t.ok(total > 0, `some trees cached (${total} bytes)`);
  t.ok(total <= bound, `${total} bytes cached, within ${bound}`);
});

t.test('--no-cache keeps no tree on disk and still lists', async (t) => {
  const r = await ls(t, '--no-cache');
  t.equal(r.out, listing);
  t.ok(r.gets > 0, 'trees read from the repository');
});

t.test('a second restore GETs no tree either', async (t) => {
  const restore = async () => {
    const out = tempDir(t, 'tsbak-tree-out-');
    await proxy.reset();
    const r = run('tsbak', ['restore', REPO, snap, '--target', out], env);
    t.equal(r.code, 0, r.stderr);
    t.equal(readFileSync(path.join(out, src, 'a3/b13/f2.txt'), 'utf8'), '3/13/2\n');
    return treeGets();
  };
  await restore();
  t.equal(await restore(), 0, 'no GET of a tree pack');
});

t.test('check reads the trees of the repository, not the cached ones', async (t) => {
  await proxy.reset();
  const r = run('tsbak', ['check', REPO], env);
  t.equal(r.code, 0, r.stderr);
  t.ok((await treeGets()) > 0, 'tree packs read');
});
