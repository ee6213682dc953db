// The contract every Backend must pass. Each backend's test file calls this with a factory
// that returns a fresh, empty backend (given the test case, to tie what it makes to it).
import type { Test } from 'tap';
import type { Backend } from '../../src/backend/backend.js';
import { randomBytes } from 'node:crypto';

export function backendContract(t: Test, make: (t: Test) => Promise<Backend>): void {
  t.test('put then get returns the same bytes, whole and by range', async (t) => {
    const b = await make(t);
    const data = randomBytes(300_000);
    await b.put('packs/data/ab/abcdef', data);
    t.same(await b.get('packs/data/ab/abcdef'), data);
    t.same(await b.get('packs/data/ab/abcdef', { offset: 1000, length: 5000 }), data.subarray(1000, 6000));
    t.same(await b.get('packs/data/ab/abcdef', { offset: 299_990, length: 10 }), data.subarray(299_990));
  });
  t.test('readInto, where a backend has it: a range into the caller\'s buffer', async (t) => {
    const b = await make(t);
    if (!b.readInto) return t.pass('this backend has no readInto (callers use get)');
    const data = randomBytes(3 << 20);
    await b.put('packs/data/cd/cdef', data);
    for (const [offset, length] of [[0, 10], [1000, 200_000], [5, 3 << 19], [(3 << 20) - 7, 7]] as const) {
      const into = Buffer.alloc(length + 4, 0xee);
      await b.readInto('packs/data/cd/cdef', { offset, length }, into.subarray(2, 2 + length));
      t.same(into.subarray(2, 2 + length), data.subarray(offset, offset + length), `${length} bytes at ${offset}`);
      t.ok(into[0] === 0xee && into[1] === 0xee && into[length + 2] === 0xee && into[length + 3] === 0xee, 'nothing written around it');
    }
    await t.rejects(b.readInto('packs/data/cd/nope', { offset: 0, length: 4 }, Buffer.alloc(4)), { code: 'NOT_FOUND' });
    await t.rejects(b.readInto('packs/data/cd/cdef', { offset: (3 << 20) - 2, length: 4 }, Buffer.alloc(4)), 'a range past the end');
    await t.rejects(b.readInto('packs/data/cd/cdef', { offset: 0, length: 4 }, Buffer.alloc(5)), RangeError, 'a buffer of another length');
  });
  t.test('empty objects', async (t) => {
    const b = await make(t);
    await b.put('locks/empty', Buffer.alloc(0));
    t.equal((await b.get('locks/empty')).length, 0);
    t.equal((await b.head('locks/empty'))?.size, 0);
  });
  t.test('put never overwrites', async (t) => {
    const b = await make(t);
    await b.put('config', Buffer.from('one'));
    await t.rejects(b.put('config', Buffer.from('two')), { code: 'BACKEND' });
    t.equal((await b.get('config')).toString(), 'one');
  });
  t.test('missing objects: get throws NOT_FOUND, head returns null, delete is quiet', async (t) => {
    const b = await make(t);
    await t.rejects(b.get('snapshots/nope'), { code: 'NOT_FOUND' });
    t.equal(await b.head('snapshots/nope'), null);
    await b.delete('snapshots/nope');
  });
  t.test('head gives the size', async (t) => {
    const b = await make(t);
    await b.put('index/x1', Buffer.alloc(1234, 7));
    t.equal((await b.head('index/x1'))?.size, 1234);
  });
  t.test('list by prefix, nested names, sizes', async (t) => {
    const b = await make(t);
    await b.put('snapshots/a1', Buffer.from('1'));
    await b.put('snapshots/b2', Buffer.from('22'));
    await b.put('packs/data/00/0011', Buffer.from('333'));
    await b.put('packs/data/ff/ff22', Buffer.from('4444'));
    await b.put('packs/tree/00/0033', Buffer.from('55555'));
    const names = async (p: string) => {
      const out: string[] = [];
      for await (const o of b.list(p)) out.push(`${o.name}:${o.size}`);
      return out.sort();
    };
    t.same(await names('snapshots/'), ['snapshots/a1:1', 'snapshots/b2:2']);
    t.same(await names('packs/data/'), ['packs/data/00/0011:3', 'packs/data/ff/ff22:4']);
    t.same(await names('packs/'), ['packs/data/00/0011:3', 'packs/data/ff/ff22:4', 'packs/tree/00/0033:5']);
    t.same(await names('nothing/'), []);
  });
  t.test('list and head give when an object was stored (lastModified: lock ages)', async (t) => {
    const b = await make(t);
    await b.put('locks/0123', Buffer.from('{}'));
    const listed: Array<Date | undefined> = [];
    for await (const o of b.list('locks/')) listed.push(o.lastModified);
    const head = (await b.head('locks/0123'))?.lastModified;
    for (const d of [listed[0], head]) {
      t.ok(d instanceof Date, 'a Date');
      // The backend's clock, not ours: near, within a generous bound.
      t.ok(Math.abs(d!.getTime() - Date.now()) < 3600_000, `near now (${d?.toISOString()})`);
    }
  });
  t.test('abandon, where a backend has it: later puts are refused, reads and deletes work', async (t) => {
    const b = await make(t);
    if (!b.abandon) return t.pass('no abandon');
    await b.put('locks/l2', Buffer.from('x'));
    await b.abandon();
    await t.rejects(b.put('locks/l3', Buffer.from('y')), /writing was stopped/);
    t.same(await b.get('locks/l2'), Buffer.from('x'));
    await b.delete('locks/l2');
    t.equal(await b.head('locks/l2'), null);
  });
  t.test('delete removes', async (t) => {
    const b = await make(t);
    await b.put('locks/l1', Buffer.from('x'));
    await b.delete('locks/l1');
    t.equal(await b.head('locks/l1'), null);
  });
  t.test('concurrent puts of different names', async (t) => {
    const b = await make(t);
    const items = Array.from({ length: 20 }, (_, i) => [`index/i${i}`, randomBytes(1000 + i)] as const);
    await Promise.all(items.map(([n, d]) => b.put(n, d)));
    for (const [n, d] of items) t.same(await b.get(n), d);
  });
}
