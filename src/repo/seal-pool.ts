// A pool of worker threads running sealBlob over batches of blobs. Workers are referenced
// only while they have work, so an idle pool never keeps the process alive.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

interface Pending {
  resolve: (b: Buffer[]) => void;
  reject: (e: Error) => void;
  worker: SealWorker;
}

class SealWorker {
  readonly w: Worker;
  busy = 0;
  constructor(onMessage: (m: any) => void, onError: (e: Error) => void) {
    this.w = new Worker(new URL('./seal-worker.js', import.meta.url));
    this.w.on('message', onMessage);
    this.w.on('error', onError);
    this.w.unref();
  }
}

/** Blobs to seal together under one key: `data` holds them back to back. */
export interface SealBatch {
  key: Uint8Array;
  level: number;
  data: ArrayBuffer;
  ids: Uint8Array; // 32 bytes per blob
  offsets: number[];
  lengths: number[];
}

export class SealPool {
  private readonly workers: SealWorker[] = [];
  private readonly pending = new Map<number, Pending>();
  private next = 0;

  constructor(size = Math.max(1, Math.min(4, availableParallelism()))) {
    for (let i = 0; i < size; i++) this.workers.push(new SealWorker((m) => this.done(m), (e) => this.failAll(e)));
  }

  /** Seals every blob of the batch; `data` is transferred (unusable by the caller afterwards). */
  seal(batch: SealBatch): Promise<Buffer[]> {
    const sw = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const n = this.next++;
    if (sw.busy++ === 0) sw.w.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(n, { resolve, reject, worker: sw });
      sw.w.postMessage({ n, ...batch }, [batch.data]);
    });
  }

  private done(m: { n: number; out?: Uint8Array; lengths?: number[]; error?: string }): void {
    const p = this.pending.get(m.n);
    if (!p) return;
    this.pending.delete(m.n);
    if (--p.worker.busy === 0) p.worker.w.unref();
    if (m.error !== undefined) return p.reject(new Error(m.error));
    const all = Buffer.from(m.out!.buffer, m.out!.byteOffset, m.out!.length);
    const parts: Buffer[] = [];
    let o = 0;
    for (const l of m.lengths!) {
      parts.push(all.subarray(o, o + l));
      o += l;
    }
    p.resolve(parts);
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
