// `tsbak cost <repo> [snapshot]`: what the repository costs per month on S3, by storage
// class (archive overheads included); bytes and monthly cost added by each snapshot; and
// the cost and time of restoring one snapshot (default: the latest) with each tier.
// Prices: src/glacier/prices.ts, per region (estimates, not a bill). A local repository's
// storage is the user's disk: its numbers are a what-if, labeled so.
import type { RestoreTier, StorageClass } from '../backend/backend.js';
import { estimateRestoreCost, fmtUsd, MIN_OBJECT_BYTES, monthlyUsdOf, type RestoreCost } from '../glacier/cost.js';
import { PRICE_TABLE } from '../glacier/prices.js';
import { packPrefix } from '../repo/layout.js';
import { costByHost, listRepository, priceRegion, whatIfClasses, type HostCost, type WhatIf } from './cost-breakdown.js';
import { isColdClass, tiersFor } from '../glacier/policy.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { count, fmtBytes, fmtTime, table } from './output.js';
import { collectContent } from './warm.js';
import { findSnapshot, latestOf, type SelectArgs } from './select.js';
import { forgetWhatIf, type ForgetWhatIf } from './cost-forget.js';
import type { KeepArgs } from './forget.js';

const out = (s: string) => process.stdout.write(s + '\n');

const KIND_NAMES: Record<string, string> = { data: 'data packs', tree: 'tree packs', parity: 'parity', index: 'index', snapshot: 'snapshots', key: 'keys', config: 'config', other: 'other' };

