// Worker thread: compresses and encrypts blobs (the CPU-heavy part of a backup), so the
// main thread only reads, chunks and hashes. A job is a batch: one large blob, or many
// small ones packed into one buffer (one message instead of hundreds). The input buffer
// goes back with the result; result buffers come back ({ free }) to be used again.
import { parentPort } from 'node:worker_threads';
import { sealBlobInto, sealedBound } from '../format/blob.js';
import { BufferPool } from './buffer-pool.js';

interface Job {
  n: number;
  key: Uint8Array;
  level: number;
  data: ArrayBuffer;
  /** per blob: id (32 bytes), offset and length in data */
  ids: Uint8Array;
  offsets: number[];
  lengths: number[];
}

const outputs = new BufferPool(10 << 20);

parentPort!.on('message', (j: Job | { free: ArrayBuffer }) => {
  if ('free' in j) return outputs.give(j.free);
  try {
    const data = new Uint8Array(j.data);
    // Sized for the worst case and sealed into directly.
    let bound = 0;
    for (const l of j.lengths) bound += sealedBound(l);
    // One size of buffer for every result up to a whole chunk (see SealPool.takeInput).
    const out = new Uint8Array(outputs.take(Math.max(bound, sealedBound(4 << 20))), 0, bound);
    const lengths: number[] = [];
    let o = 0;
    for (let i = 0; i < j.offsets.length; i++) {
      const n = sealBlobInto(out, o, j.key, j.ids.subarray(i * 32, i * 32 + 32), data.subarray(j.offsets[i]!, j.offsets[i]! + j.lengths[i]!), j.level);
      lengths.push(n);
      o += n;
    }
    parentPort!.postMessage({ n: j.n, out: out.subarray(0, o), data: j.data, lengths }, [out.buffer, j.data]);
  } catch (e) {
    parentPort!.postMessage({ n: j.n, data: j.data, error: String((e as Error)?.message ?? e) }, [j.data]);
  }
});
