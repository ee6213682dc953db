// Worker thread: compresses and encrypts blobs (the CPU-heavy part of a backup), so the
// main thread only reads, chunks and hashes.
import { parentPort } from 'node:worker_threads';
import { sealBlob } from '../format/blob.js';

interface Job {
  n: number;
  key: Uint8Array;
  id: Uint8Array;
  plain: Uint8Array;
  level: number;
}

parentPort!.on('message', (j: Job) => {
  try {
    const sealed = sealBlob(j.key, j.id, j.plain, j.level);
    // Transfer only a buffer that owns its whole ArrayBuffer (small ones come from a shared pool).
    const own = sealed.byteOffset === 0 && sealed.buffer.byteLength === sealed.length;
    parentPort!.postMessage({ n: j.n, sealed }, own ? [sealed.buffer as ArrayBuffer] : []);
  } catch (e) {
    parentPort!.postMessage({ n: j.n, error: String((e as Error)?.message ?? e) });
  }
});
