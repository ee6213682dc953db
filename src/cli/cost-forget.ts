// `tsbak cost --keep-...`: what a forget policy would save. The policy is applied as
// `tsbak forget --dry-run` would (cli/forget.ts), then prune's dry run counts only the
// snapshots it keeps (cli/prune.ts): the same savings, one-time costs and break-even.
import { isEmptyPolicy } from '../repo/retention.js';
import type { Repository } from '../repo/repository.js';
import { pruneUsage } from '../repo/prune.js';
import { holdLocked, lockedSnapshots } from '../repo/object-lock.js';
import { decide, policyOf, type KeepArgs } from './forget.js';
import { moneyLines, planFor, planJson } from './prune.js';
import { fmtBytes } from './output.js';
import { TsbakError } from '../errors.js';

export interface ForgetWhatIf {
  lines: string[];
  json: Record<string, unknown>;
}

/** null when no --keep-* option was given. */
export async function forgetWhatIf(repo: Repository, a: KeepArgs & { host?: string; path?: string[] }): Promise<ForgetWhatIf | null> {
  if (isEmptyPolicy(policyOf(a))) return null;
  if (!repo.canRead) throw new TsbakError('WRITE_ONLY_KEY', 'cost --keep-* needs the full key (the repository passphrase) to read the snapshots, not a write-only key');
  const snaps = await repo.listSnapshots((id, e) => process.stderr.write(`tsbak: warning: snapshot ${id.slice(0, 8)} is kept in the what-if: it cannot be read (${(e as Error).message})\n`));
  const groups = decide(snaps, a);
  const removed = new Set(groups.flatMap((g) => g.decisions.filter((d) => !d.keep).map((d) => d.snapshot.id)));
  // What S3 Object Lock holds stays, as forget and prune would leave it; its savings come after its date.
  const lockedSnaps = await lockedSnapshots(repo, [...removed], repo.backend.now ? await repo.backend.now() : new Date());
  for (const id of lockedSnaps.keys()) removed.delete(id);
  const keep = new Set((await repo.listSnapshotIds()).filter((id) => !removed.has(id)));
  const usage = await pruneUsage(repo, { keep });
  await holdLocked(repo, usage);
  const plan = planFor(repo, usage, { maxUnused: 0.05, repackCold: false });
  const t = plan.totals;
  const lockedPacks = usage.packs.filter((p) => p.lockedUntil).length;
  return {
    lines: [
      `with this forget policy: ${removed.size} of ${snaps.length} snapshots removed, then prune would delete ${t.deletePacks} packs (${fmtBytes(t.deleteBytes)}) and repack ${t.repackPacks} (${fmtBytes(t.repackBytes)})`,
      ...(lockedSnaps.size || lockedPacks ? [`kept by S3 Object Lock until their dates: ${lockedSnaps.size} snapshots, ${lockedPacks} packs (locked packs cannot be deleted or repacked, cold or not: their savings come after the date)`] : []),
      ...moneyLines(plan),
    ],
    json: { removed_snapshots: [...removed], locked_snapshots: lockedSnaps.size, locked_packs: lockedPacks, kept_snapshots: keep.size, ...planJson(usage, plan) },
  };
}
