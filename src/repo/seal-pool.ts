// A pool of worker threads running sealBlob over batches of blobs. Workers are referenced
// only while they have work, so an idle pool never keeps the process alive.
//
// Buffers go round in circles instead of becoming garbage: the caller fills an input
// buffer taken from this pool (takeInput), the worker sends it back with its result, and
// the result buffer goes back to its worker once the caller has copied the sealed blobs
// (SealResult.recycle).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { sealedBound } from '../format/blob.js';
import { sealBlobsAsync } from '../platform/native.js';
import { BufferPool, sizeClass } from './buffer-pool.js';

/** The default largest chunk (4 MiB): the size of every input buffer that is not larger. */
const UNIFORM_INPUT = 4 << 20;
/** The size of NativeSealPool's output buffers: room for a whole sealed chunk, in whole MiB (BufferPool's classes). */
const OUTPUT_CLASS = sizeClass(sealedBound(UNIFORM_INPUT));

/**
 * A small young generation: a worker's JS objects are few and short-lived (its data is in
 * ArrayBuffers, outside the V8 heap), and by default each worker's new space could grow to
 * 16 MiB semi-spaces of its own.
 */
export const WORKER_LIMITS = { maxYoungGenerationSizeMb: 3 };

interface Pending {
  resolve: (r: SealResult) => void;
  reject: (e: Error) => void;
  worker: SealWorker;
}

class SealWorker {
  readonly w: Worker;
  busy = 0;
  constructor(onMessage: (m: any) => void, onError: (e: Error) => void) {
    this.w = new Worker(new URL('./seal-worker.js', import.meta.url), { resourceLimits: WORKER_LIMITS });
    this.w.on('message', onMessage);
    this.w.on('error', onError);
    this.w.unref();
  }
}

/** Blobs to seal together under one key: `data` holds them back to back. */
export interface SealBatch {
  key: Uint8Array;
  level: number;
  /** From takeInput(); it comes back to the pool with the result. */
  data: ArrayBuffer;
  ids: Uint8Array; // 32 bytes per blob
  offsets: number[];
  lengths: number[];
}

export interface SealResult {
  /** One sealed blob per input blob; views into a buffer that recycle() hands back. */
  parts: Buffer[];
  /** Call once the parts are no longer needed (copied). */
  recycle: () => void;
}

/** Sealed blobs written back to back into `all`, as views, one per length. */
function splitParts(all: Buffer, lengths: Iterable<number>): Buffer[] {
  const parts: Buffer[] = [];
  let o = 0;
  for (const l of lengths) {
    parts.push(all.subarray(o, o + l));
    o += l;
  }
  return parts;
}

/** What the packer needs of a pool: SealPool (worker threads) or NativeSealPool (libuv's pool). */
export interface Sealer {
  takeInput(n: number): ArrayBuffer;
  giveInput(b: ArrayBuffer): void;
  seal(batch: SealBatch): Promise<SealResult>;
  close(): Promise<void>;
}

export class SealPool implements Sealer {
  private readonly workers: SealWorker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly inputs = new BufferPool(8 << 20);
  private next = 0;

  constructor(size = Math.max(1, Math.min(4, availableParallelism()))) {
    for (let i = 0; i < size; i++) this.workers.push(new SealWorker((m) => this.done(m), (e) => this.failAll(e)));
  }

  /**
   * An input buffer of at least n bytes for a batch. All are at least the size of a whole
   * chunk: one size of buffer goes round, instead of a size class per chunk length where
   * a miss allocates and a full class drops buffers to the GC.
   */
  takeInput(n: number): ArrayBuffer {
    return this.inputs.take(Math.max(n, UNIFORM_INPUT));
  }

  /** Gives back an input buffer that was not sent after all. */
  giveInput(b: ArrayBuffer): void {
    this.inputs.give(b);
  }

  /** Seals every blob of the batch; `data` is transferred (unusable by the caller afterwards). */
  seal(batch: SealBatch): Promise<SealResult> {
    const sw = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const n = this.next++;
    if (sw.busy++ === 0) sw.w.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(n, { resolve, reject, worker: sw });
      sw.w.postMessage({ n, ...batch }, [batch.data]);
    });
  }

  private done(m: { n: number; out?: Uint8Array; data?: ArrayBuffer; lengths?: number[]; error?: string }): void {
    const p = this.pending.get(m.n);
    if (!p) return;
    this.pending.delete(m.n);
    if (--p.worker.busy === 0) p.worker.w.unref();
    if (m.data) this.inputs.give(m.data);
    if (m.error !== undefined) return p.reject(new Error(m.error));
    const parts = splitParts(Buffer.from(m.out!.buffer, m.out!.byteOffset, m.out!.length), m.lengths!);
    const out = m.out!.buffer as ArrayBuffer;
    const w = p.worker.w;
    p.resolve({ parts, recycle: () => w.postMessage({ free: out }, [out]) });
  }

  private failAll(e: Error): void {
    for (const [n, p] of this.pending) {
      this.pending.delete(n);
      p.reject(e);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.w.terminate()));
  }
}

/**
 * The same on libuv's thread pool, in C (native/blob.c sealBlobs): no worker threads, whose
 * isolates cost ~40 MB of RSS each, and no per-blob cipher or zstd objects. Concurrency is
 * the packer's (batches in flight), on the pool's threads (UV_THREADPOOL_SIZE, 4 by default).
 */
export class NativeSealPool implements Sealer {
  private readonly inputs: BufferPool;
  private readonly outputs: BufferPool;

  /**
   * `slots`: how many batches can hold buffers at once (the packer's batches in flight and
   * one being filled). The pools keep that many of each: with fewer (they kept 2 of the 3-4
   * a backup holds), buffers went round as garbage, and a 1 GiB file's backup had 94 MB of
   * them live at its peak instead of 28 (peak RSS 115-123 -> 91 MB).
   */
  constructor(slots = 4) {
    this.inputs = new BufferPool(slots * UNIFORM_INPUT);
    this.outputs = new BufferPool(slots * OUTPUT_CLASS);
  }

  takeInput(n: number): ArrayBuffer {
    return this.inputs.take(Math.max(n, UNIFORM_INPUT));
  }

  giveInput(b: ArrayBuffer): void {
    this.inputs.give(b);
  }

  async seal(batch: SealBatch): Promise<SealResult> {
    let bound = 0;
    for (const l of batch.lengths) bound += sealedBound(l);
    // One size of buffer for every result up to a whole chunk (as takeInput).
    const outBuf = this.outputs.take(Math.max(bound, OUTPUT_CLASS));
    let lengths: Uint32Array;
    try {
      lengths = await sealBlobsAsync(
        { key: batch.key, level: batch.level, data: new Uint8Array(batch.data), ids: batch.ids, offsets: Uint32Array.from(batch.offsets), lengths: Uint32Array.from(batch.lengths) },
        new Uint8Array(outBuf, 0, bound),
      );
    } catch (e) {
      this.outputs.give(outBuf);
      throw e;
    } finally {
      this.inputs.give(batch.data);
    }
    return { parts: splitParts(Buffer.from(outBuf), lengths), recycle: () => this.outputs.give(outBuf) };
  }

  async close(): Promise<void> {}
}
