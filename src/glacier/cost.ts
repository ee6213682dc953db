// Cost model: what storing and restoring a repository costs on AWS S3, in USD.
//
// Prices are AWS list prices for us-east-1 (N. Virginia), first pricing tier (first 50 TB
// per month of storage, first 10 TB per month of transfer out), as published on
// https://aws.amazon.com/s3/pricing/ (read 2025) and repeated in the S3 User Guide pages
// cited below. Other regions and volume tiers differ; these are estimates for planning,
// not a bill.
//
//  storage, USD per GB-month:   STANDARD 0.023, STANDARD_IA 0.0125, GLACIER_IR 0.004,
//                               GLACIER (Flexible Retrieval) 0.0036, DEEP_ARCHIVE 0.00099
//  PUT/COPY/POST/LIST per 1000: STANDARD 0.005, STANDARD_IA 0.01, GLACIER_IR 0.02,
//                               GLACIER 0.03, DEEP_ARCHIVE 0.05
//  GET/HEAD per 1000:           STANDARD 0.0004, STANDARD_IA 0.001, GLACIER_IR 0.01,
//                               GLACIER 0.0004, DEEP_ARCHIVE 0.0004
//  retrieval per GB:            STANDARD_IA 0.01, GLACIER_IR 0.03;
//                               GLACIER Expedited 0.03, Standard 0.01, Bulk 0.00 (free);
//                               DEEP_ARCHIVE Standard 0.02, Bulk 0.0025
//  restore requests per 1000:   GLACIER Expedited 10.00, Standard 0.05, Bulk 0.00;
//                               DEEP_ARCHIVE Standard 0.10, Bulk 0.025
//    (also AWS re:Post "How do I manage data retrieval costs for S3 Glacier", whose worked
//    example uses 0.05/1000 + 0.01/GB for Flexible Retrieval Standard and 10/1000 + 0.03/GB
//    for Expedited)
//  archived-object overhead:    40 KB per GLACIER/DEEP_ARCHIVE object: 32 KB billed at the
//                               archive class and 8 KB at STANDARD (S3 User Guide, "Storage
//                               classes for rarely accessed objects")
//  minimum object size billed:  128 KB for STANDARD_IA and GLACIER_IR
//  minimum storage duration:    see ./policy.ts (30/90/90/180 days)
//  restored temporary copy:     billed as STANDARD storage for the days it is kept, on top
//                               of the archived object (S3 User Guide, "Restoring an
//                               archived object")
//  data transfer out to the internet: 0.09 per GB (first 10 TB/month; the first 100 GB per
//                               month across AWS are free, not modelled here)
import type { RestoreTier, StorageClass } from '../backend/backend.js';
import type { RepoConfig } from '../format/config.js';
import { expectedRestoreMs, isColdClass, MIN_STORAGE_DAYS, restoreDuration } from './policy.js';

export const GB = 1024 ** 3; // AWS bills in GB of 2^30 bytes
const KB = 1024;

export const PRICES = {
  storagePerGbMonth: { STANDARD: 0.023, STANDARD_IA: 0.0125, GLACIER_IR: 0.004, GLACIER: 0.0036, DEEP_ARCHIVE: 0.00099 } as Record<StorageClass, number>,
  putPer1000: { STANDARD: 0.005, STANDARD_IA: 0.01, GLACIER_IR: 0.02, GLACIER: 0.03, DEEP_ARCHIVE: 0.05 } as Record<StorageClass, number>,
  getPer1000: { STANDARD: 0.0004, STANDARD_IA: 0.001, GLACIER_IR: 0.01, GLACIER: 0.0004, DEEP_ARCHIVE: 0.0004 } as Record<StorageClass, number>,
  /** Per GB read back: for classes readable at once, a flat fee; for archive classes, by tier. */
  retrievalPerGb: {
    STANDARD: { Expedited: 0, Standard: 0, Bulk: 0 },
    STANDARD_IA: { Expedited: 0.01, Standard: 0.01, Bulk: 0.01 },
    GLACIER_IR: { Expedited: 0.03, Standard: 0.03, Bulk: 0.03 },
    GLACIER: { Expedited: 0.03, Standard: 0.01, Bulk: 0 },
    DEEP_ARCHIVE: { Standard: 0.02, Bulk: 0.0025 },
  } as Record<StorageClass, Partial<Record<RestoreTier, number>>>,
  restoreRequestPer1000: {
    GLACIER: { Expedited: 10.0, Standard: 0.05, Bulk: 0 },
    DEEP_ARCHIVE: { Standard: 0.1, Bulk: 0.025 },
  } as Record<string, Partial<Record<RestoreTier, number>>>,
  /** Archived objects: 32 KB at the archive class, 8 KB at STANDARD. */
  archiveOverhead: { coldBytes: 32 * KB, standardBytes: 8 * KB },
  minObjectBytes: { STANDARD_IA: 128 * KB, GLACIER_IR: 128 * KB } as Partial<Record<StorageClass, number>>,
  transferOutPerGb: 0.09,
};

/** Monthly storage cost of `objects` objects holding `bytes` bytes in class `sc`, overheads included. */
export function monthlyStorageUsd(sc: StorageClass, bytes: number, objects: number): number {
  const p = PRICES.storagePerGbMonth;
  let billed = bytes;
  const min = PRICES.minObjectBytes[sc];
  if (min && objects > 0) billed = Math.max(bytes, objects * min); // approximate: each object at least `min`
  let usd = (billed / GB) * p[sc];
  if (isColdClass(sc)) {
    usd += ((objects * PRICES.archiveOverhead.coldBytes) / GB) * p[sc];
    usd += ((objects * PRICES.archiveOverhead.standardBytes) / GB) * p.STANDARD;
  }
  return usd;
}

/** Objects of a repository by what they are; `data` and `tree` are packs. */
export type ObjectKind = 'data' | 'tree' | 'index' | 'snapshot' | 'key' | 'config' | 'other';

export function classFor(config: Pick<RepoConfig, 'storageClass'>, kind: ObjectKind): StorageClass {
  if (kind === 'data') return config.storageClass.data;
  if (kind === 'tree') return config.storageClass.tree;
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
export function estimateBackupCost(config: Pick<RepoConfig, 'storageClass'>, packsWritten: Array<{ bytes: number; kind: ObjectKind }>): BackupCost {
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
    c.monthlyUsd = monthlyStorageUsd(sc, c.bytes, c.objects);
    monthlyUsd += c.monthlyUsd;
    requestsUsd += (c.objects / 1000) * PRICES.putPer1000[sc];
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
export function estimateRestoreCost(sc: StorageClass, tier: RestoreTier, objects: number, bytes: number, days = 7, opts: { transferOut?: boolean } = {}): RestoreCost {
  const gb = bytes / GB;
  const cold = isColdClass(sc);
  const [lo, hi] = cold ? restoreDuration(sc, tier) : [0, 0];
  const requestsUsd = cold ? (objects / 1000) * (PRICES.restoreRequestPer1000[sc]?.[tier] ?? 0) : 0;
  const retrievalUsd = gb * (PRICES.retrievalPerGb[sc]?.[tier] ?? 0);
  const copyUsd = cold ? gb * PRICES.storagePerGbMonth.STANDARD * (days / 30) : 0;
  const getUsd = (objects / 1000) * PRICES.getPer1000[sc];
  const transferUsd = opts.transferOut === false ? 0 : gb * PRICES.transferOutPerGb;
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
