// S3 backend: one bucket, an optional key prefix. Credentials come from the SDK's default
// chain (env, shared config/credentials files and AWS_PROFILE, SSO, instance/task roles);
// the region from `region`, else the SDK's chain (AWS_REGION, profile), else us-east-1 with
// region redirects followed. The endpoint from `endpoint`, else the SDK honours
// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL itself. Custom endpoints get path-style requests.
//
// Objects are immutable: put sends If-None-Match: * (S3 conditional writes), so an existing
// name is never overwritten, even by two writers racing. Servers that do not support the
// header and say so (501 NotImplemented, or a 400 naming the header) make us fall back to
// HEAD-then-PUT, which is racy; servers that silently ignore it can be told with
// `checkBeforePut: true`. Our dev server (scripts/s3-dev-server.mjs) implements the header.
//
// Retries are not done here (the SDK is set to one attempt by default): wrap the backend
// with withRetry() from ./retry.ts, which reads `retryable` on the BackendErrors we throw.

import {
  S3Client,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  DeleteObjectCommand,
  RestoreObjectCommand,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  PutObjectRetentionCommand,
  type S3ClientConfig,
  type StorageClass as S3StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Backend, Unfinished, ObjectInfo, PutOptions, Range, RestoreTier, Retention, StorageClass } from './backend.js';
import { AlreadyExistsError, BackendError } from './backend-error.js';
import { padme } from './padme.js';
import { ColdError, NotFoundError, TsbakError } from '../errors.js';

export interface S3BackendOptions {
  bucket: string;
  /** Key prefix inside the bucket ("" or "backups/laptop"); a trailing "/" is added. */
  prefix?: string;
  region?: string;
  /** e.g. "http://127.0.0.1:4568"; default: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. */
  endpoint?: string;
  /** Default: true when an endpoint is configured (option or environment), else the SDK's. */
  forcePathStyle?: boolean;
  /** A profile of ~/.aws/config and ~/.aws/credentials (default: AWS_PROFILE or "default"). */
  profile?: string;
  /** Explicit credentials; normally left out so that the SDK's default chain is used. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Attempts per request inside the SDK. Default 1: retrying is withRetry()'s job. */
  maxAttempts?: number;
  /** Bodies larger than this go up as multipart uploads (default 16 MiB). */
  multipartThreshold?: number;
  /** Part size for multipart uploads (default 8 MiB; S3's minimum is 5 MiB). */
  partSize?: number;
  /** Keys per ListObjectsV2 page (default: the server's, 1000 on S3). */
  listPageSize?: number;
  /** HEAD before every PUT, for servers that silently ignore If-None-Match (racy). */
  checkBeforePut?: boolean;
  /** Milliseconds to establish a connection (default 10 s) and of socket inactivity (default 120 s). */
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Connections kept per host (default 64: readers keep ~12 GETs in flight, writers several parts). */
  maxSockets?: number;
}

const MiB = 1024 * 1024;
const TRANSIENT_ERRNO = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ESOCKETTIMEDOUT', 'UND_ERR_SOCKET']);
const RETRYABLE_CODES = new Set(['SlowDown', 'TooManyRequests', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'ServiceUnavailable', 'ConditionalRequestConflict', 'OperationAborted', 'GlacierExpeditedRetrievalNotAvailable', 'TimeoutError', 'RequestAbortedError']);
const PERMISSION: Record<string, string> = {
  put: 's3:PutObject',
  get: 's3:GetObject',
  head: 's3:GetObject (and s3:ListBucket, without which a missing object also reads as 403)',
  list: 's3:ListBucket',
  delete: 's3:DeleteObject',
  restore: 's3:RestoreObject',
  'read the retention of': 's3:GetObjectRetention',
  'set the retention of': 's3:PutObjectRetention',
  'read the Object Lock configuration of': 's3:GetBucketObjectLockConfiguration',
};

/** Parse "s3://bucket/prefix", "s3://bucket" or a bare bucket name. */
export function parseS3Location(repo: string): { bucket: string; prefix: string } {
  let rest: string;
  if (repo.startsWith('s3://')) rest = repo.slice(5);
  else if (!repo.includes('/') && !repo.includes(':')) rest = repo;
  else throw new TsbakError('USAGE', `${repo} is not an S3 location; use s3://bucket[/prefix] or a bare bucket name`);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (!/^[a-z0-9][a-z0-9.\-_]{1,253}[a-z0-9]$/i.test(bucket)) {
    throw new TsbakError('USAGE', `"${bucket}" is not a valid S3 bucket name (3-255 letters, digits, dots, dashes) in ${repo}`);
  }
  return { bucket, prefix: normalizePrefix(prefix) };
}

