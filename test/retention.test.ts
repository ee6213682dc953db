// The forget policy (src/repo/retention.ts), rule by rule, with restic's semantics: buckets
// in local time (this test runs with TZ=UTC), counts per group, ties, keep-within relative
// to the group's newest snapshot, keep-tag, future-dated snapshots.
process.env.TZ = 'UTC';
import t from 'tap';
import { applyPolicy, isEmptyPolicy, isoWeek, parseDuration, parseGroupBy, subtractDuration, type RetentionPolicy, type RetentionSnapshot } from '../src/repo/retention.js';

let n = 0;
function snap(time: string, o: Partial<RetentionSnapshot> = {}): RetentionSnapshot {
  n++;
  return { id: o.id ?? n.toString(16).padStart(8, '0'), time, host: 'h', paths: ['/p'], tags: [], ...o };
}
const NOW = Date.parse('2026-12-04T12:00:00Z');
const kept = (snaps: RetentionSnapshot[], p: RetentionPolicy, opts = {}) =>
  applyPolicy(snaps, p, { now: NOW, ...opts })
    .flatMap((g) => g.decisions)
    .filter((d) => d.keep)
    .map((d) => d.snapshot.time)
    .sort();
const reasonsOf = (snaps: RetentionSnapshot[], p: RetentionPolicy) => Object.fromEntries(applyPolicy(snaps, p, { now: NOW }).flatMap((g) => g.decisions).map((d) => [d.snapshot.time, d.reasons]));

// Two snapshots a day at 01:00 and 13:00, 2026-10-01 .. 2026-12-03.
const daily: RetentionSnapshot[] = [];
for (let d = Date.parse('2026-10-01T01:00:00Z'); d < Date.parse('2026-12-04T00:00:00Z'); d += 12 * 3600_000) daily.push(snap(new Date(d).toISOString()));

t.test('empty policy and bad input', async (t) => {
  t.ok(isEmptyPolicy({}));
  t.ok(isEmptyPolicy({ last: 0 }));
  t.notOk(isEmptyPolicy({ last: 1 }));
  t.notOk(isEmptyPolicy({ within: '1d' }));
  t.notOk(isEmptyPolicy({ tags: ['a'] }));
  t.throws(() => applyPolicy(daily, { last: -2 }), /--keep-last must be a whole number/);
  t.throws(() => applyPolicy(daily, { daily: 1.5 }), /--keep-daily/);
  t.throws(() => applyPolicy(daily, { within: '30 days' }), /not a duration/);
  t.throws(() => applyPolicy(daily, { tags: [','] }), /--keep-tag needs a tag/);
  t.throws(() => parseGroupBy('host,color'), /unknown key "color"/);
  t.same(parseGroupBy(undefined), ['host', 'paths']);
  t.same(parseGroupBy(''), []);
  t.same(parseGroupBy('paths,host,paths'), ['paths', 'host']);
});

t.test('keep-last', async (t) => {
  t.same(kept(daily, { last: 3 }), ['2026-12-02T13:00:00.000Z', '2026-12-03T01:00:00.000Z', '2026-12-03T13:00:00.000Z']);
  t.equal(kept(daily, { last: -1 }).length, daily.length, '-1 keeps all');
  t.equal(kept(daily, { last: 1000 }).length, daily.length, 'more than there are keeps all');
  t.same(kept([], { last: 3 }), [], 'no snapshots: nothing');
});

