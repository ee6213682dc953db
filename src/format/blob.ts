// Blob envelope. Plaintext P with id = HMAC-SHA256(macKey, P).
// Stored bytes: AEAD(packKey, flag || body, aad = id), with flag 0 = body is P,
// flag 1 = body is zstd(P). Compressed form is kept only when it saves at least 3%.
// Binding the id as AAD means a blob cannot be swapped for another one of the same pack.
import { AEAD_OVERHEAD, aeadOpen, aeadSealInto, AuthError } from '../crypto/aead.js';
import { zstdBound, zstdCompressInto, zstdDecompress } from './compress.js';

const FLAG_RAW = 0;
const FLAG_ZSTD = 1;

/** Most bytes a sealed blob of `n` plaintext bytes can take. */
export function sealedBound(n: number): number {
  return n + 1 + AEAD_OVERHEAD;
}

const RAW = Uint8Array.of(FLAG_RAW);
const ZSTD = Uint8Array.of(FLAG_ZSTD);
let scratch = new Uint8Array(0);

/**
 * Seals one blob into `out` at `at` (room for sealedBound(plain.length) needed) and
 * returns its sealed length. Compresses into a per-thread scratch buffer, so the only
 * copy is the cipher's output into `out`.
 */
export function sealBlobInto(out: Uint8Array, at: number, packKey: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): number {
  if (level > 0 && plain.length >= 64) {
    const bound = zstdBound(plain.length);
    if (scratch.length < bound) scratch = new Uint8Array(Math.max(bound, 64 << 10));
    const n = zstdCompressInto(scratch, plain, level);
    if (n < plain.length * 0.97) return aeadSealInto(packKey, [ZSTD, scratch.subarray(0, n)], id, out, at);
  }
  return aeadSealInto(packKey, [RAW, plain], id, out, at);
}

export function sealBlob(packKey: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): Buffer {
  const out = Buffer.allocUnsafe(sealedBound(plain.length));
  const n = sealBlobInto(out, 0, packKey, id, plain, level);
  return out.subarray(0, n);
}

/** Throws AuthError on any alteration. The caller verifies the id of the result. */
export function openBlob(packKey: Uint8Array, id: Uint8Array, sealed: Uint8Array): Buffer {
  const framed = aeadOpen(packKey, sealed, id);
  const body = framed.subarray(1);
  if (framed[0] === FLAG_RAW) return body;
  if (framed[0] === FLAG_ZSTD) return zstdDecompress(body);
  throw new AuthError();
}
