// Issue 24: the lock protocol (src/repo/locks.ts, FORMAT.md "Locks"), on a real local
// backend, with a controllable clock and process table.
import t from 'tap';
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../src/backend/local.js';
import { TsbakError } from '../src/errors.js';
import { LockManager, type LockClock } from '../src/repo/locks.js';
import { tempDir } from './lib/temp.js';

const MIN = 60_000;

function setup(t: { teardown(fn: () => unknown): void }, clock: Partial<LockClock> = {}) {
  const dir = tempDir(t);
  const backend = new LocalBackend(dir);
  const c: LockClock = { now: () => Date.now(), alive: () => true, host: () => 'here', ...clock };
  return { dir, backend, locks: (over: Partial<LockClock> = {}) => new LockManager(backend, { ...c, ...over }), lockFiles: () => readdirSync(path.join(dir, 'locks')).filter((n) => !n.startsWith('.')) };
}

/** A lock object as another process (or a hostile writer) left it. */
function plant(dir: string, body: unknown, name = 'ab'.repeat(16), mtimeMs?: number): string {
  mkdirSync(path.join(dir, 'locks'), { recursive: true });
  const f = path.join(dir, 'locks', name);
  writeFileSync(f, typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  if (mtimeMs !== undefined) utimesSync(f, mtimeMs / 1000, mtimeMs / 1000);
  return `locks/${name}`;
}

async function locked(t: any, p: Promise<unknown>, ...parts: RegExp[]): Promise<void> {
  try {
    await p;
    t.fail('expected LOCKED');
  } catch (e) {
    t.ok(e instanceof TsbakError && e.code === 'LOCKED', `LOCKED: ${(e as Error).message}`);
    for (const re of parts) t.match((e as Error).message, re);
  }
}

t.test('shared locks coexist; exclusive conflicts both ways and takes its own lock back', async (t) => {
  const { dir, locks, lockFiles } = setup(t);
  const other = { host: 'elsewhere', pid: 777, time: new Date().toISOString(), exclusive: false, operation: 'backup' };
  plant(dir, other);
  const mine = await locks().lock({ exclusive: false });
  t.equal(lockFiles().length, 2, 'two shared locks');
  await mine.release();
  t.equal(lockFiles().length, 1);
  await locked(t, locks().lock({ exclusive: true, operation: 'prune' }), /shared lock locks\/a/, /host elsewhere pid 777/, /\d+ s old/, /tsbak unlock/);
  t.same(lockFiles(), ['ab'.repeat(16)], 'the refused lock was deleted');

  const { dir: d2, locks: l2, lockFiles: f2 } = setup(t);
  plant(d2, { ...other, exclusive: true, operation: 'prune' });
  await locked(t, l2().lock({ exclusive: false }), /exclusive lock .* of prune on host elsewhere pid 777/);
  await locked(t, l2().lock({ exclusive: true }), /exclusive/);
  t.equal(f2().length, 1);
});

t.test('two racing lockers: at least one sees the other', async (t) => {
  const { locks, lockFiles } = setup(t);
  // Both write before either lists: the two refuse, or one wins; never both hold.
  for (let round = 0; round < 10; round++) {
    const r = await Promise.allSettled([locks({ host: () => 'a' }).lock({ exclusive: true }), locks({ host: () => 'b' }).lock({ exclusive: false })]);
    const held = r.filter((x) => x.status === 'fulfilled');
    t.ok(held.length <= 1, `round ${round}: ${held.length} held`);
    for (const x of r) if (x.status === 'rejected') t.equal((x.reason as TsbakError).code, 'LOCKED');
    for (const x of held) await (x as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
    t.same(lockFiles(), []);
  }
});

t.test('stale locks: a dead process of this host, or older than 30 minutes by time or by the object date', async (t) => {
  const { dir, locks } = setup(t);
  const now = Date.now();
  plant(dir, { host: 'here', pid: 99999, time: new Date(now).toISOString(), exclusive: true }, '01'.repeat(16));
  plant(dir, { host: 'far', pid: 5, time: new Date(now - 31 * MIN).toISOString(), exclusive: true }, '02'.repeat(16));
  plant(dir, { host: 'far', pid: 6, time: new Date(now).toISOString(), exclusive: true }, '03'.repeat(16), now - 40 * MIN);
  const m = locks({ alive: (pid) => pid !== 99999 });
  const list = await m.listLocks();
  t.match(list.find((l) => l.pid === 99999)!.stale, /pid 99999 on this host\) is gone/);
  t.match(list.find((l) => l.pid === 5)!.stale, /not refreshed for 31 min/);
  t.match(list.find((l) => l.pid === 6)!.stale, /not refreshed for 40 min/);
  const h = await m.lock({ exclusive: true });
  await h.release();
  // A live lock of this host is held.
  const m2 = locks({ alive: () => true });
  await locked(t, m2.lock({ exclusive: true }), /host here pid 99999/);
  // unlock: the stale ones by default, every one with --remove-all.
  plant(dir, { host: 'far', pid: 8, time: new Date(now).toISOString(), exclusive: false }, '04'.repeat(16));
  const r = await m.removeLocks({ all: false });
  t.same(r.removed.map((l) => l.pid).sort(), [5, 6, 99999]);
  t.same(r.kept.map((l) => l.pid), [8]);
  const all = await m.removeLocks({ all: true });
  t.same(all.removed.map((l) => l.pid), [8]);
  t.same(await m.listLocks(), []);
});

t.test('hostile lock objects count as held exclusive locks until their object is 30 minutes old', async (t) => {
  const { dir, locks } = setup(t);
  const now = Date.now();
  const cases: Array<[string, string | Buffer | object]> = [
    ['not JSON', '{"host":'],
    ['not a JSON object', '[1,2]'],
    ['bad pid', { host: 'x', pid: -1, time: new Date(now).toISOString(), exclusive: false }],
    ['bad host', { host: 'a\nb', pid: 1, time: new Date(now).toISOString(), exclusive: false }],
    ['bad exclusive', { host: 'x', pid: 1, time: new Date(now).toISOString(), exclusive: 'no' }],
    ['bad time', { host: 'x', pid: 1, time: 'yesterday', exclusive: false }],
    ['in the future', { host: 'x', pid: 1, time: new Date(now + 600 * MIN).toISOString(), exclusive: false }],
    ['more than a lock', Buffer.alloc(1 << 20, 0x20)],
  ];
  for (const [why, body] of cases) {
    const name = plant(dir, body, 'cd'.repeat(16));
    await locked(t, locks().lock({ exclusive: false }), new RegExp(`unreadable lock ${name} \\(.*${why.split(' ')[0]}`), /tsbak unlock --remove-all/);
    // The same object, 31 minutes old by the backend's date: stale.
    utimesSync(path.join(dir, name), (now - 31 * MIN) / 1000, (now - 31 * MIN) / 1000);
    const h = await locks().lock({ exclusive: true });
    await h.release();
    t.match((await locks().listLocks())[0]!.stale, /unreadable and not refreshed/, why);
    await locks().removeLocks({ all: true });
  }
  // A name that is not a lock's.
  plant(dir, '{}', 'junk');
  await locked(t, locks().lock({ exclusive: false }), /unreadable lock locks\/junk \(its name/);
});

t.test('a held lock is refreshed (new object, old one deleted); a late refresh or a removed object loses it', async (t) => {
  let now = Date.now();
  const { locks, lockFiles } = setup(t, { now: () => now });
  const h = (await locks().lock({ exclusive: false, operation: 'backup' })) as any;
  const first = lockFiles();
  now += 5 * MIN;
  await h.refresh();
  const second = lockFiles();
  t.equal(second.length, 1);
  t.not(second[0], first[0], 'a new object replaced the old one');
  h.assertHeld();
  // 31 minutes without a refresh: others may have taken it for stale.
  now += 31 * MIN;
  await h.refresh();
  t.throws(() => h.assertHeld(), /lock .* was lost: it was not refreshed for 31 min/);
  await h.release();
  t.same(lockFiles(), []);

  const h2 = (await locks().lock({ exclusive: false })) as any;
  await locks().removeLocks({ all: true });
  await h2.refresh();
  t.throws(() => h2.assertHeld(), /was removed \(tsbak unlock --remove-all\?\)/);
  await h2.release();
  t.same(lockFiles(), []);
});

t.test('a process never conflicts with its own locks', async (t) => {
  const { locks, lockFiles } = setup(t, { host: () => 'same' });
  const a = await locks().lock({ exclusive: true });
  const b = await locks().lock({ exclusive: true });
  t.equal(lockFiles().length, 2, 'two exclusive locks of one process');
  await a.release();
  await b.release();
  await b.release();
  t.same(lockFiles(), []);
});
