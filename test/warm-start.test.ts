// backend/warm-start.ts: reads started ahead are handed once to the first caller that
// asks for them, in the order the plan says, and errors reach only that caller.
import t from 'tap';
import { LocalBackend } from '../src/backend/local.js';
import { withWarmStart } from '../src/backend/warm-start.js';
import type { Backend, ObjectInfo, Range } from '../src/backend/backend.js';
import { backendContract } from './lib/backend-contract.js';
import { tempDir } from './lib/temp.js';

backendContract(t, async (t) => withWarmStart(new LocalBackend(tempDir(t, 'tsbak-warm-')), { gets: ['config'], lists: [[{ prefix: 'index/', fetchBytes: 1 << 20 }]] }));

/** A local backend that logs its calls and can hold a listing until released. */
class Recording implements Backend {
  readonly calls: string[] = [];
  readonly held = new Map<string, Promise<void>>();
  /** Those waiting in `seen` for a call not logged yet. */
  private waiters: Array<{ call: string; resolve: () => void }> = [];
  readConcurrency = 2;
  constructor(private readonly inner: LocalBackend) {}
  /** Logs `call` and wakes whoever waits for it. */
  private log(call: string): void {
    this.calls.push(call);
    const ready = this.waiters.filter((w) => w.call === call);
    this.waiters = this.waiters.filter((w) => w.call !== call);
    for (const w of ready) w.resolve();
  }
  /** Resolves once `call` has been logged (the prefetch runs on its own); tap's test timeout bounds the wait. */
  seen(call: string): Promise<void> {
    if (this.calls.includes(call)) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.push({ call, resolve }));
  }
  get location() {
    return this.inner.location;
  }
  put(name: string, data: Uint8Array) {
    return this.inner.put(name, data);
  }
  get(name: string, range?: Range) {
    this.log(`get ${name}`);
    return this.inner.get(name, range);
  }
  head(name: string) {
    return this.inner.head(name);
  }
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.log(`list ${prefix}`);
    await this.held.get(prefix);
    yield* this.inner.list(prefix);
    this.log(`listed ${prefix}`);
  }
  delete(name: string) {
    return this.inner.delete(name);
  }
}

async function collect(it: AsyncIterable<ObjectInfo>): Promise<string[]> {
  const out: string[] = [];
  for await (const o of it) out.push(o.name);
  return out.sort();
}

/** Waits until the backend has logged `call` (the prefetch runs on its own). */
function until(b: Recording, call: string): Promise<void> {
  return b.seen(call);
}

t.test('a planned get is made at once and served once', async (t) => {
  const rec = new Recording(new LocalBackend(tempDir(t, 'tsbak-warm-')));
  await rec.put('config', Buffer.from('cfg'));
  const b = withWarmStart(rec, { gets: ['config', 'missing'], lists: [] });
  t.same(rec.calls, ['get config', 'get missing'], 'both asked for before anyone called get');
  t.equal((await b.get('config')).toString(), 'cfg');
  t.same(rec.calls, ['get config', 'get missing'], 'served from the warm read');
  t.equal((await b.get('config')).toString(), 'cfg');
  t.same(rec.calls.filter((c) => c === 'get config').length, 2, 'a second get goes to the backend');
  await t.rejects(b.get('missing'), { code: 'NOT_FOUND' }, 'an object absent is absent for the caller too');
  t.equal(rec.calls.filter((c) => c === 'get missing').length, 2, 'a warm read that failed is made again for the caller');
  t.equal((await b.get('config', { offset: 1, length: 1 })).toString(), 'f', 'ranged gets are never served warm');
});

t.test('lists of a sequence run one after another; listed objects are fetched within the budget', async (t) => {
  const rec = new Recording(new LocalBackend(tempDir(t, 'tsbak-warm-')));
  await rec.put('snapshots/s1', Buffer.from('s'));
  for (const n of ['a', 'b', 'c']) await rec.put(`index/${n}`, Buffer.alloc(100, n));
  let release!: () => void;
  rec.held.set('snapshots/', new Promise<void>((r) => (release = r)));
  const b = withWarmStart(rec, { gets: [], lists: [[{ prefix: 'snapshots/' }, { prefix: 'index/', fetchBytes: 250 }]] });
  await until(rec, 'list snapshots/');
  for (let i = 0; i < 100; i++) await new Promise((r) => setImmediate(r));
  t.notOk(rec.calls.includes('list index/'), 'the index is not listed while the snapshot list is unfinished');
  release();
  await until(rec, 'listed index/');
  await until(rec, 'get index/b');
  t.ok(rec.calls.indexOf('list index/') > rec.calls.indexOf('listed snapshots/'), 'the index was listed only after the snapshot list ended');
  t.same(await collect(b.list('snapshots/')), ['snapshots/s1']);
  t.same(await collect(b.list('index/')), ['index/a', 'index/b', 'index/c']);
  const before = rec.calls.length;
  t.equal((await b.get('index/a')).toString(), 'a'.repeat(100));
  t.equal((await b.get('index/b')).toString(), 'b'.repeat(100));
  t.equal(rec.calls.length, before, 'the first two index files came from the warm reads');
  t.equal((await b.get('index/c')).toString(), 'c'.repeat(100));
  t.equal(rec.calls.at(-1), 'get index/c', 'the third was over the budget: read when asked');
  t.same(await collect(b.list('index/')), ['index/a', 'index/b', 'index/c']);
  t.equal(rec.calls.filter((c) => c === 'list index/').length, 2, 'a second list goes to the backend');
});

