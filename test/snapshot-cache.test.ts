// The local cache of snapshot objects: listing the history again costs one LIST, not a GET
// per snapshot; --no-cache reads them all; a damaged cached copy is fetched again.
import t from 'tap';
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { run } from './lib/cli.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['snaps'] });
const dir = tempDir(t, 'tsbak-snapcache-');
const cache = path.join(dir, 'cache');
const env = devServerEnv(server, { TSBAK_CACHE_DIR: cache });
const REPO = 's3://snaps/repo';
const S3 = ['--s3-endpoint', server.url, '--s3-path-style'];
const src = path.join(dir, 'src');
mkdirSync(src);

t.equal(run('tsbak', ['init', REPO, ...S3], env).code, 0);
for (let i = 0; i < 5; i++) {
  writeFileSync(path.join(src, `f${i}`), `file ${i}\n`);
  const w = run('tsbak-write', [REPO, src, '--json', ...S3], env);
  t.equal(w.code, 0, w.stderr);
}

const gets = async (args: string[]): Promise<number> => {
  await server.resetStats();
  const r = run('tsbak', ['snapshots', REPO, '--json', ...S3, ...args], env);
  t.equal(r.code, 0, r.stderr);
  t.equal(JSON.parse(r.stdout).length, 5, 'five snapshots listed');
  return (await server.stats()).requests.GetObject ?? 0;
};

t.test('a second listing reads no snapshot object', async (t) => {
  const noCache = await gets(['--no-cache']);
  await gets([]); // fills the cache (the backups cached the snapshots they read already)
  const cached = await gets([]);
  t.equal(noCache - cached, 5, `one GET per snapshot without the cache (${noCache}), none with it (${cached})`);
});

t.test('a damaged cached snapshot is fetched again', async (t) => {
  const snapDirs = readdirSync(cache).map((d) => path.join(cache, d, 'snapshots')).filter((d) => {
    try {
      return readdirSync(d).length > 0;
    } catch {
      return false;
    }
  });
  t.equal(snapDirs.length, 1, 'one repository cached');
  const one = readdirSync(snapDirs[0]!)[0]!;
  writeFileSync(path.join(snapDirs[0]!, one), 'not the snapshot');
  const before = await gets([]);
  const after = await gets([]);
  t.equal(before - after, 1, 'the damaged copy cost one GET, once');
});
