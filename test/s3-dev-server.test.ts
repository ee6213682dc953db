// The dev S3 server's own tools for tests and benchmarks (scripts/s3-dev-server.mjs, a real
// server process on loopback): latency set at run time, counters by method, the manual
// clock, the gate, aws-chunked (SigV4 streaming) bodies decoded, and restic 0.14 backing up to it
// and restoring from it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { S3Backend } from '../src/backend/s3.js';
import { DEV_CREDENTIALS, withDevServer, type DevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server: DevServer = await withDevServer(t, { manualClock: true, latencyMs: 5, buckets: ['devsrv', 'resticbench'] });
const backend = new S3Backend({ bucket: 'devsrv', endpoint: server.url, region: 'us-east-1', credentials: DEV_CREDENTIALS });
t.teardown(() => backend.close());

const devGet = async (route: string) => (await fetch(`${server.url}/__dev/${route}`)).json() as Promise<any>;

t.test('latency: given at start, changed at run time, refused when not a number', async (t) => {
  t.same(await devGet('latency'), { ms: 5 });
  await server.setLatency(0);
  t.same(await devGet('latency'), { ms: 0 });
  const bad = await fetch(`${server.url}/__dev/latency?ms=soon`, { method: 'POST' });
  t.equal(bad.status, 400);
  t.match(await bad.text(), /ms must be a number/);
  t.same(await devGet('latency'), { ms: 0 }, 'unchanged');
});

t.test('counters by kind and by method, ranged GETs apart; reset', async (t) => {
  await backend.put('c/one', Buffer.from('0123456789'));
  await server.resetStats();
  await backend.get('c/one');
  await backend.get('c/one', { offset: 2, length: 3 });
  await backend.head('c/one');
  const st = await server.stats();
  t.equal(st.requests.GetObject, 2);
  t.equal(st.requests.HeadObject, 1);
  t.same(st.methods, { GET: 2, HEAD: 1 });
  t.equal(st.rangedGets, 1);
  await server.resetStats();
  const z = await server.stats();
  t.equal(z.total, 0);
  t.same(z.methods, {});
});

t.test('manual clock: a restore completes when told, a restored copy expires when time is advanced', async (t) => {
  await backend.put('cold/x', Buffer.from('zz'), { storageClass: 'DEEP_ARCHIVE' });
  t.equal(await backend.restore!('cold/x', 1, 'Bulk'), 'started');
  t.same((await backend.head('cold/x'))?.restore, { ongoing: true });
  const clock0 = await devGet('clock');
  t.equal(clock0.manual, true);
  await server.advance(3_600_000);
  t.same((await backend.head('cold/x'))?.restore, { ongoing: true }, 'time alone does not complete it');
  t.equal(await server.completeRestores(), 1);
  t.equal(await server.completeRestores(), 0, 'nothing left to complete');
  const r = (await backend.head('cold/x'))?.restore;
  t.equal(r?.ongoing, false);
  t.same(await backend.get('cold/x'), Buffer.from('zz'));
  await server.advance(2 * 86_400_000 + 1000);
  t.equal((await backend.head('cold/x'))?.restore, undefined, 'expired after a day (and more) of server time');
  await t.rejects(backend.get('cold/x'), { code: 'COLD' });
  const clock1 = await devGet('clock');
  t.equal(clock1.offsetMs, 3_600_000 + 2 * 86_400_000 + 1000);
  t.ok(Date.parse(clock1.iso) - Date.now() > 2 * 86_400_000, 'the clock runs ahead by what was advanced');
});

/** A PUT with an aws-chunked body (framing as SigV4 streaming uploads send it). */
function chunkedPut(key: string, chunks: Buffer[], opts: { final?: boolean } = {}): Promise<Response> {
  const parts: Buffer[] = [];
  for (const c of chunks) parts.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${'ab'.repeat(32)}\r\n`), c, Buffer.from('\r\n'));
  if (opts.final !== false) parts.push(Buffer.from(`0;chunk-signature=${'cd'.repeat(32)}\r\n\r\n`));
  const body = Buffer.concat(parts);
  const decoded = chunks.reduce((n, c) => n + c.length, 0);
  return fetch(`${server.url}/devsrv/${key}`, {
    method: 'PUT',
    body,
    headers: {
      authorization: `AWS4-HMAC-SHA256 Credential=S3RVER/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'00'.repeat(32)}`,
      'x-amz-date': new Date().toISOString().replace(/[-:]|\.\d{3}/g, ''),
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': String(decoded),
      'content-length': String(body.length),
    },
  });
}

t.test('gate: a matching request is held until opened, the test told by an event', async (t) => {
  await server.armGate('PutObject', 'devsrv/gate/', { kind: 'PutObject', prefix: 'devsrv/gate/first' });
  await backend.put('gate/first', Buffer.from('1'));
  await backend.put('other/x', Buffer.from('x'));
  let done = false;
  const second = backend.put('gate/second', Buffer.from('2')).then(() => (done = true));
  t.same(await server.gateHeld(), { kind: 'PutObject', key: 'devsrv/gate/second' }, 'the request after `after` is held');
  t.equal(done, false, 'not answered while held');
  t.equal(await backend.head('gate/second'), null, 'not stored while held');
  t.equal(await server.openGate(), 1, 'one request let go');
  await second;
  t.ok(await backend.head('gate/second'), 'stored once let go');
  await backend.put('gate/third', Buffer.from('3'));
  t.ok(await backend.head('gate/third'), 'opening disarmed the gate');
  const bad = await fetch(`${server.url}/__dev/gate?kind=`, { method: 'POST' });
  t.equal(bad.status, 400);
});

t.test('aws-chunked bodies are stored decoded', async (t) => {
  const chunks = [randomBytes(65536), randomBytes(1000), randomBytes(1)];
  await server.resetStats();
  const r = await chunkedPut('chunked/a', chunks);
  t.equal(r.status, 200, await r.text());
  t.same(await backend.get('chunked/a'), Buffer.concat(chunks), 'the payload, without the framing');
  t.equal((await server.stats()).awsChunked, 1);
  const empty = await chunkedPut('chunked/empty', []);
  t.equal(empty.status, 200);
  t.equal((await backend.get('chunked/empty')).length, 0);
});

t.test('a broken aws-chunked body is refused, nothing stored', async (t) => {
  const r = await chunkedPut('chunked/cut', [randomBytes(100)], { final: false });
  t.ok(r.status >= 400, `HTTP ${r.status}`);
  t.equal(await backend.head('chunked/cut'), null);
});

const hasRestic = spawnSync('restic', ['version'], { encoding: 'utf8' }).status === 0;
t.test('restic backs up to it and restores from it', { skip: hasRestic ? false : 'restic is not installed' }, async (t) => {
  const dir = tempDir(t, 'tsbak-devsrv-restic-');
  const src = path.join(dir, 'src');
  mkdirSync(path.join(src, 'sub'), { recursive: true });
  const files: Record<string, Buffer> = { 'big.bin': randomBytes(3 << 20), 'sub/small.txt': Buffer.from('hello restic\n') };
  for (const [n, b] of Object.entries(files)) writeFileSync(path.join(src, n), b);
  const env = { ...process.env, RESTIC_PASSWORD: 'pw', RESTIC_CACHE_DIR: path.join(dir, 'cache'), AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', RESTIC_REPOSITORY: `s3:${server.url}/resticbench/repo` };
  const restic = (...args: string[]) => spawnSync('restic', args, { env, encoding: 'utf8' });
  const init = restic('init');
  t.equal(init.status, 0, init.stderr);
  await server.resetStats();
  const b = restic('backup', '--quiet', src);
  t.equal(b.status, 0, b.stderr);
  t.ok((await server.stats()).awsChunked >= 1, 'its uploads were aws-chunked');
  const c = restic('check', '--read-data');
  t.equal(c.status, 0, c.stderr + c.stdout);
  const out = path.join(dir, 'out');
  const r = restic('restore', 'latest', '--target', out);
  t.equal(r.status, 0, r.stderr);
  for (const [n, bytes] of Object.entries(files)) t.same(readFileSync(path.join(out, src, n)), bytes, n);
});
