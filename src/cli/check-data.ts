// What `check --read-data` and `check --read-data-subset` read, decided before reading:
// the packs chosen (repo/check-subset.ts), and for packs in Glacier/Deep Archive their
// restore, priced and requested in one batch first (warm.ts), then waited for, or with
// --no-wait left to a later run (exit 15, as restore does).
import { packName } from '../repo/layout.js';
import { checkSubset, selectSubset, type DataSubset, type SubsetPack } from '../repo/check-subset.js';
import type { Repository } from '../repo/repository.js';
import { TsbakError } from '../errors.js';
import { fmtBytes } from './output.js';
import { parseSize } from './size.js';
import { prepareColdBlobs, type ColdArgs, type ColdOutcome } from './warm.js';

/** `1/5`, `10%`, `2G` (restic's forms). */
export function parseDataSubset(s: string): DataSubset {
  const t = s.trim();
  let m = /^(\d+)\/(\d+)$/.exec(t);
  if (m) return checkSubset({ kind: 'group', n: Number(m[1]), m: Number(m[2]) });
  m = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (m) return checkSubset({ kind: 'percent', percent: Number(m[1]) });
  if (/^\s*(\d+(?:\.\d+)?|\.\d+)\s*[kmgt]?i?b?\s*$/i.test(t)) return checkSubset({ kind: 'bytes', bytes: parseSize(t, '--read-data-subset') });
  throw new TsbakError('USAGE', `--read-data-subset: "${s}" is not n/m (e.g. 1/5), a percentage (10%) or a size (2G)`);
}

export interface DataReadPlan {
  /** Names of the packs to read; undefined: every pack. */
  readPacks?: Set<string>;
  chosen: number;
  total: number;
  bytes: number;
  /** null: nothing to restore was looked at. */
  cold: Omit<ColdOutcome, 'plan'> & { plan: ColdOutcome['plan'] | null };
}

/** Chooses the packs and makes their cold ones readable (or requests them). Needs the full key. */
export async function planDataRead(repo: Repository, a: ColdArgs & { readDataSubset?: string; noWait?: boolean }, say: (s: string) => void): Promise<DataReadPlan> {
  const subset = a.readDataSubset !== undefined ? parseDataSubset(a.readDataSubset) : null;
  // Damage met here is check's to report (as errors), not the readers' to warn about; an
  // index that cannot be loaded at all leaves nothing to choose from, and check says why.
  const warn = repo.onWarning;
  repo.onWarning = null;
  try {
    await repo.loadIndex();
  } catch {
    return { readPacks: subset ? new Set() : undefined, chosen: 0, total: 0, bytes: 0, cold: { ready: true, requested: 0, plan: null, expectedBy: null } };
  } finally {
    repo.onWarning = warn;
  }
  // Every indexed pack: its size as the index knows it, and one of its blobs (warm.ts finds packs by blob).
  const packs = new Map<string, SubsetPack & { blob: Buffer }>();
  for (const e of repo.index.entries()) {
    const name = packName(e.pack.kind, e.pack.id.toString('hex'));
    const p = packs.get(name);
    if (!p) packs.set(name, { name, bytes: e.offset + e.length, blob: e.id });
    else p.bytes = Math.max(p.bytes, e.offset + e.length);
  }
  const all = [...packs.values()].sort((x, y) => (x.name < y.name ? -1 : 1));
  const chosen = subset ? (selectSubset(all, subset) as Array<SubsetPack & { blob: Buffer }>) : all;
  const bytes = chosen.reduce((n, p) => n + p.bytes, 0);
  if (subset) say(`reading ${chosen.length} of ${all.length} packs (${fmtBytes(bytes)}), subset ${a.readDataSubset}`);
  const cold = await prepareColdBlobs(
    repo,
    chosen.map((p) => p.blob),
    a,
    { wait: !a.noWait, defaultTier: 'Bulk' },
  );
  return { readPacks: subset ? new Set(chosen.map((p) => p.name)) : undefined, chosen: chosen.length, total: all.length, bytes, cold };
}
