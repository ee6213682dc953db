// A local S3 server for development and tests: s3rver (a real S3 server, from npm) on a
// private loopback port, and in front of it a small HTTP proxy of ours that adds what s3rver
// lacks, following the AWS documentation:
//
//  - storage classes: remembered from x-amz-storage-class on PutObject, CopyObject and
//    CreateMultipartUpload (default STANDARD), shown on HEAD/GET (the header is omitted for
//    STANDARD, as AWS does) and in ListObjects(V2) <StorageClass>;
//  - Glacier semantics for GLACIER and DEEP_ARCHIVE: GET (and CopyObject from) an object
//    that is not restored -> 403 InvalidObjectState; POST ?restore (RestoreObject) -> 202
//    when a restore starts, 409 RestoreAlreadyInProgress while it runs, 200 when the object
//    is already restored (the expiry is then recomputed from now); 403 InvalidObjectState for
//    objects in other classes; x-amz-restore on HEAD/GET (ongoing-request="true", then
//    ongoing-request="false", expiry-date="<RFC 1123 date>"); <RestoreStatus> in listings
//    when asked with x-amz-optional-object-attributes: RestoreStatus.
//    A restore completes `restoreDelayMs` after it is requested (one delay per tier can be
//    given) and the copy expires `days` days later, rounded up to the next day boundary (AWS
//    rounds to the next midnight UTC; with a scaled day we round to the next multiple of
//    dayMs since the epoch, which is midnight UTC when dayMs is 86400000).
//    Expedited for DEEP_ARCHIVE: AWS documents that Expedited retrieval is not available for
//    Deep Archive but not the exact error; we answer 400 InvalidArgument (our choice).
//  - If-None-Match: * on PutObject and CompleteMultipartUpload -> 412 PreconditionFailed if
//    the key exists (s3rver ignores the header). Writes to one key are serialized here, so
//    the check and the write are atomic as on AWS.
//  - AbortMultipartUpload (s3rver answers MethodNotAllowed): answered 204 here.
//  - `Range: bytes=0-0` (s3rver returns the whole object for it): answered 206 with 1 byte.
//  - request counters by kind and by HTTP method: GET /__dev/stats (JSON), POST
//    /__dev/reset-stats; GET /__dev/state dumps the storage-class/restore state.
//  - latency: `latencyMs` is waited before each S3 request is handled, as a WAN round trip
//    would (and before "100 Continue"); POST /__dev/latency?ms=N (or setLatency(N)) changes
//    it while the server runs, GET /__dev/latency tells it.
//  - a gate that holds requests of one kind in flight until a test opens it, and tells the
//    test when one is held: POST /__dev/gate, GET /__dev/gate/held, POST /__dev/gate/open
//    (scripts/s3-dev-gate.mjs).
//  - a controllable clock: restores complete and restored copies expire by the server's clock,
//    the wall clock plus an offset that POST /__dev/advance?ms=N (advance(N)) moves forward.
//    With `manualClock` a restore never completes by itself (the delay is not used): it
//    completes when POST /__dev/complete-restores (completeRestores()) says so, so a test
//    decides when. GET /__dev/clock answers { now, iso, manual, offsetMs }; a client that
//    judges expiry dates by its own clock must be shifted by offsetMs too. Date headers
//    tell this clock; once it was advanced, request dates are no longer checked. Objects
//    are dated by it too: LastModified (listings, HEAD, GET) is the server's clock when the
//    object was written, so advancing the clock ages them (storage minimums, prune).
//  - ListMultipartUploads (s3rver lacks it): the uploads started and neither completed nor
//    aborted, from our state, with their Initiated time by the server's clock.
//  - `aws-chunked` request bodies (SigV4 streaming uploads, sent by minio-go, hence restic)
//    are decoded before s3rver sees them, which would otherwise store the chunk framing as
//    the object's bytes; s3rver's allowMismatchedSignatures accepts the changed request.
//
//  - bucket configuration (Block Public Access, policy and its status, ACL, ownership,
//    encryption, versioning, Object Lock configuration, lifecycle, location), STS
//    GetCallerIdentity, S3 Control's account Block Public Access, and /__dev/deny (refused
//    operations): scripts/s3-dev-bucket-config.mjs.
//  - S3 Object Lock (buckets created with it, retention per object, deletes and overwrites
//    of locked objects refused, governance bypass, PutObjectRetention/GetObjectRetention):
//    scripts/s3-dev-server-object-lock.mjs; GET /__dev/object-lock dumps its state.
//
// State (storage classes, restores, pending multipart uploads) is kept in
// <dir>/glacier-state.json, written atomically before the answer is sent, so restarting the
// server keeps it. s3rver's own data lives in <dir>/buckets.
//
// Credentials: s3rver knows one account, access key S3RVER, secret S3RVER. SigV4 signatures
// are not verified (s3rver does not), so the proxy may drop headers it handles itself.

import http from 'node:http';
import { promises as fsp, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import S3rver from 's3rver';
import { createGate } from './s3-dev-gate.mjs';
import { bucketConfigApi } from './s3-dev-bucket-config.mjs';
import { objectLockHooks } from './s3-dev-server-object-lock.mjs';

const COLD_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);
const VALID_CLASSES = new Set([
  'STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING',
  'GLACIER', 'DEEP_ARCHIVE', 'OUTPOSTS', 'GLACIER_IR', 'SNOW', 'EXPRESS_ONEZONE',
]);
const TIERS = ['Expedited', 'Standard', 'Bulk'];
const STATE_FILE = 'glacier-state.json';

/**
 * Start the server. Options:
 *   port (0 = a free port; default 0), host (default 127.0.0.1),
 *   dir (data directory; default: a new temporary directory, removed by stop()),
 *   restoreDelayMs (number, or { Expedited, Standard, Bulk }; default 2000),
 *   dayMs (length of a "day" for restore expiry; default 86400000),
 *   buckets (names to create at start), verbose (log s3rver requests), now (clock, for tests),
 *   latencyMs (added before each S3 request; default 0), manualClock (see above).
 * Resolves to { url, port, host, dir, stats(), resetStats(), state(), setLatency(ms),
 *   latency(), advance(ms), completeRestores(), clock(), stop() }.
 */
