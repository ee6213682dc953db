// Readers take no lock (a read-only credential cannot write one), so a prune may move the
// blobs a running restore is about to read into new packs and delete the old ones. The
// restore finds the pack gone, reads the index files written since it started, and reads
// the blobs from their new packs: the restore completes, identical. The S3 dev server's
// gate holds the restore's first data read while the prune runs, so the order is certain.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, run, start } from './lib/cli.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, walkTree } from './lib/tree-compare.js';

const server = await withDevServer(t, { buckets: ['moved'] });
const env = devServerEnv(server);
const REPO = 's3://moved/repo';

t.test('a restore reads blobs a concurrent prune moved to new packs', async (t) => {
  t.equal(run('tsbak', ['init', REPO], env).code, 0);
  const dir = tempDir(t);
  const src = path.join(dir, 'src');
  mkdirSync(src);
  // Side by side in one data pack: `gone` is forgotten, so prune repacks `kept` elsewhere.
  writeFileSync(path.join(src, 'gone.bin'), randomBytes(600_000));
  for (let i = 0; i < 8; i++) writeFileSync(path.join(src, `kept${i}.bin`), randomBytes(50_000 + i));
  const first = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(first.code, 0, first.stderr);
  rmSync(path.join(src, 'gone.bin'));
  const second = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(second.code, 0, second.stderr);
  const snap = lastJson(second.stdout).snapshot_id as string;
  t.equal(run('tsbak', ['forget', REPO, lastJson(first.stdout).snapshot_id], env).code, 0);

  // The restore's first data read waits at the server while the prune runs to its end.
  await server.armGate('GetObject', 'moved/repo/packs/data/', undefined, 1);
  t.teardown(() => server.openGate());
  const target = path.join(dir, 'target');
  const restore = start('tsbak', ['restore', REPO, snap, '--target', target], env);
  let stderr = '';
  restore.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => restore.on('exit', (c) => r(c)));
  const held = await server.gateHeld();
  const prune = run('tsbak', ['prune', REPO, '--json'], env);
  t.equal(prune.code, 0, prune.stderr);
  const pr = lastJson(prune.stdout);
  t.ok(pr.result.packs_repacked >= 1, `prune repacked ${pr.result.packs_repacked} pack(s)`);
  const gone = await fetch(`${server.url}/${held.key}`, { method: 'HEAD' });
  t.equal(gone.status, 404, `the pack the restore is reading (${held.key}) was deleted`);
  await server.openGate();

  t.equal(await exited, 0, stderr);
  t.notMatch(stderr, /damaged/, 'a moved blob is not reported as damage');
  // The backup read the source directory after it was last changed: its atime is newer.
  t.same(compareTrees(walkTree(src), walkTree(path.join(target, src)), { ignore: { '': ['atimeNs'] } }), [], 'restored identical');
  const check = run('tsbak', ['check', REPO, '--read-data'], env);
  t.equal(check.code, 0, check.stdout + check.stderr);
});
