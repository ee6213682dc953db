// Blob envelope. Plaintext P with id = HMAC-SHA256(macKey, P).
// Stored bytes: AEAD(packKey, flag || body, aad = id), with flag 0 = body is P,
// flag 1 = body is zstd(P). Compressed form is kept only when it saves at least 3%.
// Binding the id as AAD means a blob cannot be swapped for another one of the same pack.
import { aeadOpen, aeadSeal, AuthError } from '../crypto/aead.js';
import { zstdCompress, zstdDecompress } from './compress.js';

const FLAG_RAW = 0;
const FLAG_ZSTD = 1;

export function sealBlob(packKey: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): Buffer {
  let flag = FLAG_RAW;
  let body: Uint8Array = plain;
  if (level > 0 && plain.length >= 64) {
    const z = zstdCompress(plain, level);
    if (z.length < plain.length * 0.97) {
      flag = FLAG_ZSTD;
      body = z;
    }
  }
  const framed = Buffer.allocUnsafe(1 + body.length);
  framed[0] = flag;
  framed.set(body, 1);
  return aeadSeal(packKey, framed, id);
}

/** Throws AuthError on any alteration. The caller verifies the id of the result. */
export function openBlob(packKey: Uint8Array, id: Uint8Array, sealed: Uint8Array): Buffer {
  const framed = aeadOpen(packKey, sealed, id);
  const body = framed.subarray(1);
  if (framed[0] === FLAG_RAW) return body;
  if (framed[0] === FLAG_ZSTD) return zstdDecompress(body);
  throw new AuthError();
}
