import t from 'tap';
import { randomBytes } from 'node:crypto';
import { gearScan } from '../src/platform/native.js';
import { gearTable } from '../src/writer/chunker.js';

// The native loop against the definition, byte by byte, including a scan split in two.
function reference(buf: Uint8Array, from: number, to: number, mask: number, gear: Int32Array, h0: number): [number, number] {
  let h = h0;
  for (let i = from; i < to; i++) {
    h = ((h << 1) + gear[buf[i]!]!) | 0;
    if ((h & mask) === 0) return [i, h];
  }
  return [-1, h];
}

t.test('gearScan finds the first boundary the byte-wise definition finds, and carries the hash over', async (t) => {
  const gear = gearTable(Buffer.from('gear scan test'));
  const data = randomBytes(1 << 20);
  const state = new Int32Array(1);
  for (const bits of [4, 9, 13]) {
    const mask = (~0 << (32 - bits)) | 0;
    for (const [from, to] of [[0, data.length], [1, 1001], [3, 7], [100, 100], [12345, 54321]] as const) {
      state[0] = 77;
      const got = gearScan(data, from, to, mask, gear, state);
      const [want, h] = reference(data, from, to, mask, gear, 77);
      t.equal(got, want, `bits ${bits} [${from}, ${to})`);
      if (want < 0) t.equal(state[0], h, 'hash left for the next scan');
    }
  }
  // A range scanned in two pieces cuts where one scan does.
  const mask = (~0 << (32 - 20)) | 0;
  state[0] = 0;
  const first = gearScan(data, 0, 5000, mask, gear, state);
  t.equal(first, -1, 'no boundary in the first piece with a 20-bit mask');
  const second = gearScan(data, 5000, data.length, mask, gear, state);
  t.equal(second, reference(data, 0, data.length, mask, gear, 0)[0], 'second piece goes on from the first');
});

t.test('gearScan refuses ranges outside the buffer and wrong argument types', async (t) => {
  const gear = gearTable(Buffer.from('x'));
  const state = new Int32Array(1);
  const buf = Buffer.alloc(16);
  t.throws(() => gearScan(buf, 0, 17, -1, gear, state), RangeError);
  t.throws(() => gearScan(buf, 8, 4, -1, gear, state), RangeError);
  t.throws(() => gearScan(buf, -1, 4, -1, gear, state), RangeError);
  t.throws(() => gearScan(buf, 0, 4, -1, new Int32Array(255), state), RangeError);
  t.throws(() => gearScan(buf, 0, 4, -1, gear, new Int32Array(0)), RangeError);
  t.throws(() => gearScan(buf, 0, 4, -1, new Uint32Array(256) as unknown as Int32Array, state), TypeError);
});
