// FastCDC content-defined chunking (Xia et al. 2016) with normalized chunking: a harder
// mask before the average size, an easier one after, so sizes cluster around the average.
// The gear table comes from the repository's chunker secret, so chunk boundaries (and
// hence chunk sizes) do not reveal content to someone who knows the algorithm.
import { hmac } from '../crypto/hash.js';
import { gearScan } from '../platform/native/chunk.js';

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
    const normal = start + Math.min(avg, n);
    const limit = start + Math.min(max, n);
    const i = this.scan(buf, start + min, normal, this.maskS, 0);
    if (i >= 0) return i + 1 - start;
    const j = this.scan(buf, normal, limit, this.maskL, this.h);
    if (j >= 0) return j + 1 - start;
    return limit - start;
  }

  /**
   * Like cut, for data that may go on past `end`: the length of the next chunk if bytes
   * after `end` cannot change it (a boundary was found, or `max` is reached), else 0.
   */
  cutFinal(buf: Uint8Array, start: number, end: number): number {
    const n = end - start;
    const { min, avg, max } = this.params;
    if (n >= max) return this.cut(buf, start, end);
    if (n <= min) return 0;
    const normal = start + Math.min(avg, n);
    const i = this.scan(buf, start + min, normal, this.maskS, 0);
    if (i >= 0) return i + 1 - start;
    if (n <= avg) return 0;
    const j = this.scan(buf, normal, end, this.maskL, this.h);
    return j >= 0 ? j + 1 - start : 0;
  }

  /** The gear hash between scans, in and out of the native loop. */
  private readonly state = new Int32Array(1);

  private get h(): number {
    return this.state[0]!;
  }

  /**
   * Rolls the gear hash over buf[from, to) from h0 and returns the index of the first byte
   * after which (h & mask) == 0, or -1 (leaving the hash in this.h). The loop is native
   * (native/chunk.c): ~3x the speed of the JS loop it replaced, on the main thread's
   * busiest path for large files.
   */
  private scan(buf: Uint8Array, from: number, to: number, mask: number, h0: number): number {
    this.state[0] = h0;
    return gearScan(buf, from, to, mask, this.gear, this.state);
  }
}

/**
 * Reads `length` bytes through `read` and yields them as chunks. Each chunk is a view into
 * one buffer (`buf` if given: at least min(length, max + 1 MiB) bytes) that is reused: it is
 * valid only until the consumer asks for the next one (the repository copies what it
 * keeps). Chunks are cut as soon as their boundary is certain, so a refill only moves the
 * unfinished chunk to the front of the buffer, not up to `max` bytes of lookahead.
 */
export async function* chunkReader(
  chunker: Chunker,
  length: number,
  read: (buf: Buffer, offset: number, length: number) => Promise<number>,
  buf: Buffer = Buffer.allocUnsafeSlow(readBufferSize(chunker, length)),
): AsyncGenerator<Buffer> {
  if (buf.length < Math.min(length, chunker.params.max)) throw new Error('chunkReader: buffer smaller than a chunk');
  let start = 0; // first byte not yet chunked
  let end = 0; // end of valid data
  let remaining = length;
  let eof = length === 0;
  for (;;) {
    if (start < end) {
      const len = eof ? chunker.cut(buf, start, end) : chunker.cutFinal(buf, start, end);
      if (len > 0) {
        yield buf.subarray(start, start + len);
        start += len;
        continue;
      }
    } else if (eof) return;
    // Refill: the unfinished chunk moves to the front, then the buffer is filled.
    if (start > 0) {
      buf.copyWithin(0, start, end);
      end -= start;
      start = 0;
    }
    while (!eof && end < buf.length) {
      const got = await read(buf, end, Math.min(buf.length - end, remaining));
      end += got;
      remaining -= got;
      if (got === 0 || remaining === 0) eof = true;
    }
  }
}

/** Size of chunkReader's buffer for a file of `length` bytes. */
export function readBufferSize(chunker: Chunker, length: number, block = 4 << 20): number {
  return Math.max(1, Math.min(length, chunker.params.max + block));
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
