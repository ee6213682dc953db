// A pool of worker threads opening blobs (decrypt, decompress, verify the id) for reads
// that overlap, as in the mount's read-ahead. Workers are started on first use and
// referenced only while they have work, so an idle pool never keeps the process alive. One
// pool per process: every Repository shares it.
import { Worker } from 'node:worker_threads';

/**
 * A small young generation: a worker's JS objects are few and short-lived (its data is in
 * ArrayBuffers, outside the V8 heap), and by default each worker's new space could grow to
 * 16 MiB semi-spaces of its own.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 3 };

/** Sealed blobs at least this long are opened in a worker; smaller ones cost less inline than a round trip. */
export const OPEN_POOL_MIN = 64 << 10;

/** The plaintext, verified; or why it could not be had: 'auth' (decrypt/decompress failed), 'id' (content does not match the id). */
export type OpenOutcome = Buffer | 'auth' | 'id';

/** The pool itself failed (a worker died): the job's outcome is unknown, the blob may be opened inline. */
export class OpenPoolError extends Error {}

/** Worker deaths after which the pool gives up: replacing a worker that died is fine, one that cannot start is not. */
const MAX_DEATHS = 8;

interface Pending {
  resolve: (o: OpenOutcome) => void;
  reject: (e: Error) => void;
  worker: OpenWorker;
}

interface Reply {
  n: number;
  buf?: ArrayBuffer;
  off?: number;
  len?: number;
  fail?: 'auth' | 'id';
  error?: string;
}

class OpenWorker {
  readonly w: Worker;
  busy = 0;
  dead = false;
  constructor(onMessage: (m: Reply) => void, onDeath: (ow: OpenWorker, e: Error) => void) {
    this.w = new Worker(new URL('./open-worker.js', import.meta.url), { resourceLimits: WORKER_LIMITS });
    this.w.on('message', onMessage);
    this.w.on('error', (e) => onDeath(this, e));
    this.w.on('exit', (code) => onDeath(this, new OpenPoolError(`blob-opening worker exited (code ${code})`)));
    this.w.unref();
  }
}

export class OpenPool {
  private readonly workers: OpenWorker[] = [];
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private closed = false;
  private deaths = 0;

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.workers.push(this.spawn());
  }

  /** False once workers keep dying (e.g. the worker script cannot load): callers then open blobs inline. */
  get usable(): boolean {
    return !this.closed && this.deaths < MAX_DEATHS;
  }

  private spawn(): OpenWorker {
    return new OpenWorker((m) => this.done(m), (ow, e) => this.died(ow, e));
  }

  /**
   * Opens one sealed blob under `key` and checks its plaintext against `id` with `macKey`.
   * With `transfer`, `sealed` must own its whole ArrayBuffer and the caller give it up (it
   * is detached); otherwise the bytes are copied and `sealed` stays the caller's.
   */
  open(key: Uint8Array, macKey: Uint8Array, id: Uint8Array, sealed: Uint8Array, transfer = false): Promise<OpenOutcome> {
    return this.post(key, macKey, id, sealed, transfer);
  }

  private post(key: Uint8Array, macKey: Uint8Array, id: Uint8Array, sealed: Uint8Array, transfer: boolean): Promise<OpenOutcome> {
    if (!this.usable) return Promise.reject(new OpenPoolError('blob-opening pool is closed or broken'));
    let buf: ArrayBuffer;
    let off = 0;
    if (transfer && sealed.byteOffset === 0 && sealed.buffer.byteLength === sealed.length && sealed.length >= 4096 && !(sealed.buffer instanceof SharedArrayBuffer)) {
      buf = sealed.buffer as ArrayBuffer;
    } else {
      const copy = Buffer.allocUnsafeSlow(sealed.length); // its own ArrayBuffer, not the shared pool
      copy.set(sealed);
      buf = copy.buffer as ArrayBuffer;
      off = copy.byteOffset;
    }
    // The least busy worker; ties go round, so that the work spreads over all of them.
    const n = this.next++;
    let ow: OpenWorker | null = null;
    for (let k = 0; k < this.workers.length; k++) {
      const i = (n + k) % this.workers.length;
      if (this.workers[i]!.dead) this.workers[i] = this.spawn();
      if (!ow || this.workers[i]!.busy < ow.busy) ow = this.workers[i]!;
    }
    const w = ow!;
    // Key, MAC key and id in one small array of their own: a view is cloned with its whole
    // ArrayBuffer (the 8 KiB Buffer pool, or a larger buffer the id was cut from).
    const keys = new Uint8Array(96);
    keys.set(key, 0);
    keys.set(macKey, 32);
    keys.set(id, 64);
    if (w.busy++ === 0) w.w.ref();
    return new Promise<OpenOutcome>((resolve, reject) => {
      this.pending.set(n, { resolve, reject, worker: w });
      w.w.postMessage({ n, keys, buf, off, len: sealed.length }, [buf]);
    });
  }

  private settle(n: number): Pending | undefined {
    const p = this.pending.get(n);
    if (!p) return undefined;
    this.pending.delete(n);
    if (--p.worker.busy === 0 && !p.worker.dead) p.worker.w.unref();
    return p;
  }

  private done(m: Reply): void {
    const p = this.settle(m.n);
    if (!p) return;
    if (m.error !== undefined) p.reject(new OpenPoolError(m.error));
    else if (m.fail) p.resolve(m.fail);
    else p.resolve(Buffer.from(m.buf!, m.off!, m.len!));
  }

  private died(ow: OpenWorker, e: Error): void {
    if (ow.dead) return;
    ow.dead = true;
    if (!this.closed) this.deaths++;
    ow.w.unref();
    const err = e instanceof OpenPoolError ? e : new OpenPoolError(`blob-opening worker failed: ${e.message}`);
    for (const [n, p] of this.pending) if (p.worker === ow) this.settle(n)!.reject(err);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((ow) => ow.w.terminate()));
  }
}

let shared: OpenPool | null | undefined;

/** The process's pool: TSBAK_WORKERS workers (default 2), started on first call; null when TSBAK_WORKERS=0. */
export function openPool(): OpenPool | null {
  if (shared === undefined) {
    const n = process.env.TSBAK_WORKERS ? Number(process.env.TSBAK_WORKERS) : 2;
    shared = n > 0 ? new OpenPool(Math.min(Math.floor(n), 64)) : null;
  }
  return shared;
}
