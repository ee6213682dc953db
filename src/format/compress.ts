// zstd through zstd-napi (native libzstd, ~2x the wasm build's speed here).
import zstd from 'zstd-napi';
// The low-level binding (CommonJS): reusable contexts and compression into a given buffer.
import binding from 'zstd-napi/binding.js';

export function zstdCompress(data: Uint8Array, level: number): Buffer {
  return zstd.compress(data, { compressionLevel: level });
}

export function zstdDecompress(data: Uint8Array): Buffer {
  return zstd.decompress(data);
}

/** Worst-case compressed size of `n` bytes. */
export function zstdBound(n: number): number {
  return binding.compressBound(n);
}

// One context per thread (module instances are per thread), reused: creating a context per
// call costs an allocation of its tables every time.
let cctx: InstanceType<typeof binding.CCtx> | null = null;

/** Compresses `src` into `dst` (at least zstdBound(src.length) long); returns the compressed length. */
export function zstdCompressInto(dst: Uint8Array, src: Uint8Array, level: number): number {
  cctx ??= new binding.CCtx();
  return cctx.compress(dst, src, level);
}
