// zstd through zstd-napi (native libzstd, ~2x the wasm build's speed here).
import zstd from 'zstd-napi';

export function zstdCompress(data: Uint8Array, level: number): Buffer {
  return zstd.compress(data, { compressionLevel: level });
}

export function zstdDecompress(data: Uint8Array): Buffer {
  return zstd.decompress(data);
}