function normalizePrefix(p: string): string {
  const s = p.replace(/^\/+/, '').replace(/\/+$/, '');
  return s ? `${s}/` : '';
}

/**
 * Parse S3's x-amz-restore header: `ongoing-request="true"` or
 * `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`.
 */
export function parseRestoreHeader(h: string | undefined): ObjectInfo['restore'] {
  if (!h) return undefined;
  const ongoing = /ongoing-request\s*=\s*"?(true|false)"?/i.exec(h);
  if (!ongoing) return undefined;
  const exp = /expiry-date\s*=\s*"([^"]+)"/i.exec(h);
  const expiry = exp ? new Date(exp[1]) : undefined;
  return { ongoing: ongoing[1].toLowerCase() === 'true', ...(expiry && !isNaN(expiry.getTime()) ? { expiry } : {}) };
}

interface ErrInfo {
  name: string;
  status?: number;
  errno?: string;
  message: string;
}

function errInfo(e: any): ErrInfo {
  const status: number | undefined = e?.$metadata?.httpStatusCode ?? e?.$response?.statusCode;
  const errno: string | undefined = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  return {
    name: String(e?.Code ?? e?.name ?? 'Error'),
    status,
    errno,
    message: String(e?.message ?? e).replace(/\s+/g, ' ').trim(),
  };
}

function isAbort(e: any): boolean {
  return e?.name === 'AbortError' || e?.code === 'ABORT_ERR';
}

/** GETs worth keeping in flight: each waits a round trip (20-150 ms on a WAN) before its bytes. */
export const S3_READ_CONCURRENCY = 12;
/**
 * Pack uploads at once: each holds a pack (16 MiB by default) in memory until S3 has it, so
 * this bounds the writer's memory too.
 */
export const S3_PUT_CONCURRENCY = 4;

export class S3Backend implements Backend {
  readonly location: string;
  readonly readConcurrency = S3_READ_CONCURRENCY;
  readonly putConcurrency = S3_PUT_CONCURRENCY;
  readonly bucket: string;
  readonly prefix: string;
  private readonly opts: S3BackendOptions;
  private readonly endpointDesc: string;
  private clientP?: Promise<S3Client>;
  /** Puts and multipart uploads in flight, for abandon(). */
  private readonly puts = new Set<AbortController>();
  private readonly uploads = new Set<Upload>();
  private abandoned = false;
  /** false once the server showed it does not support If-None-Match on PUT. */
  private conditional = true;
  /** The last Date header the server sent, and this machine's clock when it came (now()). */
  private serverDate: { server: number; local: number } | null = null;

