// Reed-Solomon multiply-accumulate in GF(2^8) (native/parity.c).
import { addon } from './addon.js';

interface Parity {
  gfMulAdd(dst: Uint8Array, coefs: Uint8Array, src: Uint8Array): void;
  gfMulAddAsync(dst: Uint8Array, coefs: Uint8Array, src: Uint8Array): Promise<void>;
}

/**
 * dst is coefs.length stripes of equal length; stripe j ^= coefs[j] * src over src's length
 * (GF(2^8), polynomial 0x11d). The async form runs on libuv's pool; the buffers must stay
 * untouched until it resolves.
 */
export function gfMulAdd(dst: Uint8Array, coefs: Uint8Array, src: Uint8Array): void {
  addon<Parity>().gfMulAdd(dst, coefs, src);
}

export function gfMulAddAsync(dst: Uint8Array, coefs: Uint8Array, src: Uint8Array): Promise<void> {
  return addon<Parity>().gfMulAddAsync(dst, coefs, src);
}
