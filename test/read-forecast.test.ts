// The restore's forecast of blobs to come (src/restore/read-forecast.ts), fed out of order
// at the scale of a big pack: what it answers is what a plain model of its contents says.
import t from 'tap';
import type { BlobLocation, PackRef } from '../src/repo/blob-index.js';
import { ReadForecast } from '../src/restore/read-forecast.js';

function packRef(n: number): PackRef {
  return { id: Buffer.alloc(32, n), kind: 'data', sealedKey: Buffer.alloc(32), indexFile: 'index/x', signer: null, verified: false };
}

/** A deterministic shuffle (a linear congruential generator), so that a failure repeats. */
function shuffled<T>(xs: T[], seed: number): T[] {
  const a = xs.slice();
  let s = seed >>> 0;
  for (let i = a.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** What the forecast should hold: requests to come by pack and offset. */
class Model {
  readonly packs = new Map<PackRef, Map<number, { length: number; count: number }>>();
  add(l: BlobLocation): void {
    let m = this.packs.get(l.pack);
    if (!m) this.packs.set(l.pack, (m = new Map()));
    const e = m.get(l.offset);
    if (e) e.count++;
    else m.set(l.offset, { length: l.length, count: 1 });
  }
  take(pack: PackRef, offset: number): void {
    const e = this.packs.get(pack)?.get(offset);
    if (e && e.count > 0) e.count--;
  }
  live(pack: PackRef): Array<{ offset: number; length: number }> {
    return [...(this.packs.get(pack) ?? new Map<number, { length: number; count: number }>())]
      .filter(([, e]) => e.count > 0)
      .map(([offset, e]) => ({ offset, length: e.length }))
      .sort((a, b) => a.offset - b.offset);
  }
  get size(): number {
    let n = 0;
    for (const m of this.packs.values()) for (const e of m.values()) if (e.count > 0) n++;
    return n;
  }
}

t.test('blobs added out of order, 256k of them in a pack, with repeats and takes between batches: the same answers as a model', async (t) => {
  const packs = [packRef(1), packRef(2)];
  const big = packs[0]!;
  // 256k blobs of a 1 GiB-ish pack (4 KiB apart), plus a small second pack; every 7th blob twice.
  const locs: BlobLocation[] = [];
  for (let i = 0; i < 1 << 18; i++) locs.push({ pack: big, offset: 512 + i * 4096, length: 1000 + (i % 3000), rawLength: 4096 });
  for (let i = 0; i < 5000; i++) locs.push({ pack: packs[1]!, offset: 512 + i * 8192, length: 8000, rawLength: 8000 });
  const adds = shuffled(locs.concat(locs.filter((_, i) => i % 7 === 0)), 23);
  const f = new ReadForecast(1 << 20);
  const m = new Model();
  let mismatches = 0;
  const check = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      mismatches++;
      if (mismatches < 5) t.fail(`${what}: ${JSON.stringify(a).slice(0, 200)} != ${JSON.stringify(b).slice(0, 200)}`);
    }
  };
  // Batches as trees would bring them, each followed by lookups and by the walk taking some.
  const batch = 20000;
  for (let b = 0; b < adds.length; b += batch) {
    for (const l of adds.slice(b, b + batch)) {
      f.add(l);
      m.add(l);
    }
    for (const p of packs) {
      const live = m.live(p);
      if (!live.length) continue;
      const mid = live[live.length >> 1]!;
      check('expected', f.expected(p, mid.offset), m.packs.get(p)!.get(mid.offset)!.count);
      check('neededAt of a blob to come', Number.isFinite(f.neededAt(p, mid.offset)), true);
      const from = mid.offset - 200_000;
      const to = mid.offset + 300_000;
      check('within', f.within(p, from, to), live.filter((e) => e.offset >= from && e.offset + e.length <= to));
      // The walk takes a stretch of the blobs to come, some of them twice (one take too many is ignored).
      for (const e of live.slice(0, 3000)) {
        f.take(p, e.offset);
        m.take(p, e.offset);
      }
    }
    // Every blob to come is among the upcoming ones, in the order added.
    const upcoming = new Set<string>();
    for (let i = 0, u = f.upcoming(0); u; u = f.upcoming(++i)) upcoming.add(`${u.pack.id[0]}:${u.offset}`);
    check('upcoming', packs.every((p) => m.live(p).every((e) => upcoming.has(`${p.id[0]}:${e.offset}`))), true);
    check('size', f.size, m.size);
  }
  for (const p of packs) {
    const live = m.live(p);
    check(`every blob to come of pack ${p.id[0]}`, f.within(p, 0, Number.MAX_SAFE_INTEGER), live);
    for (const e of live) check('expected', f.expected(p, e.offset), m.packs.get(p)!.get(e.offset)!.count);
  }
  check('size at the end', f.size, m.size);
  t.equal(mismatches, 0, 'every answer as the model says');

  // Stretching a read: the same as a forecast that heard of the same blobs in the pack's order.
  const inOrder = new ReadForecast(1 << 20);
  const rest = m.live(big);
  for (const e of rest) for (let k = m.packs.get(big)!.get(e.offset)!.count; k > 0; k--) inOrder.add({ pack: big, offset: e.offset, length: e.length, rawLength: 0 });
  let stretched = 0;
  for (const e of rest.filter((_, i) => i % 1000 === 0)) {
    const o = { gap: 1 << 20, span: 8 << 20, room: 16 << 20, floor: 0, ceil: Number.MAX_SAFE_INTEGER };
    const a = f.stretch(big, e.offset, e.offset + e.length, o);
    t.same(a, inOrder.stretch(big, e.offset, e.offset + e.length, o), `stretch from ${e.offset}`);
    if (a.to - a.from > e.length) stretched++;
  }
  t.ok(stretched > 0, 'reads were stretched over blobs to come');

  // Taking everything left leaves nothing.
  for (const p of packs) for (const e of m.live(p)) for (let k = m.packs.get(p)!.get(e.offset)!.count; k > 0; k--) f.take(p, e.offset);
  t.equal(f.size, 0, 'nothing to come once every blob was taken');
  t.notOk(f.has(big) || f.has(packs[1]!), 'no pack has blobs to come');
});