t.test("the caller's own writes make warm results stale", async (t) => {
  const rec = new Recording(new LocalBackend(tempDir(t, 'tsbak-warm-')));
  const b = withWarmStart(rec, { gets: ['config'], lists: [[{ prefix: 'locks/' }]] });
  await until(rec, 'listed locks/');
  await b.put('config', Buffer.from('new'));
  await b.put('locks/mine', Buffer.from('{}'));
  t.equal((await b.get('config')).toString(), 'new');
  t.same(await collect(b.list('locks/')), ['locks/mine'], 'listed again after a put under the prefix');
});

t.test('a listing begun before a write of the caller (its lock) is not served; one begun after it ends is', async (t) => {
  const rec = new Recording(new LocalBackend(tempDir(t, 'tsbak-warm-')));
  await rec.put('index/old', Buffer.from('o'));
  await rec.put('snapshots/s1', Buffer.from('s'));
  let releaseSnapshots!: () => void;
  rec.held.set('snapshots/', new Promise<void>((r) => (releaseSnapshots = r)));
  // index/ is listed at once; snapshots/ waits, and a second index/ listing after it.
  const b = withWarmStart(rec, { gets: [], lists: [[{ prefix: 'index/' }], [{ prefix: 'snapshots/' }, { prefix: 'data/' }]] });
  await until(rec, 'listed index/');
  await until(rec, 'list snapshots/');
  // Another process changes the repository, then this one writes its lock.
  await rec.delete('index/old');
  await rec.put('index/new', Buffer.from('n'));
  await b.put('locks/mine', Buffer.from('{}'));
  await rec.put('data/d', Buffer.from('d'));
  releaseSnapshots();
  await until(rec, 'listed data/');
  const lists = () => rec.calls.filter((c) => c.startsWith('list ')).length;
  const before = lists();
  t.same(await collect(b.list('index/')), ['index/new'], 'the listing from before the lock is made again');
  t.same(await collect(b.list('snapshots/')), ['snapshots/s1'], 'one begun before the lock and finished after it too');
  t.equal(lists(), before + 2, 'both went to the backend');
  t.same(await collect(b.list('data/')), ['data/d'], 'one begun after the lock is served');
  t.equal(lists(), before + 2, 'from the warm listing');
});

t.test('a streamed commit is a write too', async (t) => {
  const rec = new LocalBackend(tempDir(t, 'tsbak-warm-'));
  const b = withWarmStart(rec, { gets: [], lists: [[{ prefix: 'index/' }]] });
  const f = b.createObjectFile!();
  await f.write(Buffer.from('x'));
  await f.commit('packs/data/00/00');
  await rec.put('index/late', Buffer.from('l'));
  t.same(await collect(b.list('index/')), ['index/late'], 'listed again after the commit');
});

t.test("a local backend's own methods stay: streamed object files", async (t) => {
  const b = withWarmStart(new LocalBackend(tempDir(t, 'tsbak-warm-')), { gets: [], lists: [] });
  t.type(b.createObjectFile, 'function');
  t.type(b.readInto, 'function');
  const f = b.createObjectFile!();
  await f.write(Buffer.from('x'));
  await f.commit('packs/data/00/00');
  t.equal((await b.get('packs/data/00/00')).toString(), 'x');
  // Methods the wrapper does not know are the backend's own, called on it.
  const inner = new LocalBackend(tempDir(t, 'tsbak-warm-'));
  const withExtra = Object.assign(inner, { now: async () => new Date(0), marker: 42 });
  const w = withWarmStart(withExtra, { gets: [], lists: [] }) as typeof withExtra;
  t.same(await w.now(), new Date(0));
  t.equal(w.marker, 42);
  t.ok('now' in w);
});
