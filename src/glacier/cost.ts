// Cost model: what storing and restoring a repository costs on AWS S3, in USD.
//
// Prices come from the table in ./prices.ts (per region, with its source and the date it was
// read); every function takes a region, us-east-1 by default. A region the table does not
// hold is priced as us-east-1 (pricesFor says so, for a warning line). First pricing tier
// only; these are estimates for planning, not a bill.
//
// How a price applies:
//  - objects smaller than a class's minimum size (128 KB: STANDARD_IA, GLACIER_IR) are billed
//    at that size;
//  - archived objects (GLACIER, DEEP_ARCHIVE) carry 40 KB each: 32 KB at their class, 8 KB
//    at STANDARD;
//  - a restored temporary copy is billed as STANDARD storage for the days it is kept, on top
//    of the archived object (S3 User Guide, "Restoring an archived object");
//  - minimum storage durations: ./policy.ts (30/90/90/180 days).
import type { RestoreTier, StorageClass } from '../backend/backend.js';
import type { RepoConfig } from '../format/config.js';
import { expectedRestoreMs, isColdClass, MIN_STORAGE_DAYS, restoreDuration } from './policy.js';
import { PRICE_TABLE, type RegionPrices } from './prices.js';

export const GB = 1024 ** 3; // AWS bills in GB of 2^30 bytes

export const DEFAULT_REGION = PRICE_TABLE.fallbackRegion;

/** The prices of a region: `known` false when the table lacks it and `region` is the fallback's. */
export function pricesFor(region: string = DEFAULT_REGION): { region: string; name: string; prices: RegionPrices; known: boolean } {
  const r = PRICE_TABLE.regions[region];
  if (r) return { region, name: r.name, prices: r.prices, known: true };
  const f = PRICE_TABLE.regions[PRICE_TABLE.fallbackRegion]!;
  return { region: PRICE_TABLE.fallbackRegion, name: f.name, prices: f.prices, known: false };
}

/** The warning line for a region the table lacks, or null. */
export function unknownRegionWarning(region: string): string | null {
  if (pricesFor(region).known) return null;
  return `no prices for region ${region} in the price table (regions: ${Object.keys(PRICE_TABLE.regions).join(', ')}): showing ${PRICE_TABLE.fallbackRegion} prices`;
}

/** us-east-1's prices, with the table's overheads (kept for callers that want one region's numbers at hand). */
export const PRICES = {
  ...pricesFor(DEFAULT_REGION).prices,
  archiveOverhead: PRICE_TABLE.archiveOverhead,
  minObjectBytes: PRICE_TABLE.minObjectBytes,
};

/** Monthly storage cost of `objects` objects holding `bytes` bytes in class `sc`, overheads included. */
export function monthlyStorageUsd(sc: StorageClass, bytes: number, objects: number, region: string = DEFAULT_REGION): number {
  const p = pricesFor(region).prices.storagePerGbMonth;
  let billed = bytes;
  const min = PRICE_TABLE.minObjectBytes[sc];
  if (min && objects > 0) billed = Math.max(bytes, objects * min); // approximate: each object at least `min`
  let usd = (billed / GB) * p[sc];
  if (isColdClass(sc)) {
    usd += ((objects * PRICE_TABLE.archiveOverhead.coldBytes) / GB) * p[sc];
    usd += ((objects * PRICE_TABLE.archiveOverhead.standardBytes) / GB) * p.STANDARD;
  }
  return usd;
}

/** Objects of a repository by what they are; `data` and `tree` are packs. */
export type ObjectKind = 'data' | 'tree' | 'parity' | 'index' | 'snapshot' | 'key' | 'config' | 'other';

export function classFor(config: Pick<RepoConfig, 'storageClass'>, kind: ObjectKind): StorageClass {
  if (kind === 'data' || kind === 'parity') return config.storageClass.data;
  if (kind === 'tree') return config.storageClass.tree;
  if (kind === 'index') return config.storageClass.index ?? config.storageClass.other;
  return config.storageClass.other;
}

