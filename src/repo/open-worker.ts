// Worker thread: opens blobs (AES-256-GCM decrypt, zstd decompress, HMAC check of the id),
// the CPU-heavy part of reading, so the main thread only fetches bytes and serves reads.
// The plaintext goes back transferred (no copy); a failure goes back as a kind, never as
// bytes, and the main thread turns it into the same CorruptError as an inline open.
import { parentPort } from 'node:worker_threads';
import { blobId } from '../crypto/hash.js';
import { openBlob } from '../format/blob.js';

interface Job {
  n: number;
  /** pack key, MAC key, blob id: 32 bytes each */
  keys: Uint8Array;
  /** The sealed blob: bytes [off, off + len) of buf. */
  buf: ArrayBuffer;
  off: number;
  len: number;
}

/** Buffers under this size may live in a shared pool, whose ArrayBuffer must not be transferred. */
const POOLED = 4096;

parentPort!.on('message', (j: Job) => {
  const key = j.keys.subarray(0, 32);
  const macKey = j.keys.subarray(32, 64);
  const id = j.keys.subarray(64, 96);
  let plain: Buffer;
  try {
    plain = openBlob(key, id, new Uint8Array(j.buf, j.off, j.len));
  } catch {
    parentPort!.postMessage({ n: j.n, fail: 'auth' });
    return;
  }
  try {
    if (!blobId(macKey, plain).equals(id)) {
      parentPort!.postMessage({ n: j.n, fail: 'id' });
      return;
    }
    // Transfer the plaintext's own ArrayBuffer unless it is small or mostly something else.
    let out: Uint8Array = plain;
    if (plain.length < POOLED || plain.buffer.byteLength > plain.length + (plain.length >> 3)) {
      out = new Uint8Array(new ArrayBuffer(plain.length));
      out.set(plain);
    }
    try {
      parentPort!.postMessage({ n: j.n, buf: out.buffer, off: out.byteOffset, len: out.length }, [out.buffer as ArrayBuffer]);
    } catch {
      // An ArrayBuffer that cannot be transferred (external memory): send a copy.
      parentPort!.postMessage({ n: j.n, buf: out.buffer, off: out.byteOffset, len: out.length });
    }
  } catch (e) {
    parentPort!.postMessage({ n: j.n, error: String((e as Error)?.message ?? e) });
  }
});
