// S3Backend against a real S3 server process on loopback (s3rver behind our Glacier proxy,
// scripts/s3-dev-server.mjs): the shared backend contract, Glacier restore semantics, error
// messages, and withRetry.
import t, { type Test } from 'tap';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { S3Backend, parseRestoreHeader, parseS3Location } from '../src/backend/s3.js';
import { withRetry, isRetryable } from '../src/backend/retry.js';
import { AlreadyExistsError, BackendError } from '../src/backend/backend-error.js';
import { LocalBackend } from '../src/backend/local.js';
import type { Backend, ObjectInfo } from '../src/backend/backend.js';
import { ColdError, NotFoundError, TsbakError } from '../src/errors.js';
import { backendContract } from './lib/backend-contract.js';
import { DEV_CREDENTIALS, startDevServer, withDevServer, type DevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

// Restores complete when the test says so (manual clock); a restored copy is kept a day,
// which passes when the test advances the server's clock.
const DAY_MS = 3_600_000;

const server: DevServer = await withDevServer(t, { manualClock: true, dayMs: DAY_MS, buckets: ['contract', 'glacier', 'misc'] });

const backends: S3Backend[] = [];
t.teardown(async () => {
  for (const b of backends) await b.close();
});

function s3(opts: Partial<ConstructorParameters<typeof S3Backend>[0]> & { bucket: string }, srv: DevServer = server): S3Backend {
  const b = new S3Backend({ endpoint: srv.url, region: 'us-east-1', credentials: DEV_CREDENTIALS, ...opts });
  backends.push(b);
  return b;
}


async function collect(it: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out;
}

let n = 0;
t.test('contract, each case in a fresh prefix', async (t) => {
  backendContract(t, async () => s3({ bucket: 'contract', prefix: `run-${process.pid}/case-${n++}` }));
});

t.test('contract, each case in a fresh bucket without prefix', async (t) => {
  backendContract(t, async () => {
    const bucket = `fresh-${n++}-${randomBytes(3).toString('hex')}`;
    await server.createBucket(bucket);
    return s3({ bucket });
  });
});

t.test('s3:// locations', async (t) => {
  t.same(parseS3Location('s3://bkt/a/b/'), { bucket: 'bkt', prefix: 'a/b/' });
  t.same(parseS3Location('s3://bkt'), { bucket: 'bkt', prefix: '' });
  t.same(parseS3Location('mybucket'), { bucket: 'mybucket', prefix: '' });
  t.throws(() => parseS3Location('./repo'), { code: 'USAGE' });
  t.throws(() => parseS3Location('s3://x'), { code: 'USAGE' });
  const b = S3Backend.fromUrl('s3://bkt/pre/fix', { endpoint: 'http://127.0.0.1:1' });
  t.equal(b.bucket, 'bkt');
  t.equal(b.prefix, 'pre/fix/');
  t.equal(b.location, 's3://bkt/pre/fix (endpoint http://127.0.0.1:1)');
});

t.test('x-amz-restore parsing', async (t) => {
  t.same(parseRestoreHeader(undefined), undefined);
  t.same(parseRestoreHeader('ongoing-request="true"'), { ongoing: true });
  t.same(parseRestoreHeader('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"'), {
    ongoing: false,
    expiry: new Date('2012-12-21T00:00:00Z'),
  });
});

t.test('prefixes isolate repositories in one bucket', async (t) => {
  const a = s3({ bucket: 'misc', prefix: 'iso/a' });
  const b = s3({ bucket: 'misc', prefix: 'iso/ab' });
  await a.put('config', Buffer.from('A'));
  await b.put('config', Buffer.from('B'));
  t.same((await collect(a.list(''))).map((o) => o.name), ['config']);
  t.equal((await b.get('config')).toString(), 'B');
});

t.test('listing follows ListObjectsV2 pagination', async (t) => {
  const b = s3({ bucket: 'misc', prefix: 'pages', listPageSize: 2 });
  for (let i = 0; i < 5; i++) await b.put(`index/i${i}`, Buffer.from(String(i)));
  await server.resetStats();
  const names = (await collect(b.list('index/'))).map((o) => o.name);
  t.same(names, ['index/i0', 'index/i1', 'index/i2', 'index/i3', 'index/i4']);
  t.equal((await server.stats()).requests.ListObjectsV2, 3);
});

t.test('large bodies go up as multipart uploads, with their storage class, never overwriting', async (t) => {
  const b = s3({ bucket: 'glacier', prefix: 'multi' });
  const data = randomBytes(17 * 1024 * 1024 + 123);
  await server.resetStats();
  await b.put('packs/data/big', data, { storageClass: 'DEEP_ARCHIVE' });
  const st = await server.stats();
  t.equal(st.requests.CreateMultipartUpload, 1);
  t.equal(st.requests.UploadPart, 3);
  t.equal(st.requests.CompleteMultipartUpload, 1);
  t.equal(st.requests.PutObject ?? 0, 0);
  const h = await b.head('packs/data/big');
  t.equal(h?.size, data.length);
  t.equal(h?.storageClass, 'DEEP_ARCHIVE');
  await t.rejects(b.put('packs/data/big', data), { code: 'BACKEND', message: /already exists/ });
  // The same through the conditional CompleteMultipartUpload alone (no HEAD first).
  const noHead = s3({ bucket: 'glacier', prefix: 'multi' });
  (noHead as any).head = async () => null;
  await t.rejects(noHead.put('packs/data/big', data), { code: 'BACKEND', message: /already exists/ });
  const hot = s3({ bucket: 'misc', prefix: 'multi-hot' });
  await hot.put('packs/tree/t', data);
  t.same(await hot.get('packs/tree/t', { offset: 16 * 1024 * 1024, length: 1000 }), data.subarray(16 * 1024 * 1024, 16 * 1024 * 1024 + 1000));
});

t.test('storage classes are sent and shown', async (t) => {
  const b = s3({ bucket: 'glacier', prefix: 'classes' });
  await b.put('config', Buffer.from('c'));
  await b.put('packs/tree/x', Buffer.from('t'), { storageClass: 'STANDARD_IA' });
  await b.put('packs/data/y', Buffer.from('d'), { storageClass: 'GLACIER' });
  t.equal((await b.head('config'))?.storageClass, 'STANDARD');
  t.equal((await b.head('packs/tree/x'))?.storageClass, 'STANDARD_IA');
  t.equal((await b.head('packs/data/y'))?.storageClass, 'GLACIER');
  const listed = Object.fromEntries((await collect(b.list(''))).map((o) => [o.name, o.storageClass]));
  t.same(listed, { config: 'STANDARD', 'packs/tree/x': 'STANDARD_IA', 'packs/data/y': 'GLACIER' });
  t.equal((await b.get('packs/tree/x')).toString(), 't');
});

t.test('Glacier Deep Archive: cold, restore, readable, expires', async (t) => {
  const b = s3({ bucket: 'glacier', prefix: 'deep' });
  const data = randomBytes(5000);
  const name = 'packs/data/ab/abcdef';
  await b.put(name, data, { storageClass: 'DEEP_ARCHIVE' });

  await t.rejects(b.get(name), { code: 'COLD' });
  const e = await b.get(name, { offset: 0, length: 10 }).catch((e) => e);
  t.ok(e instanceof ColdError, 'ranged reads are cold too');
  t.same((e as ColdError).objects, [name]);
  const h0 = await b.head(name);
  t.equal(h0?.storageClass, 'DEEP_ARCHIVE');
  t.equal(h0?.size, 5000);
  t.equal(h0?.restore, undefined, 'no restore yet');

  await t.rejects(b.restore(name, 1, 'Expedited'), { code: 'BACKEND', message: /Expedited/ });
  t.equal(await b.restore(name, 1, 'Bulk'), 'started');
  t.equal(await b.restore(name, 1, 'Bulk'), 'in-progress');
  t.same((await b.head(name))?.restore, { ongoing: true });
  const [listed] = await collect(b.list('packs/'));
  t.same(listed.restore, { ongoing: true }, 'listing shows the restore too');
  await t.rejects(b.get(name), { code: 'COLD' }, 'still cold while the restore runs');

  t.equal(await server.completeRestores(), 1);
  const restored = (await b.head(name))!.restore!;
  t.equal(restored.ongoing, false, 'restored');
  t.ok(restored.expiry instanceof Date && restored.expiry.getTime() > Date.now(), 'an expiry date in the future');
  t.same(await b.get(name), data);
  t.same(await b.get(name, { offset: 100, length: 50 }), data.subarray(100, 150));
  t.equal(await b.restore(name, 1, 'Standard'), 'already-restored');

  await server.advance(2 * DAY_MS);
  const h2 = await b.head(name);
  t.equal(h2?.restore, undefined, 'the restored copy expired');
  t.equal(h2?.storageClass, 'DEEP_ARCHIVE');
  await t.rejects(b.get(name), { code: 'COLD' }, 'cold again after expiry');
});

t.test('Glacier Flexible Retrieval allows Expedited; hot objects need no restore', async (t) => {
  const b = s3({ bucket: 'glacier', prefix: 'flex' });
  await b.put('g', Buffer.from('g'), { storageClass: 'GLACIER' });
  t.equal(await b.restore('g', 2, 'Expedited'), 'started');
  await b.put('s', Buffer.from('s'));
  t.equal(await b.restore('s', 1, 'Bulk'), 'already-restored');
  await t.rejects(b.restore('missing', 1, 'Bulk'), { code: 'NOT_FOUND' });
});

t.test('Glacier state survives a restart of the dev server', async (t) => {
  const dir = tempDir(t, 'tsbak-s3dev-restart-');
  const one = await withDevServer(t, { dir, manualClock: true, buckets: ['keep'] });
  const b1 = s3({ bucket: 'keep' }, one);
  await b1.put('cold', Buffer.from('zzz'), { storageClass: 'DEEP_ARCHIVE' });
  t.equal(await b1.restore('cold', 3, 'Standard'), 'started');
  await one.stop();

  const two = await withDevServer(t, { dir, manualClock: true });
  const b2 = s3({ bucket: 'keep' }, two);
  const h = await b2.head('cold');
  t.equal(h?.storageClass, 'DEEP_ARCHIVE');
  t.same(h?.restore, { ongoing: true });
  t.equal(await b2.restore('cold', 3, 'Standard'), 'in-progress');
  await t.rejects(b2.put('cold', Buffer.from('x')), { code: 'BACKEND', message: /already exists/ });
});

t.test('request statistics', async (t) => {
  const b = s3({ bucket: 'misc', prefix: 'stats' });
  await server.resetStats();
  t.equal((await server.stats()).total, 0);
  await b.put('a', Buffer.from('12345'));
  await b.get('a');
  await b.get('a', { offset: 1, length: 2 });
  await b.head('a');
  await b.head('nope');
  await collect(b.list(''));
  await b.delete('a');
  await t.rejects(b.put('b', Buffer.from('x'), { storageClass: 'DEEP_ARCHIVE' }).then(() => b.get('b')), { code: 'COLD' });
  const st = await server.stats();
  t.same(st.requests, { PutObject: 2, GetObject: 3, HeadObject: 2, ListObjectsV2: 1, DeleteObject: 1 });
  t.equal(st.total, 9);
  t.equal(st.errors.InvalidObjectState, 1);
  t.equal(st.bytesIn, 6);
  t.equal(st.bytesOut, 7);
});

t.test('clear errors', async (t) => {
  await t.test('missing bucket', async (t) => {
    const b = s3({ bucket: 'no-such-bucket' });
    const e = await b.put('config', Buffer.from('x')).catch((e) => e);
    t.ok(e instanceof BackendError);
    t.equal(e.code, 'BACKEND');
    t.equal(e.retryable, false);
    t.match(e.message, /bucket no-such-bucket does not exist/);
    t.notMatch(e.message, /\n/);
  });
  await t.test('wrong credentials', async (t) => {
    const b = s3({ bucket: 'misc', credentials: { accessKeyId: 'WRONG', secretAccessKey: 'nope' } });
    const e = await b.get('x').catch((e) => e);
    t.equal(e.code, 'BACKEND');
    t.equal(e.retryable, false);
    t.match(e.message, /rejected the AWS credentials.*InvalidAccessKeyId/);
  });
  await t.test('no credentials anywhere', async (t) => {
    const saved = { ...process.env };
    t.teardown(() => {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    });
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) delete process.env[k];
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
    process.env.AWS_CONFIG_FILE = '/nonexistent/config';
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    const b = new S3Backend({ bucket: 'misc', endpoint: server.url, region: 'us-east-1' });
    t.teardown(() => b.close());
    const e = await b.get('x').catch((e) => e);
    t.equal(e.code, 'BACKEND');
    t.match(e.message, /no AWS credentials found/);
  });
  await t.test('unreachable endpoint', async (t) => {
    const port = await closedPort();
    const b = s3({ bucket: 'misc' }, { ...server, url: `http://127.0.0.1:${port}` });
    const e = await b.head('x').catch((e) => e);
    t.equal(e.code, 'BACKEND');
    t.equal(e.retryable, true);
    t.match(e.message, new RegExp(`cannot reach S3 at http://127.0.0.1:${port} for bucket misc \\(ECONNREFUSED\\)`));
  });
  await t.test('invalid names', async (t) => {
    const b = s3({ bucket: 'misc' });
    await t.rejects(b.put('../x', Buffer.from('x')), { code: 'BACKEND' });
    await t.rejects(b.get('/abs'), { code: 'BACKEND' });
  });
});

