// The storage interface, small like restic's. A backend knows nothing of tsbak's layout:
// it stores named immutable objects ("packs/data/ab/abcd...") and lists them by prefix.

export type StorageClass = 'STANDARD' | 'STANDARD_IA' | 'GLACIER_IR' | 'GLACIER' | 'DEEP_ARCHIVE';
export type RestoreTier = 'Expedited' | 'Standard' | 'Bulk';

export interface PutOptions {
  /** Storage class for backends that have them (S3); others ignore it. */
  storageClass?: StorageClass;
  signal?: AbortSignal;
  /** S3 Object Lock retention put on the object as it is written (backends with objectLock only). */
  retention?: Retention;
}

/** An S3 Object Lock retention: the object version cannot be deleted or overwritten before `until`. */
export interface Retention {
  mode: 'GOVERNANCE' | 'COMPLIANCE';
  until: Date;
}

export interface ObjectInfo {
  name: string;
  size: number;
  storageClass?: StorageClass;
  /** Cold-storage restore state, from S3's x-amz-restore header. */
  restore?: { ongoing: boolean; expiry?: Date };
  /** When the object was stored, by the backend's clock (local: mtime; S3: LastModified). */
  lastModified?: Date;
}

export interface Range {
  offset: number;
  length: number;
}

/**
 * An object being written by appends (a local file), which becomes object `name` on commit,
 * atomically and durably. Lets a writer put a pack down from the buffer it was laid out in,
 * off the calling thread, with no copy of its own.
 */
export interface ObjectFile {
  /** Appends bytes on libuv's pool; they must stay unchanged until it resolves, and one write is in flight at a time. */
  write(bytes: Uint8Array): Promise<void>;
  /** Makes the bytes object `name` (never overwriting one), then the file is done. */
  commit(name: string): Promise<void>;
  /** Drops the file (after a failure). */
  abort(): Promise<void>;
}

export interface Backend {
  /** A human-readable location, for messages. */
  readonly location: string;
  /**
   * How many puts of large objects are worth running at once (each holds a pack in memory):
   * 1 for a local disk, more where each put waits on a network round trip. Default 2.
   */
  readonly putConcurrency?: number;
  /** Whether new repositories here get parity across packs unless told otherwise (local and SFTP: yes; S3: no, it costs). */
  readonly parityByDefault?: boolean;
  /**
   * How many reads (ranged GETs) a reader should keep in flight to hide the backend's
   * latency: 2 for a local disk, ~12 for S3. Readers use a default when absent.
   */
  readonly readConcurrency?: number;
  /**
   * Store an object. Never overwrites: if `name` exists, rejects with a TsbakError of code
   * 'BACKEND' whose message says so (objects are immutable).
   */
  put(name: string, data: Uint8Array, opts?: PutOptions): Promise<void>;
  /** Whole object, or a byte range of it. NotFoundError if absent. ColdError if frozen. */
  get(name: string, range?: Range, signal?: AbortSignal): Promise<Buffer>;
  /**
   * Optional: a byte range read into `into` (exactly range.length bytes), where the backend
   * can read without a buffer of its own (a local file). Errors as get's.
   */
  readInto?(name: string, range: Range, into: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** Size and state, or null if absent. */
  head(name: string): Promise<ObjectInfo | null>;
  /** Every object whose name starts with `prefix` (e.g. "snapshots/"). */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo>;
  /** Remove an object; absent objects are not an error. */
  delete(name: string): Promise<void>;
  /** For backends on a local file system: a new ObjectFile (see there). */
  createObjectFile?(): ObjectFile;
  /** Ask for a temporary copy of a cold object (S3 RestoreObject). Others: no-op. */
  restore?(name: string, days: number, tier: RestoreTier): Promise<'started' | 'in-progress' | 'already-restored'>;
  close?(): Promise<void>;
  /**
   * Stops writing for good (a signal ends the process): objects being written are dropped
   * (local: their temp files removed; S3: multipart uploads aborted, puts cancelled) and
   * later puts are refused. Reads, lists and deletes still work.
   */
  abandon?(): Promise<void>;
  /**
   * Optional: what killed writers left unfinished (local `.tmp-*` files, S3 incomplete
   * multipart uploads under the prefix), for prune to remove with removeUnfinished.
   */
  listUnfinished?(): AsyncIterable<Unfinished>;
  removeUnfinished?(u: Unfinished): Promise<void>;
  /**
   * Optional, S3 Object Lock (FORMAT.md "Object Lock"): whether the bucket has Object Lock
   * enabled, an object's retention (null: none), and extending it (never shortening: S3
   * refuses a shorter date without the governance bypass, and tsbak never asks for one).
   */
  objectLockEnabled?(): Promise<boolean>;
  getRetention?(name: string): Promise<Retention | null>;
  putRetention?(name: string, r: Retention): Promise<void>;
  /** Optional: the storage's clock (S3: the servers' Date header), which ages lastModified. Default: this machine's. */
  now?(): Promise<Date>;
}

/** A write that never completed: a temp file, an incomplete multipart upload. */
export interface Unfinished {
  /** Temp file path relative to the repository, or the object name the upload was for. */
  name: string;
  /** S3's upload id. */
  uploadId?: string;
  /** Bytes it holds, when known. */
  size?: number;
  started?: Date;
}
