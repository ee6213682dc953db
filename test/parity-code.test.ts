// The Reed-Solomon code of parity across packs: every erasure pattern of small groups is
// rebuilt exactly, through the native multiply-accumulate (on libuv's pool).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { gfInv, gfMul, ParityEncoder, rebuild } from '../src/repo/parity-code.js';
import { gfMulAdd } from '../src/platform/native/parity.js';

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
