// Keyed hashing. Blob ids are HMAC-SHA256(macKey, plaintext): without the key, an observer
// of the bucket cannot confirm that a known file is stored (a plain hash would allow it).
import { createHash, createHmac } from 'node:crypto';

export function blobId(macKey: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', macKey).update(data).digest();
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hmac(key: Uint8Array, ...parts: Array<Uint8Array | string>): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}
