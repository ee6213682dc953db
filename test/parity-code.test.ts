// The Reed-Solomon code of parity across packs: every erasure pattern of small groups is
// rebuilt exactly, through the native multiply-accumulate (on libuv's pool).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { gfInv, gfMul, ParityEncoder, rebuild } from '../src/repo/parity-code.js';
import { gfKernel, gfKernels, gfMulAdd, gfMulAddAsync } from '../src/platform/native/parity.js';

function subsets(n: number, size: number): number[][] {
  const out: number[][] = [];
  const rec = (from: number, acc: number[]) => {
    if (acc.length === size) return void out.push(acc.slice());
    for (let i = from; i < n; i++) rec(i + 1, [...acc, i]);
  };
  rec(0, []);
  return out;
}

t.test('GF(2^8) multiply and inverse', async (t) => {
  for (let a = 1; a < 256; a++) t.equal(gfMul(a, gfInv(a)), 1);
  // native multiply agrees with the JS tables
  const src = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (const c of [0, 1, 2, 0x1d, 0x80, 0xff]) {
    const dst = new Uint8Array(256);
    gfMulAdd(dst, Uint8Array.of(c), src);
    t.same([...dst], [...src].map((x) => gfMul(c, x)), `coefficient ${c}`);
  }
});

t.test('every SIMD kernel the CPU has agrees with the JS tables', async (t) => {
  const kernels = gfKernels();
  const best = gfKernel();
  t.equal(kernels[0], 'scalar');
  t.equal(best, kernels[kernels.length - 1], 'the fastest kernel is the default');
  t.throws(() => gfKernel('no-such-kernel'), RangeError);
  // Lengths around every vector width (tails), odd offsets (unaligned), every coefficient.
  const src = randomBytes(4096 + 129);
  const lengths = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 1000, 4096 + 127];
  const coefs = Uint8Array.from({ length: 256 }, (_, c) => c);
  const expected = (c: number, s: Uint8Array, d: Uint8Array) => Uint8Array.from(d, (x, i) => (i < s.length ? x ^ gfMul(c, s[i]!) : x));
  try {
    for (const k of kernels) {
      t.equal(gfKernel(k), k);
      let bad = 0;
      for (const len of lengths) {
        const s = src.subarray(1, 1 + len);
        // all 256 coefficients at once: 256 stripes of len + 3 bytes, starting non-zero
        const dst = Buffer.alloc(256 * (len + 3), 0x5a);
        const before = Buffer.from(dst);
        gfMulAdd(dst, coefs, s);
        for (let c = 0; c < 256; c++) {
          const stripe = (b: Buffer) => b.subarray(c * (len + 3), (c + 1) * (len + 3));
          if (!Buffer.from(expected(c, s, stripe(before))).equals(stripe(dst))) bad++;
        }
      }
      t.equal(bad, 0, `${k}: every coefficient and length`);
      // the pool's path, a large buffer in slices
      const big = randomBytes((1 << 20) + 77);
      const d = Buffer.alloc(2 * big.length);
      await gfMulAddAsync(d, Uint8Array.of(0x8e, 0x1d), big);
      t.ok(d.subarray(0, big.length).equals(Buffer.from(expected(0x8e, big, new Uint8Array(big.length)))) && d.subarray(big.length).equals(Buffer.from(expected(0x1d, big, new Uint8Array(big.length)))), `${k}: 1 MiB on the pool`);
    }
  } finally {
    gfKernel(best);
  }
});

t.test('every erasure pattern of small groups is rebuilt', async (t) => {
  for (const [n, m] of [[1, 1], [2, 1], [3, 2], [4, 2], [5, 3], [10, 2], [6, 4]] as const) {
    const data = Array.from({ length: n }, (_, i) => randomBytes(100 + i * 37));
    const stride = Math.max(...data.map((d) => d.length));
    const enc = new ParityEncoder(m);
    for (let i = n - 1; i >= 0; i--) await enc.fold(i, data[i]!); // any order
    const members: Uint8Array[] = [...data, ...Array.from({ length: m }, (_, j) => Buffer.from(enc.stripe(j)))];
    let patterns = 0;
    for (let e = 1; e <= m; e++) {
      for (const lost of subsets(n + m, e)) {
        const have = new Map<number, Uint8Array>();
        members.forEach((b, i) => lost.includes(i) || have.set(i, b));
        const want = lost.filter((i) => i < n);
        if (!want.length) continue;
        const got = await rebuild(n, m, stride, have, want);
        for (const w of want) if (!got.get(w)!.subarray(0, data[w]!.length).equals(data[w]!)) t.fail(`${n}+${m} lost ${lost}: member ${w} differs`);
        patterns++;
      }
    }
    t.ok(patterns > 0, `${n}+${m}: ${patterns} patterns rebuilt`);
  }
});

t.test('more erasures than parity are refused', async (t) => {
  await t.rejects(rebuild(3, 1, 10, new Map([[0, Buffer.alloc(10)]]), [1, 2]), /2 needed|3 needed/);
});