export interface BackupCost {
  /** Storage added per month by these objects, USD (what SnapshotInfo.costUsd holds). */
  monthlyUsd: number;
  /** PUT requests of this backup, USD (once). */
  requestsUsd: number;
  /** Storage billed even if the objects were deleted at once: the class's minimum duration. */
  minimumCommitmentUsd: number;
  byClass: Partial<Record<StorageClass, { objects: number; bytes: number; monthlyUsd: number }>>;
}

/**
 * Cost of what one backup wrote. `packsWritten`: every object the backup stored (packs,
 * index files, the snapshot), with its size and kind. The storage class of each comes from
 * the repository config (data packs: config.storageClass.data, tree packs: .tree, the
 * rest: .other).
 */
export function estimateBackupCost(config: Pick<RepoConfig, 'storageClass'>, packsWritten: Array<{ bytes: number; kind: ObjectKind }>, region: string = DEFAULT_REGION): BackupCost {
  const byClass: BackupCost['byClass'] = {};
  for (const p of packsWritten) {
    const sc = classFor(config, p.kind);
    const c = (byClass[sc] ??= { objects: 0, bytes: 0, monthlyUsd: 0 });
    c.objects++;
    c.bytes += p.bytes;
  }
  let monthlyUsd = 0;
  let requestsUsd = 0;
  let minimumCommitmentUsd = 0;
  for (const [sc, c] of Object.entries(byClass) as Array<[StorageClass, { objects: number; bytes: number; monthlyUsd: number }]>) {
    c.monthlyUsd = monthlyStorageUsd(sc, c.bytes, c.objects, region);
    monthlyUsd += c.monthlyUsd;
    requestsUsd += putUsd(sc, c.objects, region);
    minimumCommitmentUsd += c.monthlyUsd * (MIN_STORAGE_DAYS[sc] / 30);
  }
  return { monthlyUsd, requestsUsd, minimumCommitmentUsd, byClass };
}

export interface RestoreCost {
  storageClass: StorageClass;
  tier: RestoreTier;
  objects: number;
  bytes: number;
  /** RestoreObject requests. */
  requestsUsd: number;
  /** Per-GB retrieval fee. */
  retrievalUsd: number;
  /** The temporary restored copies, kept `days` days (billed as STANDARD). */
  copyUsd: number;
  /** GET requests to download the restored objects. */
  getUsd: number;
  /** Transfer out of AWS to the machine restoring. */
  transferUsd: number;
  totalUsd: number;
  /** Typical duration of the restore in hours, low and high; 0 when none is needed. */
  hoursLow: number;
  hoursHigh: number;
}

/** Cost and time of reading back `objects` objects of `bytes` bytes in class `sc` with `tier`, keeping restored copies `days` days. */
export function estimateRestoreCost(sc: StorageClass, tier: RestoreTier, objects: number, bytes: number, days = 7, opts: { transferOut?: boolean; region?: string } = {}): RestoreCost {
  const p = pricesFor(opts.region).prices;
  const gb = bytes / GB;
  const cold = isColdClass(sc);
  const [lo, hi] = cold ? restoreDuration(sc, tier) : [0, 0];
  const requestsUsd = cold ? (objects / 1000) * (p.restoreRequestPer1000[sc]?.[tier] ?? 0) : 0;
  const retrievalUsd = gb * (p.retrievalPerGb[sc]?.[tier] ?? 0);
  const copyUsd = cold ? gb * p.storagePerGbMonth.STANDARD * (days / 30) : 0;
  const getUsd = (objects / 1000) * p.getPer1000[sc];
  const transferUsd = opts.transferOut === false ? 0 : gb * p.transferOutPerGb;
  return {
    storageClass: sc,
    tier,
    objects,
    bytes,
    requestsUsd,
    retrievalUsd,
    copyUsd,
    getUsd,
    transferUsd,
    totalUsd: requestsUsd + retrievalUsd + copyUsd + getUsd + transferUsd,
    hoursLow: lo / 3600_000,
    hoursHigh: hi / 3600_000,
  };
}

