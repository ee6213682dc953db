// Worker thread: compresses and encrypts blobs (the CPU-heavy part of a backup), so the
// main thread only reads, chunks and hashes. A job is a batch: one large blob, or many
// small ones packed into one buffer (one message instead of hundreds).
import { parentPort } from 'node:worker_threads';
import { sealBlob } from '../format/blob.js';

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

parentPort!.on('message', (j: Job) => {
  try {
    const data = Buffer.from(j.data);
    const sealed: Buffer[] = [];
    for (let i = 0; i < j.offsets.length; i++) {
      sealed.push(sealBlob(j.key, j.ids.subarray(i * 32, i * 32 + 32), data.subarray(j.offsets[i]!, j.offsets[i]! + j.lengths[i]!), j.level));
    }
    // One owned buffer back: Buffers under 4 KiB live in a shared pool that must not be transferred.
    const out = new Uint8Array(new ArrayBuffer(sealed.reduce((a, b) => a + b.length, 0)));
    const lengths: number[] = [];
    let o = 0;
    for (const s of sealed) {
      out.set(s, o);
      o += s.length;
      lengths.push(s.length);
    }
    parentPort!.postMessage({ n: j.n, out, lengths }, [out.buffer]);
  } catch (e) {
    parentPort!.postMessage({ n: j.n, error: String((e as Error)?.message ?? e) });
  }
});