  constructor(opts: S3BackendOptions) {
    this.opts = opts;
    this.bucket = opts.bucket;
    this.prefix = normalizePrefix(opts.prefix ?? '');
    const envEndpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL;
    this.endpointDesc = opts.endpoint ?? envEndpoint ?? 'AWS S3';
    const custom = opts.endpoint ?? envEndpoint;
    this.location = `s3://${this.bucket}${this.prefix ? `/${this.prefix.slice(0, -1)}` : ''}${custom ? ` (endpoint ${custom})` : ''}`;
    // The SDK prints a multi-line warning on Node < 22 at the first client; we pin a version
    // that supports Node 20 (see package.json), so the warning is noise for our users.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  }

  /** `s3://bucket/prefix` or a bare bucket name, plus options. */
  static fromUrl(repo: string, opts: Omit<S3BackendOptions, 'bucket' | 'prefix'> = {}): S3Backend {
    return new S3Backend({ ...opts, ...parseS3Location(repo) });
  }

  private key(name: string): string {
    if (!name || name.startsWith('/') || name.split('/').includes('..')) throw new TsbakError('BACKEND', `invalid object name ${name}`);
    return this.prefix + name;
  }

  private client(): Promise<S3Client> {
    this.clientP ??= this.makeClient();
    return this.clientP;
  }

  private async makeClient(): Promise<S3Client> {
    const o = this.opts;
    const custom = o.endpoint ?? (process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL);
    const base = (): S3ClientConfig => ({
      maxAttempts: o.maxAttempts ?? 1,
      followRegionRedirects: true,
      // No CRC32 of every body sent or received unless an operation requires one: the
      // signed payload hash (SigV4, which S3 checks) covers uploads, and every blob we read
      // is authenticated (AES-GCM, then its id) and every object named by its SHA-256.
      // The CRCs were ~0.4 CPU-s per GiB on the main thread.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // No "Expect: 100-continue" on large PUTs: waiting for the go-ahead costs a round trip
      // per pack. The body is sent at once; a refused PUT (the name exists) is rare.
      expectContinueHeader: false,
      requestHandler: {
        connectionTimeout: o.connectionTimeoutMs ?? 10_000,
        // Idle time on the socket, not the whole request's: a 16 MiB part on a slow uplink
        // may take minutes, a stalled connection must not.
        socketTimeout: o.requestTimeoutMs ?? 120_000,
        // Kept-alive connections, enough for the GETs readers keep in flight and the
        // uploads' parts: a new connection per request costs a handshake (two round trips
        // with TLS). lifo reuses the connection that was used last (warm, not yet closed
        // by the server's idle timeout).
        httpAgent: new HttpAgent({ keepAlive: true, maxSockets: o.maxSockets ?? 64, scheduling: 'lifo' }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: o.maxSockets ?? 64, scheduling: 'lifo' }),
      },
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      ...(o.forcePathStyle !== undefined ? { forcePathStyle: o.forcePathStyle } : custom ? { forcePathStyle: true } : {}),
      ...(o.profile ? { profile: o.profile } : {}),
      ...(o.credentials ? { credentials: o.credentials } : {}),
    });
    if (o.region) return this.watchDate(new S3Client({ ...base(), region: o.region }));
    const c = new S3Client(base());
    try {
      if (await c.config.region()) return this.watchDate(c);
    } catch {
      // no region in the environment or the profile
    }
    c.destroy();
    return this.watchDate(new S3Client({ ...base(), region: 'us-east-1' }));
  }

  /** Remembers the servers' Date header: now() ages objects by the storage's clock, not ours. */
  private watchDate(c: S3Client): S3Client {
    c.middlewareStack.add(
      (next) => async (args) => {
        const r = await next(args);
        const d = Date.parse(String((r.response as { headers?: Record<string, string> })?.headers?.date ?? ''));
        if (Number.isFinite(d)) this.serverDate = { server: d, local: Date.now() };
        return r;
      },
      { step: 'deserialize', name: 'tsbakServerDate' },
    );
    return c;
  }