t.test('the environment selects endpoint, region and credentials (SDK default chain)', async (t) => {
  const saved = { ...process.env };
  t.teardown(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });
  delete process.env.AWS_ENDPOINT_URL;
  delete process.env.AWS_PROFILE;
  process.env.AWS_ENDPOINT_URL_S3 = server.url;
  process.env.AWS_REGION = 'eu-west-3';
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
  process.env.AWS_CONFIG_FILE = '/nonexistent/config';
  const b = S3Backend.fromUrl('s3://misc/env');
  t.teardown(() => b.close());
  t.equal(b.location, `s3://misc/env (endpoint ${server.url})`);
  await server.resetStats();
  await b.put('config', Buffer.from('from env'));
  t.equal((await b.get('config')).toString(), 'from env');
  t.equal((await server.stats()).requests.PutObject, 1, 'the requests went to the dev server');
});

// ---- withRetry ----

/** Fails the first `failures` calls of the listed ops with `error()`, then passes through. */
function flaky(inner: Backend, failures: number, error: () => unknown, ops = ['put', 'get', 'head', 'delete', 'restore']) {
  const calls: Record<string, number> = {};
  let left = failures;
  const hit = (op: string) => {
    calls[op] = (calls[op] ?? 0) + 1;
    if (ops.includes(op) && left > 0) {
      left--;
      throw error();
    }
  };
  const b: Backend & { calls: Record<string, number> } = {
    calls,
    location: inner.location,
    async put(n, d, o) { hit('put'); return inner.put(n, d, o); },
    async get(n, r, s) { hit('get'); return inner.get(n, r, s); },
    async head(n) { hit('head'); return inner.head(n); },
    list: (p, s) => inner.list(p, s),
    async delete(n) { hit('delete'); return inner.delete(n); },
    async restore(n, d, tier) { hit('restore'); return inner.restore!(n, d, tier); },
  };
  return b;
}