export async function startS3DevServer(options = {}) {
  const ownDir = options.dir === undefined;
  const dir = path.resolve(options.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 's3-dev-'))));
  try {
    return await start(dir, ownDir, options);
  } catch (e) {
    if (ownDir) await fsp.rm(dir, { recursive: true, force: true });
    throw e;
  }
}

async function start(dir, ownDir, options) {
  const host = options.host ?? '127.0.0.1';
  const dayMs = Number(options.dayMs ?? 86_400_000);
  if (!(dayMs > 0)) throw new Error(`dayMs must be a positive number, got ${options.dayMs}`);
  const delays = normalizeDelays(options.restoreDelayMs ?? 2000);
  const clock = newClock(options);
  const now = clock.now;
  let latencyMs = checkLatency(options.latencyMs ?? 0);
  const gate = createGate();
  const bucketDir = path.join(dir, 'buckets');
  mkdirSync(bucketDir, { recursive: true });

  const store = new StateStore(path.join(dir, STATE_FILE));
  const stats = newStats();
  // Bucket configuration APIs, account-level calls and refused operations (s3-dev-bucket-config.mjs).
  const bucketConfig = bucketConfigApi({ dir, readAll, sendError, forward });

  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: !options.verbose,
    directory: bucketDir,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name })),
    // Decoded aws-chunked bodies no longer match the client's signature.
    allowMismatchedSignatures: true,
  });
  const upAddr = await s3rver.run();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const upstream = { host: '127.0.0.1', port: upAddr.port, agent };

  const locks = new Map();
  async function withLock(k, fn) {
    const prev = locks.get(k) ?? Promise.resolve();
    let release;
    const mine = new Promise((r) => (release = r));
    const tail = prev.then(() => mine);
    locks.set(k, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (locks.get(k) === tail) locks.delete(k);
    }
  }

  // ---- restore state, evaluated lazily against the clock ----

  /** null (no restored copy, nor one coming), {ongoing:true} or {ongoing:false, expiry}. */
  function restoreStatus(ent) {
    const r = ent?.restore;
    if (!r) return null;
    const t = now();
    if (r.readyAt === null || t < r.readyAt) return { ongoing: true }; // null: until told (manual clock)
    const expiry = r.expiry ?? ceilTo(r.readyAt + r.days * dayMs, dayMs);
    if (t >= expiry) return null;
    return { ongoing: false, expiry };
  }
  function restoreHeader(rs) {
    return rs.ongoing
      ? 'ongoing-request="true"'
      : `ongoing-request="false", expiry-date="${new Date(rs.expiry).toUTCString()}"`;
  }

  // ---- HTTP plumbing ----

  function forward(method, urlPath, headers, body) {
    return new Promise((resolve, reject) => {
      const h = { ...headers, host: `127.0.0.1:${upstream.port}` };
      delete h.expect; // node answered "100 Continue" to the client already
      delete h.connection;
      delete h['keep-alive'];
      const req = http.request({ ...upstream, method, path: urlPath, headers: h }, resolve);
      req.on('error', reject);
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body) || typeof body === 'string') req.end(body);
      else {
        body.on('error', (e) => req.destroy(e));
        body.pipe(req);
      }
    });
  }

  /** Headers for a side request (existence check) made with the client's credentials. */
  function authHeaders(h) {
    const out = {};
    for (const [k, v] of Object.entries(h)) {
      if (k === 'authorization' || k === 'x-amz-date' || k === 'date' || k === 'x-amz-security-token' || k === 'x-amz-content-sha256' || k === 'user-agent') out[k] = v;
    }
    return out;
  }

  function sendError(req, res, status, code, message, extra = {}) {
    stats.errors[code] = (stats.errors[code] ?? 0) + 1;
    const rid = randomBytes(8).toString('hex').toUpperCase();
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' +
      `<Code>${code}</Code><Message>${escXml(message)}</Message>` +
      Object.entries(extra).map(([k, v]) => `<${k}>${escXml(String(v))}</${k}>`).join('') +
      `<RequestId>${rid}</RequestId><HostId>${randomBytes(24).toString('base64')}</HostId></Error>`;
    const headers = { 'content-type': 'application/xml', 'x-amz-request-id': rid, 'x-amz-error-code': code };
    if (req.method === 'HEAD') {
      res.writeHead(status, headers);
      res.end();
    } else {
      res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }
  }

  function countUpstreamError(up, body) {
    if (up.statusCode < 400) return;
    const code = /<Code>([^<]+)<\/Code>/.exec(body?.toString('utf8') ?? '')?.[1] ?? `HTTP${up.statusCode}`;
    stats.errors[code] = (stats.errors[code] ?? 0) + 1;
  }

  async function passThrough(up, res, headers = up.headers, countOut = false) {
    if (up.statusCode >= 400) {
      // Error documents are small: read them to count their <Code>.
      const body = await readAll(up);
      countUpstreamError(up, body);
      res.writeHead(up.statusCode, headers);
      return res.end(body);
    }
    res.writeHead(up.statusCode, headers);
    if (countOut) up.on('data', (c) => (stats.bytesOut += c.length));
    up.pipe(res);
  }

  async function sendBuffered(up, res, body) {
    countUpstreamError(up, body);
    const headers = { ...up.headers, 'content-length': Buffer.byteLength(body) };
    delete headers['transfer-encoding'];
    res.writeHead(up.statusCode, headers);
    res.end(body);
  }

  // Object Lock (scripts/s3-dev-server-object-lock.mjs).
  // The bucket-configuration module answers ?object-lock (and CreateBucket's lock header);
  // retention is enforced here by what it holds.
  const lockConfig = (bucket) => {
    const x = bucketConfig.objectLock(bucket);
    if (!x || !/<ObjectLockEnabled>\s*Enabled\s*<\/ObjectLockEnabled>/.test(x)) return undefined;
    const mode = /<DefaultRetention>[\s\S]*?<Mode>\s*([A-Z]+)\s*<\/Mode>/.exec(x)?.[1];
    const days = /<DefaultRetention>[\s\S]*?<Days>\s*(\d+)\s*<\/Days>/.exec(x)?.[1];
    const years = /<DefaultRetention>[\s\S]*?<Years>\s*(\d+)\s*<\/Years>/.exec(x)?.[1];
    if (!mode || (days === undefined && years === undefined)) return {};
    return { rule: days !== undefined ? { mode, days: Number(days) } : { mode, years: Number(years) } };
  };
  const objectLock = objectLockHooks({ store, now, dayMs, sendError, drain, readAll, lockConfig });

  // ---- the server ----

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (options.verbose) console.error('s3-dev-server: internal error', e);
      if (!res.headersSent) sendError(req, res, 500, 'InternalError', `s3-dev-server: ${e?.message ?? e}`);
      else res.destroy(e);
    });
  });

  async function handle(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/__dev/')) return devRoute(req, res, url);
    datedByOurClock(res, now);
    if (clock.offsetMs() !== 0) undatedByOurClock(req.headers, Date.now());
    if (await bucketConfig.account(req, res, url)) return;

    // Virtual-host style (bucket.localhost) is turned into path style.
    let pathname = url.pathname;
    const hostname = String(req.headers.host ?? '').replace(/:\d+$/, '');
    if (hostname.endsWith('.localhost')) pathname = `/${hostname.slice(0, -'.localhost'.length)}${pathname}`;
    const upPath = pathname + url.search;
    const slash = pathname.indexOf('/', 1);
    const bucket = decodeURIComponent(slash < 0 ? pathname.slice(1) : pathname.slice(1, slash));
    const key = slash < 0 ? '' : decodeURIComponent(pathname.slice(slash + 1));
    const q = url.searchParams;
    const kind = opKind(req.method ?? 'GET', bucket, key, q, req.headers);
    stats.requests[kind] = (stats.requests[kind] ?? 0) + 1;
    stats.methods[req.method] = (stats.methods[req.method] ?? 0) + 1;
    if (kind === 'GetObject' && req.headers.range !== undefined) stats.rangedGets++;
    if (kind === 'GetObject') stats.getsByKey[`${bucket}/${key}`] = (stats.getsByKey[`${bucket}/${key}`] ?? 0) + 1;
    stats.total++;
    await gate.pass(kind, `${bucket}/${key}`, res);
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
    const id = `${bucket}/${key}`;
    // ---- bucket configuration (s3-dev-bucket-config.mjs) ----
    if (bucketConfig.isDenied(kind, bucket, key)) {
      await drain(req);
      return sendError(req, res, 403, 'AccessDenied', 'Access Denied');
    }
    const bucketSub = bucketConfig.handles(kind, req.method, bucket, key, q);
    if (bucketSub === 'CreateBucket') {
      const up = await forward(req.method, upPath, { ...req.headers }, req);
      if (up.statusCode >= 200 && up.statusCode < 300) await bucketConfig.created(bucket, req.headers);
      return passThrough(up, res);
    }
    if (bucketSub) return bucketConfig.handle(req, res, bucket, bucketSub, key);
    // ---- end bucket configuration ----
    const h = { ...req.headers };
    if (isAwsChunked(req.headers)) {
      stats.awsChunked++;
      try {
        req = await decodeAwsChunkedRequest(req, h);
      } catch (e) {
        if (!(e instanceof BadChunkedBody)) throw e;
        return sendError(req, res, 400, 'IncompleteBody', e.message);
      }
    }
    const lockBefore = await objectLock.before({ kind, req, res, bucket, key, id, q, h });
    if (lockBefore.done) return;

    switch (kind) {
      case 'GetObject':
      case 'HeadObject': {
        const up = await forward(req.method, upPath, h);
        if (up.statusCode < 200 || up.statusCode >= 300) return passThrough(up, res);
        const ent = store.get(id);
        const sc = ent?.storageClass ?? 'STANDARD';
        const rs = restoreStatus(ent);
        if (kind === 'GetObject' && COLD_CLASSES.has(sc) && !(rs && !rs.ongoing)) {
          up.destroy();
          return sendError(req, res, 403, 'InvalidObjectState', "The operation is not valid for the object's storage class", { StorageClass: sc });
        }
        const headers = { ...up.headers };
        const created = store.created(id);
        if (created !== undefined) headers['last-modified'] = new Date(created).toUTCString();
        delete headers['x-amz-storage-class'];
        if (sc !== 'STANDARD') headers['x-amz-storage-class'] = sc;
        if (rs) headers['x-amz-restore'] = restoreHeader(rs);
        Object.assign(headers, objectLock.headers(id));
        if (kind === 'GetObject' && /^bytes=0-0$/.test(String(req.headers.range ?? '')) && Number(up.headers['content-length']) > 1) {
          // s3rver reads "bytes=0-0" as the whole object.
          return sendFirstByte(up, res, headers);
        }
        return passThrough(up, res, headers, kind === 'GetObject');
      }

      case 'PutObject':
      case 'CopyObject':
        return withLock(id, async () => {
          const sc = String(req.headers['x-amz-storage-class'] ?? 'STANDARD');
          if (!VALID_CLASSES.has(sc)) {
            await drain(req);
            return sendError(req, res, 400, 'InvalidStorageClass', 'The storage class you specified is not valid', { StorageClassRequested: sc });
          }
          if (kind === 'CopyObject') {
            const src = decodeURIComponent(String(req.headers['x-amz-copy-source']).split('?')[0]).replace(/^\//, '');
            const srcEnt = store.get(src);
            const srs = restoreStatus(srcEnt);
            if (srcEnt && COLD_CLASSES.has(srcEnt.storageClass) && !(srs && !srs.ongoing)) {
              await drain(req);
              return sendError(req, res, 403, 'InvalidObjectState', "The operation is not valid for the object's storage class", { StorageClass: srcEnt.storageClass });
            }
          }
          if (await refuseIfExists(req, res, id, upPath)) return;
          delete h['x-amz-storage-class'];
          delete h['if-none-match'];
          if (kind === 'PutObject') req.on('data', (c) => (stats.bytesIn += c.length));
          const up = await forward(req.method, upPath, h, req);
          if (up.statusCode >= 200 && up.statusCode < 300) await store.setClass(id, sc, now());
          if (up.statusCode >= 200 && up.statusCode < 300) await objectLock.written({ kind, bucket, id, q, before: lockBefore });
          return passThrough(up, res);
        });

      case 'CreateMultipartUpload': {
        const sc = String(req.headers['x-amz-storage-class'] ?? 'STANDARD');
        if (!VALID_CLASSES.has(sc)) {
          await drain(req);
          return sendError(req, res, 400, 'InvalidStorageClass', 'The storage class you specified is not valid', { StorageClassRequested: sc });
        }
        delete h['x-amz-storage-class'];
        const up = await forward(req.method, upPath, h, req);
        const body = await readAll(up);
        const m = /<UploadId>([^<]+)<\/UploadId>/.exec(body.toString('utf8'));
        if (up.statusCode === 200 && m) await store.setUpload(m[1], { id, storageClass: sc, initiated: now() });
        if (up.statusCode === 200 && m) await objectLock.written({ kind, bucket, id, q, before: lockBefore, uploadId: m[1] });
        return sendBuffered(up, res, body);
      }

      case 'UploadPart': {
        req.on('data', (c) => (stats.bytesIn += c.length));
        const up = await forward(req.method, upPath, h, req);
        return passThrough(up, res);
      }

      case 'CompleteMultipartUpload':
        return withLock(id, async () => {
          if (await refuseIfExists(req, res, id, upPath)) return;
          delete h['if-none-match'];
          const up = await forward(req.method, upPath, h, req);
          const body = await readAll(up);
          if (up.statusCode === 200 && !body.includes('<Error>')) {
            const uploadId = q.get('uploadId') ?? '';
            await store.completeUpload(uploadId, id, now());
            await objectLock.written({ kind, bucket, id, q, before: lockBefore });
          }
          return sendBuffered(up, res, body);
        });

      case 'AbortMultipartUpload': {
        await drain(req);
        await store.dropUpload(q.get('uploadId') ?? '');
        res.writeHead(204, { 'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase() });
        return res.end();
      }

      case 'DeleteObject':
        return withLock(id, async () => {
          const up = await forward(req.method, upPath, h, req);
          if (up.statusCode >= 200 && up.statusCode < 300) await store.drop(id);
          if (up.statusCode >= 200 && up.statusCode < 300) await objectLock.removed({ id });
          return passThrough(up, res);
        });

      case 'DeleteObjects': {
        const reqBody = await readAll(req);
        const up = await forward(req.method, upPath, h, reqBody);
        const body = await readAll(up);
        if (up.statusCode === 200) {
          for (const m of reqBody.toString('utf8').matchAll(/<Key>([\s\S]*?)<\/Key>/g)) await store.drop(`${bucket}/${unescXml(m[1])}`);
        }
        return sendBuffered(up, res, body);
      }

      case 'DeleteBucket': {
        const up = await forward(req.method, upPath, h, req);
        if (up.statusCode >= 200 && up.statusCode < 300) await store.dropBucket(bucket);
        if (up.statusCode >= 200 && up.statusCode < 300) await bucketConfig.dropped(bucket);
        if (up.statusCode >= 200 && up.statusCode < 300) await objectLock.removed({ bucket });
        return passThrough(up, res);
      }

      case 'ListObjects':
      case 'ListObjectsV2': {
        // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node
        // >= 17) refuses: every second page fails with 500. So V2 is served from s3rver's V1
        // listing (marker = the last key) and converted; our token is the last key, base64url.
        let v2 = null;
        let listPath = upPath;
        if (kind === 'ListObjectsV2') {
          const token = q.get('continuation-token');
          const startAfter = q.get('start-after');
          let marker = startAfter ?? '';
          if (token !== null) {
            marker = Buffer.from(token, 'base64url').toString('utf8');
            if (!token || !marker) {
              await drain(req);
              return sendError(req, res, 400, 'InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
            }
          }
          const q1 = new URLSearchParams();
          for (const p of ['prefix', 'delimiter', 'max-keys', 'encoding-type']) if (q.has(p)) q1.set(p, q.get(p));
          if (marker) q1.set('marker', marker);
          listPath = `${upPath.split('?')[0]}${q1.size ? `?${q1}` : ''}`;
          v2 = { token, startAfter, fetchOwner: q.get('fetch-owner') === 'true' };
        }
        const up = await forward(req.method, listPath, h, req);
        if (up.statusCode !== 200) return passThrough(up, res);
        let xml = (await readAll(up)).toString('utf8');
        if (v2) xml = listV1toV2(xml, v2);
        const wantRestore = String(req.headers['x-amz-optional-object-attributes'] ?? '').split(',').map((s) => s.trim()).includes('RestoreStatus');
        xml = xml.replace(/<Contents>([\s\S]*?)<\/Contents>/g, (_m, inner) => {
          const km = /<Key>([\s\S]*?)<\/Key>/.exec(inner);
          if (!km) return `<Contents>${inner}</Contents>`;
          const ent = store.get(`${bucket}/${unescXml(km[1])}`);
          const sc = ent?.storageClass ?? 'STANDARD';
          let out = inner.replace(/<StorageClass>[^<]*<\/StorageClass>/, `<StorageClass>${sc}</StorageClass>`);
          const created = store.created(`${bucket}/${unescXml(km[1])}`);
          if (created !== undefined) out = out.replace(/<LastModified>[^<]*<\/LastModified>/, `<LastModified>${new Date(created).toISOString()}</LastModified>`);
          const rs = restoreStatus(ent);
          if (wantRestore && rs) {
            out += rs.ongoing
              ? '<RestoreStatus><IsRestoreInProgress>true</IsRestoreInProgress></RestoreStatus>'
              : `<RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress><RestoreExpiryDate>${new Date(rs.expiry).toISOString()}</RestoreExpiryDate></RestoreStatus>`;
          }
          return `<Contents>${out}</Contents>`;
        });
        return sendBuffered(up, res, xml);
      }

      case 'RestoreObject':
        return withLock(id, () => restoreObject(req, res, id, upPath));

      case 'ListMultipartUploads': {
        await drain(req);
        const prefix = q.get('prefix') ?? '';
        const ups = Object.entries(store.uploads())
          .filter(([, u]) => u.id.startsWith(`${bucket}/${prefix}`))
          .map(([uploadId, u]) => ({ uploadId, key: u.id.slice(bucket.length + 1), u }))
          .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.uploadId < b.uploadId ? -1 : 1));
        const xml =
          '<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
          `<Bucket>${escXml(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${escXml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
          ups.map(({ uploadId, key, u }) => `<Upload><Key>${escXml(key)}</Key><UploadId>${escXml(uploadId)}</UploadId><StorageClass>${escXml(u.storageClass)}</StorageClass><Initiated>${new Date(u.initiated ?? now()).toISOString()}</Initiated></Upload>`).join('') +
          '</ListMultipartUploadsResult>';
        res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml), 'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase() });
        return res.end(xml);
      }

      default: {
        const up = await forward(req.method, upPath, h, req);
        if (kind === 'CreateBucket' && up.statusCode === 200) await objectLock.written({ kind, bucket, id, q, before: lockBefore });
        return passThrough(up, res);
      }
    }
  }

  /** If-None-Match: * -> 412 when the key exists. Returns true when it answered. */
  async function refuseIfExists(req, res, id, upPath) {
    const inm = req.headers['if-none-match'];
    if (inm === undefined) return false;
    if (inm !== '*') {
      await drain(req);
      sendError(req, res, 501, 'NotImplemented', 'A header you provided implies functionality that is not implemented', { Header: 'If-None-Match' });
      return true;
    }
    const objPath = upPath.split('?')[0];
    const up = await forward('HEAD', objPath, authHeaders(req.headers));
    up.resume();
    if (up.statusCode === 200) {
      await drain(req);
      sendError(req, res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-None-Match' });
      return true;
    }
    return false;
  }

  async function restoreObject(req, res, id, upPath) {
    const reqBody = (await readAll(req)).toString('utf8');
    // Existence and credentials: ask s3rver for the first byte with the client's headers.
    const objPath = upPath.split('?')[0];
    const probe = await forward('GET', objPath, { ...authHeaders(req.headers), range: 'bytes=0-0' });
    if (probe.statusCode === 404 || probe.statusCode === 403 || probe.statusCode === 400 || probe.statusCode >= 500) {
      const body = await readAll(probe);
      return sendBuffered(probe, res, body);
    }
    probe.destroy();

    const ent = store.get(id);
    const sc = ent?.storageClass ?? 'STANDARD';
    if (/<Type>\s*SELECT\s*<\/Type>/.test(reqBody)) {
      return sendError(req, res, 501, 'NotImplemented', 'SELECT restore requests are not implemented by s3-dev-server');
    }
    const daysText = /<Days>\s*([^<]*?)\s*<\/Days>/.exec(reqBody)?.[1];
    const tierText = /<GlacierJobParameters>[\s\S]*?<Tier>\s*([^<]*?)\s*<\/Tier>[\s\S]*?<\/GlacierJobParameters>/.exec(reqBody)?.[1]
      ?? /<Tier>\s*([^<]*?)\s*<\/Tier>/.exec(reqBody)?.[1] ?? 'Standard';
    if (daysText === undefined || !/^\d+$/.test(daysText) || Number(daysText) < 1 || !TIERS.includes(tierText)) {
      return sendError(req, res, 400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
    }
    const days = Number(daysText);
    if (!COLD_CLASSES.has(sc)) {
      return sendError(req, res, 403, 'InvalidObjectState', "Restore is not allowed for the object's current storage class", { StorageClass: sc });
    }
    if (sc === 'DEEP_ARCHIVE' && tierText === 'Expedited') {
      return sendError(req, res, 400, 'InvalidArgument', 'Expedited retrieval is not available for objects in the DEEP_ARCHIVE storage class; use Standard or Bulk', { ArgumentName: 'Tier', ArgumentValue: tierText });
    }
    const rs = restoreStatus(ent);
    const rid = randomBytes(8).toString('hex').toUpperCase();
    if (rs?.ongoing) {
      return sendError(req, res, 409, 'RestoreAlreadyInProgress', 'Object restore is already in progress');
    }
    if (rs) {
      // Already restored: AWS recomputes the expiry from now with the new number of days.
      await store.setRestore(id, { ...ent.restore, expiry: ceilTo(now() + days * dayMs, dayMs) });
      stats.restores.extended = (stats.restores.extended ?? 0) + 1;
      res.writeHead(200, { 'x-amz-request-id': rid, 'content-length': 0 });
      return res.end();
    }
    const t = now();
    await store.setRestore(id, { requestedAt: t, readyAt: clock.manual ? null : t + delays[tierText], days, tier: tierText });
    stats.restores[tierText] = (stats.restores[tierText] ?? 0) + 1;
    res.writeHead(202, { 'x-amz-request-id': rid, 'content-length': 0 });
    return res.end();
  }

  async function devRoute(req, res, url) {
    const json = (status, obj) => {
      const body = JSON.stringify(obj, null, 2);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    await drain(req);
    if (req.method === 'GET' && url.pathname === '/__dev/stats') return json(200, stats);
    if (req.method === 'POST' && url.pathname === '/__dev/reset-stats') {
      Object.assign(stats, newStats());
      return json(200, stats);
    }
    if (req.method === 'GET' && url.pathname === '/__dev/state') return json(200, store.dump());
    if (await bucketConfig.devRoute(req, res, url, json)) return;
    if (req.method === 'GET' && url.pathname === '/__dev/object-lock') return json(200, objectLock.dump());
    const ms = () => {
      const v = Number(url.searchParams.get('ms'));
      if (url.searchParams.get('ms') === null || !Number.isFinite(v) || v < 0) throw new RangeError('ms must be a number >= 0');
      return v;
    };
    try {
      if (url.pathname.startsWith('/__dev/gate') && (await gate.route(req, url, json))) return;
      if (req.method === 'GET' && url.pathname === '/__dev/latency') return json(200, { ms: latencyMs });
      if (req.method === 'POST' && url.pathname === '/__dev/latency') return json(200, { ms: (latencyMs = checkLatency(ms())) });
      if (req.method === 'GET' && url.pathname === '/__dev/clock') return json(200, clock.info());
      if (req.method === 'POST' && url.pathname === '/__dev/advance') {
        clock.advance(ms());
        return json(200, clock.info());
      }
    } catch (e) {
      if (e instanceof RangeError) return json(400, { error: e.message });
      throw e;
    }
    if (req.method === 'POST' && url.pathname === '/__dev/complete-restores') return json(200, { completed: await completeRestores() });
    return json(404, { error: `no such dev route: ${req.method} ${url.pathname}` });
  }

  /** Every ongoing restore completes now (by the server's clock). Returns how many. */
  async function completeRestores() {
    const t = now();
    let n = 0;
    for (const [id, ent] of Object.entries(store.data.objects)) {
      if (ent.restore && (ent.restore.readyAt === null || t < ent.restore.readyAt)) {
        ent.restore = { ...ent.restore, readyAt: t };
        n++;
      }
    }
    if (n) await store.persist();
    return n;
  }

  // "Expect: 100-continue": the go-ahead is a round trip too (node would answer at once).
  server.on('checkContinue', (req, res) => {
    const go = () => {
      res.writeContinue();
      server.emit('request', req, res);
    };
    if (latencyMs > 0 && !String(req.url).startsWith('/__dev/')) setTimeout(go, latencyMs);
    else go();
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(options.port ?? 0), host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = server.address().port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let stopped = null;
  return {
    url,
    port,
    host,
    dir,
    stats: () => JSON.parse(JSON.stringify(stats)),
    resetStats: () => Object.assign(stats, newStats()),
    state: () => store.dump(),
    setLatency: (ms) => {
      latencyMs = checkLatency(ms);
    },
    latency: () => latencyMs,
    advance: (ms) => clock.advance(ms),
    completeRestores,
    clock: () => clock.info(),
    stop() {
      stopped ??= (async () => {
        gate.close();
        await new Promise((r) => {
          server.close(() => r());
          server.closeAllConnections?.();
        });
        agent.destroy();
        await s3rver.close().catch(() => {});
        await store.flush();
        if (ownDir) await fsp.rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

// ---- helpers ----

function opKind(method, bucket, key, q, headers) {
  if (!bucket) return method === 'GET' ? 'ListBuckets' : `${method}Service`;
  if (!key) {
    switch (method) {
      case 'PUT': return q.size ? 'PutBucketSubresource' : 'CreateBucket';
      case 'DELETE': return q.size ? 'DeleteBucketSubresource' : 'DeleteBucket';
      case 'HEAD': return 'HeadBucket';
      case 'POST': return q.has('delete') ? 'DeleteObjects' : 'PostObject';
      case 'GET':
        if (q.get('list-type') === '2') return 'ListObjectsV2';
        if (q.has('location')) return 'GetBucketLocation';
        if (q.has('object-lock')) return 'GetObjectLockConfiguration';
        if (q.has('uploads')) return 'ListMultipartUploads';
        if (q.has('versions')) return 'ListObjectVersions';
        for (const sub of ['cors', 'website', 'acl', 'lifecycle', 'policy', 'tagging', 'versioning', 'encryption']) if (q.has(sub)) return 'GetBucketSubresource';
        return 'ListObjects';
      default: return `${method}Bucket`;
    }
  }
  switch (method) {
    case 'GET':
      if (q.has('uploadId')) return 'ListParts';
      if (q.has('tagging')) return 'GetObjectTagging';
      if (q.has('acl')) return 'GetObjectAcl';
      if (q.has('retention')) return 'GetObjectRetention';
      return 'GetObject';
    case 'HEAD': return 'HeadObject';
    case 'PUT':
      if (q.has('uploadId')) return headers['x-amz-copy-source'] ? 'UploadPartCopy' : 'UploadPart';
      if (q.has('tagging')) return 'PutObjectTagging';
      if (q.has('acl')) return 'PutObjectAcl';
      if (q.has('retention')) return 'PutObjectRetention';
      return headers['x-amz-copy-source'] ? 'CopyObject' : 'PutObject';
    case 'DELETE': return q.has('uploadId') ? 'AbortMultipartUpload' : q.has('tagging') ? 'DeleteObjectTagging' : 'DeleteObject';
    case 'POST':
      if (q.has('restore')) return 'RestoreObject';
      if (q.has('uploads')) return 'CreateMultipartUpload';
      if (q.has('uploadId')) return 'CompleteMultipartUpload';
      if (q.has('select')) return 'SelectObjectContent';
      return 'PostObjectUnknown';
    default: return `${method}Object`;
  }
}

/** Turn s3rver's ListObjects (V1) answer into a ListObjectsV2 answer. */
function listV1toV2(xml, { token, startAfter, fetchOwner }) {
  const nextMarker = /<NextMarker>([^<]*)<\/NextMarker>/.exec(xml)?.[1];
  const keys = [...xml.matchAll(/<Contents>[\s\S]*?<Key>([\s\S]*?)<\/Key>/g)].map((m) => unescXml(m[1]));
  const prefixes = [...xml.matchAll(/<CommonPrefixes>\s*<Prefix>([\s\S]*?)<\/Prefix>/g)].map((m) => unescXml(m[1]));
  const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
  const last = [nextMarker ? unescXml(nextMarker) : undefined, keys.at(-1), prefixes.at(-1)].filter(Boolean).sort().at(-1);
  let head = '';
  if (token !== null) head += `<ContinuationToken>${escXml(token)}</ContinuationToken>`;
  else if (startAfter) head += `<StartAfter>${escXml(startAfter)}</StartAfter>`;
  head += `<KeyCount>${keys.length + prefixes.length}</KeyCount>`;
  if (truncated && last) head += `<NextContinuationToken>${Buffer.from(last, 'utf8').toString('base64url')}</NextContinuationToken>`;
  let out = xml
    .replace(/<NextMarker>[^<]*<\/NextMarker>/, '')
    .replace(/<Marker>[^<]*<\/Marker>|<Marker\s*\/>/, head);
  if (!out.includes('<KeyCount>')) out = out.replace(/<MaxKeys>/, `${head}<MaxKeys>`);
  if (!fetchOwner) out = out.replace(/<Owner>[\s\S]*?<\/Owner>/g, '');
  return out;
}

function newStats() {
  return { startedAt: new Date().toISOString(), total: 0, requests: {}, methods: {}, rangedGets: 0, getsByKey: {}, awsChunked: 0, errors: {}, restores: {}, bytesIn: 0, bytesOut: 0 };
}

/** The Date header tells the server's clock (clients check their clock against it). */
function datedByOurClock(res, now) {
  const writeHead = res.writeHead;
  res.writeHead = function (status, ...rest) {
    const date = new Date(now()).toUTCString();
    const headers = rest.find((x) => x && typeof x === 'object');
    if (headers && !Array.isArray(headers)) {
      for (const k of Object.keys(headers)) if (k.toLowerCase() === 'date') delete headers[k];
      headers.date = date;
    } else res.setHeader('date', date);
    return writeHead.call(this, status, ...rest);
  };
}

/**
 * Once our clock was advanced, clients sign with their clock or with ours (a program whose
 * clock a test moved, an SDK that corrected its skew from our Date headers, several times
 * over): s3rver, on the wall clock, would refuse them as skewed. Signatures are not checked
 * (s3rver does not check SigV4), so neither are request dates then: they become the wall's.
 */
function undatedByOurClock(headers, wall) {
  if (headers['x-amz-date'] !== undefined) headers['x-amz-date'] = new Date(wall).toISOString().replace(/[-:]|\.\d{3}/g, '');
  if (headers.date !== undefined) headers.date = new Date(wall).toUTCString();
}

function checkLatency(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`latencyMs must be a number >= 0, got ${ms}`);
  return n;
}

/** The server's clock: the wall clock (options.now, default Date.now) plus an offset. */
function newClock(options) {
  const wall = options.now ?? Date.now;
  const manual = Boolean(options.manualClock);
  let offsetMs = 0;
  const now = () => wall() + offsetMs;
  return {
    now,
    manual,
    offsetMs: () => offsetMs,
    advance(ms) {
      const n = Number(ms);
      if (!Number.isFinite(n) || n < 0) throw new RangeError(`advance: ms must be a number >= 0, got ${ms}`);
      offsetMs += n;
    },
    info: () => ({ now: now(), iso: new Date(now()).toISOString(), manual, offsetMs }),
  };
}

// ---- aws-chunked (SigV4 streaming) bodies ----
// The body is a sequence of "<hex size>[;chunk-signature=...]\r\n<bytes>\r\n", ended by a
// chunk of size 0 and optional trailer lines; x-amz-decoded-content-length gives the size
// of the payload.

function isAwsChunked(headers) {
  const ce = String(headers['content-encoding'] ?? '');
  const sha = String(headers['x-amz-content-sha256'] ?? '');
  return ce.split(',').some((e) => e.trim() === 'aws-chunked') || sha.startsWith('STREAMING-');
}

/** A readable of the decoded payload, with `h` (the headers to forward) rewritten to match. */
async function decodeAwsChunkedRequest(req, h) {
  const rest = String(h['content-encoding'] ?? '').split(',').map((e) => e.trim()).filter((e) => e && e !== 'aws-chunked');
  if (rest.length) h['content-encoding'] = rest.join(',');
  else delete h['content-encoding'];
  delete h['transfer-encoding'];
  delete h['x-amz-trailer'];
  if (h['x-amz-decoded-content-length'] !== undefined) h['content-length'] = String(h['x-amz-decoded-content-length']);
  else delete h['content-length'];
  delete h['x-amz-decoded-content-length'];
  h['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  // Decoded whole before it is forwarded: a body cut short must not reach s3rver as a
  // complete object of the declared decoded length.
  const decoder = awsChunkDecoder();
  const pieces = [];
  for await (const c of req) for (const piece of decoder.push(c)) pieces.push(Buffer.from(piece));
  if (!decoder.done()) throw new BadChunkedBody('the aws-chunked body ended before its last (empty) chunk');
  const body = Buffer.concat(pieces);
  if (h['content-length'] !== undefined && Number(h['content-length']) !== body.length) {
    throw new BadChunkedBody(`the aws-chunked body holds ${body.length} bytes, x-amz-decoded-content-length says ${h['content-length']}`);
  }
  h['content-length'] = String(body.length);
  const out = Readable.from([body]);
  // The handlers read headers off the request: keep them on the decoded stream.
  out.headers = req.headers;
  out.method = req.method;
  out.url = req.url;
  return out;
}

class BadChunkedBody extends Error {}

function awsChunkDecoder() {
  let buf = Buffer.alloc(0);
  let need = -1; // bytes of chunk data (plus its CRLF) still to read; -1: reading a header
  let finished = false;
  return {
    done: () => finished,
    *push(c) {
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      for (;;) {
        if (finished) return; // trailers after the last chunk are dropped
        if (need < 0) {
          const eol = buf.indexOf('\r\n');
          if (eol < 0) {
            if (buf.length > 4096) throw new BadChunkedBody('aws-chunked: chunk header too long');
            return;
          }
          const line = buf.subarray(0, eol).toString('latin1');
          const size = parseInt(line.split(';')[0], 16);
          if (!Number.isFinite(size) || size < 0 || !/^[0-9a-fA-F]+$/.test(line.split(';')[0].trim())) throw new BadChunkedBody(`aws-chunked: bad chunk header ${JSON.stringify(line.slice(0, 80))}`);
          buf = buf.subarray(eol + 2);
          if (size === 0) {
            finished = true;
            return;
          }
          need = size + 2;
        }
        if (buf.length === 0) return;
        const data = need - 2;
        if (data > 0) {
          const take = Math.min(data, buf.length);
          yield buf.subarray(0, take);
          buf = buf.subarray(take);
          need -= take;
          if (need > 2) return;
        }
        // the CRLF after the chunk data
        const crlf = Math.min(need, buf.length);
        buf = buf.subarray(crlf);
        need -= crlf;
        if (need > 0) return;
        need = -1;
      }
    },
  };
}

function normalizeDelays(d) {
  if (typeof d === 'number' || typeof d === 'string') {
    const n = Number(d);
    if (!(n >= 0)) throw new Error(`restoreDelayMs must be >= 0, got ${d}`);
    return { Expedited: n, Standard: n, Bulk: n };
  }
  const out = {};
  for (const t of TIERS) {
    const n = Number(d[t] ?? d.Standard ?? 2000);
    if (!(n >= 0)) throw new Error(`restoreDelayMs.${t} must be >= 0`);
    out[t] = n;
  }
  return out;
}

function ceilTo(t, step) {
  return Math.ceil(t / step) * step;
}

function escXml(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function unescXml(s) {
  return s
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'")
    .replace(/&#x([0-9a-f]+);/gi, (_m, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_m, d) => String.fromCodePoint(Number(d)))
    .replace(/&amp;/g, '&');
}

function readAll(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function drain(req) {
  if (req.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    req.on('end', resolve);
    req.on('error', resolve);
    req.resume();
  });
}

function sendFirstByte(up, res, headers) {
  const cr = /\/(\d+)$/.exec(String(up.headers['content-range'] ?? ''));
  const size = cr ? Number(cr[1]) : Number(up.headers['content-length'] ?? 0);
  const h = { ...headers, 'content-length': 1, 'content-range': `bytes 0-0/${size}` };
  delete h['transfer-encoding'];
  let sent = false;
  up.on('data', (c) => {
    if (sent || c.length === 0) return;
    sent = true;
    res.writeHead(206, h);
    res.end(c.subarray(0, 1));
    up.destroy();
  });
  up.on('end', () => {
    if (!sent) {
      res.writeHead(416, { 'content-length': 0 });
      res.end();
    }
  });
}

/** Storage classes, restores and pending multipart uploads, persisted as one JSON file. */
class StateStore {
  constructor(file) {
    this.file = file;
    this.data = { version: 1, objects: {}, uploads: {} };
    try {
      const loaded = JSON.parse(readFileSync(file, 'utf8'));
      if (loaded && loaded.version === 1) this.data = { objects: {}, uploads: {}, ...loaded };
    } catch (e) {
      if (e.code !== 'ENOENT') throw new Error(`cannot read ${file}: ${e.message}`);
    }
    this.writing = null;
    this.dirty = false;
  }
  get(id) {
    return this.data.objects[id];
  }
  dump() {
    return JSON.parse(JSON.stringify(this.data));
  }
  /** A new object version: its class, and no restore. STANDARD objects have no entry. */
  setClass(id, storageClass, created) {
    if (storageClass === 'STANDARD') delete this.data.objects[id];
    else this.data.objects[id] = { storageClass };
    if (created !== undefined) (this.data.created ??= {})[id] = created;
    return this.persist();
  }
  /** When an object was written, by the server's clock (undefined: not written through us). */
  created(id) {
    return this.data.created?.[id];
  }
  uploads() {
    return this.data.uploads;
  }
  setRestore(id, restore) {
    const ent = this.data.objects[id];
    if (ent) ent.restore = restore;
    return this.persist();
  }
  drop(id) {
    if (!(id in this.data.objects) && !(id in (this.data.created ?? {}))) return Promise.resolve();
    delete this.data.objects[id];
    if (this.data.created) delete this.data.created[id];
    return this.persist();
  }
  dropBucket(bucket) {
    for (const id of Object.keys(this.data.objects)) if (id.startsWith(`${bucket}/`)) delete this.data.objects[id];
    for (const id of Object.keys(this.data.created ?? {})) if (id.startsWith(`${bucket}/`)) delete this.data.created[id];
    return this.persist();
  }
  setUpload(uploadId, info) {
    this.data.uploads[uploadId] = info;
    return this.persist();
  }
  dropUpload(uploadId) {
    delete this.data.uploads[uploadId];
    return this.persist();
  }
  completeUpload(uploadId, id, created) {
    const up = this.data.uploads[uploadId];
    delete this.data.uploads[uploadId];
    return this.setClass(id, up?.storageClass ?? 'STANDARD', created);
  }
  /** Resolves once a write that includes every change made so far is on disk. */
  persist() {
    this.dirty = true;
    if (!this.writing) {
      this.writing = (async () => {
        try {
          while (this.dirty) {
            this.dirty = false;
            const tmp = `${this.file}.tmp-${process.pid}`;
            const fh = await fsp.open(tmp, 'w');
            try {
              await fh.writeFile(JSON.stringify(this.data));
              await fh.sync();
            } finally {
              await fh.close();
            }
            await fsp.rename(tmp, this.file);
          }
        } finally {
          this.writing = null;
        }
      })();
    }
    return this.writing;
  }
  async flush() {
    while (this.writing) await this.writing.catch(() => {});
  }
}