  /** The server's clock (its last Date header, advanced by the time since), asking it once if it never answered. */
  async now(): Promise<Date> {
    if (!this.serverDate) {
      const client = await this.client();
      try {
        await client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 }));
      } catch (e) {
        throw this.mapError(e, 'list', '/');
      }
    }
    const d = this.serverDate;
    return new Date(d ? d.server + (Date.now() - d.local) : Date.now());
  }

  /** Incomplete multipart uploads under the prefix (a killed writer's, or one that failed without aborting). */
  async *listUnfinished(): AsyncIterable<Unfinished> {
    const client = await this.client();
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let r;
      try {
        r = await client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      } catch (e) {
        throw this.mapError(e, 'list', 'multipart uploads');
      }
      for (const u of r.Uploads ?? []) {
        if (!u.Key?.startsWith(this.prefix) || !u.UploadId) continue;
        yield { name: u.Key.slice(this.prefix.length), uploadId: u.UploadId, ...(u.Initiated ? { started: u.Initiated } : {}) };
      }
      if (!r.IsTruncated) return;
      keyMarker = r.NextKeyMarker;
      uploadIdMarker = r.NextUploadIdMarker;
      if (!keyMarker && !uploadIdMarker) return;
    }
  }

  async removeUnfinished(u: Unfinished): Promise<void> {
    if (!u.uploadId) throw new TsbakError('BACKEND', `no upload id for ${u.name}`);
    const client = await this.client();
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key(u.name), UploadId: u.uploadId }));
    } catch (e) {
      const i = errInfo(e);
      if (i.name === 'NoSuchUpload' || i.status === 404) return;
      throw this.mapError(e, 'delete', u.name);
    }
  }

  async put(name: string, data: Uint8Array, opts: PutOptions = {}): Promise<void> {
    if (this.abandoned) throw new TsbakError('IO', `not writing ${name} to ${this.location}: writing was stopped (the process is ending)`);
    const stop = new AbortController();
    const onStop = () => stop.abort(opts.signal?.reason);
    if (opts.signal?.aborted) onStop();
    opts.signal?.addEventListener('abort', onStop, { once: true });
    this.puts.add(stop);
    try {
      await this.putOnce(name, data, { ...opts, signal: stop.signal });
    } finally {
      this.puts.delete(stop);
      opts.signal?.removeEventListener('abort', onStop);
    }
  }

  private async putOnce(name: string, data: Uint8Array, opts: PutOptions & { signal: AbortSignal }): Promise<void> {
    const Key = this.key(name);
    const client = await this.client();
    const big = data.length > (this.opts.multipartThreshold ?? 16 * MiB);
    // A HEAD first when the server cannot do conditional writes, and before multipart
    // uploads (cheap next to uploading tens of MiB only to be refused at the end).
    if (!this.conditional || this.opts.checkBeforePut || big) {
      if (await this.head(name)) throw new AlreadyExistsError(this.location, name);
    }
    const params = {
      Bucket: this.bucket,
      Key,
      Body: data,
      ...(opts.storageClass ? { StorageClass: opts.storageClass as S3StorageClass } : {}),
      ...(this.conditional ? { IfNoneMatch: '*' } : {}),
      // S3 requires a checksum (Content-MD5 or x-amz-checksum-*) on puts with Object Lock parameters.
      ...(opts.retention ? { ObjectLockMode: opts.retention.mode, ObjectLockRetainUntilDate: opts.retention.until, ChecksumAlgorithm: 'CRC32' as const } : {}),
    };
    try {
      if (big) {
        const upload = new Upload({ client, params, partSize: Math.max(5 * MiB, this.opts.partSize ?? 8 * MiB), queueSize: 4, leavePartsOnError: false });
        const onAbort = () => void upload.abort().catch(() => {});
        if (opts.signal.aborted) throw opts.signal.reason ?? new DOMException('aborted', 'AbortError');
        opts.signal.addEventListener('abort', onAbort, { once: true });
        this.uploads.add(upload);
        try {
          await upload.done();
        } finally {
          this.uploads.delete(upload);
          opts.signal.removeEventListener('abort', onAbort);
        }
      } else {
        await client.send(new PutObjectCommand({ ...params, ContentLength: data.length }), { abortSignal: opts.signal });
      }
    } catch (e) {
      const i = errInfo(e);
      if (i.status === 412 || i.name === 'PreconditionFailed') throw new AlreadyExistsError(this.location, name, { status: 412, serviceCode: i.name, cause: e });
      if (this.conditional && (i.status === 501 || (i.status === 400 && /if-none-match/i.test(i.message)))) {
        // The server does not do conditional writes: HEAD-then-PUT from now on.
        this.conditional = false;
        return this.putOnce(name, data, opts);
      }
      throw this.mapError(e, 'put', name);
    }
  }

  async get(name: string, range?: Range, signal?: AbortSignal): Promise<Buffer> {
    const Key = this.key(name);
    if (range && (range.offset < 0 || range.length < 0)) throw new TsbakError('BACKEND', `invalid range ${range.offset}+${range.length} of ${name}`);
    if (range && range.length === 0) {
      if (!(await this.head(name))) throw new NotFoundError(`object ${name} in ${this.location}`);
      return Buffer.alloc(0);
    }
    const client = await this.client();
    let buf: Buffer;
    let status: number | undefined;
    // The range asked of the server is rounded up to a Padmé length, so what the provider
    // sees of a read of one blob is not that blob's exact length; the server stops at the
    // object's end, and the bytes past the range are dropped below.
    const end = range ? range.offset + padme(range.length) - 1 : 0;
    try {
      const r = await client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key, ...(range ? { Range: `bytes=${range.offset}-${end}` } : {}) }),
        { abortSignal: signal },
      );
      status = r.$metadata.httpStatusCode;
      const bytes = r.Body ? await r.Body.transformToByteArray() : new Uint8Array(0);
      buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (e) {
      const i = errInfo(e);
      if (i.name === 'NoSuchKey') throw new NotFoundError(`object ${name} in ${this.location}`);
      if (i.name === 'InvalidObjectState') throw new ColdError(`object ${name} in ${this.location}`, [name]);
      if (i.name === 'InvalidRange' || i.status === 416) throw new NotFoundError(`bytes ${range?.offset}-${(range?.offset ?? 0) + (range?.length ?? 0) - 1} of object ${name} in ${this.location}`);
      throw this.mapError(e, 'get', name);
    }
    if (!range) return buf;
    // A server that ignores Range answers 200 with the whole object.
    if (status === 200 && buf.length > range.length) buf = buf.subarray(range.offset, range.offset + range.length);
    if (buf.length < range.length) {
      throw new TsbakError('CORRUPT', `object ${name} in ${this.location} is shorter than expected (truncated?); run 'tsbak check'`);
    }
    return buf.length > range.length ? buf.subarray(0, range.length) : buf;
  }

  async head(name: string): Promise<ObjectInfo | null> {
    const Key = this.key(name);
    const client = await this.client();
    try {
      const r = await client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      const info: ObjectInfo = { name, size: r.ContentLength ?? 0, storageClass: (r.StorageClass ?? 'STANDARD') as StorageClass };
      if (r.LastModified) info.lastModified = r.LastModified;
      const restore = parseRestoreHeader(r.Restore);
      if (restore) info.restore = restore;
      return info;
    } catch (e) {
      const i = errInfo(e);
      // HEAD has no body: a missing key (or bucket) is a bare 404.
      if (i.status === 404 || i.name === 'NotFound' || i.name === 'NoSuchKey') return null;
      throw this.mapError(e, 'head', name);
    }
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo> {
    const client = await this.client();
    let token: string | undefined;
    do {
      let r;
      try {
        r = await client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token, OptionalObjectAttributes: ['RestoreStatus'], ...(this.opts.listPageSize ? { MaxKeys: this.opts.listPageSize } : {}) }),
          { abortSignal: signal },
        );
      } catch (e) {
        throw this.mapError(e, 'list', prefix || '/');
      }
      for (const o of r.Contents ?? []) {
        if (!o.Key || !o.Key.startsWith(this.prefix)) continue;
        const info: ObjectInfo = { name: o.Key.slice(this.prefix.length), size: o.Size ?? 0, storageClass: (o.StorageClass ?? 'STANDARD') as StorageClass };
        if (o.LastModified) info.lastModified = o.LastModified;
        if (o.RestoreStatus) {
          info.restore = { ongoing: !!o.RestoreStatus.IsRestoreInProgress, ...(o.RestoreStatus.RestoreExpiryDate ? { expiry: new Date(o.RestoreStatus.RestoreExpiryDate) } : {}) };
        }
        yield info;
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(name: string): Promise<void> {
    const Key = this.key(name);
    const client = await this.client();
    try {
      await client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (e) {
      const i = errInfo(e);
      if (i.name === 'NoSuchKey' || (i.status === 404 && i.name !== 'NoSuchBucket')) return;
      if (i.status === 403 && /object ?lock/i.test(i.message)) {
        throw new BackendError(`S3 refused to delete ${name} in ${this.location}: it is protected by Object Lock until its retention date (tsbak never bypasses a lock)`, { retryable: false, status: i.status, serviceCode: i.name, cause: e });
      }
      throw this.mapError(e, 'delete', name);
    }
  }

  /** GetObjectLockConfiguration: Enabled, or a 404 ObjectLockConfigurationNotFoundError (not enabled). */
  async objectLockEnabled(): Promise<boolean> {
    const client = await this.client();
    try {
      const r = await client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket }));
      return r.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (e) {
      const i = errInfo(e);
      if (i.name === 'ObjectLockConfigurationNotFoundError' || (i.status === 404 && i.name !== 'NoSuchBucket')) return false;
      throw this.mapError(e, 'read the Object Lock configuration of', '');
    }
  }

  /** GetObjectRetention of the current version; null when it has none (404 NoSuchObjectLockConfiguration). */
  async getRetention(name: string): Promise<Retention | null> {
    const client = await this.client();
    try {
      const r = await client.send(new GetObjectRetentionCommand({ Bucket: this.bucket, Key: this.key(name) }));
      const mode = r.Retention?.Mode;
      const until = r.Retention?.RetainUntilDate;
      if ((mode !== 'GOVERNANCE' && mode !== 'COMPLIANCE') || !(until instanceof Date) || Number.isNaN(until.getTime())) return null;
      return { mode, until };
    } catch (e) {
      const i = errInfo(e);
      if (i.name === 'NoSuchObjectLockConfiguration') return null;
      if (i.name === 'NoSuchKey') throw new NotFoundError(`object ${name} in ${this.location}`);
      throw this.mapError(e, 'read the retention of', name);
    }
  }

  /** PutObjectRetention, never with the governance bypass: S3 itself refuses to shorten a lock. */
  async putRetention(name: string, r: Retention): Promise<void> {
    const client = await this.client();
    try {
      await client.send(new PutObjectRetentionCommand({ Bucket: this.bucket, Key: this.key(name), Retention: { Mode: r.mode, RetainUntilDate: r.until }, ChecksumAlgorithm: 'CRC32' }));
    } catch (e) {
      const i = errInfo(e);
      if (i.name === 'NoSuchKey') throw new NotFoundError(`object ${name} in ${this.location}`);
      throw this.mapError(e, 'set the retention of', name);
    }
  }

  /**
   * S3 RestoreObject. 202 -> 'started', 409 RestoreAlreadyInProgress -> 'in-progress',
   * 200 (a restored copy exists; S3 extends its expiry to `days` from now) -> 'already-restored'.
   * An object whose class needs no restore (STANDARD, ...: 403 InvalidObjectState) is
   * readable now, so it also gives 'already-restored'.
   */
  async restore(name: string, days: number, tier: RestoreTier): Promise<'started' | 'in-progress' | 'already-restored'> {
    const Key = this.key(name);
    if (!Number.isInteger(days) || days < 1) throw new TsbakError('USAGE', `restore days must be a whole number >= 1, got ${days}`);
    const client = await this.client();
    try {
      const r = await client.send(new RestoreObjectCommand({ Bucket: this.bucket, Key, RestoreRequest: { Days: days, GlacierJobParameters: { Tier: tier } } }));
      return r.$metadata.httpStatusCode === 200 ? 'already-restored' : 'started';
    } catch (e) {
      const i = errInfo(e);
      if (i.name === 'RestoreAlreadyInProgress') return 'in-progress';
      if (i.name === 'NoSuchKey') throw new NotFoundError(`object ${name} in ${this.location}`);
      if (i.name === 'InvalidObjectState') return 'already-restored';
      if (i.name === 'GlacierExpeditedRetrievalNotAvailable') {
        throw new BackendError(`S3 has no capacity for an Expedited restore of ${name} in ${this.location} now: use the Standard tier, or try again later`, { retryable: true, status: i.status, serviceCode: i.name, cause: e });
      }
      if (i.status === 400 && (i.name === 'InvalidArgument' || /tier|expedited/i.test(i.message))) {
        throw new BackendError(`S3 refused to restore ${name} in ${this.location} with tier ${tier}: ${i.message}`, { retryable: false, status: i.status, serviceCode: i.name, cause: e });
      }
      throw this.mapError(e, 'restore', name);
    }
  }

  /**
   * See Backend.abandon. Puts in flight are cancelled; a multipart upload is aborted here
   * and now (AbortMultipartUpload), not when lib-storage's own parts in flight settle,
   * which may be after the process has exited.
   */
  async abandon(): Promise<void> {
    this.abandoned = true;
    const uploads = [...this.uploads];
    for (const c of this.puts) c.abort(new DOMException('writing was stopped', 'AbortError'));
    const client = await this.client();
    await Promise.all(
      uploads.map(async (u) => {
        // lib-storage keeps the upload's creation in flight as a promise (pinned version, see package.json).
        const created = (u as unknown as { createMultiPartPromise?: Promise<{ UploadId?: string }> }).createMultiPartPromise;
        const params = (u as unknown as { params: { Bucket: string; Key: string } }).params;
        const id = created ? (await created.catch(() => null))?.UploadId : undefined;
        if (id) await client.send(new AbortMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: id })).catch(() => {});
      }),
    );
  }

  async close(): Promise<void> {
    if (this.clientP) (await this.clientP.catch(() => null))?.destroy();
    this.clientP = undefined;
  }

  /** One-line, actionable errors; `retryable` says whether trying again may help. */
  private mapError(e: unknown, op: string, name: string): Error {
    if (isAbort(e)) return e as Error;
    if (e instanceof TsbakError) return e;
    const i = errInfo(e);
    const at = `s3://${this.bucket}/${this.prefix}${op === 'list' ? (name === '/' ? '' : name) : name}`;
    const mk = (message: string, retryable: boolean) =>
      new BackendError(message, { retryable, status: i.status, serviceCode: i.errno ?? i.name, cause: e });

    if (i.name === 'CredentialsProviderError' || /could not load credentials/i.test(i.message)) {
      return mk(`no AWS credentials found for ${this.location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an instance/task role is available`, false);
    }
    if (/^(ExpiredToken|ExpiredTokenException|TokenRefreshRequired)$/.test(i.name) || /token.*expired|expired.*token/i.test(i.message)) {
      return mk(`the AWS credentials for ${this.location} have expired (${i.name}): refresh them (e.g. 'aws sso login' or a new session token) and try again`, false);
    }
    if (/^(InvalidAccessKeyId|SignatureDoesNotMatch|InvalidToken|InvalidClientTokenId|UnrecognizedClientException)$/.test(i.name)) {
      return mk(`S3 rejected the AWS credentials for ${this.location} (${i.name}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile in use`, false);
    }
    if (i.name === 'RequestTimeTooSkewed') {
      return mk(`the system clock differs from S3's by more than 15 minutes (${this.location}): fix the clock (NTP) and try again`, false);
    }
    if (i.name === 'AccessDenied' || i.name === 'AllAccessDisabled' || (i.status === 403 && !i.name.startsWith('Invalid'))) {
      // A change S3 refuses is the credential's mode (a backup credential may not delete):
      // exit 12, as for a write-only key (README "S3 bucket safety").
      if (op === 'delete') {
        return new BackendError(`S3 refused to delete ${at} (${i.name}): the credentials in use may not delete (a backup credential, 'tsbak s3 policy --mode backup'); run forget, prune, repair and unlock with the admin credential`, { retryable: false, status: i.status, serviceCode: i.name, code: 'WRITE_ONLY_KEY', cause: e });
      }
      if (op === 'list' && name === 'multipart uploads') {
        return new BackendError(`S3 refused to list the multipart uploads under s3://${this.bucket}/${this.prefix} (${i.name}): the credentials in use lack s3:ListBucketMultipartUploads (a backup credential); run prune with the admin credential`, { retryable: false, status: i.status, serviceCode: i.name, code: 'WRITE_ONLY_KEY', cause: e });
      }
      if (op === 'put') {
        return new BackendError(`S3 refused to write ${at} (${i.name}): the credentials in use lack s3:PutObject there, or the bucket policy refuses this write (an overwrite without If-None-Match, a public ACL); see 'tsbak s3 policy'`, { retryable: false, status: i.status, serviceCode: i.name, code: 'WRITE_ONLY_KEY', cause: e });
      }
      return mk(`access denied by S3 to ${op} ${at}: the credentials in use lack ${PERMISSION[op] ?? 'permission'}; check the IAM/bucket policy or the profile`, false);
    }
    if (i.name === 'NoSuchBucket') {
      return mk(`bucket ${this.bucket} does not exist at ${this.endpointDesc}: create it, or check the bucket name and region (AWS_REGION)`, false);
    }
    if (/^(PermanentRedirect|AuthorizationHeaderMalformed|IllegalLocationConstraintException)$/.test(i.name) || i.status === 301) {
      return mk(`bucket ${this.bucket} is in another region than the one in use (${i.name}): set --region or AWS_REGION`, false);
    }
    if (!i.status && (i.errno && TRANSIENT_ERRNO.has(i.errno) || i.name === 'TimeoutError' || /socket hang up|timed? ?out/i.test(i.message))) {
      return mk(`cannot reach S3 at ${this.endpointDesc} for bucket ${this.bucket} (${i.errno ?? i.name}): check the network, or the endpoint (--s3-endpoint / AWS_ENDPOINT_URL_S3)`, true);
    }
    if (!i.status && (i.errno === 'ENOTFOUND' || i.errno === 'EPROTO' || i.errno === 'CERT_HAS_EXPIRED' || /certificate/i.test(i.message))) {
      return mk(`cannot connect to S3 at ${this.endpointDesc} for bucket ${this.bucket} (${i.errno ?? i.name}): check the endpoint name and the network`, false);
    }
    if (i.name === 'SlowDown' || i.status === 429 || i.name === 'TooManyRequests') {
      return mk(`S3 is throttling requests to ${this.location} (${i.name}); slow down and try again`, true);
    }
    const retryable = RETRYABLE_CODES.has(i.name) || (i.status !== undefined && i.status >= 500);
    return mk(`S3 ${op} of ${at} failed: ${i.name}${i.status ? ` (HTTP ${i.status})` : ''}: ${i.message}`, retryable);
  }
}
