// zstd through zstd-napi (native libzstd, ~2x the wasm build's speed here).
import zstd from 'zstd-napi';
// The low-level binding (CommonJS): reusable contexts and compression into a given buffer.
import binding from 'zstd-napi/binding.js';

export function zstdCompress(data: Uint8Array, level: number): Buffer {
  return zstd.compress(data, { compressionLevel: level });
}

/**
 * Decompresses `data`, refusing (throwing) once its plaintext would pass `max` bytes: the
 * sizes its frames declare are checked before anything is made, and frames that declare
 * none are decompressed a piece at a time and counted. Bytes from a repository are hostile
 * even when authenticated (a writer key holder seals them): a small frame of repeated bytes
 * can declare gigabytes.
 */
export function zstdDecompress(data: Uint8Array, max = Infinity): Buffer {
  if (max === Infinity) return zstd.decompress(data);
  let declared = 0;
  for (let frame = data; frame.length > 0; frame = frame.subarray(binding.findFrameCompressedSize(frame))) {
    const n = binding.getFrameContentSize(frame);
    if (n === null) return decompressCounted(data, max);
    declared += n;
    if (declared > max) throw new RangeError(`zstd data declares more than ${max} bytes`);
  }
  return zstd.decompress(data);
}

/** Streaming decompression that stops once more than `max` bytes came out. */
function decompressCounted(data: Uint8Array, max: number): Buffer {
  const dctx = new binding.DCtx();
  const pieces: Buffer[] = [];
  let total = 0;
  let rest = data;
  // decompressStream's first result is 0 once a frame is complete and flushed.
  let pending = 1;
  while (rest.length > 0 || pending !== 0) {
    const piece = Buffer.allocUnsafe(Math.min(Math.max(binding.dStreamOutSize(), rest.length), max - total + 1));
    const [hint, produced, consumed] = dctx.decompressStream(piece, rest);
    total += produced;
    if (total > max) throw new RangeError(`zstd data holds more than ${max} bytes`);
    if (produced === 0 && consumed === 0) throw new RangeError('zstd data is truncated');
    pieces.push(piece.subarray(0, produced));
    rest = rest.subarray(consumed);
    pending = hint;
  }
  return Buffer.concat(pieces, total);
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
