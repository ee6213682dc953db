// Errors that backends raise about the storage service itself (as opposed to NotFoundError,
// ColdError, ... from ../errors.ts, which describe objects). They say whether trying again
// may help, so that withRetry (./retry.ts) can decide without knowing the backend.

import { TsbakError, type ErrorCode } from '../errors.js';

export interface BackendErrorOptions {
  /** True when the same call may succeed later: throttling, 5xx, a dropped connection. */
  retryable: boolean;
  /** HTTP status, when there was a response. */
  status?: number;
  /** The service's error code (e.g. S3's "SlowDown", "AccessDenied") or a Node errno name. */
  serviceCode?: string;
  code?: ErrorCode;
  cause?: unknown;
}

export class BackendError extends TsbakError {
  readonly retryable: boolean;
  readonly status?: number;
  readonly serviceCode?: string;

  constructor(message: string, opts: BackendErrorOptions) {
    super(opts.code ?? 'BACKEND', message, { cause: opts.cause });
    this.name = 'BackendError';
    this.retryable = opts.retryable;
    this.status = opts.status;
    this.serviceCode = opts.serviceCode;
  }
}

/** put() of a name that exists: objects are immutable, never overwritten. */
export class AlreadyExistsError extends BackendError {
  readonly alreadyExists = true;
  constructor(location: string, name: string, opts: { status?: number; serviceCode?: string; cause?: unknown } = {}) {
    super(`${location}/${name} already exists; objects are never overwritten`, { ...opts, retryable: false });
    this.name = 'AlreadyExistsError';
  }
}

/** True for "already exists" errors from any backend (LocalBackend throws a plain TsbakError). */
export function isAlreadyExists(e: unknown): boolean {
  if (e instanceof AlreadyExistsError) return true;
  return e instanceof TsbakError && e.code === 'BACKEND' && /already exists/.test(e.message);
}