const local = (t: Test) => new LocalBackend(tempDir(t, 'tsbak-retry-'));
const econnreset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const slowDown = () => Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });

t.test('withRetry', async (t) => {
  await t.test('retries transient failures with growing, jittered delays', async (t) => {
    const inner = local(t);
    await inner.put('x', Buffer.from('hello'));
    const fb = flaky(inner, 3, slowDown);
    const delays: number[] = [];
    const b = withRetry(fb, { retries: 5, baseMs: 4, random: () => 0.5, onRetry: (i) => delays.push(i.delayMs) });
    t.equal((await b.get('x')).toString(), 'hello');
    t.equal(fb.calls.get, 4);
    t.same(delays, [6, 12, 24], 'throttling doubles the step; equal jitter');
  });
  await t.test('network errors and retryable BackendErrors are retried', async (t) => {
    const inner = local(t);
    const fb = flaky(inner, 2, econnreset);
    await withRetry(fb, { baseMs: 1 }).put('a', Buffer.from('a'));
    t.equal(fb.calls.put, 3);
    const fb2 = flaky(inner, 2, () => new BackendError('S3 error: InternalError (HTTP 500)', { retryable: true, status: 500 }));
    t.equal(await withRetry(fb2, { baseMs: 1 }).head('a').then((h) => h?.size), 1);
    t.equal(fb2.calls.head, 3);
  });
  await t.test('never retries NOT_FOUND, COLD, already exists, 4xx', async (t) => {
    const cases: [string, () => unknown][] = [
      ['not found', () => new NotFoundError('object x')],
      ['cold', () => new ColdError('object x', ['x'])],
      ['already exists', () => new AlreadyExistsError('loc', 'x')],
      ['access denied', () => new BackendError('access denied', { retryable: false, status: 403 })],
      ['raw 400', () => Object.assign(new Error('bad'), { name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } })],
      ['corrupt', () => new TsbakError('CORRUPT', 'damaged')],
    ];
    for (const [what, err] of cases) {
      const fb = flaky(local(t), 1, err);
      await t.rejects(withRetry(fb, { baseMs: 1 }).get('x'), err() as Error, what);
      t.equal(fb.calls.get, 1, `${what}: one attempt`);
    }
    const inner = local(t);
    await inner.put('x', Buffer.from('1'));
    const counted = flaky(inner, 0, econnreset);
    await t.rejects(withRetry(counted, { baseMs: 1 }).put('x', Buffer.from('2')), { code: 'BACKEND', message: /already exists/ });
    t.equal(counted.calls.put, 1);
  });
  await t.test('gives up after `retries`', async (t) => {
    const fb = flaky(local(t), 100, econnreset);
    await t.rejects(withRetry(fb, { retries: 3, baseMs: 1 }).get('x'), { code: 'ECONNRESET' });
    t.equal(fb.calls.get, 4);
  });
  await t.test('a put whose answer was lost counts as done when the object is there', async (t) => {
    const inner = local(t);
    let first = true;
    const lossy: Backend = {
      location: inner.location,
      list: (p) => inner.list(p),
      get: (n, r) => inner.get(n, r),
      head: (n) => inner.head(n),
      delete: (n) => inner.delete(n),
      async put(n, d, o) {
        await inner.put(n, d, o);
        if (first) {
          first = false;
          throw econnreset();
        }
      },
    };
    await withRetry(lossy, { baseMs: 1 }).put('p', Buffer.from('payload'));
    t.equal((await inner.get('p')).toString(), 'payload');
  });
  await t.test('a listing that fails midway is resumed without duplicates', async (t) => {
    const inner = local(t);
    for (const i of [1, 2, 3, 4]) await inner.put(`l/${i}`, Buffer.from('x'));
    let fails = 1;
    const b: Backend = {
      location: inner.location,
      put: (n, d, o) => inner.put(n, d, o),
      get: (n, r) => inner.get(n, r),
      head: (n) => inner.head(n),
      delete: (n) => inner.delete(n),
      list: async function* (p) {
        let k = 0;
        for await (const o of inner.list(p)) {
          if (k++ === 2 && fails-- > 0) throw econnreset();
          yield o;
        }
      },
    };
    const names = (await collect(withRetry(b, { baseMs: 1 }).list('l/'))).map((o) => o.name);
    t.same(names, ['l/1', 'l/2', 'l/3', 'l/4']);
  });
  await t.test('an abort stops the waiting', async (t) => {
    const fb = flaky(local(t), 100, econnreset);
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 50);
    // A first backoff of an hour: only the abort can end the wait within the test.
    await t.rejects(withRetry(fb, { baseMs: 3_600_000 }).get('x', undefined, ac.signal), { name: 'AbortError' });
    t.ok(Date.now() - started < 600_000, 'ended by the abort, not by the backoff');
  });
  await t.test('isRetryable', async (t) => {
    t.equal(isRetryable(econnreset()), true);
    t.equal(isRetryable(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), true);
    t.equal(isRetryable(Object.assign(new Error('t'), { code: 'ETIMEDOUT' })), true);
    t.equal(isRetryable(slowDown()), true);
    t.equal(isRetryable({ name: 'TooManyRequests', $metadata: { httpStatusCode: 429 } }), true);
    t.equal(isRetryable({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }), false);
    t.equal(isRetryable(new NotFoundError('x')), false);
    t.equal(isRetryable(new DOMException('aborted', 'AbortError')), false);
  });
  await t.test('S3Backend through withRetry: retries while the server is down, then succeeds', async (t) => {
    const port = await closedPort();
    const dir = tempDir(t, 'tsbak-s3dev-late-');
    let late: DevServer | undefined;
    t.teardown(() => late?.stop());
    const b = s3({ bucket: 'late' }, { ...server, url: `http://127.0.0.1:${port}` });
    const retried: string[] = [];
    let firstRetry!: () => void;
    const retrying = new Promise<void>((r) => (firstRetry = r));
    // Refused once: the server comes up only now (it may take long on a loaded machine).
    const started = retrying.then(() => startDevServer({ dir, port, buckets: ['late'] }));
    started.then((s) => (late = s), () => {});
    // The attempts run at their own pace while the server starts (refused, or answered once it
    // is up); only the last one the budget allows waits until it is up, so the outcome does
    // not depend on how long the server takes to start.
    const retries = 6;
    let attempts = 0;
    const gated: Backend = {
      location: b.location,
      put: (n, d, o) => b.put(n, d, o),
      get: (n, r, sig) => b.get(n, r, sig),
      head: async (n) => {
        if (attempts++ === retries) await started;
        return b.head(n);
      },
      delete: (n) => b.delete(n),
      list: (p, sig) => b.list(p, sig),
    };
    const rb = withRetry(gated, { retries, baseMs: 100, maxMs: 400, onRetry: (i) => {
      retried.push(String((i.error as BackendError).serviceCode));
      firstRetry();
    } });
    t.equal(await rb.head('nothing-here'), null);
    t.ok(retried.length >= 1, `retried ${retried.length} times`);
    t.ok(retried.every((c) => c === 'ECONNREFUSED'));
  });
});

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

t.test('ranged reads ask the server for a Padmé-rounded range and return exactly the bytes asked for', async (t) => {
  const { padme } = await import('../src/backend/padme.js');
  const b = s3({ bucket: 'misc', prefix: `padme-${process.pid}` });
  const body = randomBytes(300_000);
  await b.put('packs/data/aa/obj', body);
  for (const [offset, length] of [
    [1000, 100_001], // rounded up inside the object
    [299_000, 1000], // rounded past the object's end: the server stops there
    [0, 300_000],
    [5, 1],
  ] as const) {
    await server.resetStats();
    const got = await b.get('packs/data/aa/obj', { offset, length });
    t.ok(got.equals(body.subarray(offset, offset + length)), `${offset}+${length}: the bytes asked for`);
    const sent = (await server.stats()).bytesOut;
    t.equal(sent, Math.min(padme(length), body.length - offset), `${offset}+${length}: the server sent the rounded range`);
  }
  t.same([padme(100_001), padme(1000)], [100_352, 1024], 'Padmé buckets of the lengths above');
});
