// A pool of worker threads running sealBlob. Workers are referenced only while they have
// work, so an idle pool never keeps the process alive.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

interface Pending {
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
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

export class SealPool {
  private readonly workers: SealWorker[] = [];
  private readonly pending = new Map<number, Pending & { worker: SealWorker }>();
  private next = 0;

  constructor(size = Math.max(1, Math.min(4, availableParallelism()))) {
    for (let i = 0; i < size; i++) {
      const sw: SealWorker = new SealWorker(
        (m) => this.done(m),
        (e) => this.failAll(e),
      );
      this.workers.push(sw);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  seal(key: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): Promise<Buffer> {
    const sw = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const n = this.next++;
    if (sw.busy++ === 0) sw.w.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(n, { resolve, reject, worker: sw });
      sw.w.postMessage({ n, key, id, plain, level }, plain.byteOffset === 0 && plain.buffer.byteLength === plain.length ? [plain.buffer as ArrayBuffer] : []);
    });
  }

  private done(m: { n: number; sealed?: Uint8Array; error?: string }): void {
    const p = this.pending.get(m.n);
    if (!p) return;
    this.pending.delete(m.n);
    if (--p.worker.busy === 0) p.worker.w.unref();
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(Buffer.from(m.sealed!.buffer, m.sealed!.byteOffset, m.sealed!.length));
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
