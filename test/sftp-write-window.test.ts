// The SFTP backend's per-connection write window (src/backend/sftp-write-window.ts).
import t from 'tap';
import { WriteWindow } from '../src/backend/sftp-write-window.js';

t.test('requests of a size: the window in bytes becomes slots, at least one', async (t) => {
  t.equal(WriteWindow.forRequests(1024 * 1024, 255 * 1024).slots, 4);
  t.equal(WriteWindow.forRequests(1024 * 1024, 32 * 1024).slots, 32);
  t.equal(WriteWindow.forRequests(1, 255 * 1024).slots, 1);
});

t.test('never more than `slots` at once; waiters go in the order they came; a failure frees its slot', async (t) => {
  const w = new WriteWindow(3);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const gates: Array<() => void> = [];
  const jobs = Array.from({ length: 10 }, (_, i) =>
    w.run(async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
      if (i === 4) throw new Error('write 4 failed');
      return i;
    }),
  );
  const settled = Promise.allSettled(jobs);
  // Let each started job finish, one at a time, until all ten have run.
  while (started.length < 10 || gates.length) {
    await new Promise((r) => setImmediate(r));
    gates.shift()?.();
  }
  const results = await settled;
  t.equal(most, 3, 'three in flight at most');
  t.same(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'in order');
  t.same(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
  // All slots are free again: three more start at once.
  let now = 0;
  const more = Array.from({ length: 3 }, () => w.run(async () => void now++));
  await Promise.all(more);
  t.equal(now, 3);
});
