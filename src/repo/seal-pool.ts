// Sealing (zstd + AES-GCM) of batches of blobs on libuv's thread pool, in C (native/blob.c
// sealBlobs): no worker threads, whose isolates cost ~40 MB of RSS each, and no per-blob
// cipher or zstd objects. Concurrency is the packer's (batches in flight), on the pool's
// threads (UV_THREADPOOL_SIZE, 4 by default).
//
// Buffers go round in circles instead of becoming garbage: the caller fills an input
// buffer taken from this pool (takeInput), which comes back when the batch is sealed; the
// result buffer comes back once the caller has copied the sealed blobs (SealResult.recycle).
import { sealedBound } from '../format/blob.js';
import { sealBlobsAsync } from '../platform/native/blob.js';
import { BufferPool, sizeClass } from './buffer-pool.js';

/** The default largest chunk (4 MiB): the size of every input buffer that is not larger. */
const UNIFORM_INPUT = 4 << 20;
/** The size of the output buffers: room for a whole sealed chunk, in whole MiB (BufferPool's classes). */
const OUTPUT_CLASS = sizeClass(sealedBound(UNIFORM_INPUT));

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

export class SealPool {
  private readonly inputs: BufferPool;
  private readonly outputs: BufferPool;

  /**
   * `slots`: how many batches can hold buffers at once (the packer's batches in flight and
   * one being filled). The pools keep that many of each; with fewer, buffers went round as
   * garbage (docs/PERFORMANCE.md, "Buffers").
   */
  constructor(readonly slots = 4) {
    this.inputs = new BufferPool(slots * UNIFORM_INPUT);
    this.outputs = new BufferPool(slots * OUTPUT_CLASS);
  }

  /**
   * An input buffer of at least n bytes for a batch. All are at least the size of a whole
   * chunk: one size of buffer goes round, instead of a size class per chunk length where
   * a miss allocates and a full class drops buffers to the GC.
   */
  takeInput(n: number): ArrayBuffer {
    return this.inputs.take(Math.max(n, UNIFORM_INPUT));
  }

  /** Input buffers out now (taken and not yet sealed or given back). */
  get inputsOut(): number {
    return this.inputs.outNow;
  }

  /** The most input buffers out at once. */
  get mostInputsOut(): number {
    return this.inputs.mostOut;
  }

  /** Gives back an input buffer that was not sent after all. */
  giveInput(b: ArrayBuffer): void {
    this.inputs.give(b);
  }

  /** Seals every blob of the batch; its input buffer goes back to the pool (unusable by the caller afterwards). */
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
