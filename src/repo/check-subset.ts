// check --read-data-subset (restic's forms): which packs to read. A group n/t is fixed by
// the pack ids, so t runs with n = 1..t read every pack once; a percentage or a size is a
// random choice, so that repeated runs cover the repository over time.

export type DataSubset = { group: number; of: number } | { percent: number } | { bytes: number };

/** The subset as the user wrote it: "1/5", "10%", "2 GiB". */
export function describeSubset(s: DataSubset): string {
  if ('group' in s) return `${s.group}/${s.of}`;
  if ('percent' in s) return `${s.percent}%`;
  return `${s.bytes} bytes`;
}

/**
 * The packs to read among `packs` (name ending in the 64-hex id, and size). A group takes
 * the packs whose id's first 4 bytes, modulo t, are n - 1; a percentage that share of the
 * packs (at least one), at random; a size packs at random until their sizes reach it.
 */
export function selectPacks<P extends { name: string; size: number }>(packs: P[], subset: DataSubset, random: () => number = Math.random): P[] {
  if ('group' in subset) return packs.filter((p) => parseInt(p.name.slice(-64, -56), 16) % subset.of === subset.group - 1);
  const shuffled = [...packs];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  if ('percent' in subset) return shuffled.slice(0, packs.length ? Math.max(1, Math.round((packs.length * subset.percent) / 100)) : 0);
  const out: P[] = [];
  let total = 0;
  for (const p of shuffled) {
    if (total >= subset.bytes) break;
    out.push(p);
    total += p.size;
  }
  return out;
}