/** PUT requests of `objects` objects stored in class `sc`, USD. */
export function putUsd(sc: StorageClass, objects: number, region: string = DEFAULT_REGION): number {
  return (objects / 1000) * pricesFor(region).prices.putPer1000[sc];
}

/**
 * Reading objects of a class readable at once (STANDARD, STANDARD_IA, GLACIER_IR): `gets`
 * GET requests bringing `bytes` bytes, USD: request fees plus the class's retrieval fee per
 * GB. Transfer out is not included (see transferOutUsd).
 */
export function readUsd(sc: StorageClass, gets: number, bytes: number, region: string = DEFAULT_REGION): { requestsUsd: number; retrievalUsd: number; totalUsd: number } {
  const p = pricesFor(region).prices;
  const requestsUsd = (gets / 1000) * p.getPer1000[sc];
  const retrievalUsd = (bytes / GB) * (p.retrievalPerGb[sc]?.Standard ?? 0);
  return { requestsUsd, retrievalUsd, totalUsd: requestsUsd + retrievalUsd };
}

/** Transfer of `bytes` out of AWS to the internet, USD. */
export function transferOutUsd(bytes: number, region: string = DEFAULT_REGION): number {
  return (bytes / GB) * pricesFor(region).prices.transferOutPerGb;
}

/** "by Tue, 14 Jan 2025 10:00 UTC" style offset for a restore started now. */
export function expectedBy(sc: StorageClass, tier: RestoreTier, from = Date.now()): Date {
  return new Date(from + (isColdClass(sc) ? expectedRestoreMs(sc, tier) : 0));
}

/** Dollars for humans: "$0.0012", "$1.23", "$1,234". */
export function fmtUsd(usd: number): string {
  if (usd === 0) return '$0';
  if (usd < 0.01) return `$${usd.toFixed(Math.min(8, 1 - Math.floor(Math.log10(usd))))}`; // two significant digits
  if (usd < 1000) return `$${usd.toFixed(2)}`;
  return `$${Math.round(usd).toLocaleString('en-US')}`;
}

/**
 * Objects counted for pricing: how many, their bytes, and their bytes with each object
 * counted at least 128 KiB (what STANDARD_IA and GLACIER_IR bill), so that a what-if in
 * those classes is exact rather than approximated from the total.
 */
export interface ObjectSizes {
  objects: number;
  bytes: number;
  bytesAtMin: number;
}

export function emptySizes(): ObjectSizes {
  return { objects: 0, bytes: 0, bytesAtMin: 0 };
}

export function addSize(s: ObjectSizes, bytes: number): void {
  s.objects++;
  s.bytes += bytes;
  s.bytesAtMin += Math.max(bytes, MIN_OBJECT_BYTES);
}

export function sumSizes(...xs: ObjectSizes[]): ObjectSizes {
  return xs.reduce((a, x) => ({ objects: a.objects + x.objects, bytes: a.bytes + x.bytes, bytesAtMin: a.bytesAtMin + x.bytesAtMin }), emptySizes());
}

/** The minimum billed object size of STANDARD_IA and GLACIER_IR (the table's; one value for both). */
export const MIN_OBJECT_BYTES = Math.max(...Object.values(PRICE_TABLE.minObjectBytes));

/** Monthly storage of these objects in class `sc`, with the minimum size counted per object. */
export function monthlyUsdOf(sc: StorageClass, s: ObjectSizes, region: string = DEFAULT_REGION): number {
  if (!s.objects) return 0;
  const p = pricesFor(region).prices.storagePerGbMonth;
  const billed = PRICE_TABLE.minObjectBytes[sc] ? s.bytesAtMin : s.bytes;
  let usd = (billed / GB) * p[sc];
  if (isColdClass(sc)) {
    usd += ((s.objects * PRICE_TABLE.archiveOverhead.coldBytes) / GB) * p[sc];
    usd += ((s.objects * PRICE_TABLE.archiveOverhead.standardBytes) / GB) * p.STANDARD;
  }
  return usd;
}