t.test('keep-hourly/daily/weekly/monthly/yearly take the newest of each bucket', async (t) => {
  t.same(kept(daily, { daily: 3 }), ['2026-12-01T13:00:00.000Z', '2026-12-02T13:00:00.000Z', '2026-12-03T13:00:00.000Z']);
  t.same(kept(daily, { hourly: 3 }), ['2026-12-02T13:00:00.000Z', '2026-12-03T01:00:00.000Z', '2026-12-03T13:00:00.000Z'], 'each snapshot its own hour');
  // ISO weeks: 2026-11-30 is a Monday; Sundays 2026-11-29, 2026-11-22 end the weeks before.
  t.same(kept(daily, { weekly: 3 }), ['2026-11-22T13:00:00.000Z', '2026-11-29T13:00:00.000Z', '2026-12-03T13:00:00.000Z']);
  t.same(kept(daily, { monthly: 5 }), ['2026-10-31T13:00:00.000Z', '2026-11-30T13:00:00.000Z', '2026-12-03T13:00:00.000Z'], 'fewer months than asked: every month');
  t.same(kept(daily, { yearly: 1 }), ['2026-12-03T13:00:00.000Z']);
  t.same(kept(daily, { monthly: -1 }).length, 3, 'monthly -1: every month');
});

t.test('rules combine and each says why', async (t) => {
  const r = reasonsOf(daily, { last: 2, daily: 2, monthly: 2 });
  t.same(r['2026-12-03T13:00:00.000Z'], ['last', 'daily', 'monthly']);
  t.same(r['2026-12-03T01:00:00.000Z'], ['last']);
  t.same(r['2026-12-02T13:00:00.000Z'], ['daily']);
  t.same(r['2026-11-30T13:00:00.000Z'], ['monthly']);
  t.same(r['2026-11-30T01:00:00.000Z'], [], 'removed: no reason');
  t.equal(kept(daily, { last: 2, daily: 2, monthly: 2 }).length, 4);
});

t.test('local time decides the buckets', async (t) => {
  // 23:30 UTC and 00:30 UTC are one day in UTC-05:00 (Etc/GMT+5 is UTC-5).
  const s = [snap('2026-12-01T23:30:00Z'), snap('2026-12-02T00:30:00Z')];
  t.equal(kept(s, { daily: 5 }).length, 2, 'two UTC days');
  process.env.TZ = 'Etc/GMT+5';
  try {
    t.same(kept(s, { daily: 5 }), ['2026-12-02T00:30:00Z'], 'one local day: its newest');
  } finally {
    process.env.TZ = 'UTC';
  }
});

t.test('ties: same time, decided by id, whatever the listing order', async (t) => {
  const a = snap('2026-12-01T10:00:00Z', { id: 'aaaa' });
  const b = snap('2026-12-01T10:00:00Z', { id: 'bbbb' });
  const k1 = applyPolicy([a, b], { last: 1 }, { now: NOW }).flatMap((g) => g.decisions).filter((d) => d.keep).map((d) => d.snapshot.id);
  const k2 = applyPolicy([b, a], { last: 1 }, { now: NOW }).flatMap((g) => g.decisions).filter((d) => d.keep).map((d) => d.snapshot.id);
  t.same(k1, ['aaaa']);
  t.same(k2, ['aaaa']);
  t.same(kept([a, b], { daily: 1 }).length, 1, 'one of a day kept');
});

t.test('keep-within is relative to the newest snapshot of the group', async (t) => {
  t.same(parseDuration('1y2m3d4h'), { years: 1, months: 2, days: 3, hours: 4 });
  t.equal(subtractDuration(new Date('2026-03-31T12:00:00Z'), parseDuration('1m')).toISOString(), '2026-03-03T12:00:00.000Z', 'calendar months, as Go AddDate (Feb 31 -> Mar 3)');
  t.same(kept(daily, { within: '1d' }), ['2026-12-02T13:00:00.000Z'.replace('02T13', '03T01'), '2026-12-03T13:00:00.000Z'], 'strictly newer than newest - 1d');
  t.equal(kept(daily, { within: '2m' }).length, daily.length - 6, 'two months back from 12-03 13:00: strictly after 10-03 13:00');
  const old = [snap('2020-01-01T00:00:00Z'), snap('2020-01-05T00:00:00Z')];
  t.equal(kept(old, { within: '7d' }).length, 2, 'old group: relative to its newest, not to now');
  t.same(reasonsOf(old, { within: '7d' })['2020-01-01T00:00:00Z'], ['within 7d']);
});

