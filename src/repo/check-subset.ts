// Which packs `check --read-data-subset` reads (restic's forms):
//   n/m   the n-th of m groups, by pack id (the id's first 4 bytes as a number, mod m): the m
//         runs 1/m .. m/m read every pack exactly once, and a pack stays in its group as the
//         repository grows, so a run a day with n = day mod m covers everything in m days;
//   x%    x percent of the packs (at least one), chosen at random;
//   size  random packs, as many as fit in that many bytes.
import { TsbakError } from '../errors.js';

export type DataSubset = { kind: 'group'; n: number; m: number } | { kind: 'percent'; percent: number } | { kind: 'bytes'; bytes: number };

/** A pack as the selection sees it: its name (packs/<kind>/<2 hex>/<64 hex>) and size. */
export interface SubsetPack {
  name: string;
  bytes: number;
}

/** The group (0 .. m-1) of a pack, from the first 4 bytes of its id. */
export function packGroup(name: string, m: number): number {
  const id = name.slice(-64);
  return parseInt(id.slice(0, 8), 16) % m;
}

/** The packs of `packs` that `subset` chooses (in the order given). `random` is for tests. */
export function selectSubset(packs: SubsetPack[], subset: DataSubset, random: () => number = Math.random): SubsetPack[] {
  if (subset.kind === 'group') return packs.filter((p) => packGroup(p.name, subset.m) === subset.n - 1);
  const shuffled = [...packs];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  let chosen: SubsetPack[];
  if (subset.kind === 'percent') {
    chosen = shuffled.slice(0, packs.length ? Math.max(1, Math.round((packs.length * subset.percent) / 100)) : 0);
  } else {
    chosen = [];
    let total = 0;
    for (const p of shuffled) {
      if (total + p.bytes > subset.bytes) continue;
      chosen.push(p);
      total += p.bytes;
    }
  }
  const keep = new Set(chosen.map((p) => p.name));
  return packs.filter((p) => keep.has(p.name));
}

/** Checks the values of a subset (from the command line); throws USAGE naming the option. */
export function checkSubset(s: DataSubset): DataSubset {
  const bad = (why: string) => new TsbakError('USAGE', `--read-data-subset: ${why}`);
  if (s.kind === 'group') {
    if (!Number.isInteger(s.m) || s.m < 1 || s.m > 1 << 20) throw bad(`${s.m} groups: use 1 to ${1 << 20}`);
    if (!Number.isInteger(s.n) || s.n < 1 || s.n > s.m) throw bad(`group ${s.n} of ${s.m}: n must be from 1 to ${s.m}`);
  } else if (s.kind === 'percent') {
    if (!(s.percent > 0 && s.percent <= 100)) throw bad(`${s.percent}% is not more than 0 and at most 100`);
  } else if (!(s.bytes > 0)) throw bad('a size must be more than 0');
  return s;
}
