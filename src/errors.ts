// One error hierarchy for the whole program. `code` is stable: cli maps it to an exit
// code, fuse maps it to an errno. Expected errors carry a one-line message that names the
// thing and what to do; cli prints only that line (no stack trace).

export type ErrorCode =
  | 'NOT_A_REPOSITORY'
  | 'REPO_EXISTS'
  | 'WRONG_PASSWORD'
  | 'WRITE_ONLY_KEY'
  | 'NOT_FOUND'
  | 'CORRUPT'
  | 'LOCKED'
  | 'BACKEND'
  | 'COLD'
  | 'USAGE'
  | 'IO';

export class TsbakError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'TsbakError';
  }
}

/** An object that is not in the backend (or a range past its end). */
export class NotFoundError extends TsbakError {
  constructor(what: string) {
    super('NOT_FOUND', `${what} does not exist`);
  }
}

/** Authentication failed, a checksum or an id did not match: the bytes were altered. */
export class CorruptError extends TsbakError {
  constructor(what: string, detail = 'failed authentication') {
    super('CORRUPT', `${what} is damaged (${detail}); run 'tsbak check --read-data' to list damaged objects`);
  }
}

/** A blob a tree or snapshot names and no index lists: damage (an index file lost or skipped). */
export class NotInIndexError extends TsbakError {
  constructor(id: Buffer) {
    super('CORRUPT', `blob ${id.toString('hex')} is not in the index (repository damaged or snapshot incomplete); run 'tsbak check', and 'tsbak repair index' if an index file was lost`);
  }
}

/** Data is in a cold storage class and must be restored before it can be read. */
export class ColdError extends TsbakError {
  constructor(what: string, readonly objects: string[] = []) {
    super('COLD', `${what} is in cold storage; a restore has been requested, try again later`);
  }
}

export function isTsbakError(e: unknown): e is TsbakError {
  return e instanceof TsbakError;
}
