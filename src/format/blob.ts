// Blob envelope (docs/FORMAT.md "Blobs"). Plaintext P with id = HMAC-SHA256(macKey, P).
// Stored bytes: AEAD(packKey, flag || [u32 pad] || body || [pad zero bytes], aad = id).
// Flag bit 1: body is zstd(P), else P (compressed form kept only when it saves 3%). Flag
// bit 2: padded, the u32 and the zeros are there. Writers pad every blob so its sealed
// length is a Padmé length: a member's size in `tar tv` no longer tells which known file
// it holds. Binding the id as AAD means a blob cannot be swapped for another one.
import { AEAD_OVERHEAD, aeadOpen, aeadSealInto, AuthError } from '../crypto/aead.js';
import { zstdBound, zstdCompressInto, zstdDecompress } from './compress.js';

const FLAG_ZSTD = 1;
const FLAG_PADDED = 2;
/** Sealed bytes around a padded body: the flag, the pad length, the nonce and the tag. */
const ENVELOPE = 1 + 4 + AEAD_OVERHEAD;

/**
 * Padmé (Nikitin et al., 2019, as tarsnap pads): n rounded up to a multiple of 2^(E-S), E =
 * floor(log2 n), S = floor(log2 E) + 1, so only O(log log n) bits of a length are left;
 * at most n/8 more for n >= 32, ~3% for a 64 KiB blob, ~1.5% on average for 1 MiB chunks.
 */
export function padme(n: number): number {
  if (n < 2) return n;
  const e = 31 - Math.clz32(n);
  const s = 32 - Math.clz32(e);
  const step = 2 ** (e - s);
  return Math.ceil(n / step) * step;
}

/** Most bytes a sealed blob of `n` plaintext bytes can take (padding included). */
export function sealedBound(n: number): number {
  const l = n + ENVELOPE;
  return l + Math.floor(l / 8) + 1;
}

let scratch = new Uint8Array(0);
let zeros = new Uint8Array(0);

/**
 * Seals one blob into `out` at `at` (room for sealedBound(plain.length) needed) and
 * returns its sealed length. Compresses into a per-thread scratch buffer, so the only
 * copy is the cipher's output into `out`.
 */
export function sealBlobInto(out: Uint8Array, at: number, packKey: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): number {
  let flag = FLAG_PADDED;
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
  const pad = padme(ENVELOPE + body.length) - ENVELOPE - body.length;
  if (zeros.length < pad) zeros = new Uint8Array(Math.max(pad, 4096));
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(pad, 1);
  return aeadSealInto(packKey, [head, body, zeros.subarray(0, pad)], id, out, at);
}

export function sealBlob(packKey: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): Buffer {
  const out = Buffer.allocUnsafe(sealedBound(plain.length));
  const n = sealBlobInto(out, 0, packKey, id, plain, level);
  return out.subarray(0, n);
}

/** Throws AuthError on any alteration. The caller verifies the id of the result. */
export function openBlob(packKey: Uint8Array, id: Uint8Array, sealed: Uint8Array): Buffer {
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
  return flag & FLAG_ZSTD ? zstdDecompress(body) : body;
}
