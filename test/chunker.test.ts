import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Chunker, chunkReader, chunkStream, gearTable } from '../src/writer/chunker.js';

// The straightforward byte-at-a-time FastCDC the optimized scanner must agree with.
function referenceCuts(buf: Uint8Array, gear: Int32Array, p: { min: number; avg: number; max: number }): number[] {
  const bits = Math.round(Math.log2(p.avg));
  const maskS = (~0 << (32 - (bits + 2))) | 0;
  const maskL = (~0 << (32 - (bits - 2))) | 0;
  const cuts: number[] = [];
  let start = 0;
  while (start < buf.length) {
    const n = buf.length - start;
    let len = n;
    if (n > p.min) {
      const normal = start + Math.min(p.avg, n);
      const limit = start + Math.min(p.max, n);
      let h = 0;
      let i = start + p.min;
      len = limit - start;
      let found = false;
      for (; i < normal && !found; i++) {
        h = ((h << 1) + gear[buf[i]!]!) | 0;
        if ((h & maskS) === 0) (len = i + 1 - start), (found = true);
      }
      for (; i < limit && !found; i++) {
        h = ((h << 1) + gear[buf[i]!]!) | 0;
        if ((h & maskL) === 0) (len = i + 1 - start), (found = true);
      }
    }
    cuts.push(len);
    start += len;
  }
  return cuts;
}

t.test('word-at-a-time scanner cuts exactly where the byte-wise reference does', async (t) => {
  const params = { min: 2048, avg: 8192, max: 32768 };
  const gear = gearTable(Buffer.from('seed for the test'));
  const c = new Chunker(params, gear);
  const data = randomBytes(2 << 20);
  for (const shift of [0, 1, 2, 3]) {
    // misaligned views exercise the alignment prologue
    const backing = Buffer.alloc(data.length + 8);
    data.copy(backing, shift);
    const view = backing.subarray(shift, shift + data.length);
    const ours: number[] = [];
    let pos = 0;
    while (pos < view.length) {
      const l = c.cut(view, pos, view.length);
      ours.push(l);
      pos += l;
    }
    t.same(ours, referenceCuts(data, gear, params), `offset ${shift}`);
  }
});

t.test('chunkReader cuts where the reference does, whatever the read sizes and buffer', async (t) => {
  const params = { min: 2048, avg: 8192, max: 32768 };
  const gear = gearTable(Buffer.from('seed for the reader'));
  const c = new Chunker(params, gear);
  // Text-like data too: long runs without a boundary reach max, the forced-cut path.
  const data = Buffer.concat([randomBytes(300 << 10), Buffer.alloc(100 << 10, 'a'), randomBytes(123457)]);
  const want = referenceCuts(data, gear, params);
  for (const [label, bufSize, readMax] of [
    ['default buffer, whole reads', 0, Infinity],
    ['smallest buffer (max), 1000-byte reads', params.max, 1000],
    ['buffer just over max, odd reads', params.max + 17, 4099],
    ['large buffer, short reads', 1 << 20, 777],
  ] as const) {
    let pos = 0;
    const read = async (buf: Buffer, at: number, n: number) => {
      const k = Math.min(n, readMax, data.length - pos);
      data.copy(buf, at, pos, pos + k);
      pos += k;
      return k;
    };
    const got: number[] = [];
    const joined: Buffer[] = [];
    for await (const ch of chunkReader(c, data.length, read, bufSize ? Buffer.alloc(bufSize) : undefined)) {
      got.push(ch.length);
      joined.push(Buffer.from(ch));
    }
    t.same(got, want, label);
    t.ok(Buffer.concat(joined).equals(data), `${label}: same bytes`);
  }
});

t.test('chunk sizes respect min/max and cluster near the average', async (t) => {
  const params = { min: 256 << 10, avg: 1 << 20, max: 4 << 20 };
  const c = new Chunker(params, gearTable(Buffer.from('x')));
  const data = randomBytes(64 << 20);
  const sizes: number[] = [];
  async function* blocks() {
    for (let i = 0; i < data.length; i += 3 << 20) yield data.subarray(i, i + (3 << 20));
  }
  for await (const ch of chunkStream(c, blocks())) sizes.push(ch.length);
  t.equal(sizes.reduce((a, b) => a + b, 0), data.length);
  for (const s of sizes.slice(0, -1)) t.ok(s >= params.min && s <= params.max);
  const mean = data.length / sizes.length;
  t.ok(mean > 600 << 10 && mean < 1600 << 10, `mean chunk ${Math.round(mean)}`);
});

t.test('an insertion only changes the chunks around it', async (t) => {
  const params = { min: 2048, avg: 8192, max: 32768 };
  const c = new Chunker(params, gearTable(Buffer.from('y')));
  const data = randomBytes(1 << 20);
  const cutsOf = (b: Buffer) => {
    const out = new Set<string>();
    let pos = 0;
    while (pos < b.length) {
      const l = c.cut(b, pos, b.length);
      out.add(b.subarray(pos, pos + l).toString('base64').slice(0, 40) + l);
      pos += l;
    }
    return out;
  };
  const a = cutsOf(data);
  const b = cutsOf(Buffer.concat([Buffer.from('!'), data]));
  let shared = 0;
  for (const x of b) if (a.has(x)) shared++;
  t.ok(shared >= b.size - 2, `${shared} of ${b.size} chunks unchanged`);
});
