// find, diff and stats over S3 (the dev server, every request counted by a proxy): trees
// are read in batches by pack, so a walk of hundreds of directories costs a few GETs, not
// one per directory; diff does not read the directories both snapshots share.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, lastJson, run, testEnv } from './lib/cli.js';
import { withCountingProxy } from './lib/counting-proxy.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['browse'] });
const proxy = await withCountingProxy(t, server);
const env = { ...devServerEnv(server), AWS_ENDPOINT_URL_S3: proxy.url, TSBAK_CACHE_DIR: tempDir(t, 'tsbak-browse-cache-') };
const REPO = 's3://browse/repo';

// 10 x 40 directories, two small files each: 412 trees with the one below.
const src = tempDir(t, 'tsbak-browse-src-');
for (let a = 0; a < 10; a++) {
  for (let b = 0; b < 40; b++) {
    const d = path.join(src, `a${a}`, `b${b}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, 'one.txt'), `${a}/${b}\n`);
    writeFileSync(path.join(d, 'two.dat'), `${b}/${a}\n`);
  }
}
// and one directory of 200 small files, for dump.
mkdirSync(path.join(src, 'flat'));
for (let i = 0; i < 200; i++) writeFileSync(path.join(src, 'flat', `f${i}.dat`), `small file ${i}\n`);
t.equal(run('tsbak', ['init', REPO], env).code, 0);
const w1 = run('tsbak-write', [REPO, src, '--json'], env);
t.equal(w1.code, 0, w1.stderr);
writeFileSync(path.join(src, 'a7', 'b3', 'one.txt'), 'changed\n');
const w2 = run('tsbak-write', [REPO, src, '--json'], env);
t.equal(w2.code, 0, w2.stderr);
const [s1, s2] = [lastJson(w1.stdout).snapshot_id, lastJson(w2.stdout).snapshot_id];

const treeGets = async () => (await proxy.requests()).filter(([m, p]) => m === 'GET' && p.includes('/packs/tree/')).length;

t.test('find walks 412 trees of each snapshot in a few GETs', async (t) => {
  await proxy.reset();
  const r = run('tsbak', ['find', REPO, 'one.txt', '--no-cache', '--json'], env);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.equal(j.hits, 800, 'every one.txt of both snapshots');
  const gets = await treeGets();
  t.ok(gets > 0 && gets <= 12, `tree GETs: ${gets} for 824 trees`);
});

t.test('diff reads only the directories on the way to a change', async (t) => {
  await proxy.reset();
  const r = run('tsbak', ['diff', REPO, s1, s2, '--no-cache', '--json'], env);
  t.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  t.same(d.changes.filter((c: any) => c.modifier !== 'U').map((c: any) => [c.modifier, c.path]), [['M', `${src}/a7/b3/one.txt`]]);
  t.same(d.stats.files, { added: 0, removed: 0, changed: 1 });
  const gets = await treeGets();
  t.ok(gets > 0 && gets <= 8, `tree GETs: ${gets}`);
});

t.test('stats restore-size over S3', async (t) => {
  await proxy.reset();
  const r = run('tsbak', ['stats', REPO, s2, '--no-cache', '--json'], env);
  t.equal(r.code, 0, r.stderr);
  t.equal(JSON.parse(r.stdout).total_file_count, 1000);
  const gets = await treeGets();
  t.ok(gets <= 12, `tree GETs: ${gets}`);
});

t.test("dump reads a directory's small files together", async (t) => {
  await proxy.reset();
  const r = spawnSync(BIN('tsbak'), ['dump', REPO, s2, `${src}/flat`, '--no-cache'], { env: testEnv(env), maxBuffer: 64 << 20 });
  t.equal(r.status, 0, r.stderr.toString());
  const x = tempDir(t);
  t.equal(spawnSync('tar', ['-x', '-C', x], { input: r.stdout }).status, 0);
  for (const i of [0, 99, 199]) t.equal(readFileSync(path.join(x, src.slice(1), 'flat', `f${i}.dat`), 'utf8'), `small file ${i}\n`);
  const dataGets = (await proxy.requests()).filter(([m, p]) => m === 'GET' && p.includes('/packs/data/')).length;
  t.ok(dataGets > 0 && dataGets <= 4, `data GETs: ${dataGets} for 200 files`);
});
