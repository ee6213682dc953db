// The Reed-Solomon code of parity across packs (docs/FORMAT.md "Parity"): systematic, over
// GF(2^8) with polynomial 0x11d. A group's n data members (n <= K) and M parity members are
// the rows of [I_n ; C], C the M x n Cauchy matrix C[j][i] = 1 / (x_j + y_i), x_j = 128 + j,
// y_i = i: every square submatrix of a Cauchy matrix is invertible, so any n of the n + M
// members rebuild the rest. Bulk multiply-accumulate is in C (native/parity.c); the small
// matrix work is here.
import { gfMulAddAsync } from '../platform/native/parity.js';

export const MAX_K = 128;
export const MAX_M = 32;

const EXP = new Uint8Array(512);
const LOG = new Int16Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]!;
}

export function gfMul(a: number, b: number): number {
  return a && b ? EXP[LOG[a]! + LOG[b]!]! : 0;
}

export function gfInv(a: number): number {
  if (!a) throw new RangeError('0 has no inverse');
  return EXP[255 - LOG[a]!]!;
}

/** C[j][i], the coefficient of data member i in parity member j. */
export function cauchy(j: number, i: number): number {
  return gfInv((128 + j) ^ i);
}

/** The coefficients of data member i in the M parity members. */
export function parityColumn(i: number, m: number): Uint8Array {
  const c = new Uint8Array(m);
  for (let j = 0; j < m; j++) c[j] = cauchy(j, i);
  return c;
}

/** Row r (0..n+m-1) of the generator [I_n ; C]. */
function generatorRow(r: number, n: number): Uint8Array {
  const row = new Uint8Array(n);
  if (r < n) row[r] = 1;
  else for (let i = 0; i < n; i++) row[i] = cauchy(r - n, i);
  return row;
}

/** Inverts an n x n matrix over GF(2^8) (Gauss-Jordan). */
export function invert(a: Uint8Array[]): Uint8Array[] {
  const n = a.length;
  const m = a.map((r) => Uint8Array.from(r));
  const inv = a.map((_, i) => {
    const r = new Uint8Array(n);
    r[i] = 1;
    return r;
  });
  for (let c = 0; c < n; c++) {
    let p = c;
    while (p < n && m[p]![c] === 0) p++;
    if (p === n) throw new RangeError('singular matrix');
    [m[c], m[p]] = [m[p]!, m[c]!];
    [inv[c], inv[p]] = [inv[p]!, inv[c]!];
    const f = gfInv(m[c]![c]!);
    for (let k = 0; k < n; k++) {
      m[c]![k] = gfMul(m[c]![k]!, f);
      inv[c]![k] = gfMul(inv[c]![k]!, f);
    }
    for (let r = 0; r < n; r++) {
      if (r === c || m[r]![c] === 0) continue;
      const g = m[r]![c]!;
      for (let k = 0; k < n; k++) {
        m[r]![k]! ^= gfMul(g, m[c]![k]!);
        inv[r]![k]! ^= gfMul(g, inv[c]![k]!);
      }
    }
  }
  return inv;
}

/**
 * Accumulates the M parity stripes of a group: fold() each data member in (any order, on
 * libuv's pool), then take the stripes. Memory: M stripes of the longest member.
 */
export class ParityEncoder {
  private buf: Buffer;
  private stride: number;

  constructor(readonly m: number, initialStride = 0) {
    this.stride = initialStride;
    this.buf = Buffer.alloc(m * initialStride);
  }

  get length(): number {
    return this.stride;
  }

  /** Folds data member `index` (its stored bytes) into the stripes. */
  async fold(index: number, data: Uint8Array): Promise<void> {
    if (data.length > this.stride) this.grow(data.length);
    await gfMulAddAsync(this.buf, parityColumn(index, this.m), data);
  }

  private grow(stride: number): void {
    const b = Buffer.alloc(this.m * stride);
    for (let j = 0; j < this.m; j++) this.buf.copy(b, j * stride, j * this.stride, (j + 1) * this.stride);
    this.buf = b;
    this.stride = stride;
  }

  /** Parity member j's bytes (a view; valid until the next fold). */
  stripe(j: number, length = this.stride): Buffer {
    return this.buf.subarray(j * this.stride, j * this.stride + length);
  }
}

/**
 * Rebuilds the missing members of a group of n data and m parity members. `have` maps a
 * member number (0..n-1 data, n..n+m-1 parity j = number - n) to its bytes (data members
 * padded with zeros to `stride` implicitly: shorter buffers are fine); at least n of them.
 * Returns the rebuilt data members, each `stride` bytes (the caller cuts them to length).
 */
export async function rebuild(n: number, m: number, stride: number, have: Map<number, Uint8Array>, want: number[]): Promise<Map<number, Buffer>> {
  if (have.size < n) throw new RangeError(`${have.size} members left, ${n} needed`);
  const rows = [...have.keys()].sort((a, b) => a - b).slice(0, n);
  const inv = invert(rows.map((r) => generatorRow(r, n)));
  // data member w = sum over t of inv[w][t] * member rows[t]
  const out = Buffer.alloc(want.length * stride);
  for (let t = 0; t < n; t++) {
    const coefs = Uint8Array.from(want, (w) => inv[w]![t]!);
    await gfMulAddAsync(out, coefs, have.get(rows[t]!)!.subarray(0, stride));
  }
  return new Map(want.map((w, i) => [w, out.subarray(i * stride, (i + 1) * stride)]));
}
