// Keyed hashing. Blob ids are HMAC-SHA256(macKey, plaintext): without the key, an observer
// of the bucket cannot confirm that a known file is stored (a plain hash would allow it).
import { createHash, createHmac, webcrypto } from 'node:crypto';

export function blobId(macKey: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', macKey).update(data).digest();
}

/** A blob-id key for blobIdAsync. */
export function importMacKey(macKey: Uint8Array): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('raw', macKey, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

/**
 * The same id as blobId, computed on libuv's thread pool (WebCrypto jobs run there), so
 * the calling thread goes on meanwhile. The data is copied when the call is made.
 */
export async function blobIdAsync(key: webcrypto.CryptoKey, data: Uint8Array): Promise<Buffer> {
  return Buffer.from(await webcrypto.subtle.sign('HMAC', key, data));
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hmac(key: Uint8Array, ...parts: Array<Uint8Array | string>): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}
