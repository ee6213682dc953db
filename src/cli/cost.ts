// `tsbak cost <repo> [snapshot]`: what the repository costs per month on S3, by storage
// class (archive overheads included); bytes and monthly cost added by each snapshot; and
// the cost and time of restoring one snapshot (default: the latest) with each tier.
// Prices: src/glacier/cost.ts (AWS us-east-1 list prices; estimates, not a bill).
import type { RestoreTier, StorageClass } from '../backend/backend.js';
import { estimateRestoreCost, fmtUsd, monthlyStorageUsd, type RestoreCost } from '../glacier/cost.js';
import { isColdClass, tiersFor } from '../glacier/policy.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { fmtBytes, table } from './output.js';
import { collectContent } from './warm.js';
import { findSnapshot, latestOf, type SelectArgs } from './select.js';
import { forgetWhatIf, type ForgetWhatIf } from './cost-forget.js';
import type { KeepArgs } from './forget.js';

const out = (s: string) => process.stdout.write(s + '\n');

const KIND_NAMES: Record<string, string> = { data: 'data packs', tree: 'tree packs', index: 'index', snapshot: 'snapshots', key: 'keys', config: 'config', other: 'other' };

export async function cmdCost(a: RepoArgs & SelectArgs & KeepArgs & { snapshot?: string; days?: number; json?: boolean }): Promise<number> {
  const repo = await openRepo(a);
  const days = a.days ?? 7;
  const usage = await repo.storageUsage();
  const rows = usage
    .map((u) => ({ ...u, monthlyUsd: monthlyStorageUsd(u.storageClass, u.bytes, u.objects) }))
    .sort((x, y) => y.bytes - x.bytes);
  const byClass = new Map<StorageClass, { objects: number; bytes: number; monthlyUsd: number }>();
  for (const r of rows) {
    const c = byClass.get(r.storageClass) ?? { objects: 0, bytes: 0, monthlyUsd: 0 };
    c.objects += r.objects;
    c.bytes += r.bytes;
    c.monthlyUsd += r.monthlyUsd;
    byClass.set(r.storageClass, c);
  }
  const monthlyUsd = rows.reduce((s, r) => s + r.monthlyUsd, 0);

  // Snapshots and the restore estimate need the full key.
  let snapshots: Array<{ id: string; time: string; bytesAdded: number; monthlyUsd: number; recorded: boolean }> = [];
  let restore: { snapshot: string; files: number; bytes: number; packs: number; packBytes: number; storageClass: StorageClass; tiers: RestoreCost[] } | null = null;
  if (repo.canRead) {
    const snaps = await repo.listSnapshots((id, e) => process.stderr.write(`tsbak: warning: snapshot ${id.slice(0, 8)} is not counted: ${(e as Error).message}\n`));
    const dataClass = repo.config.storageClass.data;
    const packSize = repo.config.packSize.data;
    snapshots = snaps.map((s) => {
      const b = s.info.stats.bytesAdded;
      const recorded = typeof s.info.costUsd === 'number';
      return { id: s.id, time: s.info.time, bytesAdded: b, monthlyUsd: recorded ? s.info.costUsd! : monthlyStorageUsd(dataClass, b, Math.ceil(b / packSize)), recorded };
    });
    const target = a.snapshot ? await findSnapshot(repo, a.snapshot, a) : latestOf(snaps, a);
    if (target) {
      await repo.loadIndex();
      const { ids, files, bytes } = await collectContent(repo, target);
      const packs = repo.packsOf(ids);
      const packBytes = packs.reduce((s, p) => s + p.bytes, 0);
      // Priced at the data class (packs of one repository share it).
      const sc = packs.find((p) => isColdClass(p.storageClass))?.storageClass ?? dataClass;
      const tiers: RestoreTier[] = isColdClass(sc) ? tiersFor(sc) : ['Standard'];
      restore = { snapshot: target.id, files, bytes, packs: packs.length, packBytes, storageClass: sc, tiers: tiers.map((t) => estimateRestoreCost(sc, t, packs.length, packBytes, days)) };
    }
  }

  // What a forget policy (--keep-*) would save: see cost-forget.ts.
  const whatIf: ForgetWhatIf | null = await forgetWhatIf(repo, a);

  if (a.json) {
    out(JSON.stringify({ monthlyUsd, byClass: Object.fromEntries(byClass), objects: rows, snapshots, restore, ...(whatIf ? { forget_policy: whatIf.json } : {}) }));
    return EXIT.OK;
  }
  out(`storage of ${repo.backend.location} (AWS us-east-1 list prices, archive overheads included):`);
  out(
    table([
      ['What', 'Class', 'Objects', 'Size', 'Per month'],
      ...rows.map((r) => [KIND_NAMES[r.kind] ?? r.kind, r.storageClass, String(r.objects), fmtBytes(r.bytes), fmtUsd(r.monthlyUsd)]),
      ...(byClass.size > 1 ? [...byClass].map(([sc, c]) => ['all', sc, String(c.objects), fmtBytes(c.bytes), fmtUsd(c.monthlyUsd)]) : []),
    ]),
  );
  out(`total: ${fmtUsd(monthlyUsd)} per month, ${fmtUsd(monthlyUsd * 12)} per year`);
  if (snapshots.length) {
    out('');
    out('added by each snapshot:');
    out(table([['ID', 'Time', 'Added', 'Per month'], ...snapshots.map((s) => [s.id.slice(0, 8), s.time.replace('T', ' ').slice(0, 19), fmtBytes(s.bytesAdded), fmtUsd(s.monthlyUsd) + (s.recorded ? '' : ' (est.)')])]));
  }
  if (restore) {
    out('');
    out(`restoring snapshot ${restore.snapshot.slice(0, 8)} (${restore.files} files, ${fmtBytes(restore.bytes)}): ${restore.packs} packs, ${fmtBytes(restore.packBytes)} in ${restore.storageClass}, restored copies kept ${days} days`);
    out(
      table([
        ['Tier', 'Time', 'Requests', 'Retrieval', 'Copies', 'Download', 'Total'],
        ...restore.tiers.map((t) => [
          isColdClass(restore!.storageClass) ? t.tier : '-',
          isColdClass(restore!.storageClass) ? `${fmtH(t.hoursLow)}-${fmtH(t.hoursHigh)}` : 'now',
          fmtUsd(t.requestsUsd),
          fmtUsd(t.retrievalUsd),
          fmtUsd(t.copyUsd),
          fmtUsd(t.transferUsd + t.getUsd),
          fmtUsd(t.totalUsd),
        ]),
      ]),
    );
  }
  if (whatIf) {
    out('');
    for (const l of whatIf.lines) out(l);
  }
  return EXIT.OK;
}

function fmtH(h: number): string {
  return h < 1 ? `${Math.round(h * 60)}min` : `${Math.round(h)}h`;
}
