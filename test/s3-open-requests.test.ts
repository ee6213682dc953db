// What opening a repository and restoring from it ask S3 for, request by request (issue 23):
// the real executables against the S3 dev server, through scripts/s3-count-proxy.mjs. The
// proxy can hold requests: what reaches it while it answers nothing was sent at once, so the
// first wave of a restore is seen without timing anything. Then every object of keys/, the
// snapshot and each index file are read once, and a snapshot kept in the local cache not at all.
import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, run, start } from './lib/cli.js';
import { withCountingProxy, type CountingProxy } from './lib/counting-proxy.js';
import { devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const BUCKET = 'opens';
const REPO = `s3://${BUCKET}/repo`;

const server = await withDevServer(t, { buckets: [BUCKET] });
const proxy = await withCountingProxy(t, server);
const env = { ...devServerEnv(server), AWS_ENDPOINT_URL_S3: proxy.url };

/** A request as "get NAME" or "list PREFIX", names relative to the repository. */
function describe(r: { method: string; path: string }): string {
  const [where, query = ''] = r.path.split('?');
  const q = new URLSearchParams(query);
  if (r.method === 'GET' && q.get('list-type') === '2') return `list ${(q.get('prefix') ?? '').replace(/^repo\//, '')}`;
  return `${r.method === 'GET' ? 'get' : r.method.toLowerCase()} ${where!.replace(`/${BUCKET}/repo/`, '')}`;
}

async function requests(p: CountingProxy): Promise<string[]> {
  return (await p.timeline()).map(describe);
}

function counts(reqs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of reqs) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

/** Waits, request by request as the proxy records them, until `cond` holds of what came (at most a minute per request). */
async function until(p: CountingProxy, cond: (seen: string[]) => boolean, what: string): Promise<void> {
  let seen = await requests(p);
  while (!cond(seen)) {
    const more = (await p.awaitRequests(seen.length + 1)).map(describe);
    if (more.length <= seen.length) throw new Error(`never saw ${what} (saw ${seen.join(', ')})`);
    seen = more;
  }
}

// A snapshot signed by a writer key: its signer's registration is an object of keys/ that
// the restore needs besides the key its passphrase opens.
const src = tempDir(t, 'tsbak-open-src-');
for (let d = 0; d < 5; d++) {
  mkdirSync(path.join(src, `d${d}`));
  for (let f = 0; f < 10; f++) writeFileSync(path.join(src, `d${d}`, `f${f}`), `file ${d}/${f}\n`.repeat(100 + f));
}
let snapId = '';

t.test("a writer key's backup reads each object of keys/ once", async (t) => {
  const keyFile = path.join(tempDir(t, 'tsbak-open-key-'), 'w.key');
  const cache = tempDir(t, 'tsbak-open-cache-');
  t.equal(run('tsbak', ['init', REPO], env).code, 0, 'init');
  t.equal(run('tsbak', ['key', 'add-writer', REPO, '--name', 'laptop', '--out', keyFile], { ...env, TSBAK_CACHE_DIR: cache }).code, 0, 'add-writer');
  await proxy.reset();
  const backup = run('tsbak-write', ['--key-file', keyFile, REPO, src, '--json'], { ...env, TSBAK_CACHE_DIR: cache });
  t.equal(backup.code, 0, backup.stderr);
  snapId = lastJson(backup.stdout).snapshot_id;
  const keyObjects = (await requests(proxy)).filter((r) => r.startsWith('get keys/'));
  t.ok(keyObjects.length >= 1, 'the backup read the writer key registration');
  t.same([...counts(keyObjects).values()].filter((n) => n > 1), [], `each read once (${keyObjects.join(', ')})`);
});

t.test('a restore: index/ listed in the first wave; each object of keys/, the snapshot and each index file read once', async (t) => {
  const cache = tempDir(t, 'tsbak-open-cache-');
  const target = tempDir(t, 'tsbak-open-out-');
  await proxy.reset();
  await proxy.hold();
  // Released in any case, so that a failure here leaves the proxy passing requests on for the tests after it.
  t.teardown(() => proxy.release());
  const child = start('tsbak', ['restore', REPO, 'latest', '--target', target], { ...env, TSBAK_CACHE_DIR: cache });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  const firstWave = ['get config', 'list keys/', 'list snapshots/', 'list index/'];
  let held: string[] = [];
  try {
    await until(proxy, (seen) => firstWave.every((r) => seen.includes(r)), firstWave.join(', '));
    // Read while the proxy still holds: every request here was sent before any answer came.
    held = await requests(proxy);
  } finally {
    await proxy.release();
  }
  t.notOk(
    held.some((r) => r.startsWith('get keys/') || r.startsWith('get snapshots/') || r.startsWith('get index/')),
    'nothing that needs an answer was asked for before one came',
  );
  t.equal(await exited, 0, stderr);
  t.equal(readFileSync(path.join(target, src, 'd4', 'f9'), 'utf8'), 'file 4/9\n'.repeat(109), 'restored');

  const reqs = await requests(proxy);
  const c = counts(reqs);
  t.equal(c.get('get config'), 1, 'config read once');
  t.equal(c.get('list keys/'), 1, 'keys/ listed once: the signer keys come from what opening read');
  const keyGets = reqs.filter((r) => r.startsWith('get keys/'));
  t.equal(keyGets.length, 2, `the key the passphrase opens and the writer's registration (${keyGets.join(', ')})`);
  t.equal(new Set(keyGets).size, 2, 'each read once');
  t.equal(c.get('list snapshots/'), 1, 'snapshots/ listed once');
  t.equal(c.get(`get snapshots/${snapId}`), 1, 'the snapshot read once');
  // Once at the start, and once after snapshots/ for loadIndex (a snapshot listed has its index files listed).
  t.equal(c.get('list index/'), 2, 'index/ listed twice');
  const indexGets = reqs.filter((r) => r.startsWith('get index/'));
  t.ok(indexGets.length >= 1, 'index files read');
  t.equal(new Set(indexGets).size, indexGets.length, `each index file read once (${indexGets.length})`);
  t.equal(reqs.filter((r) => !r.startsWith('get ') && !r.startsWith('list ')).length, 0, 'no other kind of request');

  // Again with the same local cache: the snapshot comes from there (checked by its id), not fetched ahead.
  const again = tempDir(t, 'tsbak-open-out-');
  await proxy.reset();
  const r = run('tsbak', ['restore', REPO, snapId.slice(0, 12), '--target', again], { ...env, TSBAK_CACHE_DIR: cache });
  t.equal(r.code, 0, r.stderr);
  t.equal(readFileSync(path.join(again, src, 'd0', 'f0'), 'utf8'), 'file 0/0\n'.repeat(100), 'restored again');
  const second = await requests(proxy);
  t.equal(second.filter((x) => x.startsWith('get snapshots/')).length, 0, 'no GET of a snapshot kept in the cache');
  t.equal(second.filter((x) => x === 'list keys/').length, 1, 'keys/ listed once');
  t.equal(second.filter((x) => x.startsWith('get keys/')).length, 2, 'two objects of keys/ read');
});

t.test('a snapshot cached but damaged is read from the bucket, and checked', async (t) => {
  const cache = tempDir(t, 'tsbak-open-cache-');
  const target = tempDir(t, 'tsbak-open-out-');
  t.equal(run('tsbak', ['restore', REPO, 'latest', '--target', target], { ...env, TSBAK_CACHE_DIR: cache }).code, 0, 'first restore fills the cache');
  const repoDir = readdirSync(cache).find((d) => existsSync(path.join(cache, d, 'snapshots', snapId)));
  t.ok(repoDir, 'the snapshot is kept in the cache');
  const cached = path.join(cache, repoDir!, 'snapshots', snapId);
  const bytes = readFileSync(cached);
  bytes[bytes.length >> 1]! ^= 0xff;
  writeFileSync(cached, bytes);
  await proxy.reset();
  const again = tempDir(t, 'tsbak-open-out-');
  const r = run('tsbak', ['restore', REPO, 'latest', '--target', again], { ...env, TSBAK_CACHE_DIR: cache });
  t.equal(r.code, 0, r.stderr);
  t.equal(readFileSync(path.join(again, src, 'd2', 'f3'), 'utf8'), 'file 2/3\n'.repeat(103), 'restored');
  t.equal((await requests(proxy)).filter((x) => x === `get snapshots/${snapId}`).length, 1, 'the damaged copy is not used: the snapshot is read from the bucket once');
  t.equal(createHash('sha256').update(readFileSync(cached)).digest('hex'), snapId, "the cached copy replaced by the bucket's");
});
