// The forget policy: which snapshots to keep, and by which rule, restic's semantics.
// Pure: snapshots in, decisions out; `tsbak forget` and `tsbak cost --keep-*` use it.
//
// Snapshots are grouped (by default by host and paths), each group sorted newest first.
// Walking a group newest first, a snapshot is kept by:
//   last N      the N newest;
//   hourly..yearly N   the newest snapshot of each of the N newest hours (days, ISO weeks,
//               months, years) that have one, in the local time zone (TZ), as restic;
//   within D    every snapshot dated less than D (1y2m3d4h) before the group's newest;
//   tag T       every snapshot carrying all of T's comma-separated tags (the option
//               repeats: any of them).
// N = -1 means no limit. Snapshots of one time sort by id, so the result never depends on
// listing order. A snapshot dated more than a day after `now` is always kept and counts
// for no rule: a writer key that dates snapshots in the future must not push the real ones
// out of keep-last, nor make keep-within relative to the year 9999.
import { FUTURE_MS } from './snapshot-select.js';
import { TsbakError } from '../errors.js';

export type CountRule = 'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
export const COUNT_RULES: readonly CountRule[] = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'];

export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** A duration like "30d" or "1y2m3d4h" (see parseDuration). */
  within?: string;
  /** Each a comma-separated tag list; a snapshot with all tags of one list is kept. */
  tags?: string[];
}

export type GroupKey = 'host' | 'paths' | 'tags';

export interface RetentionSnapshot {
  id: string;
  time: string;
  host: string;
  paths: string[];
  tags: string[];
}

export interface Decision<T extends RetentionSnapshot> {
  snapshot: T;
  keep: boolean;
  /** Why it is kept ("last", "daily", "within 30d", "tag a,b", "future-dated"); empty when removed. */
  reasons: string[];
}

export interface GroupResult<T extends RetentionSnapshot> {
  /** What the group shares: the values of the group-by keys. */
  key: { host?: string; paths?: string[]; tags?: string[] };
  /** Newest first. */
  decisions: Array<Decision<T>>;
}

/** Whether the policy keeps anything at all: forget refuses to run without one. */
export function isEmptyPolicy(p: RetentionPolicy): boolean {
  return COUNT_RULES.every((r) => p[r] === undefined || p[r] === 0) && !p.within && !p.tags?.length;
}

/** Checks counts: whole numbers >= -1 (-1 is no limit). */
export function checkPolicy(p: RetentionPolicy): void {
  for (const r of COUNT_RULES) {
    const v = p[r];
    if (v !== undefined && (!Number.isInteger(v) || v < -1)) throw new TsbakError('USAGE', `--keep-${r} must be a whole number (or -1 for all), got ${v}`);
  }
  if (p.within !== undefined) parseDuration(p.within, '--keep-within');
  for (const t of p.tags ?? []) if (!t.split(',').some((x) => x !== '')) throw new TsbakError('USAGE', `--keep-tag needs a tag (or a comma-separated list), got ${JSON.stringify(t)}`);
}

export interface Duration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/** restic's durations: numbers each followed by y, m, d or h, e.g. "1y2m3d4h", "30d". */
export function parseDuration(s: string, what = 'duration'): Duration {
  const d: Duration = { years: 0, months: 0, days: 0, hours: 0 };
  if (!/^(\d+[ymdh])+$/.test(s)) throw new TsbakError('USAGE', `${what}: ${JSON.stringify(s)} is not a duration like 30d or 1y2m3d4h (y years, m months, d days, h hours)`);
  for (const m of s.matchAll(/(\d+)([ymdh])/g)) {
    const n = Number(m[1]);
    if (m[2] === 'y') d.years += n;
    else if (m[2] === 'm') d.months += n;
    else if (m[2] === 'd') d.days += n;
    else d.hours += n;
  }
  return d;
}

/** `t` minus a duration, calendar-wise in local time (restic: AddDate(-y, -m, -d).Add(-h)). */
export function subtractDuration(t: Date, d: Duration): Date {
  const r = new Date(t.getTime());
  r.setFullYear(r.getFullYear() - d.years, r.getMonth() - d.months, r.getDate() - d.days);
  return new Date(r.getTime() - d.hours * 3600_000);
}

/** ISO 8601 week-numbering year and week of a local date (as Go's Time.ISOWeek). */
export function isoWeek(t: Date): { year: number; week: number } {
  // The Thursday of t's week decides the year.
  const d = new Date(t.getFullYear(), t.getMonth(), t.getDate());
  const dow = (d.getDay() + 6) % 7; // Monday 0
  d.setDate(d.getDate() - dow + 3);
  const year = d.getFullYear();
  const jan4 = new Date(year, 0, 4);
  const jan4dow = (jan4.getDay() + 6) % 7;
  const week1Thursday = new Date(year, 0, 4 - jan4dow + 3);
  const week = 1 + Math.round((d.getTime() - week1Thursday.getTime()) / (7 * 86400_000));
  return { year, week };
}

