// Issue 4, the pieces of the mount that need no FUSE: chunk maps with holes, reads at any
// offset (in memory and while chunks are still arriving), names, device numbers.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { buildChunkMap } from '../src/fuse/chunk-map.js';
import { ChunkSource, OpenFile } from '../src/fuse/reader.js';
import { Chunk, ChunkCache, PlainPool } from '../src/fuse/plain-chunks.js';
import type { Repository } from '../src/repo/repository.js';
import { byteName, componentName, textOfPath, timeName } from '../src/fuse/names.js';
import { allocatedBlocks, encodeDev } from '../src/fuse/stat.js';
import { parseMountinfo } from '../src/fuse/mountinfo.js';
import type { TreeNode } from '../src/format/tree.js';

/** A sparse file: data extents cut into chunks of the given sizes, and its full contents. */
function sparseFile(size: number, extents: Array<[number, number, number[]]>) {
  const whole = Buffer.alloc(size);
  const chunks = new Map<string, Buffer>();
  const content: Buffer[] = [];
  for (const [off, , sizes] of extents) {
    let pos = off;
    for (const n of sizes) {
      const data = randomBytes(n);
      data.copy(whole, pos);
      const id = randomBytes(32);
      chunks.set(id.toString('hex'), data);
      content.push(id);
      pos += n;
    }
  }
  const node = { type: 'file', size, content, extents: extents.map(([o, l]) => [o, l]) } as unknown as TreeNode;
  return { node, whole, chunks };
}

/** Chunks that load in the same turn ('now') or on the next turn of the event loop ('turn'): no timer to race. */
function fakeSource(chunks: Map<string, Buffer>, when: 'now' | 'turn') {
  let loads = 0;
  const source = {
    take(id: Buffer): Promise<Chunk> {
      loads++;
      const b = chunks.get(id.toString('hex'));
      if (!b) return Promise.reject(new Error('missing chunk'));
      if (when === 'now') return Promise.resolve(new Chunk(b).hold());
      return new Promise((r) => setImmediate(() => r(new Chunk(b).hold())));
    },
  } as unknown as ChunkSource;
  return { source, loads: () => loads };
}

t.test('chunk map and reads of a sparse file', async (t) => {
  const f = sparseFile(10_000, [
    [1000, 3000, [1000, 1500, 500]],
    [6000, 2000, [2000]],
  ]);
  const map = buildChunkMap(f.node, (id) => f.chunks.get(id.toString('hex'))?.length);
  t.same([...map.offsets], [1000, 2000, 3500, 6000]);
  t.equal(map.find(0), -1, 'before the first chunk: a hole');
  t.equal(map.find(1999), 0);
  t.equal(map.find(2000), 1);
  t.equal(map.find(9999), 3);
  t.equal(allocatedBlocks(f.node), 8 + 8, 'st_blocks: each extent rounded up to 4 KiB');

  for (const delay of ['now', 'turn'] as const) {
    const { source } = fakeSource(f.chunks, delay);
    const file = new OpenFile(map, source, 2);
    file.start();
    // Every offset class: holes, inside chunks, across chunk and extent edges, past the end.
    for (const [pos, len] of [[0, 10_000], [0, 500], [900, 200], [1999, 2], [3400, 3000], [4000, 2000], [5999, 3], [7999, 5000], [9999, 1], [10_000, 10], [12_000, 1]]) {
      const buf = Buffer.alloc(len, 0xee);
      const n = await file.read(buf, len, pos);
      const want = f.whole.subarray(pos, Math.min(pos + len, 10_000));
      t.equal(n, want.length, `length at ${pos}+${len}`);
      t.ok(buf.subarray(0, n).equals(want), `bytes at ${pos}+${len} (delay ${delay})`);
    }
  }
});

t.test('sequential reads fetch ahead and complete from memory', async (t) => {
  const sizes = Array.from({ length: 12 }, () => 64 << 10);
  const f = sparseFile(12 * (64 << 10), [[0, 12 * (64 << 10), sizes]]);
  const map = buildChunkMap(f.node, (id) => f.chunks.get(id.toString('hex'))?.length);
  const { source, loads } = fakeSource(f.chunks, 'turn');
  const file = new OpenFile(map, source, 3);
  file.start();
  let sync = 0;
  const out = Buffer.alloc(f.whole.length);
  for (let pos = 0; pos < out.length; pos += 16 << 10) {
    const r = file.read(out.subarray(pos), 16 << 10, pos);
    if (typeof r === 'number') sync++;
    else await r;
    // A reader that comes back a few turns later: the loads started ahead have come in.
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }
  t.ok(out.equals(f.whole), 'same bytes');
  t.equal(loads(), 12, 'each chunk fetched once');
  t.ok(sync >= 40, `most reads answered without waiting (${sync} of 48)`);
});

