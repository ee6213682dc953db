// Reed-Solomon multiply-accumulate in GF(2^8) (native/parity.c).
import { addon } from './addon.js';

interface Parity {
  gfMulAdd(dst: Uint8Array, coefs: Uint8Array, src: Uint8Array, at?: number): void;
  gfMulAddAsync(dst: Uint8Array, coefs: Uint8Array, src: Uint8Array): Promise<void>;
  gfKernel(name?: string): string;
  gfKernels(): string[];
  gfAlloc(size: number): ArrayBuffer;
  gfSha256Async(data: Uint8Array, out: Uint8Array): Promise<void>;
}

/**
 * dst is coefs.length stripes of equal length; stripe j [at, at + src.length) ^= coefs[j] *
 * src (GF(2^8), polynomial 0x11d). The async form (at 0) runs on libuv's pool; the buffers
 * must stay untouched until it resolves.
 */
export function gfMulAdd(dst: Uint8Array, coefs: Uint8Array, src: Uint8Array, at = 0): void {
  addon<Parity>().gfMulAdd(dst, coefs, src, at);
}

export function gfMulAddAsync(dst: Uint8Array, coefs: Uint8Array, src: Uint8Array): Promise<void> {
  return addon<Parity>().gfMulAddAsync(dst, coefs, src);
}

/**
 * The multiply kernel in use (scalar, ssse3, avx2, gfni, gfni512), after switching to `name`
 * if given (a RangeError if this CPU lacks it). The default is the fastest the CPU has.
 */
export function gfKernel(name?: string): string {
  return addon<Parity>().gfKernel(name);
}

/** The kernels this CPU has, slowest first. */
export function gfKernels(): string[] {
  return addon<Parity>().gfKernels();
}

/** A zeroed buffer for parity stripes, backed by huge pages where the kernel can (first touches of 4 KiB pages cost more than the fold). */
export function gfAlloc(size: number): Buffer {
  return Buffer.from(addon<Parity>().gfAlloc(size));
}

/** SHA-256 of data on libuv's pool (data must stay untouched until it resolves). */
export async function gfSha256Async(data: Uint8Array): Promise<Buffer> {
  const out = Buffer.alloc(32);
  await addon<Parity>().gfSha256Async(data, out);
  return out;
}
