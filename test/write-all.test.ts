// writeAllAtSync (src/platform/write-all.ts): a write that takes nothing and reports no
// error must fail, not spin: the loop's exit is tested with a writeSync that returns 0.
import t from 'tap';

// Resolved from the compiled test, not the source its source map names.
const MODULE = new URL('../src/platform/write-all.js', import.meta.url).href;

t.test('a write that takes nothing fails with ENOSPC instead of looping forever', async (t) => {
  let calls = 0;
  const sizes = [3, 0];
  const { writeAllAtSync } = await t.mockImport<typeof import('../src/platform/write-all.js')>(MODULE, {
    'node:fs': { writeSync: () => sizes[Math.min(calls++, sizes.length - 1)] },
  });
  t.throws(() => writeAllAtSync(7, Buffer.from('hello'), 0), { code: 'ENOSPC', message: /0 of 2 bytes taken/ });
  t.equal(calls, 2, 'one short write, then the one that took nothing');
});

t.test('short writes go on where the last one stopped', async (t) => {
  const seen: Array<[number, number, number]> = [];
  const { writeAllAtSync } = await t.mockImport<typeof import('../src/platform/write-all.js')>(MODULE, {
    'node:fs': {
      writeSync: (_fd: number, _b: Uint8Array, off: number, len: number, pos: number) => {
        seen.push([off, len, pos]);
        return Math.min(len, 2);
      },
    },
  });
  t.equal(writeAllAtSync(7, Buffer.from('hello'), 100), 5);
  t.same(seen, [[0, 5, 100], [2, 3, 102], [4, 1, 104]]);
});
