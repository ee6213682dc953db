// tsbak-write --lock-until DATE | --lock-days N [--lock-mode governance|compliance]: S3 Object
// Lock on every object the snapshot needs (repo/object-lock.ts). Governance is the default:
// it stops the backup credential and any mistake short of an admin's deliberate bypass
// (s3:BypassGovernanceRetention plus a header), while a wrong date can still be undone;
// compliance cannot be shortened or removed by anyone, the account root included, so a typo
// in --lock-days is paid for until that date.
import type { Backend, Retention } from '../backend/backend.js';
import { TsbakError } from '../errors.js';
import { extendRetention, objectsToLock, requireObjectLock, toRetention, withRetention, type ExtendResult, type LockMode, type SnapshotLock } from '../repo/object-lock.js';
import type { Repository } from '../repo/repository.js';

export interface LockArgs {
  lockUntil?: string;
  lockDays?: string;
  lockMode?: string;
}

const DAY_MS = 86_400_000;

/** The lock a run asked for, checked before anything is opened. */
interface LockRequest {
  mode: LockMode;
  days?: number;
  until?: Date;
}

export function parseLockArgs(a: LockArgs): LockRequest | null {
  if (a.lockUntil === undefined && a.lockDays === undefined) {
    if (a.lockMode !== undefined) throw new TsbakError('USAGE', '--lock-mode says how to lock: give --lock-until DATE or --lock-days N too');
    return null;
  }
  if (a.lockUntil !== undefined && a.lockDays !== undefined) throw new TsbakError('USAGE', 'give --lock-until or --lock-days, not both');
  const mode: LockMode = a.lockMode === 'compliance' ? 'compliance' : 'governance';
  if (a.lockDays !== undefined) {
    const n = Number(a.lockDays);
    if (!/^\d+$/.test(a.lockDays.trim()) || !Number.isSafeInteger(n) || n < 1 || n > 36500) throw new TsbakError('USAGE', `--lock-days ${JSON.stringify(a.lockDays)}: give a whole number of days from 1 to 36500`);
    return { mode, days: n };
  }
  const s = a.lockUntil!.trim();
  const until = new Date(/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s);
  if (!/^\d{4}-\d{2}-\d{2}/.test(s) || Number.isNaN(until.getTime())) throw new TsbakError('USAGE', `--lock-until ${JSON.stringify(a.lockUntil)}: give a date as 2027-06-30 (midnight UTC) or RFC 3339 (2027-06-30T12:00:00Z)`);
  return { mode, until };
}

/** Set up by the backend wrapper, used by the backup: the retention, and what was extended. */
export class WriteLock {
  retention: Retention | null = null;
  extended: ExtendResult | null = null;

  constructor(private readonly req: LockRequest) {}

  /** For openRepo: checks the bucket, fixes the date by S3's clock, and locks every put. */
  wrap = async (b: Backend): Promise<Backend> => {
    await requireObjectLock(b);
    const now = b.now ? await b.now() : new Date();
    const until = this.req.until ?? new Date(now.getTime() + this.req.days! * DAY_MS);
    if (until.getTime() <= now.getTime() + 60_000) throw new TsbakError('USAGE', `--lock-until ${until.toISOString()} is not in the future by S3's clock (${now.toISOString()}); give a later date (nothing was written)`);
    this.retention = toRetention({ mode: this.req.mode, until });
    return withRetention(b, this.retention);
  };

  get snapshotLock(): SnapshotLock {
    return { mode: this.req.mode, until: this.retention!.until.toISOString() };
  }

  /** Before the snapshot is written: every pack and index file it may reuse locked as long. */
  beforeSnapshot(repo: Repository): () => Promise<void> {
    return async () => {
      this.extended = await extendRetention(repo.backend, objectsToLock(repo), this.retention!);
    };
  }

  json(): Record<string, unknown> {
    return { mode: this.req.mode, until: this.retention!.until.toISOString(), objects_checked: this.extended?.checked ?? 0, objects_extended: this.extended?.extended ?? 0, objects_missing: this.extended?.missing ?? 0 };
  }
}