t.test('keep-tag: all tags of one list, any list', async (t) => {
  const s = [snap('2026-12-01T00:00:00Z', { tags: ['a'] }), snap('2026-12-02T00:00:00Z', { tags: ['a', 'b'] }), snap('2026-12-03T00:00:00Z', { tags: ['c'] }), snap('2026-12-03T01:00:00Z')];
  t.same(kept(s, { tags: ['a,b'] }), ['2026-12-02T00:00:00Z']);
  t.same(kept(s, { tags: ['a'] }), ['2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z']);
  t.same(kept(s, { tags: ['b', 'c'] }), ['2026-12-02T00:00:00Z', '2026-12-03T00:00:00Z']);
  t.same(reasonsOf(s, { tags: ['a', 'b'] })['2026-12-02T00:00:00Z'], ['tag a', 'tag b']);
});

t.test('groups: host,paths by default; counts per group; --group-by', async (t) => {
  const s = [
    snap('2026-12-01T00:00:00Z', { host: 'x', paths: ['/a'] }),
    snap('2026-12-02T00:00:00Z', { host: 'x', paths: ['/a'] }),
    snap('2026-12-01T00:00:00Z', { host: 'y', paths: ['/a'] }),
    snap('2026-12-02T00:00:00Z', { host: 'x', paths: ['/b'] }),
    snap('2026-12-03T00:00:00Z', { host: 'x', paths: ['/b', '/a'] }),
    snap('2026-12-03T01:00:00Z', { host: 'x', paths: ['/a', '/b'] }),
  ];
  const g = applyPolicy(s, { last: 1 }, { now: NOW });
  t.equal(g.length, 4, 'x:/a, y:/a, x:/b, x:/a+/b (paths compared as a set)');
  t.same(g[0]!.key, { host: 'x', paths: ['/a', '/b'] }, 'newest group first');
  t.equal(g.flatMap((x) => x.decisions).filter((d) => d.keep).length, 4, 'one per group');
  t.equal(applyPolicy(s, { last: 1 }, { now: NOW, groupBy: ['host'] }).length, 2);
  const one = applyPolicy(s, { last: 1 }, { now: NOW, groupBy: [] });
  t.equal(one.length, 1);
  t.same(one[0]!.key, {});
  t.equal(one[0]!.decisions.filter((d) => d.keep).length, 1);
  t.same(applyPolicy([], { last: 1 }, { now: NOW }), [], 'no snapshots: no groups');
});

t.test('future-dated snapshots are kept and count for no rule', async (t) => {
  const s = [snap('2026-12-01T00:00:00Z'), snap('2026-12-02T00:00:00Z'), snap('9999-01-01T00:00:00Z'), snap('2026-12-05T11:00:00Z'), snap('not a time')];
  const r = reasonsOf(s, { last: 1, within: '1d' });
  t.same(r['9999-01-01T00:00:00Z'], ['future-dated']);
  t.same(r['not a time'], ['future-dated'], 'an undatable snapshot is never removed by a policy');
  t.same(r['2026-12-05T11:00:00Z'], ['last', 'within 1d'], 'less than a day ahead: counted like any');
  t.same(r['2026-12-02T00:00:00Z'], [], 'keep-within counts from the newest real one');
  t.same(r['2026-12-01T00:00:00Z'], []);
});

t.test('ISO weeks at year boundaries', async (t) => {
  t.same(isoWeek(new Date('2026-12-31T12:00:00Z')), { year: 2026, week: 53 });
  t.same(isoWeek(new Date('2027-01-03T12:00:00Z')), { year: 2026, week: 53 });
  t.same(isoWeek(new Date('2027-01-04T12:00:00Z')), { year: 2027, week: 1 });
  t.same(isoWeek(new Date('2024-12-30T12:00:00Z')), { year: 2025, week: 1 });
  t.same(isoWeek(new Date('2026-11-30T12:00:00Z')), { year: 2026, week: 49 });
});