function bucket(rule: CountRule, t: Date, nr: number): number {
  switch (rule) {
    case 'last':
      return nr;
    case 'hourly':
      return ((t.getFullYear() * 100 + t.getMonth()) * 100 + t.getDate()) * 100 + t.getHours();
    case 'daily':
      return (t.getFullYear() * 100 + t.getMonth()) * 100 + t.getDate();
    case 'weekly': {
      const w = isoWeek(t);
      return w.year * 100 + w.week;
    }
    case 'monthly':
      return t.getFullYear() * 100 + t.getMonth();
    case 'yearly':
      return t.getFullYear();
  }
}

function groupKey(s: RetentionSnapshot, by: readonly GroupKey[]): { key: GroupResult<RetentionSnapshot>['key']; text: string } {
  const key: GroupResult<RetentionSnapshot>['key'] = {};
  if (by.includes('host')) key.host = s.host;
  if (by.includes('paths')) key.paths = [...s.paths].sort();
  if (by.includes('tags')) key.tags = [...s.tags].sort();
  return { key, text: JSON.stringify(key) };
}

const newestFirst = (a: RetentionSnapshot, b: RetentionSnapshot): number => {
  const ta = Date.parse(a.time);
  const tb = Date.parse(b.time);
  if (ta !== tb) return tb - ta;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
};

/** Parses --group-by: "host,paths" (default), "host", "paths", "tags", combinations, or "" (one group). */
export function parseGroupBy(s: string | undefined): GroupKey[] {
  if (s === undefined) return ['host', 'paths'];
  const out: GroupKey[] = [];
  for (const p of s.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (p !== 'host' && p !== 'paths' && p !== 'tags') throw new TsbakError('USAGE', `--group-by: unknown key ${JSON.stringify(p)}; use host, paths and/or tags, comma-separated (or '' for one group)`);
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/**
 * Applies the policy to every group of `snaps` (already filtered by host/path/tag). Groups
 * come in the order of their newest snapshot, newest first.
 */
export function applyPolicy<T extends RetentionSnapshot>(snaps: readonly T[], policy: RetentionPolicy, opts: { groupBy?: readonly GroupKey[]; now?: number } = {}): Array<GroupResult<T>> {
  checkPolicy(policy);
  const by = opts.groupBy ?? ['host', 'paths'];
  const now = opts.now ?? Date.now();
  const groups = new Map<string, { key: GroupResult<T>['key']; snaps: T[] }>();
  for (const s of snaps) {
    const { key, text } = groupKey(s, by);
    let g = groups.get(text);
    if (!g) groups.set(text, (g = { key, snaps: [] }));
    g.snaps.push(s);
  }
  const within = policy.within !== undefined ? parseDuration(policy.within) : null;
  const tagLists = (policy.tags ?? []).map((t) => t.split(',').filter(Boolean));
  const out: Array<GroupResult<T>> = [];
  for (const g of groups.values()) {
    const sorted = [...g.snaps].sort(newestFirst);
    const future = (s: T) => {
      const t = Date.parse(s.time);
      return !Number.isFinite(t) || t > now + FUTURE_MS;
    };
    const counted = sorted.filter((s) => !future(s));
    const left = new Map<CountRule, number>(COUNT_RULES.map((r) => [r, policy[r] ?? 0]));
    const last = new Map<CountRule, number | null>(COUNT_RULES.map((r) => [r, null]));
    const limit = within && counted.length ? subtractDuration(new Date(Date.parse(counted[0]!.time)), within).getTime() : null;
    const decisions = new Map<T, Decision<T>>();
    counted.forEach((s, nr) => {
      const t = new Date(Date.parse(s.time));
      const reasons: string[] = [];
      for (const r of COUNT_RULES) {
        const n = left.get(r)!;
        if (n === 0) continue;
        const b = bucket(r, t, nr);
        if (b === last.get(r)) continue;
        last.set(r, b);
        if (n > 0) left.set(r, n - 1);
        reasons.push(r);
      }
      if (limit !== null && t.getTime() > limit) reasons.push(`within ${policy.within}`);
      for (const l of tagLists) if (l.every((x) => s.tags.includes(x))) reasons.push(`tag ${l.join(',')}`);
      decisions.set(s, { snapshot: s, keep: reasons.length > 0, reasons });
    });
    for (const s of sorted) if (future(s)) decisions.set(s, { snapshot: s, keep: true, reasons: ['future-dated'] });
    out.push({ key: g.key, decisions: sorted.map((s) => decisions.get(s)!) });
  }
  return out.sort((a, b) => newestFirst(a.decisions[0]!.snapshot, b.decisions[0]!.snapshot));
}