t.test('a missing chunk fails the read, not the process', async (t) => {
  const f = sparseFile(3000, [[0, 3000, [1000, 1000, 1000]]]);
  const map = buildChunkMap(f.node, (id) => f.chunks.get(id.toString('hex'))?.length);
  f.chunks.delete(f.node.content![1]!.toString('hex'));
  const { source } = fakeSource(f.chunks, 'now');
  const file = new OpenFile(map, source, 4);
  file.start();
  await t.rejects(Promise.resolve(file.read(Buffer.alloc(3000), 3000, 0)), /missing chunk/);
  t.equal(await file.read(Buffer.alloc(10), 10, 2500), 10, 'other chunks still read');
  t.throws(() => buildChunkMap(f.node, () => undefined), { code: 'NOT_FOUND' });
});

const nextTurn = () => new Promise((r) => setImmediate(r));

t.test('a pooled chunk\'s buffer is reused only a turn after its last hold is dropped', async (t) => {
  const pool = new PlainPool(8 << 20);
  const cache = new ChunkCache(400 << 10);
  const block = pool.take(300 << 10);
  const c = new Chunk(block.subarray(0, 300 << 10), pool, block);
  cache.set('a', c);
  c.hold(); // a reader
  cache.set('b', new Chunk(Buffer.alloc(300 << 10))); // pushes 'a' out of the cache
  t.notOk(cache.has('a'));
  await nextTurn();
  const other = pool.take(300 << 10);
  t.not(other.byteOffset === block.byteOffset && other.buffer === block.buffer, true, 'not reused while a reader holds it');
  c.drop();
  c.hold(); // held again in the same turn: still not free
  c.drop();
  await nextTurn();
  const again = pool.take(300 << 10);
  t.ok(again.buffer === block.buffer && again.byteOffset === block.byteOffset, 'reused once nothing holds it');
  t.throws(() => c.hold(), /held after its buffer was reused/);
  t.throws(() => new Chunk(Buffer.alloc(1)).drop(), /dropped more often than held/);
});

t.test('readers of several files read the right bytes while chunk buffers are reused', async (t) => {
  // Chunks above POOLED_MIN, a cache of a few of them: buffers go round many times.
  const files = Array.from({ length: 6 }, () => sparseFile(8 * (300 << 10), [[0, 8 * (300 << 10), Array(8).fill(300 << 10)]]));
  const all = new Map<string, Buffer>();
  for (const f of files) for (const [k, v] of f.chunks) all.set(k, v);
  let loads = 0;
  const repo = {
    hasCachedBlob: () => false,
    loadBlobInto(id: Buffer, plainInto: (n: number) => Buffer): Promise<Buffer> {
      loads++;
      const data = all.get(id.toString('hex'))!;
      // Answered on a later turn, so that the six readers' loads interleave.
      return new Promise((r) => setImmediate(() => {
        const b = plainInto(data.length);
        data.copy(b);
        r(b.subarray(0, data.length));
      }));
    },
  } as unknown as Repository;
  const source = new ChunkSource(repo, 1 << 20);
  await Promise.all(files.map(async (f) => {
    const map = buildChunkMap(f.node, (id) => all.get(id.toString('hex'))?.length);
    const file = new OpenFile(map, source, 2);
    file.start();
    const out = Buffer.alloc(f.whole.length);
    for (let pos = 0; pos < out.length; pos += 64 << 10) {
      // Views are copied in the turn they are made, as the FUSE reply does.
      const v = await file.views(64 << 10, pos);
      let at = pos;
      for (const b of v) at += b.copy(out, at);
      await nextTurn();
    }
    file.close();
    t.ok(out.equals(f.whole), 'same bytes');
  }));
  t.ok(source.poolStats.plain.reused > 0, `buffers reused (${JSON.stringify(source.poolStats)}, ${loads} loads)`);
});

t.test('names', async (t) => {
  t.equal(byteName('plain.txt'), 'plain.txt');
  t.same(Buffer.from(byteName('é – 日本 🎉'), 'latin1'), Buffer.from('é – 日本 🎉'), 'a made-up name: its UTF-8 bytes, one char each');
  t.equal(textOfPath(byteName('/hosts/é')), '/hosts/é', 'and back to text for log lines');
  t.equal(textOfPath(Buffer.from([0x2f, 0x61, 0xff]).toString('latin1')), '/a\ufffd', 'bytes that are not UTF-8 show as U+FFFD in logs');
  t.equal(timeName('2026-11-25T16:10:01.123456789Z'), '2026-11-25T16:10:01Z');
  t.equal(timeName('2026-11-25T17:10:01+01:00'), '2026-11-25T16:10:01Z');
  t.equal(componentName('a/b'), 'a_b');
  t.equal(componentName('..'), '_..');
  t.equal(componentName(''), '_');
});

t.test('device numbers and mountinfo', async (t) => {
  t.equal(encodeDev(1, 3), 0x103);
  t.equal(encodeDev(259, 70000), ((70000 & 0xff) | (259 << 8) | ((70000 & ~0xff) << 12)) >>> 0);
  const m = parseMountinfo('36 25 0:32 / /mnt/with\\040space rw,nosuid shared:1 - fuse.tsbak /srv/repo ro,user_id=0\n');
  t.same(m, [{ id: 36, dev: '0:32', mountpoint: '/mnt/with space', fstype: 'fuse.tsbak', source: '/srv/repo' }]);
});
