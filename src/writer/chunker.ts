// FastCDC content-defined chunking (Xia et al. 2016) with normalized chunking: a harder
// mask before the average size, an easier one after, so sizes cluster around the average.
// The gear table comes from the repository's chunker secret, so chunk boundaries (and
// hence chunk sizes) do not reveal content to someone who knows the algorithm.
import { hmac } from '../crypto/hash.js';

export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

export function gearTable(seed: Uint8Array): Int32Array {
  const g = new Int32Array(256);
  for (let i = 0; i < 256; i++) g[i] = hmac(seed, `tsbak gear ${i}`).readInt32BE(0);
  return g;
}

export class Chunker {
  private readonly maskS: number;
  private readonly maskL: number;

  constructor(
    readonly params: ChunkerParams,
    private readonly gear: Int32Array,
  ) {
    const bits = Math.round(Math.log2(params.avg));
    // Top bits of the 32-bit gear hash, which depend on the last ~32 bytes.
    this.maskS = (~0 << (32 - (bits + 2))) | 0;
    this.maskL = (~0 << (32 - (bits - 2))) | 0;
  }

  /**
   * Length of the next chunk at the start of buf[start, end). Only meaningful when
   * end - start >= max or the data ends at `end`.
   */
  cut(buf: Uint8Array, start: number, end: number): number {
    const n = end - start;
    const { min, avg, max } = this.params;
    if (n <= min) return n;
    const gear = this.gear;
    const maskS = this.maskS;
    const maskL = this.maskL;
    const normal = start + Math.min(avg, n);
    const limit = start + Math.min(max, n);
    let h = 0;
    let i = start + min;
    for (; i < normal; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskS) === 0) return i + 1 - start;
    }
    for (; i < limit; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskL) === 0) return i + 1 - start;
    }
    return limit - start;
  }
}

/**
 * Splits a stream of byte blocks into chunks. Yields each chunk as its own Buffer (a copy,
 * so input blocks can be reused by the reader).
 */
export async function* chunkStream(chunker: Chunker, blocks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const max = chunker.params.max;
  let pending: Buffer = Buffer.alloc(0);
  for await (const block of blocks) {
    pending = pending.length ? Buffer.concat([pending, block]) : Buffer.from(block);
    let pos = 0;
    while (pending.length - pos >= max) {
      const len = chunker.cut(pending, pos, pending.length);
      yield pending.subarray(pos, pos + len);
      pos += len;
    }
    pending = pending.subarray(pos);
  }
  let pos = 0;
  while (pos < pending.length) {
    const len = chunker.cut(pending, pos, pending.length);
    yield pending.subarray(pos, pos + len);
    pos += len;
  }
}
