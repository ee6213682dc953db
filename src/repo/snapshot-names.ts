// The names a mount gives snapshots, so that every command that takes a snapshot accepts
// them (docs/DESIGN.md, "Snapshot names"):
//
//   <time>               2026-12-03T18:10:47Z, the directory under /snapshots: UTC to the
//   <time>-2, -3, ...    second; snapshots sharing a second get -2, -3 in time order
//   snapshots/<name>     a path in a mount, with anything before it (/mnt/b/snapshots/...)
//   snapshots/latest     `latest`
//   hosts/<host>/<name>  the same snapshot, which must be of that host
//   tags/<tag>/<name>    the same snapshot, which must have that tag
//   ids/<short id>       an id prefix
//   a prefix of a time   2026-12-03, 2026-12-03T18:10: the one snapshot it covers; several
//                        are an error listing them
//
// A mount names the snapshots it loads at start in the order bySnapshotTime gives, as
// snapshotNames does; one that appears later while it runs takes the next free suffix, so a
// long-running mount can show a suffix that a fresh listing numbers differently.
import type { SnapshotInfo } from '../format/snapshot.js';
import { TsbakError } from '../errors.js';

/** A snapshot's time as a directory name: UTC to the second, e.g. 2026-11-25T16:10:01Z. */
export function timeName(time: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(time);
  if (m) return `${m[1]}Z`;
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) return 'unknown-time';
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** A host or tag as one path component: no '/', not empty, not '.' or '..'. */
export function componentName(s: string): string {
  const c = s.replace(/\//g, '_').replace(/\0/g, '');
  return c === '' || c === '.' || c === '..' ? `_${c}` : c;
}

function timeMs(time: string): number {
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? 0 : ms;
}

/** The order of snapshots in a mount: by time, then by the time's text, then by id. */
export function bySnapshotTime(a: { info: SnapshotInfo; id: string }, b: { info: SnapshotInfo; id: string }): number {
  const ta = timeMs(a.info.time);
  const tb = timeMs(b.info.time);
  if (ta !== tb) return ta - tb;
  if (a.info.time !== b.info.time) return a.info.time < b.info.time ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The name a snapshot takes when `base` is already used by k-1 others. */
export function suffixedName(base: string, k: number): string {
  return k < 2 ? base : `${base}-${k}`;
}

/** Each snapshot's name as a mount started now shows it, in the mount's order. */
export function snapshotNames<T extends { id: string; info: SnapshotInfo }>(snaps: T[]): Array<{ name: string; snap: T }> {
  const used = new Set<string>();
  const out: Array<{ name: string; snap: T }> = [];
  for (const s of [...snaps].sort(bySnapshotTime)) {
    const base = timeName(s.info.time);
    let name = base;
    for (let k = 2; used.has(name); k++) name = suffixedName(base, k);
    used.add(name);
    out.push({ name, snap: s });
  }
  return out;
}

/** A full name without its -N suffix (a prefix of a time is left as it is). */
function baseName(name: string): string {
  return name.replace(/(Z|^unknown-time)-\d+$/, '$1');
}

/** What a snapshot reference means when it is not an id prefix or `latest`. */
export type NameRef =
  | { kind: 'latest' }
  | { kind: 'id'; prefix: string }
  | { kind: 'name'; name: string; host?: string; tag?: string };

const HEX = /^[0-9a-f]+$/;
/** A time name, or a prefix of one down to the year and month. */
const TIME_LIKE = /^\d{4}-\d\d(-\d\d(T\d\d(:\d\d(:\d\d(Z(-\d+)?)?)?)?)?)?$|^unknown-time(-\d+)?$/;

/**
 * Reads `ref` as one of the mount's names or paths; null when it is none of them (an id
 * prefix, `latest`, or anything else: the caller's usual handling). A path that goes on
 * inside a snapshot is refused, naming the snapshot and the path to give instead.
 */
export function parseNameRef(ref: string): NameRef | null {
  if (TIME_LIKE.test(ref)) return { kind: 'name', name: ref };
  if (!ref.includes('/')) return null;
  const c = ref.split('/').filter((x) => x !== '' && x !== '.');
  const n = c.length;
  const last = c[n - 1] ?? '';
  if (n >= 2 && c[n - 2] === 'snapshots') return last === 'latest' ? { kind: 'latest' } : { kind: 'name', name: last };
  if (n >= 2 && c[n - 2] === 'ids' && HEX.test(last)) return { kind: 'id', prefix: last };
  if (n >= 3 && c[n - 3] === 'hosts') return { kind: 'name', name: last, host: c[n - 2] };
  if (n >= 3 && c[n - 3] === 'tags') return { kind: 'name', name: last, tag: c[n - 2] };
  const i = c.lastIndexOf('snapshots', n - 3);
  if (i >= 0 && TIME_LIKE.test(c[i + 1]!)) {
    throw new TsbakError('USAGE', `${ref} is a path inside snapshot ${c[i + 1]}: name the snapshot (${c[i + 1]}) and give /${c.slice(i + 2).join('/')} as the path in it`);
  }
  return null;
}

/** The snapshot `ref` (a NameRef of kind 'name') names among `snaps`; a clear error otherwise. */
export function resolveName<T extends { id: string; info: SnapshotInfo }>(snaps: T[], ref: Extract<NameRef, { kind: 'name' }>, shown: string, where: string): { snap: T; name: string; others: string[] } {
  const named = snapshotNames(snaps);
  const label = (x: { name: string; snap: T }) => `${x.name} (${x.snap.id.slice(0, 8)}, host ${x.snap.info.host})`;
  let hits = named.filter((x) => x.name === ref.name);
  if (!hits.length) hits = named.filter((x) => x.name.startsWith(ref.name));
  if (!hits.length) {
    const base = baseName(ref.name);
    const near = named.filter((x) => x.name === base || x.name.startsWith(`${base}-`));
    const also = near.length ? `; at that second there ${near.length === 1 ? 'is' : 'are'} ${near.map(label).join(', ')}` : '';
    throw new TsbakError('NOT_FOUND', `no snapshot named ${shown} in ${where}${also}; see 'tsbak snapshots' or the mount's snapshots/ directory`);
  }
  if (hits.length > 1) {
    const list = hits.slice(0, 10).map(label).join(', ');
    throw new TsbakError('USAGE', `snapshot name ${shown} is ambiguous: it covers ${hits.length} snapshots: ${list}${hits.length > 10 ? ', ...' : ''}; give the full name or an id`);
  }
  const hit = hits[0]!;
  if (ref.host !== undefined && componentName(hit.snap.info.host) !== ref.host) {
    throw new TsbakError('NOT_FOUND', `snapshot ${hit.name} (${hit.snap.id.slice(0, 8)}) is of host ${hit.snap.info.host}, not ${ref.host}: ${shown} is not in ${where}`);
  }
  if (ref.tag !== undefined && !hit.snap.info.tags.some((t) => componentName(t) === ref.tag)) {
    throw new TsbakError('NOT_FOUND', `snapshot ${hit.name} (${hit.snap.id.slice(0, 8)}) has no tag ${ref.tag}: ${shown} is not in ${where}`);
  }
  // A base name whose second other snapshots share: the mount's first of them, the others told.
  const base = baseName(hit.name);
  const others = hit.name === base ? named.filter((x) => x !== hit && x.name.startsWith(`${base}-`) && /^-\d+$/.test(x.name.slice(base.length))).map(label) : [];
  return { snap: hit.snap, name: hit.name, others };
}