export async function cmdCost(a: RepoArgs & SelectArgs & KeepArgs & { snapshot?: string; days?: number; json?: boolean; region?: string }): Promise<number> {
  const repo = await openRepo(a);
  const days = a.days ?? 7;
  const pr = priceRegion(repo, a);
  const region = pr.region;
  if (pr.warning) process.stderr.write(`tsbak: warning: ${pr.warning}\n`);
  const listing = await listRepository(repo);
  const rows = usageRows(listing, region).sort((x, y) => y.bytes - x.bytes);
  const byClass = new Map<StorageClass, { objects: number; bytes: number; monthlyUsd: number }>();
  for (const r of rows) {
    const c = byClass.get(r.storageClass) ?? { objects: 0, bytes: 0, monthlyUsd: 0 };
    c.objects += r.objects;
    c.bytes += r.bytes;
    c.monthlyUsd += r.monthlyUsd;
    byClass.set(r.storageClass, c);
  }
  const monthlyUsd = rows.reduce((s, r) => s + r.monthlyUsd, 0);
  const parity = paritySummary(rows, repo.parity);

  // Snapshots and the restore estimate need the full key.
  let snapshots: Array<{ id: string; time: string; bytesAdded: number; monthlyUsd: number; recorded: boolean }> = [];
  let byHost: HostCost[] = [];
  let restore: { snapshot: string; files: number; bytes: number; packs: number; packBytes: number; storageClass: StorageClass; days: number; tiers: RestoreCost[] } | null = null;
  if (repo.canRead) {
    const snaps = await repo.listSnapshots((id, e) => process.stderr.write(`tsbak: warning: snapshot ${id.slice(0, 8)} is not counted: ${(e as Error).message}\n`));
    const dataClass = repo.config.storageClass.data;
    const packSize = repo.config.packSize.data;
    snapshots = snaps.map((s) => {
      const b = s.info.stats.bytesAdded;
      const recorded = typeof s.info.costUsd === 'number';
      return { id: s.id, time: s.info.time, bytesAdded: b, monthlyUsd: recorded ? s.info.costUsd! : monthlyUsdOf(dataClass, { objects: Math.ceil(b / packSize), bytes: b, bytesAtMin: b }, region), recorded };
    });
    await repo.loadIndex();
    byHost = costByHost(repo, snaps, listing, region);
    const target = a.snapshot ? await findSnapshot(repo, a.snapshot, a) : latestOf(snaps, a);
    if (target) {
      await repo.loadIndex();
      const { ids, files, bytes } = await collectContent(repo, target);
      const packs = repo.packsOf(ids);
      const packBytes = packs.reduce((s, p) => s + p.bytes, 0);
      // Priced at the data class (packs of one repository share it).
      const sc = packs.find((p) => isColdClass(p.storageClass))?.storageClass ?? dataClass;
      const tiers: RestoreTier[] = isColdClass(sc) ? tiersFor(sc) : ['Standard'];
      // A local repository's restore reads the disk: its AWS fees are a what-if like the rest.
      restore = { snapshot: target.id, files, bytes, packs: packs.length, packBytes, storageClass: sc, days, tiers: tiers.map((t) => estimateRestoreCost(sc, t, packs.length, packBytes, days, { region })) };
    }
  }
  const whatIf = whatIfClasses(listing, region);

  // What a forget policy (--keep-*) would save: see cost-forget.ts.
  const forgetPolicy: ForgetWhatIf | null = await forgetWhatIf(repo, a);

  if (a.json) {
    const prices = { region, name: pr.name, local: pr.local, what_if: pr.local, source: PRICE_TABLE.source, read: PRICE_TABLE.read, note: PRICE_TABLE.notes[region] ?? null, warning: pr.warning };
    out(JSON.stringify({ ...(snakeKeys({ prices, monthlyUsd, byClass: Object.fromEntries(byClass), objects: rows, parity, snapshots, byHost, whatIf, restore }) as object), ...(forgetPolicy ? { forget_policy: forgetPolicy.json } : {}) }));
    return EXIT.OK;
  }
  const priced = `AWS ${region} list prices: ${PRICE_TABLE.notes[region] ?? `read ${PRICE_TABLE.read}`}; archive overheads and 128 KiB minimums included`;
  if (pr.local) {
    out(`${repo.backend.location} is a local repository: it costs the disk it is on. What it would cost on S3 in ${region} (${pr.name}) with these storage classes (${priced}):`);
  } else out(`storage of ${repo.backend.location} (${priced}):`);
  out(
    table([
      ['What', 'Class', 'Objects', 'Size', 'Per month'],
      ...rows.map((r) => [KIND_NAMES[r.kind] ?? r.kind, r.storageClass, String(r.objects), fmtBytes(r.bytes), fmtUsd(r.monthlyUsd)]),
      ...(byClass.size > 1 ? [...byClass].map(([sc, c]) => ['all', sc, String(c.objects), fmtBytes(c.bytes), fmtUsd(c.monthlyUsd)]) : []),
    ]),
  );
  out(`${pr.local ? 'what-if total' : 'total'}: ${fmtUsd(monthlyUsd)} per month, ${fmtUsd(monthlyUsd * 12)} per year`);
  out(parityLine(parity));
  printHostsAndWhatIf(byHost, whatIf, pr.local);
  if (snapshots.length) {
    out('');
    out('added by each snapshot:');
    out(table([['ID', 'Time', 'Added', 'Per month'], ...snapshots.map((s) => [s.id.slice(0, 8), fmtTime(s.time), fmtBytes(s.bytesAdded), fmtUsd(s.monthlyUsd) + (s.recorded ? '' : ' (est.)')])]));
  }
  if (restore) {
    out('');
    out(`${pr.local ? 'what-if: ' : ''}restoring snapshot ${restore.snapshot.slice(0, 8)} (${count(restore.files, 'file')}, ${fmtBytes(restore.bytes)}): ${count(restore.packs, 'pack')}, ${fmtBytes(restore.packBytes)} in ${restore.storageClass}, restored copies kept ${count(days, 'day')}`);
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
  if (forgetPolicy) {
    out('');
    for (const l of forgetPolicy.lines) out(l);
  }
  return EXIT.OK;
}

/** Rows by kind and class as stored, priced in `region`. */
function usageRows(l: Awaited<ReturnType<typeof listRepository>>, region: string): Array<{ kind: string; storageClass: StorageClass; objects: number; bytes: number; monthlyUsd: number }> {
  const acc = new Map<string, { kind: string; storageClass: StorageClass; sizes: { objects: number; bytes: number; bytesAtMin: number } }>();
  const add = (kind: string, sc: StorageClass, bytes: number) => {
    const k = `${kind}/${sc}`;
    const r = acc.get(k) ?? { kind, storageClass: sc, sizes: { objects: 0, bytes: 0, bytesAtMin: 0 } };
    acc.set(k, r);
    r.sizes.objects++;
    r.sizes.bytes += bytes;
    r.sizes.bytesAtMin += Math.max(bytes, MIN_OBJECT_BYTES);
  };
  for (const [name, e] of l.packs) add(name.startsWith(packPrefix('data')) ? 'data' : 'tree', e.storageClass, e.bytes);
  for (const e of l.indexFiles.values()) add('index', e.storageClass, e.bytes);
  for (const e of l.snapshots.values()) add('snapshot', e.storageClass, e.bytes);
  for (const e of l.parity.values()) add('parity', e.storageClass, e.bytes);
  const others = l.sizes.other.objects - l.snapshots.size;
  if (others > 0) {
    const bytes = l.sizes.other.bytes - [...l.snapshots.values()].reduce((n, e) => n + e.bytes, 0);
    acc.set('other/STANDARD', { kind: 'other', storageClass: 'STANDARD', sizes: { objects: others, bytes, bytesAtMin: bytes } });
  }
  return [...acc.values()].map((r) => ({ kind: r.kind, storageClass: r.storageClass, objects: r.sizes.objects, bytes: r.sizes.bytes, monthlyUsd: monthlyUsdOf(r.storageClass, r.sizes, region) }));
}

interface ParitySummary {
  /** The parity new packs get (K+M or off). */
  setting: string;
  objects: number;
  bytes: number;
  monthlyUsd: number;
  /** Parity bytes per data and tree pack byte. */
  ofPackBytes: number;
  byClass: Array<{ storageClass: StorageClass; objects: number; bytes: number; monthlyUsd: number }>;
}

/** What parity across packs stores and costs, per storage class (its own line: issue 20). */
function paritySummary(rows: ReturnType<typeof usageRows>, setting: { k: number; m: number } | null): ParitySummary {
  const par = rows.filter((r) => r.kind === 'parity');
  const packBytes = rows.filter((r) => r.kind === 'data' || r.kind === 'tree').reduce((n, r) => n + r.bytes, 0);
  const bytes = par.reduce((n, r) => n + r.bytes, 0);
  return {
    setting: setting ? `${setting.k}+${setting.m}` : 'off',
    objects: par.reduce((n, r) => n + r.objects, 0),
    bytes,
    monthlyUsd: par.reduce((n, r) => n + r.monthlyUsd, 0),
    ofPackBytes: packBytes ? bytes / packBytes : 0,
    byClass: par.map((r) => ({ storageClass: r.storageClass, objects: r.objects, bytes: r.bytes, monthlyUsd: r.monthlyUsd })),
  };
}

function parityLine(p: ParitySummary): string {
  const now = `new packs get parity ${p.setting}`;
  if (!p.objects) return `parity: none stored (${now})`;
  const classes = p.byClass.map((c) => `${count(c.objects, 'object')}, ${fmtBytes(c.bytes)} in ${c.storageClass}: ${fmtUsd(c.monthlyUsd)}`).join('; ');
  return `parity: ${classes} per month (${(p.ofPackBytes * 100).toFixed(1)}% of the packs' bytes; ${now})`;
}

function printHostsAndWhatIf(byHost: HostCost[], whatIf: WhatIf[], local: boolean): void {
  if (byHost.length) {
    out('');
    out(`${local ? 'what-if ' : ''}per host: metadata (tree packs, index, snapshots) and data packs; packs attributed by the key that signed their index, shared among that key's hosts by bytes added (approximate when hosts share a key):`);
    out(
      table([
        ['Host', 'Metadata', 'Per month', 'Data', 'Per month'],
        ...byHost.map((h) => [h.host, fmtBytes(h.metadataBytes), fmtUsd(h.metadataMonthlyUsd), fmtBytes(h.dataBytes), fmtUsd(h.dataMonthlyUsd)]),
      ]),
    );
  }
  out('');
  out("what-if: a typical month with other classes (storage; 30 daily backups: their PUTs, each reading every index file and tree pack; one browse reading as much):");
  out(
    table([
      ['Data', 'Tree', 'Index', 'Storage', 'of it metadata', 'PUTs', 'Reads', 'Month', ''],
      ...whatIf.map((w) => [w.data, w.tree, w.index, fmtUsd(w.storageUsd), fmtUsd(w.metadataStorageUsd), fmtUsd(w.putsUsd), fmtUsd(w.readsUsd), fmtUsd(w.totalUsd), w.current ? '(current)' : '']),
    ]),
  );
}

/** camelCase keys to snake_case, recursively (JSON output). Keys without a lower-case letter (class names) stay. */
function snakeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [/[a-z]/.test(k) ? k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase() : k, snakeKeys(x)]));
  return v;
}

function fmtH(h: number): string {
  return h < 1 ? `${Math.round(h * 60)}min` : `${Math.round(h)}h`;
}
