// Issue 24 on the S3 dev server: a conflicting lock is seen through LIST (with its
// LastModified), and SIGINT during a multipart upload of a pack aborts the upload.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { S3Backend } from '../src/backend/s3.js';
import { run, start } from './lib/cli.js';
import { DEV_CREDENTIALS, devFetch, devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['locks'] });
const env = devServerEnv(server);
const S3 = ['--s3-endpoint', server.url, '--s3-path-style'];

const backend = (prefix: string) => new S3Backend({ bucket: 'locks', prefix, endpoint: server.url, region: 'us-east-1', credentials: DEV_CREDENTIALS, forcePathStyle: true });

/**
 * The names under `prefix` in the repository at s3://locks/<repo>, through a fresh backend:
 * a kept-alive socket pooled before a child ran may have been closed by the server meanwhile
 * (its keep-alive timeout), and a raw backend does not retry the ECONNRESET.
 */
async function names(repo: string, prefix: string): Promise<string[]> {
  const b = backend(repo);
  try {
    const out: string[] = [];
    for await (const o of b.list(prefix)) out.push(o.name);
    return out;
  } finally {
    await b.close();
  }
}

async function devState(): Promise<{ uploads: Record<string, unknown> }> {
  return (await devFetch(`${server.url}/__dev/state`)).json() as Promise<{ uploads: Record<string, unknown> }>;
}

t.test('LIST gives each lock its LastModified; a conflicting lock gives exit 13', async (t) => {
  const repo = 's3://locks/conflict';
  t.equal(run('tsbak', ['init', repo, ...S3], env).code, 0);
  const b = backend('conflict');
  t.teardown(() => b.close());
  const name = `locks/${randomBytes(16).toString('hex')}`;
  await b.put(name, Buffer.from(JSON.stringify({ host: 'far', pid: 3, time: new Date().toISOString(), exclusive: true, operation: 'prune' })));
  const listed = [];
  for await (const o of b.list('locks/')) listed.push(o);
  t.ok(listed[0]?.lastModified instanceof Date && Math.abs(listed[0].lastModified.getTime() - Date.now()) < 10 * 60_000, 'lastModified from LIST');
  t.ok((await b.head(name))?.lastModified instanceof Date, 'and from HEAD');
  const src = tempDir(t);
  writeFileSync(path.join(src, 'x'), 'x');
  const w = run('tsbak-write', [repo, src, ...S3], env);
  t.equal(w.code, 13, w.stderr);
  t.match(w.stderr, /exclusive lock locks\/[0-9a-f]{32} of prune on host far pid 3/);
  t.same(await names('conflict', 'locks/'), [name], 'the refused backup deleted its own lock');
});

t.test('SIGINT during a multipart upload of a pack: the upload is aborted, the lock removed', async (t) => {
  const repo = 's3://locks/sigint';
  // 32 MiB packs go up as multipart uploads (above 16 MiB).
  t.equal(run('tsbak', ['init', repo, '--pack-size', '32', ...S3], env).code, 0);
  const src = tempDir(t);
  for (let i = 0; i < 40; i++) writeFileSync(path.join(src, `f${i}`), randomBytes(1 << 20));
  // The server holds the first part of a multipart upload of a pack: the upload is in flight when the signal comes.
  await server.armGate('UploadPart', 'locks/sigint/packs/');
  t.teardown(() => server.openGate());
  const child = start('tsbak-write', [repo, src, ...S3], env);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const held = await server.gateHeld();
  t.match(held.key, /^locks\/sigint\/packs\//, `a part of ${held.key} is in flight`);
  t.ok(Object.keys((await devState()).uploads).length > 0, 'a multipart upload is open');
  child.kill('SIGINT');
  t.equal(await exited, 130, stderr);
  t.match(stderr, /backup interrupted by SIGINT/);
  await server.openGate();
  t.same(Object.keys((await devState()).uploads), [], 'no multipart upload left pending');
  t.same(await names('sigint', 'locks/'), [], 'no lock left');
  t.same(await names('sigint', 'snapshots/'), [], 'no snapshot');
  const c = run('tsbak', ['check', repo, ...S3], env);
  t.equal(c.code, 0, c.stdout + c.stderr);
});

t.test('SIGINT during a check takes its lock back', async (t) => {
  const repo = 's3://locks/check';
  t.equal(run('tsbak', ['init', repo, ...S3], env).code, 0);
  const src = tempDir(t);
  writeFileSync(path.join(src, 'x'), 'x');
  t.equal(run('tsbak-write', [repo, src, ...S3], env).code, 0);
  // Once its lock is written, the check's next read is held: it is at work when the signal comes.
  await server.armGate('GetObject', 'locks/check/', { kind: 'PutObject', prefix: 'locks/check/locks/' });
  t.teardown(() => server.openGate());
  const lockDir = path.join(server.dir, 'buckets', 'locks', 'check', 'locks');
  const locks = () => (existsSync(lockDir) ? readdirSync(lockDir).filter((n) => n.endsWith('._S3rver_object')) : []);
  const child = start('tsbak', ['check', repo, ...S3], env);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  await server.gateHeld();
  t.equal(locks().length, 1, 'its lock is there');
  child.kill('SIGINT');
  t.equal(await exited, 130, stderr);
  t.match(stderr, /^tsbak: check interrupted by SIGINT\n$/);
  t.same(locks(), [], 'no lock left');
});
