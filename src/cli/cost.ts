// `tsbak cost <repo> [snapshot]`: what the repository costs per month on S3, by storage
// class (archive overheads included); bytes and monthly cost added by each snapshot; and
// the cost and time of restoring one snapshot (default: the latest) with each tier.
// Prices: src/glacier/cost.ts (AWS us-east-1 list prices; estimates, not a bill).
import type { RestoreTier, StorageClass } from '../backend/backend.js';
import { estimateRestoreCost, fmtUsd, monthlyStorageUsd, type RestoreCost } from '../glacier/cost.js';
import { isColdClass, tiersFor } from '../glacier/policy.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { count, fmtBytes, fmtTime, table } from './output.js';
import { collectContent } from './warm.js';
import { findSnapshot, latestOf, type SelectArgs } from './select.js';

const out = (s: string) => process.stdout.write(s + '\n');

const KIND_NAMES: Record<string, string> = { data: 'data packs', tree: 'tree packs', index: 'index', snapshot: 'snapshots', key: 'keys', config: 'config', other: 'other' };

export async function cmdCost(a: RepoArgs & SelectArgs & { snapshot?: string; days?: number; json?: boolean }): Promise<number> {
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

  if (a.json) {
    const tierJson = (t: RestoreCost) => ({
      storage_class: t.storageClass,
      tier: t.tier,
      objects: t.objects,
      bytes: t.bytes,
      requests_usd: t.requestsUsd,
      retrieval_usd: t.retrievalUsd,
      copy_usd: t.copyUsd,
      get_usd: t.getUsd,
      transfer_usd: t.transferUsd,
      total_usd: t.totalUsd,
      hours_low: t.hoursLow,
      hours_high: t.hoursHigh,
    });
    out(
      JSON.stringify({
        monthly_usd: monthlyUsd,
        by_class: Object.fromEntries([...byClass].map(([sc, c]) => [sc, { objects: c.objects, bytes: c.bytes, monthly_usd: c.monthlyUsd }])),
        objects: rows.map((r) => ({ kind: r.kind, storage_class: r.storageClass, objects: r.objects, bytes: r.bytes, monthly_usd: r.monthlyUsd })),
        snapshots: snapshots.map((s) => ({ id: s.id, time: s.time, bytes_added: s.bytesAdded, monthly_usd: s.monthlyUsd, recorded: s.recorded })),
        restore: restore && { snapshot: restore.snapshot, files: restore.files, bytes: restore.bytes, packs: restore.packs, pack_bytes: restore.packBytes, storage_class: restore.storageClass, days, tiers: restore.tiers.map(tierJson) },
      }),
    );
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
    out(table([['ID', 'Time', 'Added', 'Per month'], ...snapshots.map((s) => [s.id.slice(0, 8), fmtTime(s.time), fmtBytes(s.bytesAdded), fmtUsd(s.monthlyUsd) + (s.recorded ? '' : ' (est.)')])]));
  }
  if (restore) {
    out('');
    out(`restoring snapshot ${restore.snapshot.slice(0, 8)} (${count(restore.files, 'file')}, ${fmtBytes(restore.bytes)}): ${count(restore.packs, 'pack')}, ${fmtBytes(restore.packBytes)} in ${restore.storageClass}, restored copies kept ${count(days, 'day')}`);
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
  return EXIT.OK;
}

function fmtH(h: number): string {
  return h < 1 ? `${Math.round(h * 60)}min` : `${Math.round(h)}h`;
}
