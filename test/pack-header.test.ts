// A pack's header found from its tail alone and checked as hostile input (repair index,
// recover): any tail length that reaches the header member finds it; a shorter one asks
// for more; counts, types, offsets and ids that a pack could not hold are refused.
import t from 'tap';
import { randomBytes, randomInt } from 'node:crypto';
import { aeadSeal } from '../src/crypto/aead.js';
import { checkPackEntries, findPackHeader, openPackHeader, PackBuilder, type PackEntry } from '../src/format/pack.js';
import { parseTar } from '../src/format/tar.js';

function pack(n: number, sizes = [40, 3000, 70000]): { bytes: Buffer; key: Buffer; entries: PackEntry[] } {
  const b = new PackBuilder(4096);
  for (let i = 0; i < n; i++) {
    const sealed = randomBytes(sizes[randomInt(0, sizes.length)]!);
    b.add(randomBytes(32), 'data', sealed, sealed.length);
  }
  const key = randomBytes(32);
  const r = b.finish(key, randomBytes(92));
  return { bytes: Buffer.from(r.bytes!), key, entries: r.entries };
}

t.test('the header member is found from any tail that holds it', async (t) => {
  for (const n of [0, 1, 5, 2000]) {
    const p = pack(n);
    const headerAt = parseTar(p.bytes).at(-1)!.dataOffset - 512;
    for (const tail of [1024, 4096, p.bytes.length - headerAt - 512, p.bytes.length - headerAt, p.bytes.length]) {
      if (tail < 1024 || tail > p.bytes.length) continue;
      const got = findPackHeader(p.bytes.subarray(p.bytes.length - tail), p.bytes.length);
      if (tail < p.bytes.length - headerAt) {
        t.equal(got, null, `${n} blobs, tail ${tail}: asks for more`);
        continue;
      }
      t.ok(got, `${n} blobs, tail ${tail}: found`);
      t.equal(got!.at, headerAt, 'where the blobs end');
      const entries = openPackHeader(p.key, got!.encrypted);
      t.same(entries, p.entries, 'the entries the builder wrote');
      t.doesNotThrow(() => checkPackEntries(entries, 'data', got!.at), 'a sound pack passes the checks');
    }
  }
});

t.test('bytes that cannot be the end of a pack are refused', async (t) => {
  const p = pack(3);
  t.throws(() => findPackHeader(p.bytes.subarray(0, p.bytes.length - 512), p.bytes.length - 512), /zero blocks/, 'cut short');
  t.throws(() => findPackHeader(p.bytes.subarray(1), p.bytes.length - 1), /not a tar archive/, 'not whole blocks');
  const noHeader = Buffer.alloc(4096);
  t.throws(() => findPackHeader(noHeader, noHeader.length), /no header member/, 'all zeros');
  // A header member whose size does not end at the zero blocks is not taken.
  const at = parseTar(p.bytes).at(-1)!.dataOffset - 512;
  const bad = Buffer.from(p.bytes);
  bad.write('0', at + 124 + 10, 'latin1'); // size changed, checksum no longer matches
  t.throws(() => findPackHeader(bad, bad.length), /no header member/, 'a header member that does not check out');
});

t.test('hostile header contents are refused', async (t) => {
  const key = randomBytes(32);
  const aad = Buffer.from('tsbak pack header v1');
  const header = (n: number, entries: Array<[number, number, number]>, extra = 0) => {
    const h = Buffer.alloc(9 + entries.length * 45 + extra);
    h.write('TSBP', 0, 'latin1');
    h[4] = 1;
    h.writeUInt32BE(n, 5);
    entries.forEach(([type, offset, length], i) => {
      const o = 9 + i * 45;
      randomBytes(32).copy(h, o);
      h[o + 32] = type;
      h.writeUInt32BE(offset, o + 33);
      h.writeUInt32BE(length, o + 37);
      h.writeUInt32BE(length, o + 41);
    });
    return aeadSeal(key, h, aad);
  };
  t.throws(() => openPackHeader(key, header(1_000_000_000, [[0, 512, 100]])), /cannot hold/, 'a count beyond the bytes');
  t.throws(() => openPackHeader(key, header(1, [[0, 512, 100]], 3)), /cannot hold/, 'bytes after the entries');
  t.throws(() => openPackHeader(key, header(1, [[2, 512, 100]])), /unknown type/, 'an unknown type');
  t.throws(() => openPackHeader(randomBytes(32), header(1, [[0, 512, 100]])), 'another key');
  const e = (offset: number, length: number, type: 'data' | 'tree' = 'data', id = randomBytes(32)): PackEntry => ({ id, type, offset, length, rawLength: length });
  t.throws(() => checkPackEntries([e(512, 100, 'tree')], 'data', 4096), /tree blob in a data pack/);
  t.throws(() => checkPackEntries([e(0, 100)], 'data', 4096), /outside/, 'inside the first member header');
  t.throws(() => checkPackEntries([e(512, 4000)], 'data', 4096), /outside/, 'beyond the header member');
  t.throws(() => checkPackEntries([e(512, 2 ** 32 - 1)], 'data', 4096), /outside/, 'a length that wraps');
  t.throws(() => checkPackEntries([e(512, 200), e(600, 100)], 'data', 4096), /overlaps/);
  t.throws(() => checkPackEntries([e(512, 10)], 'data', 4096), /sealed length/);
  const id = randomBytes(32);
  t.throws(() => checkPackEntries([e(512, 100, 'data', id), e(700, 100, 'data', id)], 'data', 4096), /twice/);
  t.doesNotThrow(() => checkPackEntries([e(600, 100), e(512, 88)], 'data', 4096), 'in any order, side by side');
});
