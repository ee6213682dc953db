// What prune deletes and repacks, and what that saves and costs on S3. Pure: the usage
// (repo/prune.ts) and options in, a plan with its money out.
//
// Per pack:
//   - used by nothing (and unindexed packs, orphans of failed backups): deleted. Inside its
//     class's minimum storage duration, deleting costs the days left at once (AWS bills
//     them), which is what keeping it until then would cost: no more, and the data is gone
//     sooner. The charge is shown as "early deletion", in the one-time costs.
//   - partly used: the used blobs can be copied to new packs and the pack deleted (repack).
//       STANDARD: when unused space over all packs exceeds --max-unused (restic's rule),
//         packs with the most unused bytes first;
//       STANDARD_IA, GLACIER_IR: the same, but only past the class's minimum duration and
//         when the saving pays the reads back within REPACK_HORIZON_MONTHS;
//       GLACIER, DEEP_ARCHIVE: never, unless --repack-cold; then as IA/IR, counting the
//         restore (Bulk) too.
//     Inside the minimum duration a pack is kept and listed with the date from which
//     deleting it is free: repacking before costs the early-deletion charge on the whole
//     pack, more than the unused part would cost until then (unused <= size).
//   - listed by an index file prune keeps whole (another key's): kept.
import type { StorageClass } from '../backend/backend.js';
import type { PackUsage, PruneActions, PruneUsage } from '../repo/prune.js';
import { TsbakError } from '../errors.js';
import { estimateRestoreCost, GB, monthlyStorageUsd, PRICES } from './cost.js';
import { isColdClass, MIN_STORAGE_DAYS } from './policy.js';

/** A repack of a class with read fees is done only if it pays back within this many months. */
export const REPACK_HORIZON_MONTHS = 12;
const DAY_MS = 86_400_000;

export interface PruneOptions {
  /** Unused bytes tolerated in kept packs, as a fraction of all pack bytes (0.05); Infinity: repack nothing. */
  maxUnused: number;
  repackCold: boolean;
  /** The storage class new packs are written in (config). */
  newClass: { data: StorageClass; tree: StorageClass };
  /** Count the download of repacked packs out of AWS ($0.09/GB): true unless the repository is local. */
  transferOut: boolean;
}

export type PackFate = 'delete' | 'repack' | 'keep';

export interface PackDecision {
  pack: PackUsage;
  fate: PackFate;
  /** Why, in a few words. */
  why: string;
  unusedBytes: number;
  ageDays: number | null;
  /** Cold/IA/IR packs inside their minimum duration: from when deleting it costs nothing extra. */
  freeFrom: Date | null;
  monthlySavingsUsd: number;
  earlyDeletionUsd: number;
  restoreUsd: number;
  requestsUsd: number;
  transferUsd: number;
}

export interface PrunePlan {
  decisions: PackDecision[];
  actions: PruneActions;
  totals: {
    packs: number;
    bytes: number;
    usedBytes: number;
    unusedBytes: number;
    deletePacks: number;
    deleteBytes: number;
    repackPacks: number;
    repackBytes: number;
    repackUsedBytes: number;
    keptUnusedBytes: number;
    unindexedPacks: number;
    unindexedBytes: number;
  };
  money: {
    monthlySavingsUsd: number;
    earlyDeletionUsd: number;
    restoreUsd: number;
    requestsUsd: number;
    transferUsd: number;
    oneTimeUsd: number;
    /** Months until the savings pay the one-time costs back (0 when there are none; null: no savings). */
    breakEvenMonths: number | null;
  };
  /** Cold/IA/IR packs with unused space kept for now, and the date deleting them is free. */
  waiting: PackDecision[];
}

/** "5%", "0%", "unlimited" -> a fraction of all pack bytes. */
export function parseMaxUnused(s: string | undefined): number {
  if (s === undefined) return 0.05;
  if (s === 'unlimited') return Infinity;
  const m = /^(\d+(?:\.\d+)?)%$/.exec(s.trim());
  if (!m || Number(m[1]) > 100) throw new TsbakError('USAGE', `--max-unused: ${JSON.stringify(s)} is not a percentage like 5% (0% to 100%) or 'unlimited'`);
  return Number(m[1]) / 100;
}

