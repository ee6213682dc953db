// Blob envelope (docs/FORMAT.md "Blobs"). Plaintext P with id = HMAC-SHA256(macKey, P).
// Stored bytes: AEAD(packKey, flag || [u32 pad] || body || [pad zero bytes], aad = id).
// Flag bit 1: body is zstd(P), else P (compressed form kept only when it saves 3%). Flag
// bit 2: padded, the u32 and the zeros are there (written by older versions, when large
// blobs were tar members of their own; blobs now sit in one member per pack, so their
// lengths are not in the stored bytes, and remote backends round their ranges instead).
// Binding the id as AAD means a blob cannot be swapped for another one.
import { AEAD_OVERHEAD, aeadOpen, aeadSealInto, AuthError } from '../crypto/aead.js';
import { zstdBound, zstdCompressInto, zstdDecompress } from './compress.js';

const FLAG_ZSTD = 1;
const FLAG_PADDED = 2;
/** Sealed bytes around a body: the flag, the nonce and the tag. */
const ENVELOPE = 1 + AEAD_OVERHEAD;
/** The index holds plaintext lengths as u32: no blob is longer. */
const MAX_PLAIN = 2 ** 32 - 1;

/** Most bytes a sealed blob of `n` plaintext bytes can take (it is stored raw when zstd saves less than 3%). */
export function sealedBound(n: number): number {
  return n + ENVELOPE;
}

let scratch = new Uint8Array(0);

/**
 * Seals one blob into `out` at `at` (room for sealedBound(plain.length) needed) and
 * returns its sealed length. Compresses into a per-thread scratch buffer, so the only
 * copy is the cipher's output into `out`.
 */
export function sealBlobInto(out: Uint8Array, at: number, packKey: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): number {
  let flag = 0;
  let body = plain;
  if (level > 0 && plain.length >= 64) {
    const bound = zstdBound(plain.length);
    if (scratch.length < bound) scratch = new Uint8Array(Math.max(bound, 64 << 10));
    const n = zstdCompressInto(scratch, plain, level);
    if (n < plain.length * 0.97) {
      flag |= FLAG_ZSTD;
      body = scratch.subarray(0, n);
    }
  }
  return aeadSealInto(packKey, [Buffer.of(flag), body], id, out, at);
}

export function sealBlob(packKey: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): Buffer {
  const out = Buffer.allocUnsafe(sealedBound(plain.length));
  const n = sealBlobInto(out, 0, packKey, id, plain, level);
  return out.subarray(0, n);
}

/**
 * Throws AuthError on any alteration, and on a plaintext longer than `maxPlain` (the length
 * the index gives it: a blob of another length is damage, and zstd is not let to make more).
 * The caller verifies the id of the result.
 */
export function openBlob(packKey: Uint8Array, id: Uint8Array, sealed: Uint8Array, maxPlain = MAX_PLAIN): Buffer {
  const framed = aeadOpen(packKey, sealed, id);
  const flag = framed[0]!;
  if (flag > (FLAG_ZSTD | FLAG_PADDED)) throw new AuthError();
  let body = framed.subarray(1);
  if (flag & FLAG_PADDED) {
    if (framed.length < 5) throw new AuthError();
    const pad = framed.readUInt32BE(1);
    if (pad > framed.length - 5) throw new AuthError();
    body = framed.subarray(5, framed.length - pad);
  }
  if (!(flag & FLAG_ZSTD)) return body;
  try {
    return zstdDecompress(body, maxPlain);
  } catch {
    throw new AuthError();
  }
}