t.test('bounded: a full forecast counts a blob it holds once more, and takes no new one, however they come', async (t) => {
  const p = packRef(3);
  const f = new ReadForecast(1000);
  const offsets = shuffled(Array.from({ length: 3000 }, (_, i) => i * 100), 7);
  // The first 1000 offsets are in; 500 of them come again, after 2000 that do not fit.
  for (const o of offsets) f.add({ pack: p, offset: o, length: 50, rawLength: 50 });
  for (const o of offsets.slice(0, 500)) f.add({ pack: p, offset: o, length: 50, rawLength: 50 });
  t.equal(f.size, 1000, 'at most 1000 blobs');
  const held = f.within(p, 0, Number.MAX_SAFE_INTEGER);
  t.same(
    held.map((e) => e.offset),
    offsets.slice(0, 1000).sort((a, b) => a - b),
    'the first 1000 blobs, by offset',
  );
  t.equal(offsets.slice(0, 500).filter((o) => f.expected(p, o) === 2).length, 500, 'those that came again twice');
  t.equal(offsets.slice(500, 1000).filter((o) => f.expected(p, o) === 1).length, 500, 'the others once');
  t.equal(offsets.slice(1000).filter((o) => f.expected(p, o) !== 0).length, 0, 'none of those that did not fit');
  // Adds that repeat a blob, in a full forecast with unsorted additions of its own: counted once each.
  const g = new ReadForecast(10);
  for (const o of [50, 40, 30, 20, 10, 60, 70, 80, 90]) g.add({ pack: p, offset: o, length: 5, rawLength: 5 });
  g.add({ pack: p, offset: 30, length: 5, rawLength: 5 });
  g.add({ pack: p, offset: 40, length: 5, rawLength: 5 });
  t.equal(g.size, 9, 'repeats counted, not as new blobs, before sorting');
  g.add({ pack: p, offset: 100, length: 5, rawLength: 5 });
  g.add({ pack: p, offset: 30, length: 5, rawLength: 5 });
  g.add({ pack: p, offset: 110, length: 5, rawLength: 5 });
  t.equal(g.size, 10, 'full at 10');
  t.equal(g.expected(p, 30), 3, 'a blob held counts once more when full');
  t.equal(g.expected(p, 110), 0, 'a new blob is not taken when full');
  // A blob taken, then added again, counts again.
  g.take(p, 10);
  g.add({ pack: p, offset: 5, length: 5, rawLength: 5 });
  g.add({ pack: p, offset: 10, length: 5, rawLength: 5 });
  t.equal(g.expected(p, 10), 0, 'full again after 5: 10 not taken back');
  t.equal(g.expected(p, 5), 1, '5 in');
  t.equal(g.size, 10);
});