/** A repository's objects by what they are, for what-ifs. */
export interface RepoSizes {
  data: ObjectSizes;
  tree: ObjectSizes;
  index: ObjectSizes;
  /** Snapshots, keys, config, settings: always STANDARD. */
  other: ObjectSizes;
}

/** What one command reads of the metadata: GETs and bytes of index files and of tree packs. */
export interface MetadataReads {
  indexGets: number;
  indexBytes: number;
  treeGets: number;
  treeBytes: number;
}

/** A month's activity: backups (their PUTs by kind and their reads) and browses (ls -l, a mount's ls -lR). */
export interface MonthActivity {
  backups: number;
  putsPerBackup: { data: number; tree: number; index: number; other: number };
  /** A backup reads every index file (dedup); trees only where its local cache of the parent's misses. */
  backupReads: MetadataReads;
  browses: number;
  browseReads: MetadataReads;
}

/** Request and retrieval fees of reading `r` with tree packs and index files in these classes. */
export function metadataReadUsd(r: MetadataReads, classes: { tree: StorageClass; index: StorageClass }, region: string = DEFAULT_REGION): number {
  return readUsd(classes.index, r.indexGets, r.indexBytes, region).totalUsd + readUsd(classes.tree, r.treeGets, r.treeBytes, region).totalUsd;
}

/**
 * What a month costs with these classes: storage of what is there, the PUTs of the month's
 * backups (the bytes they add are not counted: a month's growth is small against what is
 * stored), and the reads of its backups and browses. Data packs are not read by either.
 * Transfer out is the same in every class and left out.
 */
export function typicalMonthUsd(
  sizes: RepoSizes,
  classes: { data: StorageClass; tree: StorageClass; index: StorageClass },
  activity: MonthActivity,
  region: string = DEFAULT_REGION,
): { storageUsd: number; metadataStorageUsd: number; dataStorageUsd: number; putsUsd: number; readsUsd: number; totalUsd: number } {
  const dataStorageUsd = monthlyUsdOf(classes.data, sizes.data, region);
  const metadataStorageUsd = monthlyUsdOf(classes.tree, sizes.tree, region) + monthlyUsdOf(classes.index, sizes.index, region) + monthlyUsdOf('STANDARD', sizes.other, region);
  const n = activity.backups;
  const p = activity.putsPerBackup;
  const putsUsd = putUsd(classes.data, n * p.data, region) + putUsd(classes.tree, n * p.tree, region) + putUsd(classes.index, n * p.index, region) + putUsd('STANDARD', n * p.other, region);
  const readsUsd = n * metadataReadUsd(activity.backupReads, classes, region) + activity.browses * metadataReadUsd(activity.browseReads, classes, region);
  const storageUsd = dataStorageUsd + metadataStorageUsd;
  return { storageUsd, metadataStorageUsd, dataStorageUsd, putsUsd, readsUsd, totalUsd: storageUsd + putsUsd + readsUsd };
}

/**
 * What deleting objects of class `sc` costs when they are `ageDays` old: the storage of the
 * days left of the class's minimum duration (30/90/180 days; none for STANDARD), with the
 * 128 KiB minimum size and archive overheads as monthlyUsdOf counts them.
 */
export function earlyDeletionUsd(sc: StorageClass, s: ObjectSizes, ageDays: number, region: string = DEFAULT_REGION): number {
  const left = Math.max(0, MIN_STORAGE_DAYS[sc] - Math.max(0, ageDays));
  return left ? monthlyUsdOf(sc, s, region) * (left / 30) : 0;
}
