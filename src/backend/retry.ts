// withRetry(backend): the same Backend, with calls retried on transient failures, with
// exponential backoff and jitter. Retried: throttling (S3 503 SlowDown, HTTP 429), other
// 5xx, dropped or refused connections and timeouts (ECONNRESET, ECONNREFUSED, ETIMEDOUT,
// ...). Never retried: NOT_FOUND, COLD, CORRUPT, "already exists", any other 4xx, aborts.
// Errors that carry a boolean `retryable` (BackendError from ./backend-error.ts) decide for
// themselves; other TsbakErrors are final; other errors are judged by errno and HTTP status.
//
// put: after an attempt that failed ambiguously (the request may have reached the server
// and only the answer was lost), a later "already exists" is taken as success when the
// stored object has the same size. Names are content hashes or random IDs, so an object of
// that name and size is the one this call wrote.
// list: a listing that fails midway is started again and names already yielded are skipped.

import type { Backend, ObjectInfo, PutOptions, Range, RestoreTier, Retention } from './backend.js';
import { TsbakError } from '../errors.js';
import { isAlreadyExists } from './backend-error.js';

export interface RetryOptions {
  /** Retries after the first attempt (default 6). */
  retries?: number;
  /** First backoff in ms (default 250); doubles each retry, equal jitter. */
  baseMs?: number;
  /** Largest single backoff in ms (default 30 000). */
  maxMs?: number;
  /** Told before each wait, e.g. to log "S3 is throttling, retrying in 2.1 s". */
  onRetry?: (info: { op: string; name: string; attempt: number; delayMs: number; error: unknown }) => void;
  /** Random source in [0, 1), for tests. */
  random?: () => number;
}

const TRANSIENT_ERRNO = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ESOCKETTIMEDOUT', 'UND_ERR_SOCKET']);
const THROTTLE_NAMES = new Set(['SlowDown', 'TooManyRequests', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded']);
const TRANSIENT_NAMES = new Set(['InternalError', 'ServiceUnavailable', 'RequestTimeout', 'RequestTimeoutException', 'TimeoutError']);

function statusOf(e: any): number | undefined {
  const s = e?.status ?? e?.$metadata?.httpStatusCode ?? e?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

function isAbort(e: any): boolean {
  return e?.name === 'AbortError' || e?.code === 'ABORT_ERR';
}

/** Whether trying the same call again may succeed. */
export function isRetryable(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const x = e as any;
  if (isAbort(x)) return false;
  if (typeof x.retryable === 'boolean') return x.retryable;
  if (e instanceof TsbakError) return false;
  if (typeof x.code === 'string' && TRANSIENT_ERRNO.has(x.code)) return true;
  if (typeof x.cause?.code === 'string' && TRANSIENT_ERRNO.has(x.cause.code)) return true;
  const status = statusOf(x);
  if (status !== undefined) return status === 429 || status >= 500;
  return THROTTLE_NAMES.has(x.name) || TRANSIENT_NAMES.has(x.name);
}

function isThrottle(e: any): boolean {
  return statusOf(e) === 429 || THROTTLE_NAMES.has(e?.name) || THROTTLE_NAMES.has(e?.serviceCode);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new DOMException('aborted', 'AbortError'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function withRetry(backend: Backend, options: RetryOptions = {}): Backend {
  const retries = options.retries ?? 6;
  const baseMs = options.baseMs ?? 250;
  const maxMs = options.maxMs ?? 30_000;
  const random = options.random ?? Math.random;

  /** Equal jitter: half the exponential step, plus up to the other half at random. */
  function delayFor(attempt: number, e: unknown): number {
    const step = Math.min(maxMs, baseMs * 2 ** attempt * (isThrottle(e) ? 2 : 1));
    return Math.round(step / 2 + random() * (step / 2));
  }

  async function run<T>(op: string, name: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (attempt >= retries || signal?.aborted || !isRetryable(e)) throw e;
        const delayMs = delayFor(attempt, e);
        options.onRetry?.({ op, name, attempt: attempt + 1, delayMs, error: e });
        await sleep(delayMs, signal);
      }
    }
  }

  const wrapped: Backend = {
    location: backend.location,
    putConcurrency: backend.putConcurrency,
    parityByDefault: backend.parityByDefault,
    readConcurrency: backend.readConcurrency,

    put(name: string, data: Uint8Array, opts?: PutOptions): Promise<void> {
      let ambiguous = false;
      return run('put', name, opts?.signal, async () => {
        try {
          await backend.put(name, data, opts);
        } catch (e) {
          if (ambiguous && isAlreadyExists(e)) {
            const info = await backend.head(name);
            if (info && info.size === data.length) return;
          }
          if (isRetryable(e)) ambiguous = true;
          throw e;
        }
      });
    },

    get(name: string, range?: Range, signal?: AbortSignal): Promise<Buffer> {
      return run('get', name, signal, () => backend.get(name, range, signal));
    },

    head(name: string): Promise<ObjectInfo | null> {
      return run('head', name, undefined, () => backend.head(name));
    },

    async *list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo> {
      const seen = new Set<string>();
      let attempt = 0;
      for (;;) {
        let progressed = false;
        try {
          for await (const o of backend.list(prefix, signal)) {
            if (seen.has(o.name)) continue;
            seen.add(o.name);
            progressed = true;
            yield o;
          }
          return;
        } catch (e) {
          if (progressed) attempt = 0; // a long listing may hit several unrelated hiccups
          if (attempt >= retries || signal?.aborted || !isRetryable(e)) throw e;
          const delayMs = delayFor(attempt, e);
          attempt++;
          options.onRetry?.({ op: 'list', name: prefix, attempt, delayMs, error: e });
          await sleep(delayMs, signal);
        }
      }
    },

    delete(name: string): Promise<void> {
      return run('delete', name, undefined, () => backend.delete(name));
    },
  };

  if (backend.readInto) {
    const readInto = backend.readInto.bind(backend);
    // A retry reads the same range into the same bytes again.
    wrapped.readInto = (name: string, range: Range, into: Uint8Array, signal?: AbortSignal) => run('get', name, signal, () => readInto(name, range, into, signal));
  }
  if (backend.restore) {
    const restore = backend.restore.bind(backend);
    wrapped.restore = (name: string, days: number, tier: RestoreTier) => run('restore', name, undefined, () => restore(name, days, tier));
  }
  if (backend.close) wrapped.close = backend.close.bind(backend);
  if (backend.listUnfinished) wrapped.listUnfinished = backend.listUnfinished.bind(backend);
  if (backend.removeUnfinished) {
    const remove = backend.removeUnfinished.bind(backend);
    wrapped.removeUnfinished = (u) => run('delete', u.name, undefined, () => remove(u));
  }
  if (backend.now) {
    const now = backend.now.bind(backend);
    wrapped.now = () => run('list', 'clock', undefined, now);
  }
  if (backend.abandon) wrapped.abandon = backend.abandon.bind(backend);
  if (backend.objectLockEnabled) {
    const enabled = backend.objectLockEnabled.bind(backend);
    wrapped.objectLockEnabled = () => run('get', 'object lock configuration', undefined, enabled);
  }
  if (backend.getRetention) {
    const get = backend.getRetention.bind(backend);
    wrapped.getRetention = (name: string) => run('get', name, undefined, () => get(name));
  }
  if (backend.putRetention) {
    const put = backend.putRetention.bind(backend);
    wrapped.putRetention = (name: string, r: Retention) => run('put', name, undefined, () => put(name, r));
  }
  return wrapped;
}
