// check --read-data-subset: n/m runs read disjoint sets of packs that together are all of
// them, a damaged pack is found by the run whose subset holds it; on the S3 dev server with
// data packs in DEEP_ARCHIVE (manual clock) the restore cost is printed and every restore is
// requested before any data pack is read, --no-wait exits 15, and a later run reads them.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, run, start } from './lib/cli.js';
import { withCountingProxy } from './lib/counting-proxy.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';
import { packGroup } from '../src/repo/check-subset.js';

const src = tempDir(t, 'tsbak-subset-src-');
mkdirSync(path.join(src, 'd'));
for (let i = 0; i < 8; i++) writeFileSync(path.join(src, 'd', `f${i}`), randomBytes(700 << 10));
for (let i = 0; i < 10; i++) writeFileSync(path.join(src, `small${i}`), `small ${i}\n`);

function packFiles(repo: string): string[] {
  const out: string[] = [];
  for (const kind of ['data', 'tree']) {
    const dir = path.join(repo, 'packs', kind);
    for (const d of readdirSync(dir)) for (const f of readdirSync(path.join(dir, d))) out.push(`packs/${kind}/${d}/${f}`);
  }
  return out;
}

t.test('local: 1/2 and 2/2 read every pack once; the damaged pack is found by its half', async (t) => {
  const repo = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', repo, '--pack-size', '1']).code, 0);
  const w = run('tsbak-write', [repo, src]);
  t.equal(w.code, 0, w.stderr);
  const packs = packFiles(repo);
  t.ok(packs.length >= 4, `${packs.length} packs`);
  const halves = ['1/2', '2/2'].map((s) => {
    const r = run('tsbak', ['check', repo, '--read-data-subset', s, '--json']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, new RegExp(`reading \\d+ of ${packs.length} packs .*subset ${s}`));
    return lastJson(r.stdout);
  });
  t.equal(halves[0].packsRead + halves[1].packsRead, packs.length, '1/2 + 2/2 read every pack');
  t.equal(halves[0].packsRead, packs.filter((p) => packGroup(p, 2) === 0).length, '1/2 reads group 0');
  const all = lastJson(run('tsbak', ['check', repo, '--read-data', '--json']).stdout);
  t.equal(halves[0].blobsRead + halves[1].blobsRead, all.blobsRead, 'and every blob, once');

  // Damage one data pack in the middle.
  const victim = packs.find((p) => p.startsWith('packs/data/'))!;
  const file = path.join(repo, victim);
  const b = readFileSync(file);
  b[b.length >> 1] ^= 0xff;
  writeFileSync(file, b);
  const mine = `${packGroup(victim, 2) + 1}/2`;
  const other = mine === '1/2' ? '2/2' : '1/2';
  const found = run('tsbak', ['check', repo, '--read-data-subset', mine]);
  t.equal(found.code, 14, `the run of ${mine} finds the damage`);
  t.match(found.stdout, new RegExp(`pack ${victim.replace(/\//g, '\\/')} is damaged`));
  const clean = run('tsbak', ['check', repo, '--read-data-subset', other]);
  t.equal(clean.code, 0, `the run of ${other} does not read it`);
  const pct = run('tsbak', ['check', repo, '--read-data-subset', '100%']);
  t.equal(pct.code, 14, '100% reads it too');
  const bad = run('tsbak', ['check', repo, '--read-data-subset', '3/2']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--read-data-subset: group 3 of 2/);
});

t.test('S3, data in DEEP_ARCHIVE: cost first, restores requested before any data pack is read', async (t) => {
  const server = await withDevServer(t, { buckets: ['sub'], manualClock: true });
  const proxy = await withCountingProxy(t, server);
  const env = devServerEnv(server, { TSBAK_CACHE_DIR: tempDir(t, 'tsbak-subset-cache-'), AWS_ENDPOINT_URL_S3: proxy.url });
  const REPO = 's3://sub/r';
  t.equal(run('tsbak', ['init', REPO, '--data-class', 'DEEP_ARCHIVE', '--pack-size', '1'], env).code, 0);
  const w = run('tsbak-write', [REPO, src], env);
  t.equal(w.code, 0, w.stderr);
  const dataPacks = (await proxy.requests()).filter(([m, p]) => m === 'PUT' && p.startsWith('/sub/r/packs/data/')).map(([, p]) => p);
  const distinct = new Set(dataPacks).size;
  t.ok(distinct >= 3, `${distinct} data packs`);

  await proxy.reset();
  const first = run('tsbak', ['check', REPO, '--read-data-subset', '100%', '--no-wait'], env);
  t.equal(first.code, 15, first.stderr);
  t.match(first.stderr, /to restore: \d+ objects, .* tier Bulk.*\$[0-9.]+/, 'the restore cost is printed');
  t.match(first.stderr, /requested \d+ restores/);
  t.match(first.stderr, /restores requested, run again later/);
  let reqs = await proxy.requests();
  const restores = reqs.filter(([m, p]) => m === 'POST' && p.startsWith('/sub/r/packs/data/'));
  t.equal(new Set(restores.map(([, p]) => p)).size, distinct, 'one restore per data pack');
  t.equal(restores.length, distinct, 'each requested once');
  t.equal(reqs.filter(([m, p]) => m === 'GET' && p.startsWith('/sub/r/packs/data/')).length, 0, 'no data pack read');

  t.equal(await server.completeRestores(), distinct);
  await proxy.reset();
  const second = run('tsbak', ['check', REPO, '--read-data-subset', '100%', '--no-wait', '--json'], env);
  t.equal(second.code, 0, second.stderr);
  const r = lastJson(second.stdout);
  t.ok(r.packsRead >= distinct, `${r.packsRead} packs read`);
  t.same(r.errors, []);
  reqs = await proxy.requests();
  t.equal(reqs.filter(([m]) => m === 'POST').length, 0, 'nothing requested again');
  t.equal(new Set(reqs.filter(([m, p]) => m === 'GET' && p.startsWith('/sub/r/packs/data/')).map(([, p]) => p)).size, distinct, 'every data pack read');
});

t.test('S3, data in DEEP_ARCHIVE: without --no-wait, check requests, waits for the restores, then reads', async (t) => {
  const server = await withDevServer(t, { buckets: ['wait'], manualClock: true });
  const env = devServerEnv(server, { TSBAK_CACHE_DIR: tempDir(t, 'tsbak-subset-cache-') });
  const REPO = 's3://wait/r';
  t.equal(run('tsbak', ['init', REPO, '--data-class', 'DEEP_ARCHIVE', '--pack-size', '1'], env).code, 0);
  t.equal(run('tsbak-write', [REPO, src], env).code, 0);
  // The restores complete when the test says so: once check says it requested them.
  const child = start('tsbak', ['check', REPO, '--read-data-subset', '1/1', '--poll-interval', '1', '--json'], env);
  let stdout = '';
  let stderr = '';
  let completed: Promise<number> | null = null;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (!completed && /requested \d+ restores/.test(stderr)) completed = server.completeRestores();
  });
  const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? -1)));
  t.ok(completed, 'the restores were requested before check finished');
  t.ok((await completed!) >= 3, 'and were pending until completed');
  t.equal(code, 0, stderr);
  const r = lastJson(stdout);
  t.same(r.errors, []);
  t.ok(r.packsRead >= 4, `${r.packsRead} packs read after the wait`);
});