/** Storage cost of one pack for a month. */
function packMonthly(p: PackUsage, bytes = p.size): number {
  return monthlyStorageUsd(p.storageClass, bytes, 1);
}

/** Early-deletion charge if deleted at `now`: the days left of the minimum, at the class's price. */
function earlyDeletion(p: PackUsage, ageDays: number | null): number {
  const min = MIN_STORAGE_DAYS[p.storageClass] ?? 0;
  // An unknown age counts as new: the charge is then the most it can be.
  const left = min - (ageDays ?? 0);
  return left > 0 ? packMonthly(p) * (left / 30) : 0;
}

export function planPrune(usage: PruneUsage, o: PruneOptions): PrunePlan {
  const now = usage.now.getTime();
  const decisions: PackDecision[] = [];
  const candidates: PackDecision[] = [];
  for (const p of usage.packs) {
    const ageDays = p.lastModified ? Math.max(0, (now - p.lastModified.getTime()) / DAY_MS) : null;
    const min = MIN_STORAGE_DAYS[p.storageClass] ?? 0;
    const freeFrom = min > 0 && (ageDays === null || ageDays < min) ? new Date((p.lastModified?.getTime() ?? now) + min * DAY_MS) : null;
    const d: PackDecision = { pack: p, fate: 'keep', why: '', unusedBytes: p.usedBlobs === 0 ? p.size : Math.max(0, p.blobBytes - p.usedBytes), ageDays, freeFrom, monthlySavingsUsd: 0, earlyDeletionUsd: 0, restoreUsd: 0, requestsUsd: 0, transferUsd: 0 };
    decisions.push(d);
    if (p.lockedUntil) {
      d.why = `locked (S3 Object Lock) until ${p.lockedUntil.toISOString().slice(0, 10)}`;
      continue;
    }
    if (p.keptWhole) {
      d.why = "listed by another key's index file, kept whole";
      continue;
    }
    if (p.usedBlobs === 0) {
      d.fate = 'delete';
      d.why = p.indexed ? 'unused' : 'in no index (left by an interrupted backup)';
      d.monthlySavingsUsd = packMonthly(p);
      d.earlyDeletionUsd = earlyDeletion(p, ageDays);
      continue;
    }
    if (d.unusedBytes === 0 || p.usedBlobs === p.blobs) {
      d.why = 'fully used';
      continue;
    }
    const cold = isColdClass(p.storageClass);
    if (cold && !o.repackCold) {
      d.why = 'cold: not repacked without --repack-cold';
      continue;
    }
    if (freeFrom) {
      d.why = `inside its ${min}-day minimum: repacking now costs more than waiting`;
      continue;
    }
    // What a repack would cost and save.
    const newClass = o.newClass[p.kind];
    const readUsd = cold ? estimateRestoreCost(p.storageClass, 'Bulk', 1, p.size, 1, { transferOut: false }) : null;
    d.restoreUsd = readUsd ? readUsd.requestsUsd + readUsd.retrievalUsd + readUsd.copyUsd : (p.size / GB) * (PRICES.retrievalPerGb[p.storageClass]?.Standard ?? 0);
    d.requestsUsd = PRICES.getPer1000[p.storageClass] / 1000 + (PRICES.putPer1000[newClass] / 1000) * (p.usedBytes / Math.max(p.size, 1));
    d.transferUsd = o.transferOut ? (p.size / GB) * PRICES.transferOutPerGb : 0;
    d.monthlySavingsUsd = packMonthly(p) - monthlyStorageUsd(newClass, p.usedBytes, p.usedBytes / Math.max(p.size, 1));
    if (p.storageClass !== 'STANDARD') {
      const oneTime = d.restoreUsd + d.requestsUsd + d.transferUsd;
      if (d.monthlySavingsUsd <= 0 || oneTime / d.monthlySavingsUsd > REPACK_HORIZON_MONTHS) {
        d.why = `repacking would not pay back within ${REPACK_HORIZON_MONTHS} months`;
        d.monthlySavingsUsd = d.restoreUsd = d.requestsUsd = d.transferUsd = 0;
        continue;
      }
    }
    d.why = 'partly used';
    candidates.push(d);
  }

  // restic's --max-unused: repack the packs with the most unused bytes until what stays
  // unused is within the bound, of all bytes that stay.
  let staying = 0;
  let unusedStaying = 0;
  for (const d of decisions) {
    if (d.fate === 'delete') continue;
    staying += d.pack.size;
    unusedStaying += d.unusedBytes;
  }
  candidates.sort((a, b) => b.unusedBytes - a.unusedBytes || (a.pack.name < b.pack.name ? -1 : 1));
  for (const d of candidates) {
    if (!(unusedStaying > o.maxUnused * staying)) break;
    d.fate = 'repack';
    unusedStaying -= d.unusedBytes;
    staying -= d.unusedBytes;
  }
  for (const d of candidates) {
    if (d.fate === 'repack') continue;
    d.why = 'partly used, within --max-unused';
    d.monthlySavingsUsd = d.restoreUsd = d.requestsUsd = d.transferUsd = 0;
  }
  for (const d of decisions) if (d.fate === 'keep' && d.why.startsWith('fully used')) d.monthlySavingsUsd = 0;

  const t: PrunePlan['totals'] = { packs: 0, bytes: 0, usedBytes: 0, unusedBytes: 0, deletePacks: 0, deleteBytes: 0, repackPacks: 0, repackBytes: 0, repackUsedBytes: 0, keptUnusedBytes: 0, unindexedPacks: 0, unindexedBytes: 0 };
  const m: PrunePlan['money'] = { monthlySavingsUsd: 0, earlyDeletionUsd: 0, restoreUsd: 0, requestsUsd: 0, transferUsd: 0, oneTimeUsd: 0, breakEvenMonths: null };
  for (const d of decisions) {
    t.packs++;
    t.bytes += d.pack.size;
    t.usedBytes += Math.min(d.pack.usedBytes, d.pack.size);
    t.unusedBytes += d.unusedBytes;
    if (!d.pack.indexed) {
      t.unindexedPacks++;
      t.unindexedBytes += d.pack.size;
    }
    if (d.fate === 'delete') {
      t.deletePacks++;
      t.deleteBytes += d.pack.size;
    } else if (d.fate === 'repack') {
      t.repackPacks++;
      t.repackBytes += d.pack.size;
      t.repackUsedBytes += d.pack.usedBytes;
    } else t.keptUnusedBytes += d.unusedBytes;
    if (d.fate === 'keep') continue;
    m.monthlySavingsUsd += d.monthlySavingsUsd;
    m.earlyDeletionUsd += d.earlyDeletionUsd;
    m.restoreUsd += d.restoreUsd;
    m.requestsUsd += d.requestsUsd;
    m.transferUsd += d.transferUsd;
  }
  m.oneTimeUsd = m.earlyDeletionUsd + m.restoreUsd + m.requestsUsd + m.transferUsd;
  m.breakEvenMonths = m.oneTimeUsd === 0 ? 0 : m.monthlySavingsUsd > 0 ? m.oneTimeUsd / m.monthlySavingsUsd : null;
  return {
    decisions,
    actions: { delete: decisions.filter((d) => d.fate === 'delete').map((d) => d.pack.name), repack: decisions.filter((d) => d.fate === 'repack').map((d) => d.pack.name), unfinished: usage.unfinished },
    totals: t,
    money: m,
    waiting: decisions.filter((d) => d.fate === 'keep' && d.freeFrom && d.unusedBytes > 0 && d.pack.usedBlobs > 0),
  };
}
