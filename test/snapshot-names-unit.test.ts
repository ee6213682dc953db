// The mount's snapshot names as a pure function, and how a reference is read (repo/snapshot-names.ts).
import t from 'tap';
import { parseNameRef, resolveName, snapshotNames } from '../src/repo/snapshot-names.js';
import { TsbakError } from '../src/errors.js';
import type { SnapshotInfo } from '../src/format/snapshot.js';

const snap = (id: string, time: string, host = 'h', tags: string[] = []) => ({ id, info: { time, host, tags, paths: ['/'], tree: '00', user: 'u' } as unknown as SnapshotInfo });

t.test('names: UTC seconds, -2 -3 in time order then by id, unknown-time', async (t) => {
  const s = [snap('bb', '2026-12-03T18:10:47.5Z'), snap('aa', '2026-12-03T18:10:47.5Z'), snap('cc', '2026-12-03T19:10:47.1+01:00'), snap('dd', 'garbage'), snap('ee', '2026-12-03T18:10:47.9Z')];
  t.same(snapshotNames(s).map((x) => [x.name, x.snap.id]), [
    ['unknown-time', 'dd'],
    ['2026-12-03T18:10:47Z', 'cc'],
    ['2026-12-03T18:10:47Z-2', 'aa'],
    ['2026-12-03T18:10:47Z-3', 'bb'],
    ['2026-12-03T18:10:47Z-4', 'ee'],
  ]);
});

t.test('references', async (t) => {
  t.same(parseNameRef('2026-12-03T18:10:47Z-2'), { kind: 'name', name: '2026-12-03T18:10:47Z-2' });
  t.same(parseNameRef('2026-12'), { kind: 'name', name: '2026-12' });
  t.same(parseNameRef('/mnt/b/snapshots/2026-12-03T18:10:47Z/'), { kind: 'name', name: '2026-12-03T18:10:47Z' });
  t.same(parseNameRef('/mnt/b/snapshots/latest'), { kind: 'latest' });
  t.same(parseNameRef('/mnt/b/ids/abcd1234'), { kind: 'id', prefix: 'abcd1234' });
  t.same(parseNameRef('hosts/web 1/2026-12-03T18:10:47Z'), { kind: 'name', name: '2026-12-03T18:10:47Z', host: 'web 1' });
  t.same(parseNameRef('tags/daily/2026-12-03T18:10:47Z'), { kind: 'name', name: '2026-12-03T18:10:47Z', tag: 'daily' });
  t.equal(parseNameRef('abcd1234'), null, 'an id prefix');
  t.equal(parseNameRef('latest'), null);
  t.equal(parseNameRef('nosuch'), null);
  t.throws(() => parseNameRef('/mnt/snapshots/2026-12-03T18:10:47Z/home/me'), /is a path inside snapshot 2026-12-03T18:10:47Z: .* give \/home\/me/);
});

t.test('resolving: exact before prefix, ambiguity listed, host and tag checked', async (t) => {
  const s = [snap('aa11', '2026-12-03T18:10:47Z', 'web/1', ['daily']), snap('bb22', '2026-12-03T18:10:47Z'), snap('cc33', '2026-12-04T08:00:00Z')];
  const r = (ref: string) => resolveName(s, parseNameRef(ref) as any, ref, 'repo');
  t.equal(r('2026-12-03T18:10:47Z').snap.id, 'aa11');
  t.same(r('2026-12-03T18:10:47Z').others, ['2026-12-03T18:10:47Z-2 (bb22, host h)']);
  t.equal(r('2026-12-03T18:10:47Z-2').snap.id, 'bb22');
  t.equal(r('2026-12-04').snap.id, 'cc33');
  t.equal(r('hosts/web_1/2026-12-03T18:10:47Z').snap.id, 'aa11', 'the host as the mount shows it');
  t.equal(r('tags/daily/2026-12-03T18:10:47Z').snap.id, 'aa11');
  const err = (ref: string) => {
    try {
      r(ref);
    } catch (e) {
      return e as TsbakError;
    }
    throw new Error(`${ref} resolved`);
  };
  t.equal(err('2026-12-03').code, 'USAGE');
  t.match(err('2026-12-03').message, 'it covers 2 snapshots: 2026-12-03T18:10:47Z (aa11, host web/1), 2026-12-03T18:10:47Z-2 (bb22, host h)');
  t.equal(err('2026-12-03T18:10:47Z-3').code, 'NOT_FOUND');
  t.equal(err('tags/daily/2026-12-03T18:10:47Z-2').code, 'NOT_FOUND');
  t.equal(err('hosts/h/2026-12-03T18:10:47Z').code, 'NOT_FOUND');
});
