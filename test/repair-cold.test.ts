// repair index on an S3 repository whose data packs are in DEEP_ARCHIVE (the dev server,
// with Glacier semantics and a manual clock): the headers of cold packs cannot be read, so
// they are listed with the cost of restoring them and exit 15; --warm requests the
// restores; once they are complete a rerun lists them, and the snapshot restores identical.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openBackend } from '../src/backend/open.js';
import { lastJson, run } from './lib/cli.js';
import { listFiles, sha256File } from './lib/files.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['cold'], manualClock: true });
const env = devServerEnv(server, { TSBAK_CACHE_DIR: tempDir(t, 'tsbak-cold-cache-') });
const REPO = 's3://cold/home';
const tsbak = (...args: string[]) => run('tsbak', args, env);

t.test('cold packs: named with their restore cost, warmed, then indexed', async (t) => {
  const src = tempDir(t);
  mkdirSync(path.join(src, 'd'));
  writeFileSync(path.join(src, 'd', 'a.raw'), randomBytes(2 << 20));
  writeFileSync(path.join(src, 'b.raw'), randomBytes(1 << 20));
  writeFileSync(path.join(src, 'note'), 'cold\n');
  t.equal(tsbak('init', REPO, '--data-class', 'DEEP_ARCHIVE', '--pack-size', '1', '--s3-path-style').code, 0);
  const b = tsbak('backup', REPO, src, '--s3-path-style', '--json');
  t.equal(b.code, 0, b.stderr);

  // Every index file lost.
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  const backend = await openBackend(REPO, { endpoint: server.url, pathStyle: true, region: 'us-east-1' });
  const indexFiles: string[] = [];
  for await (const o of backend.list('index/')) indexFiles.push(o.name);
  let dataPacks = 0;
  for await (const o of backend.list('packs/data/')) {
    t.equal(o.storageClass, 'DEEP_ARCHIVE', `${o.name} is in DEEP_ARCHIVE`);
    dataPacks++;
  }
  t.ok(dataPacks >= 2, `${dataPacks} data packs`);
  for (const f of indexFiles) await backend.delete(f);
  await backend.close?.();

  const first = tsbak('repair', 'index', REPO, '--s3-path-style', '--json');
  t.equal(first.code, 15, `cold packs: exit 15: ${first.stderr}`);
  const j = lastJson(first.stdout);
  t.equal(j.cold_packs.length, dataPacks, 'every data pack named as cold');
  t.ok(j.cold_packs.every((p: any) => p.storage_class === 'DEEP_ARCHIVE' && p.bytes > 0));
  t.equal(j.cold_restore.length, 1, 'one storage class');
  t.ok(j.cold_restore[0].restore_usd > 0, `the cost of restoring them: $${j.cold_restore[0].restore_usd}`);
  t.equal(j.restores_requested, 0, 'nothing requested without --warm');
  t.equal(j.packs_listed, j.packs - dataPacks, 'the tree packs (STANDARD) are listed at once');
  const text = tsbak('repair', 'index', REPO, '--s3-path-style');
  t.match(text.stdout, /cold: pack packs\/data\//, 'the text output names them');
  t.match(text.stdout, /costs ~\$/, 'with the cost');
  t.match(text.stdout, /--warm/, 'and how to warm them');

  const warm = tsbak('repair', 'index', REPO, '--s3-path-style', '--warm', '--json');
  t.equal(warm.code, 15, warm.stderr);
  t.equal(lastJson(warm.stdout).restores_requested, dataPacks, 'one restore request per cold pack');
  t.ok((await server.completeRestores()) >= dataPacks, 'the restores complete');

  await server.resetStats();
  const done = tsbak('repair', 'index', REPO, '--s3-path-style', '--json');
  t.equal(done.code, 0, done.stderr);
  const d = lastJson(done.stdout);
  t.equal(d.packs_listed, dataPacks, 'the restored packs are listed now');
  t.same(d.cold_packs, []);
  const st = await server.stats();
  t.comment(`repair index of ${dataPacks} packs: ${st.total} requests, ${st.rangedGets} ranged GETs, ${st.bytesOut} bytes out`);
  t.equal(st.rangedGets, dataPacks, 'one ranged GET per pack header (its tail)');

  const target = tempDir(t);
  const r = tsbak('restore', REPO, 'latest', '--target', target, '--s3-path-style');
  t.equal(r.code, 0, r.stderr);
  const files = listFiles(src);
  t.same(
    files.map((f) => sha256File(path.join(target, src, f))),
    files.map((f) => sha256File(path.join(src, f))),
    'the snapshot restores identical',
  );
});
