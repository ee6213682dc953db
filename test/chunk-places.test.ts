// ChunkPlaces (src/restore/chunk-places.ts): which places a later chunk finds, and when a
// file's descriptor is closed: never while a copy reads it, always in the end.
import t from 'tap';
import { ChunkPlaces } from '../src/restore/chunk-places.js';

t.test('places are found across files; descriptors close once nothing reads them', async (t) => {
  const closed: number[] = [];
  const places = new ChunkPlaces(2, 100, (fd) => closed.push(fd));
  const a = places.open(10);
  places.add('x', a, 0, Promise.resolve());
  places.add('x', a, 4096, Promise.resolve());
  t.equal(places.get('x')?.pos, 0, 'the first place of a chunk is kept');
  places.done(a, true);
  t.same(closed, [], 'a whole file with places stays open');

  const b = places.open(11);
  const held = places.hold(places.get('x')!);
  t.equal(held.fd, 10, 'a later file copies from the earlier one');
  places.done(b, true);
  t.same(closed, [11], 'a file without places is closed at once');

  const c = places.open(12);
  places.add('y', c, 0, Promise.resolve());
  places.done(c, true);
  const d = places.open(13);
  places.add('z', d, 0, Promise.resolve());
  places.done(d, true);
  t.equal(places.get('x'), undefined, 'beyond maxFiles the oldest file is let go');
  t.same(closed, [11], '...but not closed while a copy holds it');
  places.release(held);
  t.same(closed, [11, 10], 'closed when the copy is over');

  const e = places.open(14);
  places.add('w', e, 0, Promise.reject(new Error('write failed')));
  places.done(e, false);
  t.equal(places.get('w'), undefined, 'a failed file leaves no places');
  t.same(closed, [11, 10, 14], 'and is closed');

  places.closeAll();
  t.same(closed.sort(), [10, 11, 12, 13, 14], 'closeAll closes every kept file');
});

t.test('no more places than maxPlaces', async (t) => {
  const places = new ChunkPlaces(4, 2, () => {});
  const a = places.open(3);
  for (const k of ['p', 'q', 'r']) places.add(k, a, 0, Promise.resolve());
  t.ok(places.get('p') && places.get('q'), 'the first two are kept');
  t.equal(places.get('r'), undefined, 'the third is not');
  places.done(a, true);
  places.closeAll();
});
