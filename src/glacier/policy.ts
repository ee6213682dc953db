// Storage-class policy: which S3 storage classes need a restore before a GET, which restore
// tiers each allows, how long a restore typically takes, and minimum storage durations.
//
// Sources (AWS documentation, read 2025):
//  - "Understanding archive retrieval options", Amazon S3 User Guide
//    (docs.aws.amazon.com/AmazonS3/latest/userguide/restoring-objects-retrieval-options.html):
//    Glacier Flexible Retrieval: Expedited typically 1-5 minutes (objects < 250 MB),
//    Standard 3-5 hours, Bulk 5-12 hours; Deep Archive: Standard within 12 hours, Bulk within
//    48 hours; Expedited is not offered for Deep Archive.
//  - "Working with archived objects" (.../userguide/archived-objects.html): GLACIER and
//    DEEP_ARCHIVE objects are archived and need RestoreObject; GLACIER_IR, STANDARD_IA and
//    STANDARD are readable with GET at once. The storage class stays the same after a
//    restore; the temporary copy is deleted after the requested number of days, and a new
//    restore request on a restored object moves the expiry to `days` from now.
//  - "Amazon S3 storage classes" / pricing page: minimum storage duration 30 days
//    (STANDARD_IA), 90 days (GLACIER_IR, GLACIER), 180 days (DEEP_ARCHIVE).
import type { RestoreTier, StorageClass } from '../backend/backend.js';
import { TsbakError } from '../errors.js';

export const STORAGE_CLASSES: readonly StorageClass[] = ['STANDARD', 'STANDARD_IA', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'];
export const RESTORE_TIERS: readonly RestoreTier[] = ['Expedited', 'Standard', 'Bulk'];

/** Classes whose objects must be restored (RestoreObject) before they can be read. */
export const COLD_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'DEEP_ARCHIVE']);

export function isColdClass(sc: string | undefined): boolean {
  return !!sc && COLD_CLASSES.has(sc);
}

const HOUR = 3600_000;
const MINUTE = 60_000;

/**
 * How long a restore takes, per class and tier: [typical lower bound, upper bound] in ms.
 * "Expected by" uses the upper bound: better early than late.
 */
const RESTORE_TIME: Record<string, Partial<Record<RestoreTier, [number, number]>>> = {
  GLACIER: { Expedited: [1 * MINUTE, 5 * MINUTE], Standard: [3 * HOUR, 5 * HOUR], Bulk: [5 * HOUR, 12 * HOUR] },
  DEEP_ARCHIVE: { Standard: [9 * HOUR, 12 * HOUR], Bulk: [24 * HOUR, 48 * HOUR] },
};

/** Tiers a class allows (none for classes that need no restore). */
export function tiersFor(sc: StorageClass): RestoreTier[] {
  return Object.keys(RESTORE_TIME[sc] ?? {}) as RestoreTier[];
}

/** Typical restore duration in ms: [low, high]. 0 for classes that need no restore. */
export function restoreDuration(sc: StorageClass, tier: RestoreTier): [number, number] {
  if (!isColdClass(sc)) return [0, 0];
  const t = RESTORE_TIME[sc]?.[tier];
  if (!t) throw new TsbakError('USAGE', `the ${tier} tier is not available for ${sc} (use ${tiersFor(sc).join(' or ')})`);
  return t;
}

/** Upper bound of the typical restore time: the "expected by" offset. */
export function expectedRestoreMs(sc: StorageClass, tier: RestoreTier): number {
  return restoreDuration(sc, tier)[1];
}

/** Minimum billed storage duration in days (deleting earlier is billed as if kept). */
export const MIN_STORAGE_DAYS: Record<StorageClass, number> = {
  STANDARD: 0,
  STANDARD_IA: 30,
  GLACIER_IR: 90,
  GLACIER: 90,
  DEEP_ARCHIVE: 180,
};

export function parseTier(s: string | undefined, fallback: RestoreTier): RestoreTier {
  if (s === undefined || s === '') return fallback;
  const t = RESTORE_TIERS.find((x) => x.toLowerCase() === s.toLowerCase());
  if (!t) throw new TsbakError('USAGE', `unknown restore tier "${s}": use Expedited, Standard or Bulk`);
  return t;
}

/** Checks a tier against the class and days against S3's rules; throws USAGE. */
export function checkRestoreRequest(sc: StorageClass, tier: RestoreTier, days: number): void {
  if (!Number.isInteger(days) || days < 1) throw new TsbakError('USAGE', `restore days must be a whole number >= 1, got ${days}`);
  if (isColdClass(sc)) restoreDuration(sc, tier);
}
